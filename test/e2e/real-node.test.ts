// The real node (test/env/real-node.ts): pods in a Pod Security `restricted` namespace really run there from a
// locally built image, as a non-root user with a read-only root filesystem, RuntimeDefault seccomp and no
// capabilities (the probe image prints what the kernel says); a Job completes; `kubectl logs` and `exec`
// work; and stopping a node, by stop(), by Ctrl-C of `npm run cluster`, or by SIGKILL followed by the next
// run's reapStaleRuns, leaves no process, mount, network link, cgroup or directory behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../env/binaries.js';
import { apiRequest } from '../env/control-plane.js';
import {
  cgroupHierarchies,
  iptablesRules,
  KUBELET_SYSCTLS,
  mountsUnder,
  nodeLeftovers,
  readMachineRecord,
  readNodeState,
  readSysctls,
} from '../env/node-sweep.js';
import { reapStaleRuns } from '../env/processes.js';
import { realNodeUnsupportedReason, startRealNode, type RealNode } from '../env/real-node.js';
import {
  binPath,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';

// the e2e project's global setup always starts a real node; other machines skip with the reason
const skipReason = realNodeUnsupportedReason();
const node = skipReason ? undefined : inject('realNode');

/**
 * The control plane's endpoint, CA (with its key, to sign a second node's certificates) and admin token, from
 * the admin kubeconfig the setup provides and the PKI beside it (LocalControlPlane's work dir layout).
 */
function controlPlaneAccess() {
  const kubeconfig = inject('kubeconfigPath');
  const pkiDir = join(dirname(kubeconfig), 'pki');
  const adminToken = /token: (\S+)/.exec(readFileSync(kubeconfig, 'utf8'))?.[1] ?? '';
  return {
    server: inject('apiServer'),
    caCert: join(pkiDir, 'ca.crt'),
    caKey: join(pkiDir, 'ca.key'),
    adminToken,
  };
}

/** A pod spec that passes Pod Security `restricted`, on the node described by `placement`. */
function restrictedPodSpec(
  placement: { nodeSelector: Record<string, string>; tolerations: object[] },
  image: string,
  args: string[],
) {
  return {
    ...placement,
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [
      {
        name: 'probe',
        image,
        imagePullPolicy: 'Never',
        args,
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
      },
    ],
  };
}

/** Processes whose command line names `dir` (the kubelet, containerd, shims), from /proc. */
function processesNaming(dir: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    })
    .filter((c) => c.includes(dir + '/'));
}

/** The real node's work dir, from the containerd socket the setup provides (<workDir>/containerd/...). */
const firstNodeDir = () => dirname(dirname(inject('realNodeContainerd')));

function expectNodeGone(
  workDir: string,
  state: ReturnType<typeof readNodeState>,
  rulesBefore: string | undefined,
) {
  expect(nodeLeftovers(workDir, state)).toEqual([]);
  // no iptables chain or rule added or left (makeIPTablesUtilChains: false, no NAT on the pods' bridge)
  expect(iptablesRules()).toEqual(rulesBefore);
  expect(readMachineRecord()?.users ?? []).not.toContain(workDir);
  expect(processesNaming(workDir)).toEqual([]);
  expect(mountsUnder(workDir)).toEqual([]);
  expect(existsSync(workDir)).toBe(false);
  expect(existsSync(`/sys/class/net/${state!.bridge}`)).toBe(false);
  for (const h of cgroupHierarchies()) expect(existsSync(join(h, state!.cgroupName))).toBe(false);
}

