// bench:rollback — how fast a RollbackPlan (scope app) puts the previous template back, against the real
// `kubectl rollout undo`, on one local control plane (etcd, kube-apiserver, KCM, scheduler, kwok) with the
// real operator process running.
//
//   npm run bench:rollback                 # 50 runs per side, 200 plans at once
//   npm run bench:rollback -- --quick      # smoke test: 5 runs, 20 plans
//   npm run bench:rollback -- --runs 20 --concurrent 100 --replicas 2 --kubectl-parallel 8
//
// Part A (latency, one rollback at a time, ours and kubectl interleaved): every run gets its own Deployment
// with 3 revisions, settled; the clock starts when the RollbackPlan create call returns (ours) or when
// `kubectl rollout undo` is spawned (baseline) and stops when one shared watch on Deployments delivers the
// object whose .spec.template equals the revision-2 template. Also: until the rollout is complete (both), and
// until the plan reports Succeeded (ours: pre-validation, rollback, post-validation = the measured RTO).
// Part B (burst): N plans created at once, each for its own 2-revision Deployment; time to all Succeeded.
// Baseline: `kubectl rollout undo` over N other Deployments, --kubectl-parallel processes at a time.
// The Markdown report goes to stdout, progress to stderr.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalControlPlane } from '../test/env/control-plane.js';
import { installCrds } from '../test/env/crds.js';
import {
  appPlan,
  benchClients,
  createNamespace,
  deploymentWithHistory,
  PLAN_API,
  REVISION,
  rolloutComplete,
  templateOf,
  type BenchClients,
} from './lib/kube.js';
import { mapLimit, progress, runBenchmark, sleep } from './lib/lifecycle.js';
import { codeRevision, machineInfo, machineMarkdown } from './lib/machine.js';
import { startBenchOperator } from './lib/operator.js';
import { operatorWork, scrape, type OperatorWork } from './lib/prom.js';
import { ratio, summarize } from './lib/stats.js';
import { fmtMs, fmtRatio, markdownTable, SUMMARY_HEADERS, summaryCells } from './lib/table.js';
import { ObjectWatcher, type RawObject } from './lib/watch.js';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string' },
    concurrent: { type: 'string' },
    quick: { type: 'boolean', default: false },
    replicas: { type: 'string', default: '2' },
    'kubectl-parallel': { type: 'string', default: '8' },
    'settle-ms': { type: 'string', default: '500' },
    'burst-timeout': { type: 'string', default: '900' },
  },
});
const int = (name: string, v: string | undefined, fallback: number, min = 0): number => {
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be a whole number >= ${min}; got ${v}`);
  return n;
};
const RUNS = int('runs', flags.runs, flags.quick ? 5 : 50, 1);
const CONCURRENT = int('concurrent', flags.concurrent, flags.quick ? 20 : 200, 0);
const REPLICAS = int('replicas', flags.replicas, 2, 1);
const KUBECTL_PARALLEL = int('kubectl-parallel', flags['kubectl-parallel'], 8, 0);
const SETTLE_MS = int('settle-ms', flags['settle-ms'], 500, 0);
const BURST_TIMEOUT_MS = int('burst-timeout', flags['burst-timeout'], 900, 1) * 1000;
const MAX_CONCURRENT_RECONCILES = 8;
const IMAGES = ['nginx:1.25', 'nginx:1.26', 'nginx:1.27'];
const TERMINAL = new Set(['Succeeded', 'Failed', 'DryRunComplete']);
const RUN_TIMEOUT_MS = 120_000;

const log = progress('bench:rollback');
const commandLine =
  process.env.npm_lifecycle_event === 'bench:rollback'
    ? `npm run bench:rollback${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`
    : `npx tsx bench/rollback-latency.ts ${process.argv.slice(2).join(' ')}`.trim();

interface OursRun {
  createMs: number;
  templateMs: number;
  rolloutMs: number;
  succeededMs: number;
  /** status.durationSeconds as the operator wrote it. */
  reportedSeconds: number;
}
interface KubectlRun {
  templateMs: number;
  exitMs: number;
  rolloutMs: number;
}

await runBenchmark(async (cleanup) => {
  const machine = machineInfo();
  const revision = codeRevision();
  log(`runs=${RUNS} concurrent=${CONCURRENT} replicas=${REPLICAS} kubectl-parallel=${KUBECTL_PARALLEL}`);
  log('starting the local control plane');
  const cp = await LocalControlPlane.start({ log: (m) => log(`control-plane: ${m}`) });
  cleanup.add('control plane', () => cp.stop());
  const kubectlBin = cp.bins.path('kubectl');
  await installCrds(kubectlBin, cp.kubeconfigPath);
  // kubectl keeps its discovery cache here, not in ~/.kube; a warm-up call fills it before any measurement.
  const cacheDir = mkdtempSync(join(tmpdir(), 'nxt-bench-kubectl-'));
  cleanup.add('kubectl cache', () => rmSync(cacheDir, { recursive: true, force: true }));
  const kubectlArgs = [`--kubeconfig=${cp.kubeconfigPath}`, `--cache-dir=${cacheDir}`];
  const versions = JSON.parse(
    execFileSync(kubectlBin, [...kubectlArgs, 'version', '-o', 'json']).toString(),
  ) as Record<string, { gitVersion: string }>;

  const c = benchClients(cp.kubeconfigPath);
  const id = randomBytes(3).toString('hex');
  const nsA = `bench-latency-${id}`;
  const nsB = `bench-burst-${id}`;
  await createNamespace(c, nsA);
  await createNamespace(c, nsB);

  const deployments = new ObjectWatcher(
    c.kc,
    '/apis/apps/v1/deployments',
    { labelSelector: 'nxt.bench/app' },
    log,
  );
  const plans = new ObjectWatcher(
    c.kc,
    `/apis/${PLAN_API.group}/${PLAN_API.version}/${PLAN_API.plural}`,
    {},
    log,
  );
  await deployments.start();
  await plans.start();
  cleanup.add('watches', () => {
    deployments.stop();
    plans.stop();
  });

  const op = await startBenchOperator({
    kubeconfigPath: cp.kubeconfigPath,
    env: {
      LOG_LEVEL: 'info',
      WATCH_NAMESPACES: `${nsA},${nsB}`,
      MAX_CONCURRENT_RECONCILES: String(MAX_CONCURRENT_RECONCILES),
      PLAN_MAX_CONCURRENT_RECONCILES: String(MAX_CONCURRENT_RECONCILES),
    },
  });
  let finished = false;
  cleanup.add('operator', async () => {
    if (!finished) console.error(`operator log tail:\n${op.logs().split('\n').slice(-40).join('\n')}`);
    await op.stop();
  });
  await op.waitReady();
  log('operator ready');

  // ---------------------------------------------------------------------------------------------------
  // Part A: latency of one rollback at a time.
  const ctx: RunContext = { c, nsA, deployments, plans, kubectlBin, kubectlArgs };
  const names = ['warm', ...Array.from({ length: RUNS }, (_, i) => String(i))];
  log(`Part A: creating ${2 * names.length} Deployments with ${IMAGES.length} revisions each`);
  const t0Setup = performance.now();
  const rev2 = new Map<string, string>();
  await mapLimit(
    names.flatMap((n) => [`ours-${n}`, `kctl-${n}`]),
    16,
    async (name) => {
      const templates = await deploymentWithHistory(c, deployments, nsA, name, IMAGES, REPLICAS);
      rev2.set(name, templates[1]!);
    },
  );
  log(`Part A: setup done in ${fmtMs(performance.now() - t0Setup)}`);
  await sleep(2000);

  const ours: OursRun[] = [];
  const theirs: KubectlRun[] = [];
  const work: { phase: string; w: OperatorWork }[] = [];
  let before = await scrape(op.metricsUrl);
  for (const [i, n] of names.entries()) {
    const oursFirst = i % 2 === 0;
    for (const side of oursFirst ? ['ours', 'kctl'] : ['kctl', 'ours']) {
      const name = `${side}-${n}`;
      if (side === 'ours') {
        const r = await runOurs(ctx, name, `undo-${name}`, rev2.get(name)!);
        if (n !== 'warm') ours.push(r);
      } else {
        const r = await runKubectl(ctx, name, rev2.get(name)!);
        if (n !== 'warm') theirs.push(r);
      }
      await sleep(SETTLE_MS);
    }
    if (n !== 'warm') {
      const o = ours.at(-1)!;
      const t = theirs.at(-1)!;
      log(
        `run ${i}/${RUNS}: ours template ${fmtMs(o.templateMs)} succeeded ${fmtMs(o.succeededMs)} | ` +
          `kubectl template ${fmtMs(t.templateMs)} rollout ${fmtMs(t.rolloutMs)}`,
      );
    }
  }

  work.push({
    phase: `Part A: ${RUNS + 1} plans, one at a time`,
    w: operatorWork(before, await scrape(op.metricsUrl), 'rollbackplan'),
  });

  // ---------------------------------------------------------------------------------------------------
  // Part B: a burst of plans.
  let burst: BurstResult | undefined;
  let kubectlBurst: BurstResult | undefined;
  if (CONCURRENT > 0) {
    const oursNames = Array.from({ length: CONCURRENT }, (_, i) => `burst-${i}`);
    const kctlNames = KUBECTL_PARALLEL > 0 ? Array.from({ length: CONCURRENT }, (_, i) => `kburst-${i}`) : [];
    log(`Part B: creating ${oursNames.length + kctlNames.length} Deployments with 2 revisions each`);
    const t0 = performance.now();
    const rev1 = new Map<string, string>();
    await mapLimit([...oursNames, ...kctlNames], 16, async (name) => {
      const templates = await deploymentWithHistory(c, deployments, nsB, name, IMAGES.slice(0, 2), REPLICAS);
      rev1.set(name, templates[0]!);
    });
    log(`Part B: setup done in ${fmtMs(performance.now() - t0)}`);
    await sleep(3000);
    before = await scrape(op.metricsUrl);
    burst = await runPlanBurst(ctx, nsB, oursNames, rev1);
    work.push({
      phase: `Part B: ${CONCURRENT} plans at once`,
      w: operatorWork(before, await scrape(op.metricsUrl), 'rollbackplan'),
    });
    log(`Part B: ${burst.done}/${CONCURRENT} plans Succeeded, last after ${fmtMs(burst.allDoneMs)}`);
    if (kctlNames.length) {
      await sleep(3000);
      kubectlBurst = await runKubectlBurst(ctx, nsB, kctlNames, rev1);
      log(`Part B: kubectl burst: last rollout complete after ${fmtMs(kubectlBurst.allDoneMs)}`);
    }
  }

  finished = true;
  console.log(
    report({
      machine: machineMarkdown(machine, {
        code: `commit ${revision}`,
        kubernetes: `${versions.serverVersion?.gitVersion ?? '?'} (kubectl ${versions.clientVersion?.gitVersion ?? '?'}), kwok fake nodes, ${REPLICAS} replicas per Deployment`,
        operator: `operator/main.ts via tsx, LOG_LEVEL=info, PLAN_MAX_CONCURRENT_RECONCILES=${MAX_CONCURRENT_RECONCILES}, MAX_CONCURRENT_RECONCILES=${MAX_CONCURRENT_RECONCILES}`,
      }),
      ours,
      theirs,
      burst,
      kubectlBurst,
      work,
      watchReconnects: deployments.reconnects + plans.reconnects,
    }),
  );
});

// -------------------------------------------------------------------------------------------------------

interface RunContext {
  c: BenchClients;
  nsA: string;
  deployments: ObjectWatcher;
  plans: ObjectWatcher;
  kubectlBin: string;
  kubectlArgs: string[];
}

function sameTemplate(template: string): (d: RawObject) => boolean {
  return (d) => templateOf(d) === template;
}

/** Rejections of `p` are handled here and re-raised where `p` is awaited (no unhandled rejection meanwhile). */
function deferred<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

async function runOurs(
  ctx: RunContext,
  deployment: string,
  plan: string,
  template: string,
): Promise<OursRun> {
  const key = `${ctx.nsA}/${deployment}`;
  const waits = deferred(
    Promise.all([
      ctx.deployments.waitFor(key, sameTemplate(template), RUN_TIMEOUT_MS, `${key} template restored`),
      ctx.deployments.waitFor(
        key,
        (d) => sameTemplate(template)(d) && rolloutComplete(d),
        RUN_TIMEOUT_MS,
        `${key} rolled out`,
      ),
      ctx.plans.waitFor(
        `${ctx.nsA}/${plan}`,
        (p) => TERMINAL.has(p.status?.phase),
        RUN_TIMEOUT_MS,
        `RollbackPlan ${plan} finished`,
      ),
    ]),
  );
  const tCall = performance.now();
  await ctx.c.custom.createNamespacedCustomObject({
    ...PLAN_API,
    namespace: ctx.nsA,
    body: appPlan(plan, deployment),
  });
  const tCreated = performance.now();
  const [template_, rollout, done] = await waits;
  if (done.obj.status?.phase !== 'Succeeded')
    throw new Error(
      `RollbackPlan ${plan} ended ${done.obj.status?.phase}: ${JSON.stringify(done.obj.status?.conditions)}`,
    );
  return {
    createMs: tCreated - tCall,
    templateMs: template_.at - tCreated,
    rolloutMs: rollout.at - tCreated,
    succeededMs: done.at - tCreated,
    reportedSeconds: Number(done.obj.status?.durationSeconds ?? NaN),
  };
}

/** Spawns `kubectl rollout undo deployment/NAME`; resolves with its exit time. */
function kubectlUndo(ctx: RunContext, namespace: string, deployment: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      ctx.kubectlBin,
      [...ctx.kubectlArgs, '-n', namespace, 'rollout', 'undo', `deployment/${deployment}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const at = performance.now();
      if (code === 0) resolve(at);
      else reject(new Error(`kubectl rollout undo deployment/${deployment} exited ${code}: ${out}`));
    });
  });
}

