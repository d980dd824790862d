import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../env/binaries.js';
import {
  expandVars,
  operatorCommandMap,
  rewritePaths,
  RUNNER_PLACEMENT,
  TestKubelet,
} from '../env/test-kubelet.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  restrictedContainer,
  testClients,
} from '../support/kube.js';

describe('test kubelet path mapping and $(VAR) expansion', () => {
  const paths = [
    { containerPath: '/data', hostPath: '/tmp/k/pvc/ns/data' },
    { containerPath: '/data/sub/', hostPath: '/tmp/k/sub' },
    { containerPath: '/dev/termination-log', hostPath: '/tmp/k/term' },
  ];
  it('rewrites container paths only at path boundaries, longest first, in one pass', () => {
    expect(rewritePaths('/data', paths)).toBe('/tmp/k/pvc/ns/data');
    expect(rewritePaths('--storage-dir=/data/backups', paths)).toBe(
      '--storage-dir=/tmp/k/pvc/ns/data/backups',
    );
    expect(rewritePaths('/data/sub/x /data/subway', paths)).toBe('/tmp/k/sub/x /tmp/k/pvc/ns/data/subway');
    expect(rewritePaths('echo > /dev/termination-log;', paths)).toBe('echo > /tmp/k/term;');
    expect(rewritePaths('"/data" /database /x/data data $HOME/data', paths)).toBe(
      '"/tmp/k/pvc/ns/data" /database /x/data data $HOME/data',
    );
  });
  it('maps the operator entrypoint to the TypeScript sources', () => {
    const map = operatorCommandMap({ env: { PG_BIN_DIR: '/pg' } });
    const ctx = { namespace: 'ns', pod: 'p', container: 'c', env: {}, paths: [], terminationLog: '/tmp/t' };
    const main = join(REPO_ROOT, 'operator', 'main.ts');
    expect(map('any', ['node', 'dist/operator/main.js'], ['backup', '--id', 'x'], ctx)).toEqual({
      cmd: process.execPath,
      args: ['--import', 'tsx', main, 'backup', '--id', 'x', '--termination-log', '/tmp/t'],
      cwd: REPO_ROOT,
      env: { PG_BIN_DIR: '/pg' },
    });
    expect(map('any', ['/usr/bin/tini', '--', 'node', 'dist/bundle/main.js'], ['verify'], ctx)?.args).toEqual(
      ['--import', 'tsx', main, 'verify', '--termination-log', '/tmp/t'],
    );
    expect(
      map('ghcr.io/x/nxt-rollback-operator:1', [], ['restore', '--termination-log=/tmp/u'], ctx)?.args,
    ).toEqual(['--import', 'tsx', main, 'restore', '--termination-log=/tmp/u']);
    expect(map('busybox', ['sh', '-c', 'true'], [], ctx)).toBeUndefined();
  });
  it('expands $(VAR) like Kubernetes', () => {
    const vars = { A: 'x', B: '$(A)' };
    expect(expandVars('$(A)-$(B)-$(C)-$$(A)-$$-$x-$(A', vars)).toBe('x-$(A)-$(C)-$(A)-$-$x-$(A');
  });
});

