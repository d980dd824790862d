// bench:scale — the operator at scale, on one local control plane (etcd, kube-apiserver, KCM, scheduler, kwok)
// with the real operator process:
//
//   npm run bench:scale                    # 1,000 plans at once; RSS with 10,000 Deployments
//   npm run bench:scale -- --quick         # smoke test: 50 plans, 500 Deployments (asserts it works, no goal)
//   npm run bench:scale -- --plans 200 --rss-deployments 0 --workers 8
//   npx tsx bench/scale.ts --quick --kubeconfig K --kubectl BIN   # against a running cluster (CRDs installed)
//
// Part A (burst): N Deployments (kwok pods), each with 2 revisions, settled. N RollbackPlans (scope app) are
// created at once; the clock runs from the first create call until one shared Deployment watch has delivered
// every Deployment with its revision-1 template back (and until every plan is Succeeded). Baseline, on the
// same Deployments afterwards: `kubectl rollout undo` over all N, `--workers` processes at a time (the
// operator's PLAN_MAX_CONCURRENT_RECONCILES and MAX_CONCURRENT_RECONCILES in this run; the operator's own
// default for plans is 16), until every template is the revision-2 one again. Both undo to "the
// previous revision", so each side does the same work. API requests per plan: the operator's own
// rest_client_requests_total over the burst, divided by N.
// Part B (memory): M Deployments with replicas 0 (one ReplicaSet each) in a namespace of their own. A fresh
// operator watching only an empty namespace gives the baseline RSS; a fresh operator watching the M
// Deployments gives the loaded RSS (VmRSS and the peak VmHWM from /proc, after its caches synced and settled).
// The Markdown report goes to stdout, progress to stderr.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { bundleOperator } from '../hack/bundle.js';
import { KubeClient } from '../operator/kube/rest.js';
import { REPO_ROOT } from '../test/env/binaries.js';
import { LocalControlPlane } from '../test/env/control-plane.js';
import { installCrds } from '../test/env/crds.js';
import {
  appPlan,
  BENCH_LABEL,
  PLAN_API,
  REVISION,
  restrictedContainer,
  rolloutComplete,
  settledAt,
  templateOf,
} from './lib/kube.js';
import { mapLimit, progress, runBenchmark, sleep, type Cleanup } from './lib/lifecycle.js';
import { codeRevision, loadAverage, machineInfo, machineMarkdown } from './lib/machine.js';
import { startBenchOperator, type BenchOperator } from './lib/operator.js';
import { deltaBy, operatorWork, scrape, sum } from './lib/prom.js';
import { ratio, summarize } from './lib/stats.js';
import { fmtBytes, fmtMs, fmtRatio, markdownTable, SUMMARY_HEADERS, summaryCells } from './lib/table.js';
import { ObjectWatcher, type RawObject } from './lib/watch.js';