async function runKubectl(ctx: RunContext, deployment: string, template: string): Promise<KubectlRun> {
  const key = `${ctx.nsA}/${deployment}`;
  const waits = deferred(
    Promise.all([
      ctx.deployments.waitFor(key, sameTemplate(template), RUN_TIMEOUT_MS, `${key} template restored`),
      ctx.deployments.waitFor(
        key,
        (d) => sameTemplate(template)(d) && rolloutComplete(d),
        RUN_TIMEOUT_MS,
        `${key} rolled out`,
      ),
    ]),
  );
  const t0 = performance.now();
  const exitAt = await kubectlUndo(ctx, ctx.nsA, deployment);
  const [template_, rollout] = await waits;
  // Start the next run from a settled Deployment, as ours does (its plan waits for the rollout).
  const d = ctx.deployments.get(key);
  if (d?.metadata.annotations?.[REVISION] !== '4')
    throw new Error(`${key} is at revision ${d?.metadata.annotations?.[REVISION]} after the undo, not 4`);
  return { templateMs: template_.at - t0, exitMs: exitAt - t0, rolloutMs: rollout.at - t0 };
}

interface BurstResult {
  n: number;
  done: number;
  failed: string[];
  timedOut: number;
  /** Last create call (or kubectl process) returned, ms after the first one started. */
  lastIssuedMs: number;
  /** Per Deployment: template restored, ms after the start. */
  templateMs: number[];
  /** Per plan: Succeeded (ours) / per Deployment: rollout complete (kubectl), ms after the start. */
  doneMs: number[];
  allTemplatesMs: number;
  allDoneMs: number;
}

