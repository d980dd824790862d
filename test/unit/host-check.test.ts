import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostLeftovers, type HostSnapshot } from '../env/host-check.js';

const clean: HostSnapshot = {
  workDirs: ['nxt-env-k8s-other'],
  mounts: [],
  processes: [],
  links: [],
  cgroups: [],
  hostPaths: [],
  machineRecord: false,
  sysctls: { 'kernel.panic': '0', 'vm.overcommit_memory': '0' },
  iptables: '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT',
};

describe('host check after a test run (.ci/run)', () => {
  it('reports nothing for the same host, and each thing the run added or changed', () => {
    expect(hostLeftovers(clean, { ...clean })).toEqual([]);
    expect(
      hostLeftovers(clean, {
        workDirs: ['nxt-env-k8s-other', 'nxt-env-node-abc'],
        mounts: ['/tmp/nxt-env-node-abc/kubelet'],
        processes: ['containerd-shim-runc-v2 -address /tmp/nxt-env-node-abc/containerd/containerd.sock'],
        links: ['nxtbr1a2b3c'],
        cgroups: ['/sys/fs/cgroup/memory/nxt-node-1a2b3c'],
        hostPaths: ['/var/lib/kubelet'],
        machineRecord: true,
        sysctls: { 'kernel.panic': '10', 'vm.overcommit_memory': '0' },
        iptables: '*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\nCOMMIT',
      }),
    ).toEqual([
      `harness work dir ${join(tmpdir(), 'nxt-env-node-abc')}`,
      'mount /tmp/nxt-env-node-abc/kubelet',
      'process containerd-shim-runc-v2 -address /tmp/nxt-env-node-abc/containerd/containerd.sock',
      'network link nxtbr1a2b3c',
      'cgroup /sys/fs/cgroup/memory/nxt-node-1a2b3c',
      'kubelet host path /var/lib/kubelet',
      'real-node machine record /run/nxt-real-node/state.json',
      'kernel setting kernel.panic = 10 (was 0)',
      'iptables rule added: :KUBE-FIREWALL - [0:0]',
    ]);
  });
});