const { values: flags } = parseArgs({
  options: {
    plans: { type: 'string' },
    'rss-deployments': { type: 'string' },
    quick: { type: 'boolean', default: false },
    replicas: { type: 'string', default: '1' },
    workers: { type: 'string', default: '8' },
    timeout: { type: 'string', default: '600' },
    kubeconfig: { type: 'string' },
    kubectl: { type: 'string' },
    operator: { type: 'string' },
    'keep-logs': { type: 'boolean', default: false },
    'compare-entry': { type: 'string' },
  },
});
const int = (name: string, v: string | undefined, fallback: number, min = 0): number => {
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be a whole number >= ${min}; got ${v}`);
  return n;
};
const PLANS = int('plans', flags.plans, flags.quick ? 50 : 1000);
const RSS_DEPLOYMENTS = int('rss-deployments', flags['rss-deployments'], flags.quick ? 500 : 10_000);
const REPLICAS = int('replicas', flags.replicas, 1, 0);
const WORKERS = int('workers', flags.workers, 8, 1);
const TIMEOUT_MS = int('timeout', flags.timeout, 600, 1) * 1000;
// The production image runs `node dist/bundle/main.js` (hack/bundle.ts); tsx alone costs about 90 MiB of RSS,
// so the memory numbers come from a build (tsc into .tmp/bench-dist, the bundle into .tmp/bench-dist/bundle)
// unless --operator tsx. --quick uses tsx (no build). `--compare-entry tsc` compares with the tsc build of the
// same commit (.tmp/bench-dist/operator/main.js).
const OPERATOR = flags.operator ?? (flags.quick ? 'tsx' : 'built');
if (OPERATOR !== 'built' && OPERATOR !== 'tsx')
  throw new Error(`--operator must be built or tsx; got ${OPERATOR}`);
const BUILD_DIR = join(REPO_ROOT, '.tmp', 'bench-dist');
const IMAGES = ['nginx:1.25', 'nginx:1.26'];
const TERMINAL = new Set(['Succeeded', 'Failed', 'DryRunComplete']);
const SETUP_PARALLEL = 32;
const GOAL_TEMPLATES_MS = 30_000;
const GOAL_RSS = 256 * 2 ** 20;

const log = progress('bench:scale');
const commandLine =
  process.env.npm_lifecycle_event === 'bench:scale'
    ? `npm run bench:scale${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`
    : `npx tsx bench/scale.ts ${process.argv.slice(2).join(' ')}`.trim();

const DEPLOYMENTS = { group: 'apps', version: 'v1', plural: 'deployments' } as const;

await runBenchmark(async (cleanup) => {
  const machine = machineInfo();
  const revision = codeRevision();
  log(`plans=${PLANS} rss-deployments=${RSS_DEPLOYMENTS} replicas=${REPLICAS} workers=${WORKERS}`);
  if (OPERATOR === 'built') {
    log(`building the operator into ${BUILD_DIR} (tsc, then hack/bundle.ts)`);
    rmSync(BUILD_DIR, { recursive: true, force: true });
    execFileSync(
      process.execPath,
      [
        join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        BUILD_DIR,
      ],
      {
        cwd: REPO_ROOT,
        stdio: 'inherit',
      },
    );
    await bundleOperator(join(BUILD_DIR, 'bundle'));
  }
  const cluster = await clusterFor(cleanup);
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const client = new KubeClient(kc, { userAgent: 'nxt-bench-scale' });
  const id = randomBytes(3).toString('hex');
  const createNs = async (name: string) => {
    await client.create(
      { group: '', version: 'v1', plural: 'namespaces' },
      {
        metadata: { name, labels: { 'nxt.bench/run': 'true' } },
      },
    );
    // On a shared cluster (--kubeconfig) the namespaces must go; a control plane of our own is removed whole.
    if (cluster.shared)
      cleanup.add(`namespace ${name}`, () =>
        client.delete({ group: '', version: 'v1', plural: 'namespaces', name }).catch(() => {}),
      );
  };

  const header = () =>
    machineMarkdown(machine, {
      code: `commit ${revision}`,
      kubernetes: `${cluster.versions}, kwok fake nodes, ${REPLICAS} replica(s) per Deployment in Part A`,
      operator: `${OPERATOR === 'built' ? 'node .tmp/bench-dist/bundle/main.js (the bundle, as the image runs it)' : 'operator/main.ts via tsx'}, LOG_LEVEL=info, MAX_CONCURRENT_RECONCILES=${WORKERS}, PLAN_MAX_CONCURRENT_RECONCILES=${WORKERS}`,
      ...(cluster.shared
        ? {}
        : {
            'kube-controller-manager':
              '--kube-api-qps=200 (setup speed; at the default 20 it makes about 7 ReplicaSets a second)',
          }),
    });
  // Each part's tables are printed as soon as it is done: a long run that fails later keeps them.
  const burst =
    PLANS > 0 ? await partA(cleanup, cluster, kc, client, createNs, `scale-burst-${id}`) : undefined;
  console.log(report({ machine: header(), burst, memory: undefined }));
  const memory =
    RSS_DEPLOYMENTS > 0
      ? await partB(cleanup, cluster, client, createNs, `scale-rss-${id}`, `scale-empty-${id}`)
      : undefined;
  if (memory) console.log(report({ burst: undefined, memory }));
  // A smoke test (--quick) asserts that the benchmark worked, not a number.
  if (burst && (burst.ours.done !== PLANS || burst.kubectl.templatesRestored !== PLANS))
    throw new Error(`Part A incomplete: ${burst.ours.done}/${PLANS} plans Succeeded`);
  if (memory && !(memory.loaded.rss > 0 && memory.baseline.rss > 0))
    throw new Error('Part B: no RSS reading');
});

// -------------------------------------------------------------------------------------------------------

interface Cluster {
  kubeconfigPath: string;
  kubectl: string;
  kubectlArgs: string[];
  versions: string;
  shared: boolean;
}

async function clusterFor(cleanup: Cleanup): Promise<Cluster> {
  let kubeconfigPath = flags.kubeconfig;
  let kubectl = flags.kubectl;
  const shared = !!kubeconfigPath;
  if (!kubeconfigPath) {
    log('starting the local control plane');
    const cp = await LocalControlPlane.start({
      log: (m) => log(`control-plane: ${m}`),
      controllerManagerQps: 200,
    });
    cleanup.add('control plane', () => cp.stop());
    kubectl = cp.bins.path('kubectl');
    kubeconfigPath = cp.kubeconfigPath;
    await installCrds(kubectl, kubeconfigPath);
  } else if (!kubectl) throw new Error('--kubeconfig needs --kubectl (the kubectl binary to race)');
  // kubectl keeps its discovery cache here; the version call below fills it before any measurement.
  const cacheDir = mkdtempSync(join(tmpdir(), 'nxt-bench-kubectl-'));
  cleanup.add('kubectl cache', () => rmSync(cacheDir, { recursive: true, force: true }));
  const kubectlArgs = [`--kubeconfig=${kubeconfigPath}`, `--cache-dir=${cacheDir}`];
  const v = JSON.parse(
    execFileSync(kubectl!, [...kubectlArgs, 'version', '-o', 'json']).toString(),
  ) as Record<string, { gitVersion: string }>;
  execFileSync(kubectl!, [...kubectlArgs, 'api-resources', '-o', 'name'], { stdio: 'ignore' });
  return {
    kubeconfigPath,
    kubectl: kubectl!,
    kubectlArgs,
    versions: `${v.serverVersion?.gitVersion ?? '?'} (kubectl ${v.clientVersion?.gitVersion ?? '?'})`,
    shared,
  };
}

async function startOperator(
  cleanup: Cleanup,
  cluster: Cluster,
  namespaces: string[],
  entry = OPERATOR === 'built' ? [join(BUILD_DIR, 'bundle', 'main.js')] : undefined,
): Promise<BenchOperator> {
  const op = await startBenchOperator({
    kubeconfigPath: cluster.kubeconfigPath,
    entry,
    env: {
      LOG_LEVEL: 'info',
      WATCH_NAMESPACES: namespaces.join(','),
      MAX_CONCURRENT_RECONCILES: String(WORKERS),
      // The RollbackPlan controller's own workers (16 by default): raced against kubectl at the same parallelism.
      PLAN_MAX_CONCURRENT_RECONCILES: String(WORKERS),
      CACHE_SYNC_TIMEOUT: '600s',
    },
  });
  let stopped = false;
  cleanup.add('operator', async () => {
    if (!stopped) {
      console.error(`operator log tail:\n${op.logs().split('\n').slice(-30).join('\n')}`);
      await op.stop();
    }
  });
  await op.waitReady(TIMEOUT_MS);
  const stop = op.stop.bind(op);
  op.stop = async () => {
    stopped = true;
    await stop(flags['keep-logs']);
    if (flags['keep-logs']) log(`operator log kept: ${op.logFile}`);
  };
  return op;
}

// -------------------------------------------------------------------------------------------------------
// Part A

interface SideResult {
  n: number;
  /** Last create call (or kubectl process) returned, ms after the start. */
  lastIssuedMs: number;
  /** Per Deployment: template restored, ms after the start. */
  templateMs: number[];
  templatesRestored: number;
  allTemplatesMs: number;
  /** Ours: plans Succeeded; kubectl: rollouts complete. */
  doneMs: number[];
  done: number;
  allDoneMs: number;
  failed: string[];
}

interface BurstResult {
  setupMs: number;
  ours: SideResult;
  kubectl: SideResult;
  requests: { total: number; byMethod: Record<string, number>; byCode: Record<string, number> };
  work: ReturnType<typeof operatorWork>;
  watchEvents: number;
}

async function partA(
  cleanup: Cleanup,
  cluster: Cluster,
  kc: KubeConfig,
  client: KubeClient,
  createNs: (n: string) => Promise<void>,
  ns: string,
): Promise<BurstResult> {
  await createNs(ns);
  const deployments = new ObjectWatcher(kc, `/apis/apps/v1/namespaces/${ns}/deployments`, {}, log);
  const plans = new ObjectWatcher(
    kc,
    `/apis/${PLAN_API.group}/${PLAN_API.version}/namespaces/${ns}/${PLAN_API.plural}`,
    {},
    log,
  );
  await deployments.start();
  await plans.start();
  cleanup.add('watches', () => {
    deployments.stop();
    plans.stop();
  });
  const names = Array.from({ length: PLANS }, (_, i) => `app-${i}`);
  const t0Setup = performance.now();
  log(`Part A: creating ${PLANS} Deployments (${REPLICAS} replica(s), kwok pods) with 2 revisions each`);
  const rev = await deploymentsWithTwoRevisions(client, deployments, ns, names);
  const setupMs = performance.now() - t0Setup;
  log(`Part A: setup done in ${fmtMs(setupMs)}`);

  const op = await startOperator(cleanup, cluster, [ns]);
  log('Part A: operator ready');
  await sleep(2000);
  const before = await scrape(op.metricsUrl);
  const eventsBefore = deployments.events;

  // Ours: every plan at once.
  log(`Part A: creating ${PLANS} RollbackPlans at once`);
  const oursWaits = waits(deployments, plans, ns, names, (n) => rev.first.get(n)!, true);
  const t0 = performance.now();
  const issued = await mapLimit(names, 64, async (n) => {
    await client.create({ ...PLAN_API, namespace: ns }, appPlan(`undo-${n}`, n));
    return performance.now() - t0;
  });
  const ours = await collect(oursWaits, t0, issued);
  const after = await scrape(op.metricsUrl);
  log(
    `Part A: ours: ${ours.templatesRestored}/${PLANS} templates restored, last after ${fmtMs(ours.allTemplatesMs)}; ` +
      `${ours.done}/${PLANS} Succeeded, last after ${fmtMs(ours.allDoneMs)}`,
  );
  const watchEvents = deployments.events - eventsBefore;
  await op.stop();

  // Baseline: kubectl rollout undo, WORKERS at a time, on the same (now settled) Deployments.
  await mapLimit(names, SETUP_PARALLEL, (n) =>
    deployments.waitFor(`${ns}/${n}`, settledAt('3'), TIMEOUT_MS, `${n} settled at revision 3`),
  );
  await sleep(2000);
  log(`Part A: kubectl rollout undo over ${PLANS} Deployments, ${WORKERS} at a time`);
  const kWaits = waits(deployments, plans, ns, names, (n) => rev.second.get(n)!, false);
  const t1 = performance.now();
  const kIssued = await mapLimit(names, WORKERS, async (n) => {
    await kubectlUndo(cluster, ns, n);
    return performance.now() - t1;
  });
  const kubectl = await collect(kWaits, t1, kIssued);
  log(
    `Part A: kubectl: ${kubectl.templatesRestored}/${PLANS} templates restored, last after ${fmtMs(kubectl.allTemplatesMs)}`,
  );
  const byMethod = deltaBy(before, after, 'rest_client_requests_total', 'method');
  const byCode = deltaBy(before, after, 'rest_client_requests_total', 'code');
  return {
    setupMs,
    ours,
    kubectl,
    requests: {
      total: sum(after, 'rest_client_requests_total') - sum(before, 'rest_client_requests_total'),
      byMethod,
      byCode,
    },
    work: operatorWork(before, after, 'rollbackplan'),
    watchEvents,
  };
}

/** Creates the Deployments at revision 1, then rolls each to revision 2; returns both canonical templates. */
async function deploymentsWithTwoRevisions(
  client: KubeClient,
  watcher: ObjectWatcher,
  ns: string,
  names: string[],
): Promise<{ first: Map<string, string>; second: Map<string, string> }> {
  const first = new Map<string, string>();
  const second = new Map<string, string>();
  await mapLimit(names, SETUP_PARALLEL, (name) =>
    client.create({ ...DEPLOYMENTS, namespace: ns }, deployment(name, IMAGES[0]!, REPLICAS)),
  );
  // The deployment controller must have made revision 1's ReplicaSet before the template changes.
  await mapLimit(names, SETUP_PARALLEL, async (name) => {
    const seen = await watcher.waitFor(
      `${ns}/${name}`,
      (d) => d.metadata.annotations?.[REVISION] === '1',
      TIMEOUT_MS,
      `${name} at revision 1`,
    );
    first.set(name, templateOf(seen.obj));
  });
  await mapLimit(names, SETUP_PARALLEL, (name) =>
    client.patch({ ...DEPLOYMENTS, namespace: ns, name }, 'merge', {
      spec: { template: { spec: { containers: [restrictedContainer('app', IMAGES[1]!)] } } },
    }),
  );
  await mapLimit(names, SETUP_PARALLEL, async (name) => {
    const seen = await watcher.waitFor(
      `${ns}/${name}`,
      settledAt('2'),
      TIMEOUT_MS,
      `${name} settled at revision 2`,
    );
    second.set(name, templateOf(seen.obj));
  });
  return { first, second };
}

function deployment(name: string, image: string, replicas: number) {
  const labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { [BENCH_LABEL]: name } },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [restrictedContainer('app', image)] } },
    },
  };
}

interface Waits {
  templates: Promise<{ at: number }>[];
  done: Promise<{ at: number; obj: RawObject }>[];
}

/** Rejections are collected by allSettled; no unhandled rejection meanwhile. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

function waits(
  deployments: ObjectWatcher,
  plans: ObjectWatcher,
  ns: string,
  names: string[],
  template: (n: string) => string,
  ours: boolean,
): Waits {
  return {
    templates: names.map((n) =>
      quiet(
        deployments.waitFor(`${ns}/${n}`, (d) => templateOf(d) === template(n), TIMEOUT_MS, `${n} template`),
      ),
    ),
    done: names.map((n) =>
      quiet(
        ours
          ? plans.waitFor(
              `${ns}/undo-${n}`,
              (p) => TERMINAL.has(p.status?.phase),
              TIMEOUT_MS,
              `plan undo-${n}`,
            )
          : deployments.waitFor(
              `${ns}/${n}`,
              (d) => templateOf(d) === template(n) && rolloutComplete(d),
              TIMEOUT_MS,
              `${n} rolled out`,
            ),
      ),
    ),
  };
}

async function collect(w: Waits, t0: number, issued: number[]): Promise<SideResult> {
  const templates = await Promise.allSettled(w.templates);
  const done = await Promise.allSettled(w.done);
  const templateMs = templates.flatMap((r) => (r.status === 'fulfilled' ? [r.value.at - t0] : []));
  const doneMs: number[] = [];
  const failed: string[] = [];
  for (const r of done) {
    if (r.status === 'rejected') {
      failed.push(String((r.reason as Error).message).slice(0, 200));
      continue;
    }
    const phase = r.value.obj.status?.phase;
    if (phase === undefined || phase === 'Succeeded') doneMs.push(r.value.at - t0);
    else failed.push(`${r.value.obj.metadata.name}: ${phase}`);
  }
  const n = issued.length;
  return {
    n,
    lastIssuedMs: Math.max(...issued),
    templateMs,
    templatesRestored: templateMs.length,
    allTemplatesMs: templateMs.length === n ? Math.max(...templateMs) : NaN,
    doneMs,
    done: doneMs.length,
    allDoneMs: doneMs.length === n ? Math.max(...doneMs) : NaN,
    failed,
  };
}

function kubectlUndo(cluster: Cluster, ns: string, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      cluster.kubectl,
      [...cluster.kubectlArgs, '-n', ns, 'rollout', 'undo', `deployment/${name}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`kubectl rollout undo deployment/${name} exited ${code}: ${out}`)),
    );
  });
}