async function runPlanBurst(
  ctx: RunContext,
  namespace: string,
  names: string[],
  rev1: Map<string, string>,
): Promise<BurstResult> {
  log(`Part B: creating ${names.length} RollbackPlans at once`);
  const templateWaits = names.map((n) =>
    deferred(
      ctx.deployments.waitFor(
        `${namespace}/${n}`,
        sameTemplate(rev1.get(n)!),
        BURST_TIMEOUT_MS,
        `${n} template`,
      ),
    ),
  );
  const planWaits = names.map((n) =>
    deferred(
      ctx.plans.waitFor(
        `${namespace}/undo-${n}`,
        (p) => TERMINAL.has(p.status?.phase),
        BURST_TIMEOUT_MS,
        `plan undo-${n}`,
      ),
    ),
  );
  const t0 = performance.now();
  const issued = await Promise.all(
    names.map(async (n) => {
      await ctx.c.custom.createNamespacedCustomObject({
        ...PLAN_API,
        namespace,
        body: appPlan(`undo-${n}`, n),
      });
      return performance.now() - t0;
    }),
  );
  const templates = await Promise.allSettled(templateWaits);
  const done = await Promise.allSettled(planWaits);
  const failed: string[] = [];
  const doneMs: number[] = [];
  for (const [i, r] of done.entries()) {
    if (r.status !== 'fulfilled') continue;
    if (r.value.obj.status?.phase === 'Succeeded') doneMs.push(r.value.at - t0);
    else failed.push(`${names[i]}: ${r.value.obj.status?.phase}`);
  }
  const templateMs = templates.flatMap((r) => (r.status === 'fulfilled' ? [r.value.at - t0] : []));
  return {
    n: names.length,
    done: doneMs.length,
    failed,
    timedOut: done.filter((r) => r.status === 'rejected').length,
    lastIssuedMs: Math.max(...issued),
    templateMs,
    doneMs,
    allTemplatesMs: templateMs.length === names.length ? Math.max(...templateMs) : NaN,
    allDoneMs: doneMs.length === names.length ? Math.max(...doneMs) : NaN,
  };
}