describe.skipIf(!node)(`real node${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let ns = '';
  let probeImage = '';
  beforeAll(async () => {
    ns = await createTestNamespace('real-node');
    probeImage = await probeImageIn(inject('realNodeContainerd'));
  });
  afterAll(async () => {
    if (ns) await deleteTestNamespace(ns);
  });

  it('runs a pod from a local image in a restricted namespace as uid 65532, read-only root, seccomp, no capabilities; kubectl logs shows its output', async () => {
    const { core } = testClients();
    const ns0 = await core.readNamespace({ name: ns });
    expect(ns0.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'probe' },
        spec: restrictedPodSpec(node!.placement, probeImage, ['-message', 'hello from the real node']),
      } as never,
    });
    const pod = await eventually(
      'the probe pod to succeed',
      async () => {
        const p = await core.readNamespacedPod({ name: 'probe', namespace: ns });
        if (p.status?.phase === 'Failed') throw new Error(`pod failed: ${JSON.stringify(p.status)}`);
        return p.status?.phase === 'Succeeded' && p;
      },
      120_000,
      500,
    );
    expect(pod.spec?.nodeName).toBe(node!.nodeName);
    const logs = await kubectl('logs', '-n', ns, 'probe');
    expect(logs.split('\n')).toEqual(
      expect.arrayContaining([
        'hello from the real node',
        'uid=65532',
        'gid=65532',
        'rootfs=read-only',
        'capeff=0000000000000000',
        'capbnd=0000000000000000',
        'seccomp=2',
        'nonewprivs=1',
        'done',
      ]),
    );
  });

  it('keeps pods that do not tolerate the real node off it', async () => {
    const { core } = testClients();
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'no-toleration' },
        spec: {
          ...restrictedPodSpec(node!.placement, probeImage, []),
          tolerations: [],
        },
      } as never,
    });
    // the scheduler reports the taint: only the real node matches the selector, and the pod does not tolerate it
    await eventually(
      'the untolerating pod to be unschedulable',
      async () => {
        const p = await core.readNamespacedPod({ name: 'no-toleration', namespace: ns });
        const c = (p.status?.conditions ?? []).find((x) => x.type === 'PodScheduled');
        return c?.status === 'False' && c.reason === 'Unschedulable' && !p.spec?.nodeName;
      },
      60_000,
      500,
    );
  });

  it('completes a Job on the real node', async () => {
    const { batch } = testClients();
    await batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: 'probe-job' },
        spec: {
          backoffLimit: 0,
          template: { spec: restrictedPodSpec(node!.placement, probeImage, ['-message', 'job ran']) },
        },
      } as never,
    });
    await eventually(
      'the Job to complete',
      async () => {
        const j = await batch.readNamespacedJob({ name: 'probe-job', namespace: ns });
        const failed = (j.status?.conditions ?? []).find((c) => c.type === 'Failed' && c.status === 'True');
        if (failed) throw new Error(`Job failed: ${failed.reason}: ${failed.message}`);
        return (j.status?.conditions ?? []).some((c) => c.type === 'Complete' && c.status === 'True');
      },
      120_000,
      500,
    );
    expect(await kubectl('logs', '-n', ns, 'job/probe-job')).toContain('job ran');
  });

  it('kubectl exec runs a command in a container on the real node', async () => {
    const { core } = testClients();
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'sleeper' },
        spec: restrictedPodSpec(node!.placement, probeImage, ['-sleep', '10m']),
      } as never,
    });
    await eventually(
      'the sleeper to run',
      async () =>
        (await core.readNamespacedPod({ name: 'sleeper', namespace: ns })).status?.phase === 'Running',
      120_000,
      500,
    );
    const out = await kubectl('exec', '-n', ns, 'sleeper', '--', '/probe', '-message', 'exec works');
    expect(out).toContain('exec works');
    expect(out).toContain('uid=65532');
  });

  it('stop() leaves no process, mount, network link, cgroup, iptables rule or directory behind with a pod still running; the kernel settings stay while the first node runs', async () => {
    const cp = controlPlaneAccess();
    const pki = { caCert: cp.caCert, adminToken: cp.adminToken };
    // The first node (the setup's) saved the machine's kernel settings and its kubelet has set its own.
    const kubeletValues = readSysctls();
    const recordBefore = readMachineRecord();
    expect(recordBefore?.users).toContain(firstNodeDir());
    expect(Object.keys(recordBefore!.sysctls).sort()).toEqual([...KUBELET_SYSCTLS].sort());
    expect(kubeletValues).toMatchObject({ 'kernel.panic': '10', 'vm.overcommit_memory': '1' });
    const rulesBefore = iptablesRules();
    const second: RealNode = await startRealNode(
      {
        server: cp.server,
        pki: { caCert: cp.caCert, caKey: cp.caKey },
        request: (method, path, body) => apiRequest(cp.server, pki, method, path, body),
      },
      { nodeName: 'nxt-e2e-second-node' },
    );
    const state = readNodeState(second.workDir);
    let stopped = false;
    try {
      // the second node shares the first's record: the machine's own values, not the kubelet's it found
      expect(state!.machineRecord).toBe(true);
      expect(state!.sysctls).toEqual(recordBefore!.sysctls);
      expect(readMachineRecord()?.users).toEqual([...recordBefore!.users, second.workDir]);
      const { core } = testClients();
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'on-second' },
          spec: restrictedPodSpec(second.placement, second.probeImage, ['-sleep', '10m']),
        } as never,
      });
      await eventually(
        'the pod on the second node to run',
        async () =>
          (await core.readNamespacedPod({ name: 'on-second', namespace: ns })).status?.phase === 'Running',
        120_000,
        500,
      );
      // what stop() must remove is really there: container root filesystems, /dev/shm, the pod's netns
      const mounts = mountsUnder(second.workDir);
      expect(mounts.some((m) => m.endsWith('/rootfs'))).toBe(true);
      expect(mounts.some((m) => m.endsWith('/shm'))).toBe(true);
      expect(mounts.some((m) => m.includes('/netns/'))).toBe(true);
      expect(processesNaming(second.workDir).length).toBeGreaterThan(2);
      expect(second.leftovers().length).toBeGreaterThan(1);

      await second.stop();
      stopped = true;
      expectNodeGone(second.workDir, state, rulesBefore);
      // the first node still runs: its kubelet's settings stay, and the record lists only it again (the last
      // node writes the machine's values back: test/unit/node-sysctls.test.ts, and .ci/run's host check)
      expect(readSysctls()).toEqual(kubeletValues);
      expect(readMachineRecord()).toEqual(recordBefore);
      const gone = await apiRequest(cp.server, pki, 'GET', '/api/v1/nodes/nxt-e2e-second-node');
      expect(gone.status).toBe(404);
    } finally {
      if (!stopped) await second.stop().catch(() => {});
    }
  });
});

/** `npm run cluster` with NXT_REAL_NODE=1, in its own process group (as a terminal runs it). */
async function startClusterCli(): Promise<{
  child: ChildProcess;
  output: () => string;
  kubeconfig: string;
  nodeWorkDir: string;
}> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test', 'env', 'cli.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, NXT_REAL_NODE: '1' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await eventually(
    'npm run cluster to be up',
    async () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}:\n${out}`);
      return out.includes('Press Ctrl-C');
    },
    240_000,
    500,
  );
  const kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)?.[1] ?? '';
  const nodeWorkDir = /Real node \S+ \(work dir (\S+)\)/.exec(out)?.[1] ?? '';
  expect(kubeconfig).not.toBe('');
  expect(nodeWorkDir).not.toBe('');
  return { child, output: () => out, kubeconfig, nodeWorkDir };
}