// -------------------------------------------------------------------------------------------------------
// Part B

interface RssReading {
  /** VmRSS after the caches synced and settled, bytes. */
  rss: number;
  /** VmHWM: the peak RSS of the process, bytes. */
  peak: number;
  heapUsed: number;
  syncMs: number;
}

interface MemoryResult {
  deployments: number;
  replicaSets: number;
  setupMs: number;
  baseline: RssReading;
  loaded: RssReading;
  /** The same two readings of another build (--compare-entry), e.g. the code before a change. */
  compare?: { entry: string; baseline: RssReading; loaded: RssReading };
}

async function partB(
  cleanup: Cleanup,
  cluster: Cluster,
  client: KubeClient,
  createNs: (n: string) => Promise<void>,
  ns: string,
  emptyNs: string,
): Promise<MemoryResult> {
  await createNs(ns);
  await createNs(emptyNs);
  const t0 = performance.now();
  log(`Part B: creating ${RSS_DEPLOYMENTS} Deployments (replicas 0, one ReplicaSet each)`);
  let created = 0;
  await mapLimit(
    Array.from({ length: RSS_DEPLOYMENTS }, (_, i) => `idle-${i}`),
    SETUP_PARALLEL,
    async (name) => {
      await client.create({ ...DEPLOYMENTS, namespace: ns }, deployment(name, IMAGES[0]!, 0));
      if (++created % 1000 === 0) log(`Part B: ${created} Deployments created`);
    },
  );
  let replicaSets = 0;
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    replicaSets = (await client.list({ group: 'apps', version: 'v1', plural: 'replicasets', namespace: ns }))
      .items.length;
    if (replicaSets >= RSS_DEPLOYMENTS) break;
    if (Date.now() > deadline)
      throw new Error(`only ${replicaSets}/${RSS_DEPLOYMENTS} ReplicaSets after the timeout`);
    log(`Part B: ${replicaSets}/${RSS_DEPLOYMENTS} ReplicaSets so far`);
    await sleep(5000);
  }
  const setupMs = performance.now() - t0;
  log(`Part B: setup done in ${fmtMs(setupMs)}`);
  const baseline = await measureRss(cleanup, cluster, [emptyNs]);
  log(`Part B: empty namespace: RSS ${fmtBytes(baseline.rss)} (peak ${fmtBytes(baseline.peak)})`);
  const loaded = await measureRss(cleanup, cluster, [ns]);
  log(`Part B: ${RSS_DEPLOYMENTS} Deployments: RSS ${fmtBytes(loaded.rss)} (peak ${fmtBytes(loaded.peak)})`);
  let compare: MemoryResult['compare'];
  if (flags['compare-entry']) {
    const entry =
      flags['compare-entry'] === 'tsc' ? join(BUILD_DIR, 'operator', 'main.js') : flags['compare-entry'];
    compare = {
      entry,
      baseline: await measureRss(cleanup, cluster, [emptyNs], [entry]),
      loaded: await measureRss(cleanup, cluster, [ns], [entry]),
    };
    log(`Part B: ${entry}: RSS ${fmtBytes(compare.loaded.rss)} (empty: ${fmtBytes(compare.baseline.rss)})`);
  }
  return { deployments: RSS_DEPLOYMENTS, replicaSets, setupMs, baseline, loaded, compare };
}

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