async function runKubectlBurst(
  ctx: RunContext,
  namespace: string,
  names: string[],
  rev1: Map<string, string>,
): Promise<BurstResult> {
  log(`Part B: kubectl rollout undo over ${names.length} Deployments, ${KUBECTL_PARALLEL} at a time`);
  const templateWaits = names.map((n) =>
    deferred(
      ctx.deployments.waitFor(
        `${namespace}/${n}`,
        sameTemplate(rev1.get(n)!),
        BURST_TIMEOUT_MS,
        `${n} template`,
      ),
    ),
  );
  const rolloutWaits = names.map((n) =>
    deferred(
      ctx.deployments.waitFor(
        `${namespace}/${n}`,
        (d) => sameTemplate(rev1.get(n)!)(d) && rolloutComplete(d),
        BURST_TIMEOUT_MS,
        `${n} rolled out`,
      ),
    ),
  );
  const t0 = performance.now();
  const issued = await mapLimit(
    names,
    KUBECTL_PARALLEL,
    async (n) => (await kubectlUndo(ctx, namespace, n)) - t0,
  );
  const templates = await Promise.allSettled(templateWaits);
  const rollouts = await Promise.allSettled(rolloutWaits);
  const doneMs = rollouts.flatMap((r) => (r.status === 'fulfilled' ? [r.value.at - t0] : []));
  const templateMs = templates.flatMap((r) => (r.status === 'fulfilled' ? [r.value.at - t0] : []));
  return {
    n: names.length,
    done: doneMs.length,
    failed: [],
    timedOut: rollouts.filter((r) => r.status === 'rejected').length,
    lastIssuedMs: Math.max(...issued),
    templateMs,
    doneMs,
    allTemplatesMs: templateMs.length === names.length ? Math.max(...templateMs) : NaN,
    allDoneMs: doneMs.length === names.length ? Math.max(...doneMs) : NaN,
  };
}

