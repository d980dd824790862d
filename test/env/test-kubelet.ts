// A "test kubelet" for the local control plane: it registers one Node of its own and really runs the
// commands of the pods bound to it, as processes of this machine. kwok fakes every other node and runs
// nothing; this is how backup/restore Job pods (runner subcommands against PostgreSQL) get executed in
// integration tests.
//
// What it emulates of the kubelet:
//   - Node registration (labels, taint, Ready status with allocatable, heartbeat every 10 s).
//   - Pod lifecycle: env (value, $(VAR) expansion, secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef,
//     envFrom), volumes (PVC, emptyDir, secret, configMap, projected incl. service-account tokens,
//     downwardAPI, hostPath), init containers in order, then every regular container in parallel, status
//     written through the pods/status subresource (Pending -> Running -> Succeeded/Failed), termination
//     messages (file, FallbackToLogsOnError), graceful kill on deletion, then deletion with grace 0,
//     spec.activeDeadlineSeconds.
// What it does not: images (the command runs on the host; see `commandMap`), users (processes run as the
// current user, root in CI, whatever securityContext says), restarts (restartPolicy OnFailure/Always is treated
// as Never: one run per container), probes (containers are Ready as soon as they started), resource limits,
// networking (podIP is 127.0.0.1), sidecar init containers (restartPolicy Always on an init container).
//
// Path mapping: the command runs on the host, so container paths must become host paths. Every volumeMount's
// mountPath maps to a host dir (PVC `claimName` -> `<workDir>/pvc/<namespace>/<claimName>`, shared by all pods
// so a restore pod sees what a backup pod wrote; emptyDir/secret/configMap/projected/downwardAPI -> a per-pod
// dir under `<workDir>/pods/<uid>/volumes/`; `subPath` appended), and the container's terminationMessagePath
// (default /dev/termination-log) maps to a per-pod file. Every occurrence of such a container path in the
// command, args, env values and workingDir is replaced by its host path - only at a path boundary: `/data`,
// `/data/x`, `--dir=/data` and `> /data/out` are rewritten, `/database` and `/x/data` are not. Paths the
// program derives itself (e.g. a hard-coded /dev/termination-log default) are NOT rewritten; for that the
// process also gets NXT_TERMINATION_LOG and TERMINATION_LOG_PATH with the host file of its termination log.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  writeFileSync,
} from 'node:fs';
import { constants as osConstants, release } from 'node:os';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { REPO_ROOT } from './binaries.js';
import { KubeApiError } from '../../operator/kube/errors.js';
import { KubeClient } from '../../operator/kube/rest.js';

/** Label (and taint key) of the test kubelet's node; pods reach it with a nodeSelector and a toleration. */
export const RUNNER_LABEL = 'nxt.test/runner';

/** What a pod needs to land on the test kubelet's node. */
export const RUNNER_PLACEMENT = {
  nodeSelector: { [RUNNER_LABEL]: 'true' },
  tolerations: [{ key: RUNNER_LABEL, operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
};

export interface PathMapping {
  /** The path inside the container (a mountPath or the terminationMessagePath). */
  containerPath: string;
  /** Where it lives on this machine. */
  hostPath: string;
}

export interface CommandContext {
  namespace: string;
  pod: string;
  container: string;
  /** The container's resolved environment (paths already rewritten). */
  env: Record<string, string>;
  paths: PathMapping[];
  /** Host file that becomes the container's termination message. */
  terminationLog: string;
}

export interface CommandSpec {
  cmd: string;
  args: string[];
  /** Extra environment, applied last. */
  env?: Record<string, string>;
  /** Working directory; default: the mapped workingDir if it lies under a mount, else a per-pod dir. */
  cwd?: string;
}

/**
 * Turns a container's image, command and args (after $(VAR) expansion and path rewriting) into what to run on
 * this machine. Return undefined to run `command ++ args` as is.
 */
export type CommandMap = (
  image: string,
  command: string[],
  args: string[],
  ctx: CommandContext,
) => CommandSpec | undefined;

export interface TestKubeletOptions {
  kubeconfigPath: string;
  nodeName?: string;
  /** Root of everything the kubelet writes: pvc/, pods/, logs/. */
  workDir: string;
  commandMap?: CommandMap;
  log?: (m: string) => void;
  /** Environment every process starts from; default PATH, HOME, LANG of this process. */
  baseEnv?: Record<string, string>;
}

export interface ContainerResult {
  name: string;
  exitCode: number;
  /** Completed | Error | StartError | ContainerStatusUnknown */
  reason: string;
  message: string;
  signal?: string;
}

export interface PodResult {
  namespace: string;
  name: string;
  uid: string;
  phase: 'Succeeded' | 'Failed';
  /** Pod-level reason, e.g. DeadlineExceeded. */
  reason?: string;
  initContainers: ContainerResult[];
  containers: ContainerResult[];
  /** True when the pod was deleted (or vanished) while it ran. */
  deleted: boolean;
}

export interface RunningProcess {
  namespace: string;
  pod: string;
  container: string;
  pid: number;
}

/** A problem the kubelet reports as CreateContainerConfigError / ContainerCreating and retries. */
class ConfigError extends Error {}
/** A container that cannot start at all (StartError, exit code 128). */
class StartError extends Error {}
/** The pod run stopped before its containers ran (deletion, deadline, stop()). */
class Aborted extends Error {}

interface Proc extends RunningProcess {
  child: ChildProcess;
  exited: boolean;
  killTimer?: NodeJS.Timeout;
}

type CState =
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'running'; startedAt: string; containerID: string }
  | {
      kind: 'terminated';
      startedAt: string;
      containerID: string;
      result: ContainerResult;
      finishedAt: string;
    };

interface PodRun {
  uid: string;
  namespace: string;
  name: string;
  pod: any;
  dir: string;
  startTime: string;
  abort: AbortController;
  procs: Set<Proc>;
  states: Map<string, CState>;
  initResults: ContainerResult[];
  results: ContainerResult[];
  /** When this kubelet first saw the pod (guards resyncs against lists older than the pod). */
  seenAt: number;
  sandboxReady: boolean;
  finished: boolean;
  /** Processes are being killed (deletion, disappearance or deadline). */
  terminating: boolean;
  /** The pod got a deletionTimestamp: delete it with grace 0 once nothing runs. */
  deleteRequested: boolean;
  vanished: boolean;
  deadlineExceeded: boolean;
  /** Status patches of one pod are written one after the other. */
  statusChain: Promise<void>;
  conditions: Map<string, { status: string; at: string }>;
  done: Promise<void>;
}

interface Prepared {
  cmd: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  termFile: string;
  logFile: string;
}

const PODS = { group: '', version: 'v1', plural: 'pods' };
const NODES = { group: '', version: 'v1', plural: 'nodes' };
const TERMINATION_MESSAGE_MAX = 4096;
const FALLBACK_LINES = 80;
const FALLBACK_BYTES = 2048;
const MAX_GRACE_SECONDS = 5;

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));
const codeOf = (e: unknown) => (e instanceof KubeApiError ? e.code : undefined);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    if (signal?.aborted) return r();
    const t = setTimeout(r, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        r();
      },
      { once: true },
    );
  });