async function measureRss(
  cleanup: Cleanup,
  cluster: Cluster,
  namespaces: string[],
  entry?: string[],
): Promise<RssReading> {
  const t0 = performance.now();
  const op = await startOperator(cleanup, cluster, namespaces, entry);
  const syncMs = performance.now() - t0;
  // Settle: the first list's garbage is collected over the next seconds; the median of 5 readings.
  await sleep(5000);
  const pid = op.child.pid!;
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(procStatus(pid, 'VmRSS'));
    await sleep(1000);
  }
  const peak = procStatus(pid, 'VmHWM');
  const heapUsed = sum(await scrape(op.metricsUrl), 'nodejs_heap_size_used_bytes');
  await op.stop();
  return { rss: summarize(readings).median, peak, heapUsed, syncMs };
}

// -------------------------------------------------------------------------------------------------------

function report(r: {
  /** The heading and the machine facts; omitted for a later part of the same report. */
  machine?: string;
  burst: BurstResult | undefined;
  memory: MemoryResult | undefined;
}): string {
  const out: string[] = r.machine
    ? [`## bench:scale`, '', `Command: \`${commandLine}\``, '', r.machine, '']
    : [`Load average 1/5/15 min at the end: ${loadAverage()}`, ''];
  const b = r.burst;
  if (b) {
    const row = (label: string, s: SideResult) => [
      label,
      fmtMs(s.lastIssuedMs),
      fmtMs(s.allTemplatesMs),
      `${s.templatesRestored}/${s.n}`,
      fmtMs(s.allDoneMs),
      `${s.done}/${s.n}`,
    ];
    const templatesRatio = ratio(b.ours.allTemplatesMs, b.kubectl.allTemplatesMs);
    out.push(
      `### Part A: ${b.ours.n} RollbackPlans at once on ${b.ours.n} Deployments (PLAN_MAX_CONCURRENT_RECONCILES=${WORKERS})`,
      '',
      `Setup (${b.ours.n} Deployments, 2 revisions each, settled): ${fmtMs(b.setupMs)}. Times from the first create ` +
        'call (ours) / first kubectl spawn (baseline). "done": plan `Succeeded` (ours: rollout complete and ' +
        'post-validated) / rollout complete (kubectl).',
      '',
      markdownTable(
        ['side', 'all issued', 'all templates restored', 'restored', 'all done', 'done'],
        [
          row('ours: RollbackPlans created at once', b.ours),
          row(`baseline: \`kubectl rollout undo\`, ${WORKERS} at a time`, b.kubectl),
        ],
      ),
      '',
      markdownTable(
        ['per Deployment, from the start', ...SUMMARY_HEADERS],
        [
          ['ours: template restored', ...summaryCells(summarize(b.ours.templateMs))],
          ['ours: plan Succeeded', ...summaryCells(summarize(b.ours.doneMs))],
          ['kubectl: template restored', ...summaryCells(summarize(b.kubectl.templateMs))],
          ['kubectl: rollout complete', ...summaryCells(summarize(b.kubectl.doneMs))],
        ],
      ),
      '',
      markdownTable(
        ['goal', 'value', 'met'],
        [
          [
            'every template restored < 30 s',
            fmtMs(b.ours.allTemplatesMs),
            b.ours.allTemplatesMs < GOAL_TEMPLATES_MS ? 'yes' : 'no',
          ],
          [
            'ratio ours / kubectl, all templates restored <= 1.0',
            fmtRatio(templatesRatio),
            templatesRatio <= 1 ? 'yes' : 'no',
          ],
          [
            'ratio ours / kubectl, all done (information)',
            fmtRatio(ratio(b.ours.allDoneMs, b.kubectl.allDoneMs)),
            '',
          ],
        ],
      ),
      '',
      markdownTable(
        ['operator API requests during the burst', 'total', 'per plan'],
        [
          ['all', String(Math.round(b.requests.total)), (b.requests.total / b.ours.n).toFixed(1)],
          ...Object.entries(b.requests.byMethod)
            .sort(([x], [y]) => x.localeCompare(y))
            .map(([m, v]) => [m, String(Math.round(v)), (v / b.ours.n).toFixed(1)]),
        ],
      ),
      '',
      `By status code: ${Object.entries(b.requests.byCode)
        .map(([k, v]) => `${k}: ${Math.round(v)}`)
        .join(
          ', ',
        )}. Reconciles: ${Math.round(b.work.reconcileCount)} (${b.work.reconciles}); mean queue wait ` +
        `${fmtMs(b.work.meanQueueWaitMs)}, mean reconcile ${fmtMs(b.work.meanReconcileMs)}, mean API request ` +
        `${fmtMs(b.work.meanRequestMs)}; operator CPU ${b.work.cpuSeconds.toFixed(1)} s; Deployment watch events ` +
        `(bench's own watch) ${b.watchEvents}.`,
      '',
    );
    const failed = [...b.ours.failed, ...b.kubectl.failed];
    if (failed.length) out.push(`Not done: ${failed.length} (${failed.slice(0, 5).join('; ')}).`, '');
  }
  const m = r.memory;
  if (m) {
    const objects = m.deployments + m.replicaSets;
    const delta = m.loaded.rss - m.baseline.rss;
    out.push(
      `### Part B: operator memory with ${m.deployments} Deployments and ${m.replicaSets} ReplicaSets in the watched namespace`,
      '',
      `Setup: ${fmtMs(m.setupMs)}. Each reading: a fresh operator process; RSS = median of 5 VmRSS readings ` +
        '(1 s apart) starting 5 s after /readyz (caches synced); peak = VmHWM.',
      '',
      markdownTable(
        ['watched namespace', 'ready after', 'RSS', 'peak RSS', 'V8 heap used'],
        [
          [
            'empty',
            fmtMs(m.baseline.syncMs),
            fmtBytes(m.baseline.rss),
            fmtBytes(m.baseline.peak),
            fmtBytes(m.baseline.heapUsed),
          ],
          [
            `${m.deployments} Deployments + ${m.replicaSets} ReplicaSets`,
            fmtMs(m.loaded.syncMs),
            fmtBytes(m.loaded.rss),
            fmtBytes(m.loaded.peak),
            fmtBytes(m.loaded.heapUsed),
          ],
        ],
      ),
      '',
      markdownTable(
        ['measure', 'value'],
        [
          ['RSS over the empty baseline', fmtBytes(delta)],
          [`per 1,000 objects (Deployments + ReplicaSets: ${objects})`, fmtBytes((delta / objects) * 1000)],
          ['per 1,000 Deployments', fmtBytes((delta / m.deployments) * 1000)],
          [
            'goal: RSS < 256 MiB',
            `${fmtBytes(m.loaded.rss)}: ${m.loaded.rss < GOAL_RSS ? 'met' : 'not met'}`,
          ],
          [
            'peak RSS < 256 MiB (information)',
            `${fmtBytes(m.loaded.peak)}: ${m.loaded.peak < GOAL_RSS ? 'yes' : 'no'}`,
          ],
        ],
      ),
      '',
    );
    if (m.compare) {
      const c = m.compare;
      const row = (label: string, base: RssReading, loaded: RssReading) => [
        label,
        fmtBytes(base.rss),
        fmtBytes(loaded.rss),
        fmtBytes(loaded.peak),
        fmtBytes(loaded.heapUsed),
        fmtBytes(((loaded.rss - base.rss) / objects) * 1000),
      ];
      out.push(
        `Compared with \`${c.entry}\` on the same objects:`,
        '',
        markdownTable(
          ['operator', 'RSS empty', 'RSS loaded', 'peak loaded', 'heap loaded', 'per 1,000 objects'],
          [row('this build', m.baseline, m.loaded), row('compared build', c.baseline, c.loaded)],
        ),
        '',
      );
    }
  }
  return out.join('\n');
}