/** Starts a restricted pod on the CLI's real node and waits until it runs (so it has mounts and processes). */
async function runPodOn(kubeconfig: string, workDir: string) {
  const state = readNodeState(workDir)!;
  const manifest = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'sleeper', namespace: 'default' },
    spec: restrictedPodSpec(
      {
        nodeSelector: { 'nxt.test/real-node': 'true' },
        tolerations: [{ key: 'nxt.test/real-node', operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
      },
      // the probe image is the one the node imported: read its name from the node's image store
      await probeImageIn(join(workDir, 'containerd', 'containerd.sock')),
      ['-sleep', '10m'],
    ),
  });
  const kc = (args: string[], input?: string) =>
    new Promise<string>((resolve, reject) => {
      const p = spawn(binPath('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args]);
      let o = '';
      p.stdout.on('data', (d: Buffer) => (o += d.toString()));
      p.stderr.on('data', (d: Buffer) => (o += d.toString()));
      p.on('close', (code) => (code === 0 ? resolve(o) : reject(new Error(o))));
      if (input) p.stdin.end(input);
      else p.stdin.end();
    });
  await kc(['apply', '-f', '-'], manifest);
  await eventually(
    'the sleeper on the CLI node to run',
    async () => (await kc(['get', 'pod', 'sleeper', '-o', 'jsonpath={.status.phase}'])) === 'Running',
    120_000,
    500,
  );
  expect(mountsUnder(workDir).some((m) => m.endsWith('/rootfs'))).toBe(true);
  return state;
}

/** The probe image a real node imported (test/env/real-node.ts), read from its containerd's image store. */
async function probeImageIn(containerdSocket: string): Promise<string> {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'list', '-q']);
    let o = '';
    p.stdout.on('data', (d: Buffer) => (o += d.toString()));
    p.on('close', (code) => (code === 0 ? resolve(o) : reject(new Error(`ctr exited ${code}`))));
  });
  const name = out.split('\n').find((l) => l.startsWith('localhost/nxt-test/probe:'));
  if (!name) throw new Error(`no probe image in ${out}`);
  return name;
}