export class TestKubelet {
  private readonly client: KubeClient;
  private readonly log: (m: string) => void;
  private readonly runs = new Map<string, PodRun>();
  private readonly results = new Map<string, PodResult>();
  private readonly waiters = new Map<string, ((r: PodResult) => void)[]>();
  private readonly deleting = new Set<string>();
  private readonly procs = new Set<Proc>();
  private readonly baseEnv: Record<string, string>;
  private stopped = false;
  private watchAbort: AbortController | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private stopSleep = new AbortController();
  /**
   * Test hook, called when a pod's containers have all ended, before its final phase (Succeeded or Failed) is
   * written. A returned promise holds that write: meanwhile the pod shows its terminated containers (exit
   * codes, termination messages) with phase Running, so the Job controller cannot count the pod and its Job
   * gets no Complete or Failed condition until the promise settles.
   */
  holdFinalPhase: ((pod: any) => Promise<void> | undefined) | undefined;
  /**
   * Test hook, called when a pod is accepted, before anything of it runs. A returned promise holds the start:
   * meanwhile the pod is Pending with its containers waiting (ContainerCreating), as on a node pulling the
   * image.
   */
  holdStart: ((pod: any) => Promise<void> | undefined) | undefined;

  private constructor(
    readonly kc: KubeConfig,
    readonly nodeName: string,
    readonly workDir: string,
    private readonly commandMap: CommandMap | undefined,
    log: ((m: string) => void) | undefined,
    baseEnv: Record<string, string> | undefined,
  ) {
    this.client = new KubeClient(kc, { userAgent: 'nxt-test-kubelet', timeoutMs: 15_000 });
    const l = log ?? (() => {});
    this.log = (m) => l(`[test-kubelet ${nodeName}] ${m}`);
    this.baseEnv = baseEnv ?? {
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
      LANG: process.env.LANG ?? 'C.UTF-8',
    };
  }

  static async start(opts: TestKubeletOptions): Promise<TestKubelet> {
    const kc = new KubeConfig();
    kc.loadFromFile(opts.kubeconfigPath);
    const k = new TestKubelet(
      kc,
      opts.nodeName ?? 'nxt-runner-0',
      opts.workDir,
      opts.commandMap,
      opts.log,
      opts.baseEnv,
    );
    for (const d of ['pvc', 'pods', 'logs']) mkdirSync(join(k.workDir, d), { recursive: true });
    await k.registerNode();
    let synced!: () => void;
    const firstSync = new Promise<void>((r) => (synced = r));
    k.loop = k.watchLoop(synced);
    k.heartbeat = setInterval(() => void k.tick(), 10_000);
    k.heartbeat.unref();
    await Promise.race([firstSync, sleep(15_000)]);
    k.log('started');
    return k;
  }

  /** Host dir of a PVC as every pod of this kubelet sees it. */
  pvcDir(namespace: string, claimName: string): string {
    return join(this.workDir, 'pvc', namespace, claimName);
  }

  /** Number of processes running now. */
  runningCount(): number {
    return this.procs.size;
  }

  running(): RunningProcess[] {
    return [...this.procs].map(({ namespace, pod, container, pid }) => ({ namespace, pod, container, pid }));
  }

  /** Captured stdout+stderr of every container of a pod (init containers first), '' when none ran. */
  logsOf(namespace: string, pod: string, container?: string): string {
    const dir = join(this.workDir, 'logs');
    if (container) {
      const f = join(dir, `${namespace}_${pod}_${container}.log`);
      return existsSync(f) ? readFileSync(f, 'utf8') : '';
    }
    const run = [...this.runs.values()].reverse().find((r) => r.namespace === namespace && r.name === pod);
    const names: string[] = run
      ? [...(run.pod.spec?.initContainers ?? []), ...(run.pod.spec?.containers ?? [])].map((c: any) => c.name)
      : readdirSync(dir)
          .filter((f) => f.startsWith(`${namespace}_${pod}_`) && f.endsWith('.log'))
          .map((f) => f.slice(`${namespace}_${pod}_`.length, -'.log'.length));
    return names.map((c) => this.logsOf(namespace, pod, c)).join('');
  }

