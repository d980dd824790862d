import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baselineSnapshot, hostLeftovers, type HostSnapshot } from '../env/host-check.js';
import { iptablesRules } from '../env/node-sweep.js';

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

  it('is not red for what went during the run: a crashed run swept, settings put back, rules removed', () => {
    // an earlier run crashed with a real node: its kubelet's values are current, its record and dirs are there
    const crashed: HostSnapshot = {
      ...clean,
      workDirs: ['nxt-env-node-stale'],
      processes: ['containerd-shim-runc-v2 -address /tmp/nxt-env-node-stale/containerd/containerd.sock'],
      links: ['nxtbrabc'],
      hostPaths: ['/var/lib/kubelet'],
      machineRecord: true,
      sysctls: { 'kernel.panic': '10', 'kernel.panic_on_oops': '1' },
    };
    const record = {
      users: ['/tmp/nxt-env-node-stale'],
      sysctls: { 'kernel.panic': '0', 'kernel.panic_on_oops': '0' },
      createdHostPaths: [],
    };
    // this run's reapStaleRuns swept it: the machine's values are back
    const swept: HostSnapshot = {
      ...crashed,
      workDirs: [],
      processes: [],
      links: [],
      hostPaths: [],
      machineRecord: false,
      sysctls: { 'kernel.panic': '0', 'kernel.panic_on_oops': '0' },
      iptables: '*filter\nCOMMIT',
    };
    const before = baselineSnapshot(crashed, record);
    expect(before.sysctls).toEqual(record.sysctls);
    expect(hostLeftovers(before, swept)).toEqual([]);
    // and a kubelet value left by this run is still reported against the machine's value
    expect(hostLeftovers(before, { ...swept, sysctls: { ...swept.sysctls, 'kernel.panic': '10' } })).toEqual([
      'kernel setting kernel.panic = 10 (was 0)',
    ]);
    // a change by something else on the machine, to a value that is not the kubelet's, is not ours
    expect(hostLeftovers(clean, { ...clean, sysctls: { ...clean.sysctls, 'kernel.panic': '5' } })).toEqual(
      [],
    );
    // another run's real node runs at compare time: the kubelet's values are its own
    const other = { ...swept, machineRecord: true, machineUsers: ['/tmp/nxt-env-node-other'] };
    expect(hostLeftovers(before, { ...other, sysctls: { ...swept.sysctls, 'kernel.panic': '10' } })).toEqual(
      [],
    );
    // no record at save time: the current values are the baseline
    expect(baselineSnapshot(clean, undefined)).toBe(clean);
  });

  it('records nft and legacy iptables rules, and never throws', () => {
    const enoent = () => Object.assign(new Error('spawnSync x ENOENT'), { code: 'ENOENT' });
    const dumps: Record<string, string> = {
      'iptables-save': '# Warning: iptables-legacy tables present\n*filter\n:INPUT ACCEPT [3:120]\nCOMMIT\n',
      'iptables-legacy-save': '*nat\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n',
    };
    const run = (cmd: string) => {
      if (dumps[cmd] === undefined) throw enoent();
      return dumps[cmd];
    };
    expect(iptablesRules(run)).toBe(
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        'COMMIT',
        '[iptables-legacy-save] *nat',
        '[iptables-legacy-save] -A POSTROUTING -j MASQUERADE',
        '[iptables-legacy-save] COMMIT',
      ].join('\n'),
    );
    // ip6tables-save without IPv6 netfilter: undefined and a warning, not an exception that fails `save`
    const warnings: string[] = [];
    const failing = (cmd: string) => {
      if (cmd === 'ip6tables-save') throw new Error('ip6tables-save: unable to initialize table');
      return run(cmd);
    };
    expect(iptablesRules(failing, (m) => warnings.push(m))).toBeUndefined();
    expect(warnings).toEqual([
      'ip6tables-save failed, iptables rules not recorded: ip6tables-save: unable to initialize table',
    ]);
    // not installed at all
    expect(
      iptablesRules(() => {
        throw enoent();
      }),
    ).toBeUndefined();
    // an undefined side is not compared; a removed rule is not reported, an added one is
    expect(hostLeftovers(clean, { ...clean, iptables: undefined })).toEqual([]);
    expect(hostLeftovers(clean, { ...clean, iptables: '*filter\nCOMMIT' })).toEqual([]);
    expect(
      hostLeftovers(clean, { ...clean, iptables: `${clean.iptables}\n[iptables-legacy-save] -A X` }),
    ).toEqual(['iptables rule added: [iptables-legacy-save] -A X']);
  });
});