describe.skipIf(!node)(
  `tearing a real node down after signals${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it.each([
      // Ctrl-C in a terminal: SIGINT to the whole foreground process group (the kubelet and containerd get it too)
      ['Ctrl-C (SIGINT to the process group)', 'SIGINT', true],
      // `kill <pid>`: only the harness process; the kubelet and containerd are still up when it stops them
      ['SIGTERM to the process', 'SIGTERM', false],
    ] as const)(
      '%s of `npm run cluster` with NXT_REAL_NODE=1 removes the node with its running pod',
      async (_what, signal, group) => {
        const rulesBefore = iptablesRules();
        const cli = await startClusterCli();
        try {
          const state = await runPodOn(cli.kubeconfig, cli.nodeWorkDir);
          process.kill(group ? -cli.child.pid! : cli.child.pid!, signal);
          const code = await new Promise<number | null>((r) =>
            cli.child.exitCode !== null ? r(cli.child.exitCode) : cli.child.on('exit', (c) => r(c)),
          );
          expect(code, cli.output()).toBe(0);
          expect(cli.output()).toContain('[cluster] stopped');
          expectNodeGone(cli.nodeWorkDir, state, rulesBefore);
        } finally {
          if (cli.child.exitCode === null) process.kill(-cli.child.pid!, 'SIGKILL');
        }
      },
    );

    it('after `npm run cluster` is killed with SIGKILL, the next run (reapStaleRuns) removes what its node left', async () => {
      const rulesBefore = iptablesRules();
      const cli = await startClusterCli();
      const state = await runPodOn(cli.kubeconfig, cli.nodeWorkDir);
      process.kill(-cli.child.pid!, 'SIGKILL');
      await new Promise<void>((r) => (cli.child.exitCode !== null ? r() : cli.child.on('exit', () => r())));
      // the container and its shim outlive the killed process group; so do its mounts
      expect(mountsUnder(cli.nodeWorkDir).length).toBeGreaterThan(0);
      expect(nodeLeftovers(cli.nodeWorkDir, state).some((l) => l.startsWith('process '))).toBe(true);
      // the killed node is still counted as a user of the machine record until it is swept
      expect(readMachineRecord()?.users).toContain(cli.nodeWorkDir);
      reapStaleRuns();
      expectNodeGone(cli.nodeWorkDir, state, rulesBefore);
    });
  },
);