  /** Resolves when this kubelet has run the pod to its end (and written its final status). */
  waitForPodDone(namespace: string, name: string, timeoutMs = 120_000): Promise<PodResult> {
    const key = `${namespace}/${name}`;
    const have = this.results.get(key);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const list = this.waiters.get(key) ?? [];
        this.waiters.set(
          key,
          list.filter((w) => w !== done),
        );
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for pod ${key} to finish on ${this.nodeName}`),
        );
      }, timeoutMs);
      const done = (r: PodResult) => {
        clearTimeout(t);
        resolve(r);
      };
      this.waiters.set(key, [...(this.waiters.get(key) ?? []), done]);
    });
  }

  /** Kills every process, stops watching and deletes the Node. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopSleep.abort();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.watchAbort?.abort();
    for (const p of this.procs) killGroup(p, 'SIGKILL');
    for (const r of this.runs.values()) r.abort.abort();
    await Promise.race([Promise.allSettled([...this.runs.values()].map((r) => r.done)), sleep(5_000)]);
    await Promise.race([this.loop, sleep(2_000)]);
    try {
      await this.client.delete({ ...NODES, name: this.nodeName });
    } catch (e) {
      if (codeOf(e) !== 404) this.log(`deleting node: ${errText(e)}`);
    }
    this.log('stopped');
  }

  // ---------------------------------------------------------------- node

  private nodeConditions(): any[] {
    const t = now();
    const cond = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: t,
      lastTransitionTime: this.readySince ?? t,
    });
    return [
      cond(
        'MemoryPressure',
        'False',
        'KubeletHasSufficientMemory',
        'kubelet has sufficient memory available',
      ),
      cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
      cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
      cond('Ready', 'True', 'KubeletReady', 'test kubelet is posting ready status'),
    ];
  }
  private readySince: string | undefined;

  private async registerNode(): Promise<void> {
    const labels = {
      [RUNNER_LABEL]: 'true',
      'kubernetes.io/hostname': this.nodeName,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': process.arch === 'arm64' ? 'arm64' : 'amd64',
    };
    const taint = { key: RUNNER_LABEL, value: 'true', effect: 'NoSchedule' };
    try {
      await this.client.create(NODES, {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: this.nodeName, labels, annotations: { 'node.alpha.kubernetes.io/ttl': '0' } },
        spec: { taints: [taint] },
      });
      this.log('node created');
    } catch (e) {
      if (codeOf(e) !== 409) throw e;
      const node = await this.client.get<any>({ ...NODES, name: this.nodeName });
      const others = (node.spec?.taints ?? []).filter((t: any) => t.key !== RUNNER_LABEL);
      await this.client.patch({ ...NODES, name: this.nodeName }, 'merge', {
        metadata: { labels },
        spec: { taints: [...others, taint], unschedulable: null },
      });
      this.log('adopted existing node');
    }
    this.readySince = now();
    const resources = { cpu: '8', memory: '16Gi', pods: '110', 'ephemeral-storage': '100Gi' };
    await this.client.patch({ ...NODES, name: this.nodeName, subresource: 'status' }, 'strategic', {
      status: {
        capacity: resources,
        allocatable: resources,
        conditions: this.nodeConditions(),
        addresses: [
          { type: 'InternalIP', address: '127.0.0.1' },
          { type: 'Hostname', address: this.nodeName },
        ],
        daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
        nodeInfo: {
          machineID: '',
          systemUUID: '',
          bootID: '',
          kernelVersion: release(),
          osImage: 'nxt test kubelet',
          containerRuntimeVersion: 'testkubelet://0.1.0',
          kubeletVersion: 'v0.0.0-test',
          kubeProxyVersion: '',
          operatingSystem: 'linux',
          architecture: labels['kubernetes.io/arch'],
        },
      },
    });
  }

  /** Every 10 s: renew the Ready condition, re-list pods (retries anything a lost watch event missed). */
  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.client.patch({ ...NODES, name: this.nodeName, subresource: 'status' }, 'strategic', {
        status: { conditions: this.nodeConditions() },
      });
    } catch (e) {
      if (this.stopped) return;
      if (codeOf(e) === 404) {
        this.log('node disappeared, registering again');
        await this.registerNode().catch((err) => this.log(`re-registering node: ${errText(err)}`));
      } else this.log(`node heartbeat failed: ${errText(e)}`);
    }
    try {
      const listedAt = Date.now();
      const list = await this.client.list<any>(PODS, { fieldSelector: `spec.nodeName=${this.nodeName}` });
      if (!this.stopped) this.syncAll(list.items, listedAt);
    } catch (e) {
      if (!this.stopped) this.log(`resync failed: ${errText(e)}`);
    }
  }

  // ---------------------------------------------------------------- watch

  private async watchLoop(synced: () => void): Promise<void> {
    const fieldSelector = `spec.nodeName=${this.nodeName}`;
    while (!this.stopped) {
      try {
        const listedAt = Date.now();
        const list = await this.client.list<any>(PODS, { fieldSelector });
        if (this.stopped) return;
        this.syncAll(list.items, listedAt);
        synced();
        await this.watchOnce(fieldSelector, list.metadata.resourceVersion);
      } catch (e) {
        if (this.stopped) return;
        this.log(`pod list/watch failed, retrying: ${errText(e)}`);
        await sleep(1_000, this.stopSleep.signal);
      }
    }
  }

  private watchOnce(fieldSelector: string, resourceVersion: string | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let ctrl: AbortController | undefined;
      new Watch(this.kc)
        .watch(
          '/api/v1/pods',
          { fieldSelector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 60 },
          (type: string, obj: any) => {
            if (type === 'ERROR') {
              // e.g. 410 Gone: end this watch, the loop relists.
              if (obj?.code !== 410) this.log(`watch error: ${JSON.stringify(obj)}`);
              ctrl?.abort();
              return;
            }
            if (type === 'BOOKMARK') return;
            this.handle(type, obj);
          },
          (err: unknown) => {
            if (err && !this.stopped && (err as Error).name !== 'AbortError') reject(err as Error);
            else resolve();
          },
        )
        .then(
          (c) => {
            ctrl = c;
            this.watchAbort = c;
            if (this.stopped) c.abort();
          },
          (e: unknown) => reject(e as Error),
        );
    });
  }

  /** Handles a full list; a running pod missing from it (and older than the list) was deleted. */
  private syncAll(pods: any[], listedAt: number): void {
    const uids = new Set(pods.map((p) => p.metadata?.uid));
    for (const p of pods) this.handle('SYNC', p);
    for (const run of this.runs.values()) {
      if (!run.finished && run.seenAt < listedAt && !uids.has(run.uid)) this.handle('DELETED', run.pod);
    }
  }

  /** Reacts to one pod event. Never throws. */
  private handle(type: string, pod: any): void {
    try {
      const uid: string | undefined = pod?.metadata?.uid;
      if (!uid || this.stopped) return;
      const run = this.runs.get(uid);
      if (type === 'DELETED') {
        if (run && !run.finished) {
          this.log(`pod ${run.namespace}/${run.name} vanished while running: killing its processes`);
          run.vanished = true;
          this.terminate(run, 0);
        }
        return;
      }
      if (pod.spec?.nodeName !== this.nodeName) return;
      if (run) run.pod = pod;
      if (pod.metadata.deletionTimestamp) {
        if (run && !run.finished) {
          run.deleteRequested = true;
          const grace =
            pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
          this.terminate(run, grace);
        } else this.forceDelete(pod);
        return;
      }
      if (run) return;
      const phase = pod.status?.phase ?? 'Pending';
      if (phase === 'Pending') this.startRun(pod);
      else if (phase === 'Running') void this.failUnknown(pod);
    } catch (e) {
      this.log(`handling ${type} of a pod failed: ${errText(e)}`);
    }
  }

  // ---------------------------------------------------------------- pod lifecycle

  private startRun(pod: any): void {
    const uid: string = pod.metadata.uid;
    const run: PodRun = {
      uid,
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      pod,
      dir: join(this.workDir, 'pods', uid),
      startTime: now(),
      abort: new AbortController(),
      procs: new Set(),
      states: new Map(),
      initResults: [],
      results: [],
      seenAt: Date.now(),
      sandboxReady: false,
      finished: false,
      terminating: false,
      deleteRequested: false,
      vanished: false,
      deadlineExceeded: false,
      statusChain: Promise.resolve(),
      conditions: new Map(),
      done: Promise.resolve(),
    };
    this.runs.set(uid, run);
    this.log(`starting pod ${run.namespace}/${run.name}`);
    run.done = this.runPod(run).catch((e) => this.log(`pod ${run.namespace}/${run.name}: ${errText(e)}`));
  }

  /** A Running pod of this node that no process of ours backs (e.g. left by an earlier kubelet): Failed. */
  private async failUnknown(pod: any): Promise<void> {
    const run: PodRun = {
      uid: pod.metadata.uid,
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      pod,
      dir: '',
      startTime: pod.status?.startTime ?? now(),
      abort: new AbortController(),
      procs: new Set(),
      states: new Map(),
      initResults: [],
      results: [],
      seenAt: Date.now(),
      sandboxReady: false,
      finished: true,
      terminating: false,
      deleteRequested: false,
      vanished: false,
      deadlineExceeded: false,
      statusChain: Promise.resolve(),
      conditions: new Map(),
      done: Promise.resolve(),
    };
    this.runs.set(run.uid, run);
    const t = now();
    for (const c of pod.spec?.containers ?? []) {
      const result = {
        name: c.name,
        exitCode: 137,
        reason: 'ContainerStatusUnknown',
        message: 'The container could not be located when the pod was terminated',
      };
      run.results.push(result);
      run.states.set(c.name, { kind: 'terminated', startedAt: t, finishedAt: t, containerID: '', result });
    }
    this.log(`pod ${run.namespace}/${run.name} is Running but no process backs it: marking it Failed`);
    await this.patchStatus(run, this.statusFor(run, 'Failed'));
    this.recordResult(run, 'Failed');
  }

  private async runPod(run: PodRun): Promise<void> {
    const spec = run.pod.spec ?? {};
    const inits: any[] = spec.initContainers ?? [];
    const mains: any[] = spec.containers ?? [];
    let deadline: NodeJS.Timeout | undefined;
    let phase: 'Succeeded' | 'Failed' = 'Failed';
    let wroteFinal = false;
    try {
      if (spec.activeDeadlineSeconds) {
        deadline = setTimeout(() => {
          this.log(`pod ${run.namespace}/${run.name} exceeded activeDeadlineSeconds`);
          run.deadlineExceeded = true;
          this.terminate(run, spec.terminationGracePeriodSeconds ?? 30);
        }, spec.activeDeadlineSeconds * 1000);
      }
      mkdirSync(run.dir, { recursive: true });
      for (const c of inits.filter((c) => c.restartPolicy === 'Always')) {
        this.log(
          `pod ${run.namespace}/${run.name}: sidecar init container ${c.name} is not supported; skipped`,
        );
      }
      const waitingAll = (reason: string, message?: string) => {
        for (const c of [...inits, ...mains]) run.states.set(c.name, { kind: 'waiting', reason, message });
      };
      waitingAll('ContainerCreating');
      void this.patchStatus(run, this.statusFor(run, 'Pending'));
      const held = this.holdStart?.(run.pod);
      if (held) {
        this.log(`pod ${run.namespace}/${run.name}: start held`);
        await held;
      }
      const volumes = await this.withConfigRetry(run, undefined, () => this.prepareVolumes(run));
      run.sandboxReady = true;
      for (const c of mains) run.states.set(c.name, { kind: 'waiting', reason: 'PodInitializing' });
      let initOk = true;
      for (const c of inits.filter((c) => c.restartPolicy !== 'Always')) {
        const prepared = await this.withConfigRetry(run, c.name, () =>
          this.prepareContainer(run, c, volumes),
        );
        const result = await this.execContainer(run, c, prepared, 'Pending');
        run.initResults.push(result);
        if (result.exitCode !== 0) {
          initOk = false;
          break;
        }
      }
      if (initOk && !run.abort.signal.aborted) {
        const prepared: Prepared[] = [];
        for (const c of mains) {
          prepared.push(
            await this.withConfigRetry(run, c.name, () => this.prepareContainer(run, c, volumes)),
          );
        }
        run.results = await Promise.all(
          mains.map((c, i) => this.execContainer(run, c, prepared[i]!, 'Running')),
        );
        phase = run.results.every((r) => r.exitCode === 0) && !run.deadlineExceeded ? 'Succeeded' : 'Failed';
      }
      if (run.results.length === 0 && initOk) throw new Aborted();
      const hold = this.holdFinalPhase?.(run.pod);
      if (hold) {
        await this.patchStatus(run, this.statusFor(run, 'Running'));
        this.log(`pod ${run.namespace}/${run.name}: containers ended, phase held at Running`);
        await hold;
      }
      await this.patchStatus(run, this.statusFor(run, phase));
      wroteFinal = true;
      this.log(
        `pod ${run.namespace}/${run.name} ${phase}: ` +
          [...run.initResults, ...run.results].map((r) => `${r.name}=${r.exitCode}`).join(' '),
      );
    } catch (e) {
      if (e instanceof Aborted) {
        // Nothing ran. A deleted pod is simply deleted; one past its deadline fails, as with the kubelet.
        if (run.deadlineExceeded) await this.patchStatus(run, this.statusFor(run, 'Failed'));
      } else {
        this.log(`pod ${run.namespace}/${run.name} failed in the test kubelet: ${errText(e)}`);
      }
      if (!(e instanceof Aborted) && !wroteFinal) {
        const t = now();
        for (const c of mains) {
          if (run.states.get(c.name)?.kind === 'terminated') continue;
          const result = {
            name: c.name,
            exitCode: 128,
            reason: 'StartError',
            message: errText(e).slice(0, 4096),
          };
          run.results.push(result);
          run.states.set(c.name, {
            kind: 'terminated',
            startedAt: t,
            finishedAt: t,
            containerID: '',
            result,
          });
        }
        phase = 'Failed';
        await this.patchStatus(run, this.statusFor(run, 'Failed')).catch(() => {});
      }
    } finally {
      if (deadline) clearTimeout(deadline);
      for (const p of run.procs) killGroup(p, 'SIGKILL');
      await run.statusChain;
      run.finished = true;
      this.recordResult(run, phase);
      if (run.deleteRequested && !run.vanished && !this.stopped) this.forceDelete(run.pod);
    }
  }

  private recordResult(run: PodRun, phase: 'Succeeded' | 'Failed'): void {
    const result: PodResult = {
      namespace: run.namespace,
      name: run.name,
      uid: run.uid,
      phase,
      ...(run.deadlineExceeded ? { reason: 'DeadlineExceeded' } : {}),
      initContainers: run.initResults,
      containers: run.results,
      deleted: run.deleteRequested || run.vanished,
    };
    const key = `${run.namespace}/${run.name}`;
    this.results.set(key, result);
    for (const w of this.waiters.get(key) ?? []) w(result);
    this.waiters.delete(key);
  }

  /** Retries `fn` while it fails with a ConfigError, reporting it in the container status. */
  private async withConfigRetry<T>(
    run: PodRun,
    container: string | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    let last = '';
    for (;;) {
      if (run.abort.signal.aborted || this.stopped) throw new Aborted();
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        if (e.message !== last) {
          last = e.message;
          this.log(
            `pod ${run.namespace}/${run.name}${container ? ` container ${container}` : ''}: ${e.message}`,
          );
          if (container) {
            run.states.set(container, {
              kind: 'waiting',
              reason: 'CreateContainerConfigError',
              message: e.message,
            });
          } else {
            for (const [name, st] of run.states) {
              if (st.kind === 'waiting') run.states.set(name, { ...st, message: e.message });
            }
          }
          await this.patchStatus(run, this.statusFor(run, 'Pending'));
        }
        await sleep(2_000, run.abort.signal);
      }
    }
  }

  /** SIGTERM every process of the pod, SIGKILL after the grace period (capped at 5 s). Idempotent. */
  private terminate(run: PodRun, graceSeconds: number): void {
    if (run.terminating) return;
    run.terminating = true;
    run.abort.abort();
    const grace = Math.max(0, Math.min(graceSeconds, MAX_GRACE_SECONDS));
    this.log(`killing pod ${run.namespace}/${run.name} (grace ${grace}s)`);
    for (const p of run.procs) {
      if (grace === 0) {
        killGroup(p, 'SIGKILL');
        continue;
      }
      killGroup(p, 'SIGTERM');
      p.killTimer = setTimeout(() => killGroup(p, 'SIGKILL'), grace * 1000);
    }
  }

  /** Deletes a pod with grace 0, as the kubelet does once nothing runs; finalizers are left alone. */
  private forceDelete(pod: any): void {
    const uid: string = pod.metadata.uid;
    if (this.stopped || this.deleting.has(uid)) return;
    this.deleting.add(uid);
    const { namespace, name } = pod.metadata;
    this.client
      .request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid } },
      })
      .then(
        () => this.log(`deleted pod ${namespace}/${name}`),
        (e) => {
          if (codeOf(e) === 404 || codeOf(e) === 409) return;
          this.deleting.delete(uid); // the next resync retries
          this.log(`deleting pod ${namespace}/${name}: ${errText(e)}`);
        },
      );
  }

  /** Writes pod status (strategic merge on pods/status), in call order per pod. Never throws. */
  private patchStatus(run: PodRun, status: any): Promise<void> {
    const next = run.statusChain.then(() => this.writeStatus(run, status));
    run.statusChain = next.catch(() => {});
    return run.statusChain;
  }

  private async writeStatus(run: PodRun, status: any): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) return;
      try {
        await this.client.patch(
          { ...PODS, namespace: run.namespace, name: run.name, subresource: 'status' },
          'strategic',
          { metadata: { uid: run.uid }, status },
        );
        return;
      } catch (e) {
        const code = codeOf(e);
        if (code === 404 || code === 409) {
          this.log(`pod ${run.namespace}/${run.name} is gone; status not written`);
          if (!run.finished) {
            run.vanished = true;
            this.terminate(run, 0);
          }
          return;
        }
        if (attempt >= 5 || (code !== undefined && code < 500 && code !== 429)) {
          this.log(`writing status of pod ${run.namespace}/${run.name} failed: ${errText(e)}`);
          return;
        }
        await sleep(200 * attempt);
      }
    }
  }

  // ---------------------------------------------------------------- status

  private statusFor(run: PodRun, phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed'): any {
    const spec = run.pod.spec ?? {};
    const status = (c: any) => containerStatus(c, run.states.get(c.name));
    const inits = (spec.initContainers ?? []).map(status);
    const mains = (spec.containers ?? []).map(status);
    const cond = (type: string, ok: boolean, reason?: string) => {
      const value = ok ? 'True' : 'False';
      let prev = run.conditions.get(type);
      if (prev?.status !== value) run.conditions.set(type, (prev = { status: value, at: now() }));
      return {
        type,
        status: value,
        lastProbeTime: null,
        lastTransitionTime: prev.at,
        // null removes a reason left by an earlier patch (strategic merge keeps absent fields).
        reason: reason ?? null,
      };
    };
    const initsDone = (spec.initContainers ?? []).every(
      (c: any) =>
        c.restartPolicy === 'Always' || run.initResults.some((r) => r.name === c.name && r.exitCode === 0),
    );
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    const ready = phase === 'Running';
    const sandbox = !terminal && run.sandboxReady;
    return {
      phase,
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      startTime: run.startTime,
      ...(run.deadlineExceeded
        ? {
            reason: 'DeadlineExceeded',
            message: 'Pod was active on the node longer than the specified deadline',
          }
        : {}),
      conditions: [
        cond('PodReadyToStartContainers', sandbox),
        cond('Initialized', initsDone || terminal, initsDone ? undefined : 'ContainersNotInitialized'),
        cond('ContainersReady', ready, ready ? undefined : terminal ? 'PodCompleted' : 'ContainersNotReady'),
        cond('Ready', ready, ready ? undefined : terminal ? 'PodCompleted' : 'ContainersNotReady'),
      ],
      ...(inits.length ? { initContainerStatuses: inits } : {}),
      containerStatuses: mains,
    };
  }

  // ---------------------------------------------------------------- volumes, env, paths

  private async prepareVolumes(run: PodRun): Promise<Map<string, string>> {
    const pod = run.pod;
    const ns: string = run.namespace;
    const volumes = new Map<string, string>();
    const objects = new ObjectCache(this.client, ns);
    for (const v of pod.spec?.volumes ?? []) {
      const podVolume = join(run.dir, 'volumes', v.name);
      if (v.persistentVolumeClaim) {
        const dir = this.pvcDir(ns, v.persistentVolumeClaim.claimName);
        mkdirSync(dir, { recursive: true });
        volumes.set(v.name, dir);
      } else if (v.ephemeral) {
        const dir = this.pvcDir(ns, `${pod.metadata.name}-${v.name}`);
        mkdirSync(dir, { recursive: true });
        volumes.set(v.name, dir);
      } else if (v.hostPath) {
        if (v.hostPath.type === 'DirectoryOrCreate') mkdirSync(v.hostPath.path, { recursive: true });
        volumes.set(v.name, v.hostPath.path);
      } else if (v.secret || v.configMap) {
        const src = v.secret ?? v.configMap;
        const data = v.secret
          ? await objects.secret(src.secretName, src.optional)
          : await objects.configMap(src.name, src.optional);
        mkdirSync(podVolume, { recursive: true });
        if (data)
          writeKeyFiles(podVolume, data, src.items, src.optional, v.secret ? src.secretName : src.name);
        volumes.set(v.name, podVolume);
      } else if (v.downwardAPI) {
        mkdirSync(podVolume, { recursive: true });
        for (const item of v.downwardAPI.items ?? [])
          writeFile(podVolume, item.path, downwardValue(pod, item));
        volumes.set(v.name, podVolume);
      } else if (v.projected) {
        mkdirSync(podVolume, { recursive: true });
        for (const s of v.projected.sources ?? []) {
          if (s.secret || s.configMap) {
            const src = s.secret ?? s.configMap;
            const data = s.secret
              ? await objects.secret(src.name, src.optional)
              : await objects.configMap(src.name, src.optional);
            if (data) writeKeyFiles(podVolume, data, src.items, src.optional, src.name);
          } else if (s.downwardAPI) {
            for (const item of s.downwardAPI.items ?? [])
              writeFile(podVolume, item.path, downwardValue(pod, item));
          } else if (s.serviceAccountToken) {
            writeFile(
              podVolume,
              s.serviceAccountToken.path,
              await this.serviceAccountToken(pod, s.serviceAccountToken),
            );
          }
        }
        volumes.set(v.name, podVolume);
      } else {
        if (!v.emptyDir)
          this.log(`pod ${ns}/${pod.metadata.name}: volume ${v.name} of an unsupported type is an empty dir`);
        mkdirSync(podVolume, { recursive: true });
        volumes.set(v.name, podVolume);
      }
    }
    return volumes;
  }

  private async serviceAccountToken(pod: any, src: any): Promise<string> {
    const sa = pod.spec?.serviceAccountName ?? 'default';
    try {
      const r = await this.client.request<any>(
        'POST',
        `/api/v1/namespaces/${pod.metadata.namespace}/serviceaccounts/${sa}/token`,
        {
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: {
              audiences: src.audience ? [src.audience] : [],
              expirationSeconds: src.expirationSeconds ?? 3607,
              boundObjectRef: {
                apiVersion: 'v1',
                kind: 'Pod',
                name: pod.metadata.name,
                uid: pod.metadata.uid,
              },
            },
          },
        },
      );
      return r.status.token;
    } catch (e) {
      throw new ConfigError(`requesting a token for service account ${sa}: ${errText(e)}`);
    }
  }

  private async prepareContainer(run: PodRun, c: any, volumes: Map<string, string>): Promise<Prepared> {
    const pod = run.pod;
    const objects = new ObjectCache(this.client, run.namespace);
    const raw: Record<string, string> = {};
    for (const ef of c.envFrom ?? []) {
      const ref = ef.secretRef ?? ef.configMapRef;
      if (!ref) continue;
      const data = ef.secretRef
        ? await objects.secret(ref.name, ref.optional)
        : await objects.configMap(ref.name, ref.optional);
      for (const [k, v] of Object.entries(data ?? {})) {
        if (!k.includes('=')) raw[(ef.prefix ?? '') + k] = v.toString('utf8');
      }
    }
    for (const e of c.env ?? []) {
      const vf = e.valueFrom;
      if (!vf) {
        raw[e.name] = expandVars(e.value ?? '', raw);
        continue;
      }
      let value: string | undefined;
      if (vf.secretKeyRef || vf.configMapKeyRef) {
        const ref = vf.secretKeyRef ?? vf.configMapKeyRef;
        const kind = vf.secretKeyRef ? 'secret' : 'configmap';
        const data = vf.secretKeyRef
          ? await objects.secret(ref.name, ref.optional)
          : await objects.configMap(ref.name, ref.optional);
        const v = data?.[ref.key];
        if (v === undefined && data && !ref.optional) {
          throw new ConfigError(
            `couldn't find key ${ref.key} in ${kind === 'secret' ? 'Secret' : 'ConfigMap'} ${run.namespace}/${ref.name}`,
          );
        }
        value = v?.toString('utf8');
      } else if (vf.fieldRef) {
        value = fieldValue(pod, vf.fieldRef.fieldPath);
      } else if (vf.resourceFieldRef) {
        value = resourceValue(c, vf.resourceFieldRef);
      }
      if (value !== undefined) raw[e.name] = value;
    }

    const paths: PathMapping[] = [];
    for (const m of c.volumeMounts ?? []) {
      const dir = volumes.get(m.name);
      if (dir === undefined) throw new ConfigError(`volume ${m.name} of mount ${m.mountPath} is not defined`);
      const sub = m.subPathExpr ? expandVars(m.subPathExpr, raw) : (m.subPath ?? '');
      if (sub && (isAbsolute(sub) || normalize(sub).startsWith('..')))
        throw new ConfigError(`invalid subPath ${sub}`);
      const host = sub ? join(dir, sub) : dir;
      if (sub && !existsSync(host)) mkdirSync(host, { recursive: true });
      paths.push({ containerPath: m.mountPath, hostPath: host });
    }
    const termDir = join(run.dir, 'termination');
    mkdirSync(termDir, { recursive: true });
    const termFile = join(termDir, c.name);
    writeFileSync(termFile, '');
    paths.push({ containerPath: c.terminationMessagePath || '/dev/termination-log', hostPath: termFile });

    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) env[k] = rewritePaths(v, paths);
    const command: string[] = (c.command ?? []).map((a: string) => rewritePaths(expandVars(a, raw), paths));
    const args: string[] = (c.args ?? []).map((a: string) => rewritePaths(expandVars(a, raw), paths));
    const spec = this.commandMap?.(c.image ?? '', command, args, {
      namespace: run.namespace,
      pod: run.name,
      container: c.name,
      env,
      paths,
      terminationLog: termFile,
    }) ?? { cmd: [...command, ...args][0] ?? '', args: [...command, ...args].slice(1) };
    if (!spec.cmd) {
      throw new StartError(
        `container ${c.name} has no command: the test kubelet cannot run an image's entrypoint (map it in commandMap)`,
      );
    }
    let cwd = spec.cwd;
    if (!cwd && c.workingDir) {
      const mapped = rewritePaths(c.workingDir, paths);
      if (mapped !== c.workingDir) cwd = mapped;
    }
    if (!cwd) {
      cwd = join(run.dir, 'cwd', c.name);
      mkdirSync(cwd, { recursive: true });
    }
    return {
      cmd: spec.cmd,
      args: spec.args,
      env: {
        ...this.baseEnv,
        HOSTNAME: run.name,
        NXT_TERMINATION_LOG: termFile,
        TERMINATION_LOG_PATH: termFile,
        ...env,
        ...spec.env,
      },
      cwd,
      termFile,
      logFile: join(this.workDir, 'logs', `${run.namespace}_${run.name}_${c.name}.log`),
    };
  }

  // ---------------------------------------------------------------- processes

  private async execContainer(
    run: PodRun,
    c: any,
    p: Prepared,
    phaseWhileRunning: 'Pending' | 'Running',
  ): Promise<ContainerResult> {
    const startedAt = now();
    const containerID = `testkubelet://${run.uid.slice(0, 8)}-${c.name}`;
    const finish = (result: ContainerResult): ContainerResult => {
      run.states.set(c.name, { kind: 'terminated', startedAt, finishedAt: now(), containerID, result });
      return result;
    };
    if (run.abort.signal.aborted || this.stopped) {
      return finish({
        name: c.name,
        exitCode: 137,
        reason: 'Error',
        message: 'the pod was deleted before the container started',
      });
    }
    const out = createWriteStream(p.logFile, { flags: 'a' });
    const tail = new Tail(64 * 1024);
    let child: ChildProcess;
    try {
      child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', p.cmd, ...p.args], {
        cwd: p.cwd,
        env: p.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // own process group, so a kill reaches `sh -c` children too
      });
    } catch (e) {
      out.end();
      return finish({ name: c.name, exitCode: 128, reason: 'StartError', message: errText(e) });
    }
    const proc: Proc = {
      namespace: run.namespace,
      pod: run.name,
      container: c.name,
      pid: child.pid ?? -1,
      child,
      exited: false,
    };
    const onData = (b: Buffer) => {
      out.write(b);
      tail.push(b);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const closed = new Promise<void>((r) => child.once('close', () => r()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((r) => {
      child.once('exit', (code, signal) => r({ code, signal }));
      child.once('error', (error) => r({ code: null, signal: null, error }));
    });
    if (child.pid) {
      this.procs.add(proc);
      run.procs.add(proc);
      run.states.set(c.name, { kind: 'running', startedAt, containerID });
      this.log(
        `started ${run.namespace}/${run.name}/${c.name} pid ${child.pid}: ${[p.cmd, ...p.args].join(' ').slice(0, 300)}`,
      );
      // The pod was deleted while the process was being spawned: kill it now.
      if (run.terminating) killGroup(proc, 'SIGKILL');
      else void this.patchStatus(run, this.statusFor(run, phaseWhileRunning));
    }
    const { code, signal, error } = await exited;
    proc.exited = true;
    if (proc.killTimer) clearTimeout(proc.killTimer);
    // Like a container runtime: when the main process ends, whatever it left behind in its group dies.
    if (proc.pid > 0) {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        /* group already gone */
      }
    }
    await Promise.race([closed, sleep(2_000)]);
    child.stdout?.destroy();
    child.stderr?.destroy();
    await new Promise<void>((r) => out.end(r));
    this.procs.delete(proc);
    run.procs.delete(proc);
    if (error) {
      return finish({ name: c.name, exitCode: 128, reason: 'StartError', message: error.message });
    }
    const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 9) : 9);
    let message = readHead(p.termFile, TERMINATION_MESSAGE_MAX);
    if (!message && exitCode !== 0 && c.terminationMessagePolicy === 'FallbackToLogsOnError') {
      message = lastLines(tail.text(), FALLBACK_LINES, FALLBACK_BYTES);
    }
    this.log(`${run.namespace}/${run.name}/${c.name} exited ${exitCode}${signal ? ` (${signal})` : ''}`);
    return finish({
      name: c.name,
      exitCode,
      reason: exitCode === 0 ? 'Completed' : 'Error',
      message,
      ...(signal ? { signal } : {}),
    });
  }
}