// A Job's pod really runs on this machine through the test kubelet, and the real job controller sees the
// outcome. Skipped against an existing cluster: its node-lifecycle controller expects node Leases.
describe.skipIf(inject('existingCluster'))('test kubelet', () => {
  const { core, batch } = testClients();
  const password = 's3cr3t pa55 "quoted"';
  const logs: string[] = [];
  let ns = '';
  let pvName = '';
  let workDir = '';
  let kubelet: TestKubelet;

  beforeAll(async () => {
    ns = await createTestNamespace('kubelet');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-test-kubelet-'));
    kubelet = await TestKubelet.start({
      kubeconfigPath: inject('kubeconfigPath'),
      workDir,
      log: (m) => logs.push(`${new Date().toISOString()} ${m}`),
      // An "image" whose entrypoint is mapped to a shell script that reports its argv and cwd.
      commandMap: (image, command, args) =>
        image === 'example.com/tool:1'
          ? {
              cmd: 'sh',
              args: [
                '-c',
                'printf "%s|%s" "$*" "$(pwd)" > "$NXT_TERMINATION_LOG"',
                'tool',
                ...command,
                ...args,
              ],
            }
          : undefined,
    });
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'app' }, stringData: { password, 'ca.crt': 'CERT' } },
    });
    // No provisioner runs: a pre-bound PV (claimRef) that the persistentvolume-binder controller binds.
    pvName = `${ns}-data`;
    await core.createPersistentVolume({
      body: {
        metadata: { name: pvName },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          storageClassName: 'manual',
          persistentVolumeReclaimPolicy: 'Retain',
          hostPath: { path: join(workDir, 'unused-hostpath') },
          claimRef: { namespace: ns, name: 'data' },
        },
      },
    });
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: {
        metadata: { name: 'data' },
        spec: {
          storageClassName: 'manual',
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '1Gi' } },
        },
      },
    });
    await eventually('PVC data to be Bound', async () => {
      const pvc = await core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: ns });
      return pvc.status?.phase === 'Bound';
    });
  });

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail')
      console.log(`--- test kubelet log ---\n${logs.slice(-60).join('\n')}`);
  });

  afterAll(async () => {
    if (process.env.NXT_TEST_KUBELET_LOG) console.log(logs.join('\n'));
    await deleteTestNamespace(ns);
    await core.deletePersistentVolume({ name: pvName }).catch(() => {});
    await kubelet?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const container = (script: string) => ({
    ...restrictedContainer('task', 'busybox:1.36'),
    command: ['sh', '-c', script],
    env: [{ name: 'SECRET_VALUE', valueFrom: { secretKeyRef: { name: 'app', key: 'password' } } }],
    volumeMounts: [{ name: 'data', mountPath: '/data' }],
  });
  const podSpec = (containers: any[], extra: Record<string, unknown> = {}) => ({
    restartPolicy: 'Never',
    ...RUNNER_PLACEMENT,
    containers,
    volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
    ...extra,
  });
  const createJob = (name: string, script: string) =>
    batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name },
        spec: { backoffLimit: 0, template: { spec: podSpec([container(script)]) } },
      } as V1Job,
    });
  const jobCondition = (name: string, type: 'Complete' | 'Failed') =>
    eventually(
      `job ${name} ${type}`,
      async () => {
        const j = await batch.readNamespacedJob({ name, namespace: ns });
        return j.status?.conditions?.some((c) => c.type === type && c.status === 'True') ? j : undefined;
      },
      60_000,
    );
  const jobPods = async (name: string) =>
    (await core.listNamespacedPod({ namespace: ns, labelSelector: `batch.kubernetes.io/job-name=${name}` }))
      .items;

  it('runs a Job pod with a Secret env and a PVC; the job controller sees it complete', async () => {
    await createJob(
      'hash',
      'echo "$SECRET_VALUE" | sha256sum > /data/out.txt; printf "{\\"ok\\":true}" > /dev/termination-log',
    );
    const job = await jobCondition('hash', 'Complete');
    expect(job.status?.succeeded).toBe(1);
    const [pod] = await jobPods('hash');
    expect(pod?.spec?.nodeName).toBe(kubelet.nodeName);
    expect(pod?.status?.phase).toBe('Succeeded');
    const terminated = pod?.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated).toMatchObject({ exitCode: 0, reason: 'Completed', message: '{"ok":true}' });
    expect(terminated?.startedAt).toBeDefined();
    expect(terminated?.finishedAt).toBeDefined();
    expect(pod?.status?.podIP).toBe('127.0.0.1');
    const out = join(kubelet.pvcDir(ns, 'data'), 'out.txt');
    const hash = createHash('sha256').update(`${password}\n`).digest('hex');
    expect(readFileSync(out, 'utf8')).toBe(`${hash}  -\n`);
    const result = await kubelet.waitForPodDone(ns, pod!.metadata!.name!);
    expect(result).toMatchObject({ phase: 'Succeeded', deleted: false, containers: [{ exitCode: 0 }] });
  });

  it('reports a failing command as a Failed pod and the Job fails (backoffLimit 0)', async () => {
    await createJob('fail', 'echo about to fail >&2; exit 3');
    const job = await jobCondition('fail', 'Failed');
    expect(job.status?.failed).toBe(1);
    expect(job.status?.conditions?.find((c) => c.type === 'Failed')?.reason).toBe('BackoffLimitExceeded');
    const [pod] = await jobPods('fail');
    expect(pod?.status?.phase).toBe('Failed');
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 3,
      reason: 'Error',
    });
    expect(kubelet.logsOf(ns, pod!.metadata!.name!)).toContain('about to fail');
  });

  it('kills the processes of a deleted Job and the pod goes away', async () => {
    // `sleep; echo` makes sh fork, so the kill must reach the whole process group.
    await createJob('sleeper', 'sleep 300; echo never');
    const proc = await eventually('the sleeper process', async () =>
      kubelet.running().find((p) => p.namespace === ns && p.pod.startsWith('sleeper-')),
    );
    await eventually('the sleeper pod Running and Ready', async () => {
      const [pod] = await jobPods('sleeper');
      return (
        pod?.status?.phase === 'Running' &&
        pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
      );
    });
    // sh and sleep: Ready comes from the kubelet at start, the fork a moment later (a loaded run saw only sh).
    await eventually('sh to fork sleep', async () => groupMembers(proc.pid).length >= 2);
    await batch.deleteNamespacedJob({ name: 'sleeper', namespace: ns, propagationPolicy: 'Background' });
    await eventually(
      'the sleeper pod to be gone',
      async () => (await jobPods('sleeper')).length === 0,
      60_000,
    );
    expect(groupMembers(proc.pid)).toEqual([]);
    expect(kubelet.running().filter((p) => p.namespace === ns)).toEqual([]);
    const result = await kubelet.waitForPodDone(ns, proc.pod);
    expect(result).toMatchObject({ phase: 'Failed', deleted: true, containers: [{ exitCode: 143 }] });
  });

  it('resolves env sources, volumes, custom termination paths and FallbackToLogsOnError', async () => {
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'settings' }, data: { MODE: 'fast', 'level.txt': '7' } },
    });
    const script = [
      'echo "mode=$CFG_MODE level=$LEVEL name=$POD_NAME ns=$POD_NS node=$NODE app=$APP greeting=$GREETING"',
      'echo "creds=$(cat /etc/creds/password) scratch=$(ls -d /scratch) mem=$MEM_MI"',
      'echo "result for $POD_NAME" > /run/msg/result',
      'exit 5',
    ].join('; ');
    const failing = {
      ...restrictedContainer('main', 'busybox:1.36'),
      command: ['sh', '-c', script],
      terminationMessagePolicy: 'FallbackToLogsOnError',
      envFrom: [{ prefix: 'CFG_', configMapRef: { name: 'settings' } }],
      env: [
        { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'settings', key: 'level.txt' } } },
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: 'GREETING', value: 'hello-$(POD_NAME)' },
        { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
        { name: 'MISSING', valueFrom: { secretKeyRef: { name: 'nope', key: 'x', optional: true } } },
      ],
      resources: { limits: { memory: '64Mi' } },
      volumeMounts: [
        { name: 'creds', mountPath: '/etc/creds' },
        { name: 'scratch', mountPath: '/scratch' },
      ],
    };
    const reporting = {
      ...restrictedContainer('report', 'busybox:1.36'),
      command: ['sh', '-c', 'printf "from report" > /run/msg/report'],
      terminationMessagePath: '/run/msg/report',
    };
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'envy', labels: { app: 'envy-app' } },
        spec: {
          ...RUNNER_PLACEMENT,
          restartPolicy: 'Never',
          containers: [{ ...failing, terminationMessagePath: '/run/msg/result' }, reporting],
          volumes: [
            { name: 'creds', secret: { secretName: 'app', items: [{ key: 'password', path: 'password' }] } },
            { name: 'scratch', emptyDir: {} },
          ],
        },
      } as V1Pod,
    });
    const result = await kubelet.waitForPodDone(ns, 'envy', 60_000);
    expect(result.phase).toBe('Failed');
    const pod = await core.readNamespacedPod({ name: 'envy', namespace: ns });
    expect(pod.status?.phase).toBe('Failed');
    const byName = Object.fromEntries(
      (pod.status?.containerStatuses ?? []).map((s) => [s.name, s.state?.terminated]),
    );
    // The termination file had content, so no fallback to logs.
    expect(byName.main).toMatchObject({ exitCode: 5, message: 'result for envy\n' });
    expect(byName.report).toMatchObject({ exitCode: 0, message: 'from report' });
    const out = kubelet.logsOf(ns, 'envy', 'main');
    expect(out).toContain(`mode=fast level=7 name=envy ns=${ns} node=${kubelet.nodeName} app=envy-app`);
    expect(out).toContain('greeting=hello-envy');
    expect(out).toContain(
      `creds=${password} scratch=${join(workDir, 'pods', pod.metadata!.uid!, 'volumes', 'scratch')}`,
    );
    expect(out).toContain('mem=64');

    // With an empty termination file the message falls back to the tail of the output.
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'fallback' },
        spec: {
          ...RUNNER_PLACEMENT,
          restartPolicy: 'Never',
          containers: [
            {
              ...restrictedContainer('main', 'busybox:1.36'),
              command: ['sh', '-c', 'for i in $(seq 1 200); do echo line $i; done; exit 1'],
              terminationMessagePolicy: 'FallbackToLogsOnError',
            },
          ],
        },
      } as V1Pod,
    });
    const fb = await kubelet.waitForPodDone(ns, 'fallback', 60_000);
    const message = fb.containers[0]?.message ?? '';
    expect(message.split('\n')).toHaveLength(80);
    expect(message.startsWith('line 121\n')).toBe(true);
    expect(message.endsWith('line 200')).toBe(true);
  });

  it('maps images through commandMap and rewrites mount paths in args and workingDir', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'mapped' },
        spec: podSpec([
          {
            ...restrictedContainer('tool', 'example.com/tool:1'),
            command: ['tool'],
            args: ['--out=/data/mapped', '/database', '$(DIR)/x'],
            env: [{ name: 'DIR', value: '/data' }],
            workingDir: '/data',
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          },
        ]),
      } as V1Pod,
    });
    const result = await kubelet.waitForPodDone(ns, 'mapped', 60_000);
    const dir = kubelet.pvcDir(ns, 'data');
    expect(result.containers[0]).toMatchObject({
      exitCode: 0,
      message: `tool --out=${dir}/mapped /database ${dir}/x|${dir}`,
    });
  });

  it('fails a container without a command (StartError) and enforces activeDeadlineSeconds', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'no-command' },
        spec: podSpec([restrictedContainer('main', 'busybox:1.36')]),
      } as V1Pod,
    });
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'slow' },
        spec: podSpec([{ ...restrictedContainer('main', 'busybox:1.36'), command: ['sleep', '60'] }], {
          activeDeadlineSeconds: 2,
          terminationGracePeriodSeconds: 1,
        }),
      } as V1Pod,
    });
    const noCommand = await kubelet.waitForPodDone(ns, 'no-command', 60_000);
    expect(noCommand.containers[0]).toMatchObject({ exitCode: 128, reason: 'StartError' });
    const slow = await kubelet.waitForPodDone(ns, 'slow', 60_000);
    expect(slow).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', deleted: false });
    const pod = await core.readNamespacedPod({ name: 'slow', namespace: ns });
    expect(pod.status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded' });
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(143);
  });

  it('waits with CreateContainerConfigError for a missing Secret and runs once it exists', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'late' },
        spec: podSpec([
          {
            ...restrictedContainer('main', 'busybox:1.36'),
            command: ['sh', '-c', 'printf "%s" "$TOKEN" > /dev/termination-log'],
            env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'late', key: 'token' } } }],
          },
        ]),
      } as V1Pod,
    });
    await eventually('CreateContainerConfigError on pod late', async () => {
      const p = await core.readNamespacedPod({ name: 'late', namespace: ns });
      return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError';
    });
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'late' }, stringData: { token: 't0k' } },
    });
    const result = await kubelet.waitForPodDone(ns, 'late', 60_000);
    expect(result.containers[0]).toMatchObject({ exitCode: 0, message: 't0k' });
    const node = await core.readNode({ name: kubelet.nodeName });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.spec?.taints).toEqual([{ key: 'nxt.test/runner', value: 'true', effect: 'NoSchedule' }]);
  });
});

/** Live processes whose process group is `pgid` (from /proc/<pid>/stat). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = join('/proc', d, 'stat');
    if (!existsSync(f)) continue;
    try {
      const stat = readFileSync(f, 'utf8');
      // pid (comm) state ppid pgrp ...; comm may contain spaces, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}