// -------------------------------------------------------------------------------------------------------

function report(r: {
  machine: string;
  ours: OursRun[];
  theirs: KubectlRun[];
  burst: BurstResult | undefined;
  kubectlBurst: BurstResult | undefined;
  work: { phase: string; w: OperatorWork }[];
  watchReconnects: number;
}): string {
  const out: string[] = [];
  out.push(`## bench:rollback`, '', `Command: \`${commandLine}\``, '', r.machine, '');

  const oT = summarize(r.ours.map((x) => x.templateMs));
  const kT = summarize(r.theirs.map((x) => x.templateMs));
  out.push(
    `### Part A: one rollback at a time (${r.ours.length} runs per side, interleaved, 1 warm-up pair discarded)`,
    '',
    'Time until the shared Deployment watch delivers `.spec.template` == the revision-2 template.',
    '',
    markdownTable(
      ['side', ...SUMMARY_HEADERS],
      [
        ['ours: RollbackPlan (from the create call returning)', ...summaryCells(oT)],
        ['baseline: `kubectl rollout undo` (from spawn)', ...summaryCells(kT)],
      ],
    ),
    '',
    markdownTable(
      ['ratio ours / kubectl', 'value'],
      [
        ['median', fmtRatio(ratio(oT.median, kT.median))],
        ['p99', fmtRatio(ratio(oT.p99, kT.p99))],
      ],
    ),
    '',
  );

  const oS = summarize(r.ours.map((x) => x.succeededMs));
  const oR = summarize(r.ours.map((x) => x.rolloutMs));
  const kR = summarize(r.theirs.map((x) => x.rolloutMs));
  out.push(
    'Recovery: ours until the plan reports `Succeeded` (pre-validation, rollback, post-validation = the measured RTO); ' +
      'both until the watch shows the rollout complete (the `kubectl rollout status` rule).',
    '',
    markdownTable(
      ['measure', ...SUMMARY_HEADERS],
      [
        ['ours: plan Succeeded (RTO)', ...summaryCells(oS)],
        ['ours: rollout complete', ...summaryCells(oR)],
        ['kubectl: rollout complete', ...summaryCells(kR)],
        ['ours: RollbackPlan create call', ...summaryCells(summarize(r.ours.map((x) => x.createMs)))],
        ['kubectl: process exit', ...summaryCells(summarize(r.theirs.map((x) => x.exitMs)))],
      ],
    ),
    '',
    markdownTable(
      ['ratio', 'median', 'p99'],
      [
        [
          'ours Succeeded / kubectl rollout complete',
          fmtRatio(ratio(oS.median, kR.median)),
          fmtRatio(ratio(oS.p99, kR.p99)),
        ],
        [
          'ours rollout complete / kubectl rollout complete',
          fmtRatio(ratio(oR.median, kR.median)),
          fmtRatio(ratio(oR.p99, kR.p99)),
        ],
      ],
    ),
    '',
    (() => {
      const reported = summarize(r.ours.map((x) => x.reportedSeconds * 1000));
      return (
        `Operator-reported \`status.durationSeconds\` (its own RTO, from \`startedAt\`): median ${fmtMs(reported.median)}, ` +
        `min ${fmtMs(reported.min)}, max ${fmtMs(reported.max)}.`
      );
    })(),
    '',
  );

  if (r.burst) {
    const b = r.burst;
    const k = r.kubectlBurst;
    const rows: string[][] = [
      [
        `ours: ${b.n} RollbackPlans created at once`,
        fmtMs(b.lastIssuedMs),
        fmtMs(b.allTemplatesMs),
        fmtMs(b.allDoneMs),
        `${b.done}/${b.n}`,
        Number.isFinite(b.allDoneMs) ? (b.n / (b.allDoneMs / 1000)).toFixed(1) : 'n/a',
      ],
    ];
    if (k)
      rows.push([
        `baseline: \`kubectl rollout undo\` x ${k.n}, ${KUBECTL_PARALLEL} at a time`,
        fmtMs(k.lastIssuedMs),
        fmtMs(k.allTemplatesMs),
        fmtMs(k.allDoneMs),
        `${k.done}/${k.n}`,
        Number.isFinite(k.allDoneMs) ? (k.n / (k.allDoneMs / 1000)).toFixed(1) : 'n/a',
      ]);
    out.push(
      `### Part B: burst (${b.n} Deployments with 2 revisions each, PLAN_MAX_CONCURRENT_RECONCILES=${MAX_CONCURRENT_RECONCILES})`,
      '',
      'Times from the first create call (ours) / first kubectl spawn (baseline). "done" = plan `Succeeded` (ours) or rollout complete (kubectl).',
      '',
      markdownTable(
        ['side', 'all issued', 'all templates restored', 'all done', 'done', 'throughput (/s)'],
        rows,
      ),
      '',
      markdownTable(
        ['per object, from the start', ...SUMMARY_HEADERS],
        [
          ['ours: template restored', ...summaryCells(summarize(b.templateMs))],
          ['ours: plan Succeeded', ...summaryCells(summarize(b.doneMs))],
          ...(k
            ? [
                ['kubectl: template restored', ...summaryCells(summarize(k.templateMs))],
                ['kubectl: rollout complete', ...summaryCells(summarize(k.doneMs))],
              ]
            : []),
        ],
      ),
      '',
    );
    if (k) {
      out.push(
        markdownTable(
          ['ratio ours / kubectl', 'value'],
          [
            ['all templates restored', fmtRatio(ratio(b.allTemplatesMs, k.allTemplatesMs))],
            ['all done', fmtRatio(ratio(b.allDoneMs, k.allDoneMs))],
          ],
        ),
        '',
      );
    }
    if (b.failed.length || b.timedOut)
      out.push(
        `Not Succeeded: ${b.failed.length} failed (${b.failed.slice(0, 5).join('; ')}), ${b.timedOut} timed out.`,
        '',
      );
  }
  out.push(
    '### What the operator did (deltas of its own /metrics)',
    '',
    markdownTable(
      [
        'phase',
        'reconciles',
        'API requests by code',
        'mean API request',
        'mean queue wait',
        'mean reconcile',
        'operator CPU',
      ],
      r.work.map(({ phase, w }) => [
        phase,
        `${Math.round(w.reconcileCount)} (${w.reconciles})`,
        `${Math.round(w.requestCount)} (${w.requests})`,
        fmtMs(w.meanRequestMs),
        fmtMs(w.meanQueueWaitMs),
        fmtMs(w.meanReconcileMs),
        `${w.cpuSeconds.toFixed(1)} s`,
      ]),
    ),
    '',
  );
  if (r.watchReconnects) out.push(`Watch streams reopened ${r.watchReconnects} time(s) during the run.`, '');
  return out.join('\n');
}