// ------------------------------------------------------------------ helpers

const RUNNER_SUBCOMMANDS = new Set(['backup', 'verify', 'restore', 'test-restore', 'prune', 'probe-storage']);

export interface OperatorCommandMapOptions {
  /** Images whose entrypoint is the operator's (used when a container has args but no command). */
  isOperatorImage?: (image: string) => boolean;
  /** Extra environment for the operator processes, e.g. PG_BIN_DIR. */
  env?: Record<string, string>;
  /** Other images; default: run as is. */
  fallback?: CommandMap;
}

/**
 * Maps the operator image's entrypoint (`[tini --] node [/app/]dist/bundle/main.js ARGS`, also the tsc build's
 * dist/operator/main.js, or only ARGS for
 * an operator image without a command) to `node --import tsx <repo>/operator/main.ts ARGS`, run from the
 * repository root. A runner subcommand without `--termination-log` gets `--termination-log <host file>`
 * appended: its built-in default, /dev/termination-log, is not a mount path, so it would not be rewritten and
 * would point at the host's /dev.
 */
export function operatorCommandMap(opts: OperatorCommandMapOptions = {}): CommandMap {
  const isOperatorImage =
    opts.isOperatorImage ?? ((image: string) => image.includes('nxt-rollback-operator'));
  return (image, command, args, ctx) => {
    let argv = [...command, ...args];
    if (/(^|\/)tini$/.test(argv[0] ?? '')) argv = argv.slice(argv[1] === '--' ? 2 : 1);
    let rest: string[] | undefined;
    if (
      /(^|\/)node$/.test(argv[0] ?? '') &&
      /^(\/app\/)?dist\/(operator|bundle)\/main\.js$/.test(argv[1] ?? '')
    ) {
      rest = argv.slice(2);
    } else if (command.length === 0 && isOperatorImage(image)) rest = args;
    if (!rest) return opts.fallback?.(image, command, args, ctx);
    const hasTerminationLog = rest.some(
      (a) => a === '--termination-log' || a.startsWith('--termination-log='),
    );
    if (RUNNER_SUBCOMMANDS.has(rest[0] ?? '') && !hasTerminationLog) {
      rest = [...rest, '--termination-log', ctx.terminationLog];
    }
    return {
      cmd: process.execPath,
      args: ['--import', 'tsx', join(REPO_ROOT, 'operator', 'main.ts'), ...rest],
      cwd: REPO_ROOT,
      ...(opts.env ? { env: opts.env } : {}),
    };
  };
}

