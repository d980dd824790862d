// Helpers for the e2e suite (test/e2e): the operator installed from its chart or kustomize base, in the image
// built from the Dockerfile, on the real node (test/e2e/global-setup.ts). What the test adds to make pods work
// on this machine is here and nowhere in the product: machines here only allow traffic to loopback addresses,
// so the operator's pods and the runner pods it creates use hostNetwork (set by a test-owned
// MutatingAdmissionPolicy in namespaces labelled REAL_NODE_NS_LABEL, whose Pod Security level is privileged).
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, expect, inject } from 'vitest';
import { WORKDIR_PREFIX } from '../env/processes.js';
import { binPath, eventually, kubectl, testClients } from './kube.js';

const execFileP = promisify(execFile);

/** Namespaces with this label get their pods moved onto the real node with hostNetwork. */
export const REAL_NODE_NS_LABEL = 'nxt.test/e2e-real-node';
export const LEASE = 'nxt-rollback-operator-leader';

/** helm against the cluster under test (the harness's helm binary). */
export async function helm(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(
      binPath('helm'),
      [`--kubeconfig=${inject('kubeconfigPath')}`, ...args],
      {
        maxBuffer: 32 * 1024 * 1024,
        timeout: 600_000,
      },
    );
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** kubectl apply of YAML text. */
export async function applyYaml(yaml: string, ...args: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nxt-e2e-apply-'));
  try {
    writeFileSync(join(dir, 'objects.yaml'), yaml);
    return await kubectl('apply', '-f', join(dir, 'objects.yaml'), ...args);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The test-only pod mutations, as MutatingAdmissionPolicies (admissionregistration.k8s.io/v1, GA and on by
 * default in v1.36), bound to namespaces labelled REAL_NODE_NS_LABEL:
 * - every pod: hostNetwork, and the real node's nodeSelector and toleration (runner Jobs and the operator);
 * - the operator's `manager` container additionally: KUBERNETES_SERVICE_HOST/PORT of the loopback API server
 *   (in-cluster config), and no metrics/health listeners, ports or probes: two replicas share the one node's
 *   network namespace, so fixed ports would collide (and hostNetwork turns containerPorts into host ports).
 */
export function realNodePoliciesYaml(
  placement = inject('realNode').placement,
  apiServer = inject('apiServer'),
): string {
  const api = new URL(apiServer);
  const selector = Object.entries(placement.nodeSelector)
    .map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join(', ');
  const tolerations = placement.tolerations
    .map((t) =>
      Object.entries(t)
        .map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`)
        .join(', '),
    )
    .map((t) => `{${t}}`)
    .join(', ');
  const env = (name: string, value: string) =>
    `Object.spec.containers.env{name: ${JSON.stringify(name)}, value: ${JSON.stringify(value)}}`;
  const remove = (field: string) =>
    `(has(object.spec.containers[0].${field}) ? [JSONPatch{op: "remove", path: "/spec/containers/0/${field}"}] : [])`;
  const binding = (name: string) => `---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata:
  name: ${name}
spec:
  policyName: ${name}
  matchResources:
    namespaceSelector:
      matchLabels:
        ${REAL_NODE_NS_LABEL}: "true"
`;
  return `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata:
  name: nxt-e2e-real-node-pods
spec:
  failurePolicy: Fail
  reinvocationPolicy: Never
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [pods]
  mutations:
    # JSONPatch: nodeSelector and tolerations are atomic, which an ApplyConfiguration may not change.
    - patchType: JSONPatch
      jsonPatch:
        expression: >-
          [JSONPatch{op: "add", path: "/spec/hostNetwork", value: true},
           JSONPatch{op: "add", path: "/spec/nodeSelector", value: {${selector}}},
           JSONPatch{op: "add", path: "/spec/tolerations", value: [${tolerations}]}]
${binding('nxt-e2e-real-node-pods')}---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata:
  name: nxt-e2e-operator-pods
spec:
  failurePolicy: Fail
  reinvocationPolicy: Never
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [pods]
  matchConditions:
    - name: manager
      expression: object.spec.containers.size() == 1 && object.spec.containers[0].name == "manager"
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: >-
          Object{spec: Object.spec{containers: [Object.spec.containers{name: "manager", env: [${[
            env('KUBERNETES_SERVICE_HOST', api.hostname),
            env('KUBERNETES_SERVICE_PORT', api.port),
            env('METRICS_ADDR', '0'),
            env('HEALTH_ADDR', '0'),
          ].join(', ')}]}]}}
    - patchType: JSONPatch
      jsonPatch:
        expression: >-
          ${remove('ports')} + ${remove('livenessProbe')} + ${remove('readinessProbe')}
${binding('nxt-e2e-operator-pods')}`;
}

/** This run's image (built by test/e2e/global-setup.ts) as its repository and tag. */
export function projectImageParts(): [repository: string, tag: string] {
  return inject('e2eImage').split(/:(?=[^:]+$)/) as [string, string];
}

/**
 * Installs the operator with `install` (helm install, kubectl apply -k) and waits until two of its pods
 * run in `namespace` and one holds the leader Lease; logs how long `what` took to a leader.
 */
export async function installToLeader(
  namespace: string,
  what: string,
  install: () => Promise<unknown>,
  timeoutMs: number,
): Promise<void> {
  const t0 = Date.now();
  await install();
  await eventually(
    'two running operator pods',
    async () => (await runningOperatorPods(namespace)).length === 2,
    timeoutMs,
    1000,
  );
  await leaderPod(namespace);
  console.log(`[e2e] ${what} to a leader: ${Date.now() - t0} ms`);
}

/** Registers (inside a describe) an afterEach that prints the operator's last logs after a failed test. */
export function printOperatorLogsOnFailure(namespace: string): void {
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail')
      console.log(
        `--- operator ---\n${(await operatorLogs(namespace).catch((e) => String(e))).slice(-8000)}`,
      );
  });
}

/** Creates a namespace whose pods go to the real node with hostNetwork (Pod Security: privileged). */
export async function createRealNodeNamespace(prefix: string, name?: string): Promise<string> {
  const { core } = testClients();
  const ns = name ?? `${prefix}-${Math.random().toString(16).slice(2, 8)}`;
  await core.createNamespace({
    body: {
      metadata: {
        name: ns,
        labels: {
          'nxt.test/e2e': 'true',
          [REAL_NODE_NS_LABEL]: 'true',
          // hostNetwork is the test's way to loopback (see the header); everything else the pods do is
          // restricted, which the tests assert on the running containers.
          'pod-security.kubernetes.io/enforce': 'privileged',
        },
      },
    },
  });
  return ns;
}

/**
 * A hostPath PV (pre-bound to `claim`) and its PVC, with the directory made here: the kubelet does not chown
 * hostPath volumes for fsGroup, so it is created owned by the runner's uid/gid 65532. The directory is
 * `<workDir>/data` in a harness work dir (`nxt-env-e2e-pv-*` with this process's owner.pid), so a run killed
 * before it removes `workDir` has it removed by the next run's reapStaleRuns (test/env/processes.ts).
 */
export async function createHostPathClaim(
  namespace: string,
  claim: string,
): Promise<{ pv: string; dir: string; workDir: string }> {
  const { core } = testClients();
  const pv = `${namespace}-${claim}`.slice(0, 253);
  const workDir = mkdtempSync(join(tmpdir(), `${WORKDIR_PREFIX}e2e-pv-`));
  writeFileSync(join(workDir, 'owner.pid'), String(process.pid));
  chmodSync(workDir, 0o755); // mkdtemp makes it 0700
  const dir = join(workDir, 'data');
  mkdirSync(dir);
  chownSync(dir, 65532, 65532);
  chmodSync(dir, 0o770);
  await core.createPersistentVolume({
    body: {
      metadata: { name: pv, labels: { 'nxt.test/e2e': 'true' } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        storageClassName: 'manual',
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: dir, type: 'Directory' },
        claimRef: { namespace, name: claim },
      },
    },
  });
  await core.createNamespacedPersistentVolumeClaim({
    namespace,
    body: {
      metadata: { name: claim },
      spec: {
        storageClassName: 'manual',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
      },
    },
  });
  await eventually(
    `PVC ${claim} Bound`,
    async () =>
      (await core.readNamespacedPersistentVolumeClaim({ name: claim, namespace })).status?.phase === 'Bound',
    60_000,
  );
  return { pv, dir, workDir };
}

/** The pod holding the leader Lease (its identity is `<pod name>_<uuid>`), once one does. */
export async function leaderPod(namespace: string, timeoutMs = 120_000): Promise<string> {
  const { kc } = testClients();
  const { CoordinationV1Api } = await import('@kubernetes/client-node');
  const coordination = kc.makeApiClient(CoordinationV1Api);
  return eventually(
    `a leader in ${namespace}`,
    async () => {
      const l = await coordination.readNamespacedLease({ name: LEASE, namespace });
      const holder = l.spec?.holderIdentity;
      if (!holder) return undefined;
      const pod = holder.split('_')[0]!;
      const { core } = testClients();
      const p = await core.readNamespacedPod({ name: pod, namespace }).catch(() => undefined);
      return p && !p.metadata?.deletionTimestamp ? pod : undefined;
    },
    timeoutMs,
    500,
  );
}

/** Running operator pods of a release (`app.kubernetes.io/name=nxt-rollback-operator`). */
export async function runningOperatorPods(namespace: string) {
  const { core } = testClients();
  const pods = await core.listNamespacedPod({
    namespace,
    labelSelector: 'app.kubernetes.io/name=nxt-rollback-operator',
  });
  return pods.items.filter(
    (p) =>
      !p.metadata?.deletionTimestamp &&
      p.status?.phase === 'Running' &&
      (p.status.containerStatuses ?? []).every((c) => c.state?.running),
  );
}

/**
 * The logs of every operator pod in `namespace` (current containers), as one text. A failing `kubectl logs`
 * throws: an assertion over logs that could not be read must fail, not pass on the error's text.
 */
export async function operatorLogs(namespace: string): Promise<string> {
  return kubectl(
    '-n',
    namespace,
    'logs',
    '-l',
    'app.kubernetes.io/name=nxt-rollback-operator',
    '--tail=-1',
    '--prefix',
  );
}

/**
 * The logs of each operator pod in `namespace`, keyed `<pod>` (current container) and, for a pod whose
 * container restarted, `<pod> (previous)`. Throws when any `kubectl logs` fails.
 */
export async function operatorPodLogs(namespace: string): Promise<Map<string, string>> {
  const { core } = testClients();
  const pods = await core.listNamespacedPod({
    namespace,
    labelSelector: 'app.kubernetes.io/name=nxt-rollback-operator',
  });
  const out = new Map<string, string>();
  for (const p of pods.items) {
    const name = p.metadata!.name!;
    out.set(name, await kubectl('-n', namespace, 'logs', name, '--tail=-1'));
    if ((p.status?.containerStatuses?.[0]?.restartCount ?? 0) > 0)
      out.set(`${name} (previous)`, await kubectl('-n', namespace, 'logs', name, '--previous', '--tail=-1'));
  }
  return out;
}

/** The leader Lease's holderIdentity (`<pod>_<uuid>`, new for every process), or '' when released. */
export async function leaseHolder(namespace: string): Promise<string> {
  const { kc } = testClients();
  const { CoordinationV1Api } = await import('@kubernetes/client-node');
  const l = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: LEASE, namespace });
  return l.spec?.holderIdentity ?? '';
}

/**
 * A crash, not a shutdown: SIGKILL to a pod's container's init process through the real node's containerd
 * (`ctr tasks kill -s SIGKILL`), so nothing in it gets to drain or release anything.
 */
export async function killContainer(containerId: string): Promise<void> {
  await execFileP('ctr', [
    '--address',
    inject('realNodeContainerd'),
    '--namespace',
    'k8s.io',
    'tasks',
    'kill',
    '--signal',
    'SIGKILL',
    containerId.replace(/^containerd:\/\//, ''),
  ]);
}

/** `ctr containers info` on the real node's containerd, for a pod's container (containerd://<id>). */
export async function containerInfo(containerId: string): Promise<any> {
  const id = containerId.replace(/^containerd:\/\//, '');
  const { stdout } = await execFileP('ctr', [
    '--address',
    inject('realNodeContainerd'),
    '--namespace',
    'k8s.io',
    'containers',
    'info',
    id,
  ]);
  return JSON.parse(stdout);
}

/**
 * Asserts that a pod's (first) container runs this run's project image (expectProjectImage) as uid 65532 with
 * a read-only root file system; returns its `ctr containers info` for further assertions.
 */
export async function expectProjectContainer(pod: V1Pod): Promise<any> {
  const info = await containerInfo(pod.status!.containerStatuses![0]!.containerID!);
  await expectProjectImage(pod.status!.containerStatuses![0], info);
  expect(info.Spec.process.user.uid).toBe(65532);
  expect(info.Spec.root.readonly).toBe(true);
  return info;
}

/**
 * Asserts that a container runs this run's project image, by content and not only by name: its name, the
 * image ID (config digest) the kubelet reports, and the manifest digest the node's image store holds under
 * that name are the ones test/e2e/global-setup.ts built.
 */
export async function expectProjectImage(
  status: { imageID?: string } | undefined,
  info: { Image?: string },
): Promise<void> {
  const image = inject('e2eImage');
  const hex = (d: string) => d.replace(/^sha256:/, '');
  expect(info.Image).toBe(image);
  // containerd reports an imported image without a repo digest by its ID; accept the manifest digest too
  const reported = hex(status?.imageID ?? '')
    .split('@sha256:')
    .pop()!;
  expect([hex(inject('e2eImageId')), hex(inject('e2eImageDigest'))]).toContain(reported);
  const { stdout } = await execFileP('ctr', [
    '--address',
    inject('realNodeContainerd'),
    '--namespace',
    'k8s.io',
    'images',
    'list',
    `name==${image}`,
  ]);
  const row = stdout.split('\n').find((l) => l.startsWith(image + ' '));
  expect(row, stdout).toContain(inject('e2eImageDigest'));
}

/**
 * Asserts what Pod Security `restricted` asks of a container, on the OCI spec containerd runs it with (`ctr
 * containers info`): a seccomp profile (RuntimeDefault: containerd's default profile, whose default action
 * refuses what it does not list; Unconfined would leave `linux.seccomp` out), no_new_privs, and no
 * capability in any set.
 */
export async function expectRestrictedContainer(info: any, what: string): Promise<void> {
  const { expect } = await import('vitest');
  const seccomp = info.Spec?.linux?.seccomp;
  expect(seccomp, `${what}: a seccomp profile`).toBeDefined();
  expect(seccomp.defaultAction, `${what}: seccomp refuses unlisted syscalls`).toMatch(
    /^SCMP_ACT_(ERRNO|KILL|KILL_PROCESS|KILL_THREAD|TRAP)$/,
  );
  expect(seccomp.syscalls?.length ?? 0, `${what}: seccomp lists syscalls`).toBeGreaterThan(0);
  expect(info.Spec.process.noNewPrivileges, `${what}: noNewPrivileges`).toBe(true);
  const caps = info.Spec.process.capabilities ?? {};
  for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient'])
    expect(caps[set] ?? [], `${what}: no ${set} capabilities`).toEqual([]);
}

/**
 * Server-side dry run of a pod made from `template` (a Deployment's or Job's spec.template, as the product
 * writes it: the test's pod mutations only touch pods in labelled namespaces) in `namespace`, which must be
 * an unlabelled namespace with `pod-security.kubernetes.io/enforce=restricted` (createTestNamespace): Pod
 * Security admission enforces on pods, not on Deployments or Jobs, so the pod is what is dry-run. The
 * ServiceAccount the template names is created there first (the ServiceAccount admission plugin refuses a
 * pod whose account does not exist). As a check that the namespace really enforces, the same pod with
 * hostNetwork must be refused.
 */
export async function expectPodTemplateRestricted(
  namespace: string,
  template: { metadata?: { labels?: Record<string, string> }; spec?: any },
  what: string,
): Promise<void> {
  const { expect } = await import('vitest');
  const { core } = testClients();
  const ns = await core.readNamespace({ name: namespace });
  expect(ns.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  expect(ns.metadata?.labels?.[REAL_NODE_NS_LABEL]).toBeUndefined();
  const sa = template.spec?.serviceAccountName ?? 'default';
  if (sa !== 'default')
    await core
      .createNamespacedServiceAccount({ namespace, body: { metadata: { name: sa } } })
      .catch((e: { code?: number }) => {
        if (e.code !== 409) throw e;
      });
  await eventually(
    `ServiceAccount ${sa} in ${namespace}`,
    async () => !!(await core.readNamespacedServiceAccount({ name: sa, namespace }).catch(() => undefined)),
    30_000,
    500,
  );
  const pod = (spec: any) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'dry-run-', labels: template.metadata?.labels ?? {} },
    spec,
  });
  const refusal = async (spec: any) =>
    core.createNamespacedPod({ namespace, body: pod(spec), dryRun: 'All' }).then(
      () => undefined,
      (e: { code?: number; body?: unknown; message?: string }) => {
        // the Status the API server answered with (client-node keeps it as the JSON text or parsed)
        let status: any = e.body;
        try {
          if (typeof status === 'string') status = JSON.parse(status);
        } catch {
          // not JSON: the text itself
        }
        return { code: e.code, text: String(status?.message ?? status ?? e.message) };
      },
    );
  expect(await refusal(template.spec), `${what}: admitted under Pod Security restricted`).toBeUndefined();
  const refused = await refusal({ ...template.spec, hostNetwork: true });
  expect(refused?.code, `${what} with hostNetwork: refused (the namespace enforces restricted)`).toBe(403);
  expect(refused?.text).toMatch(/violates PodSecurity "restricted/);
}