function killGroup(p: Proc, signal: NodeJS.Signals): void {
  if (p.exited || p.pid <= 0) return;
  try {
    process.kill(-p.pid, signal);
  } catch {
    try {
      p.child.kill(signal);
    } catch {
      /* gone */
    }
  }
}

function containerStatus(c: any, s: CState | undefined): any {
  const base = { name: c.name, image: c.image ?? '', imageID: '', restartCount: 0 };
  if (!s || s.kind === 'waiting') {
    return {
      ...base,
      ready: false,
      started: false,
      state: {
        waiting: { reason: s?.reason ?? 'ContainerCreating', ...(s?.message ? { message: s.message } : {}) },
      },
    };
  }
  if (s.kind === 'running') {
    return {
      ...base,
      containerID: s.containerID,
      ready: true,
      started: true,
      state: { running: { startedAt: s.startedAt } },
    };
  }
  return {
    ...base,
    ...(s.containerID ? { containerID: s.containerID } : {}),
    ready: false,
    started: false,
    state: {
      terminated: {
        exitCode: s.result.exitCode,
        ...(s.result.signal ? { signal: osConstants.signals[s.result.signal as NodeJS.Signals] } : {}),
        reason: s.result.reason,
        ...(s.result.message ? { message: s.result.message } : {}),
        startedAt: s.startedAt,
        finishedAt: s.finishedAt,
        ...(s.containerID ? { containerID: s.containerID } : {}),
      },
    },
  };
}

/** Secrets and ConfigMaps of one namespace, fetched once per preparation. Data values as bytes. */
class ObjectCache {
  private readonly cache = new Map<string, Record<string, Buffer> | null>();
  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
  ) {}

  secret(name: string, optional?: boolean) {
    return this.get('secrets', name, optional);
  }
  configMap(name: string, optional?: boolean) {
    return this.get('configmaps', name, optional);
  }

  private async get(plural: 'secrets' | 'configmaps', name: string, optional?: boolean) {
    const key = `${plural}/${name}`;
    if (!this.cache.has(key)) {
      try {
        const o = await this.client.get<any>({ ...PODS, plural, namespace: this.namespace, name });
        const data: Record<string, Buffer> = {};
        if (plural === 'secrets') {
          for (const [k, v] of Object.entries<string>(o.data ?? {})) data[k] = Buffer.from(v, 'base64');
        } else {
          for (const [k, v] of Object.entries<string>(o.data ?? {})) data[k] = Buffer.from(v, 'utf8');
          for (const [k, v] of Object.entries<string>(o.binaryData ?? {})) data[k] = Buffer.from(v, 'base64');
        }
        this.cache.set(key, data);
      } catch (e) {
        if (codeOf(e) !== 404) throw new ConfigError(`reading ${key}: ${errText(e)}`);
        this.cache.set(key, null);
      }
    }
    const v = this.cache.get(key);
    if (v === null || v === undefined) {
      if (optional) return undefined;
      throw new ConfigError(`${plural === 'secrets' ? 'secret' : 'configmap'} "${name}" not found`);
    }
    return v;
  }
}

function writeFile(dir: string, rel: string, content: string | Buffer): void {
  if (isAbsolute(rel) || normalize(rel).startsWith('..'))
    throw new ConfigError(`invalid volume file path ${rel}`);
  const f = join(dir, rel);
  mkdirSync(dirname(f), { recursive: true });
  writeFileSync(f, content);
}

function writeKeyFiles(
  dir: string,
  data: Record<string, Buffer>,
  items: { key: string; path: string }[] | undefined,
  optional: boolean | undefined,
  source: string,
): void {
  if (!items?.length) {
    for (const [k, v] of Object.entries(data)) writeFile(dir, k, v);
    return;
  }
  for (const it of items) {
    const v = data[it.key];
    if (v === undefined) {
      if (optional) continue;
      throw new ConfigError(`key ${it.key} not found in ${source}`);
    }
    writeFile(dir, it.path, v);
  }
}

/** The value of a downward-API fieldPath, as the kubelet computes it. */
export function fieldValue(pod: any, path: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return pod.metadata?.[m[1]!]?.[m[2]!] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace;
    case 'metadata.uid':
      return pod.metadata.uid;
    case 'metadata.labels':
    case 'metadata.annotations': {
      const map: Record<string, string> = pod.metadata?.[path.slice('metadata.'.length)] ?? {};
      return Object.keys(map)
        .sort()
        .map((k) => `${k}=${JSON.stringify(map[k])}`)
        .join('\n');
    }
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.podIP':
    case 'status.hostIP':
    case 'status.podIPs':
    case 'status.hostIPs':
      return '127.0.0.1';
    default:
      throw new ConfigError(`unsupported fieldRef ${path}`);
  }
}

function downwardValue(pod: any, item: any): string {
  if (item.fieldRef) return fieldValue(pod, item.fieldRef.fieldPath);
  if (item.resourceFieldRef) {
    const c = (pod.spec?.containers ?? []).find((x: any) => x.name === item.resourceFieldRef.containerName);
    return resourceValue(c ?? {}, item.resourceFieldRef);
  }
  return '';
}

const NODE_ALLOCATABLE: Record<string, string> = { cpu: '8', memory: '16Gi', 'ephemeral-storage': '100Gi' };

/** resourceFieldRef: the container's limit (node allocatable when unset) or request, divided and rounded up. */
function resourceValue(c: any, ref: { resource: string; divisor?: string | number }): string {
  const [kind, name] = ref.resource.split('.') as [string, string];
  const set = kind === 'limits' ? c.resources?.limits : c.resources?.requests;
  const raw = set?.[name] ?? (kind === 'limits' ? NODE_ALLOCATABLE[name] : '0');
  const divisor = parseQuantity(String(ref.divisor ?? '1')) || 1;
  return String(Math.ceil(parseQuantity(String(raw ?? '0')) / divisor));
}

/** Parses a Kubernetes quantity (100m, 1.5Gi, 2e3) to a number. */
export function parseQuantity(q: string): number {
  const m = /^([+-]?[0-9.]+)(e[+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$/.exec(q.trim());
  if (!m) throw new ConfigError(`invalid quantity ${q}`);
  const n = Number(m[1]);
  const s = m[2] ?? '';
  if (s.startsWith('e')) return n * 10 ** Number(s.slice(1));
  const dec: Record<string, number> = {
    n: 1e-9,
    u: 1e-6,
    m: 1e-3,
    '': 1,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
  };
  const bin: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
  };
  return n * (dec[s] ?? bin[s] ?? 1);
}

/**
 * Kubernetes' $(VAR) expansion (k8s.io/kubernetes/third_party/forked/golang/expansion): `$(NAME)` becomes the
 * value when NAME is defined and stays as is otherwise, `$$` becomes `$`.
 */
export function expandVars(input: string, vars: Record<string, string>): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let advance = 1;
    if (rest[0] === '$') out += '$';
    else if (rest[0] === '(') {
      const close = rest.indexOf(')', 1);
      if (close < 0) out += '$(';
      else {
        const name = rest.slice(1, close);
        out += Object.hasOwn(vars, name) ? vars[name] : `$(${name})`;
        advance = close + 1;
      }
    } else out += '$' + rest[0];
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Replaces container paths by host paths in one pass, longest container path first, only at path boundaries:
 * the match must not follow a path character (letter, digit, `_`, `.`, `-`, `/`) and must be followed by the
 * end, `/` or a character that cannot continue a path component.
 */
export function rewritePaths(s: string, paths: PathMapping[]): string {
  const map = new Map<string, string>();
  for (const p of paths) {
    const from = p.containerPath.length > 1 ? p.containerPath.replace(/\/+$/, '') : p.containerPath;
    if (from === '/' || !from.startsWith('/')) continue;
    if (!map.has(from)) map.set(from, p.hostPath);
  }
  if (map.size === 0) return s;
  const alternatives = [...map.keys()].sort((a, b) => b.length - a.length).map(escapeRe);
  const re = new RegExp(`(?<![\\w.\\-/])(${alternatives.join('|')})(?![\\w.\\-])`, 'g');
  return s.replace(re, (m) => map.get(m) ?? m);
}

/** Keeps the last `max` bytes written to it. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.max && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8');
  }
}

function lastLines(text: string, lines: number, maxBytes: number): string {
  const kept = text.replace(/\n$/, '').split('\n').slice(-lines).join('\n');
  const b = Buffer.from(kept, 'utf8');
  return b.length <= maxBytes ? kept : b.subarray(b.length - maxBytes).toString('utf8');
}

function readHead(file: string, max: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(max);
    const n = readSync(fd, buf, 0, max, 0);
    return buf.subarray(0, n).toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
