// bench:triggers — how long an automatic RollbackPlan (trigger.mode auto) needs to notice a problem, on one
// local control plane (etcd, kube-apiserver, KCM, scheduler, kwok) with the real operator process, a real
// Prometheus and a real Alertmanager (test/support/monitoring.ts).
//
//   npm run bench:triggers                  # 20 runs per part, DeploymentUnavailable `for: 5s`
//   npm run bench:triggers -- --quick       # smoke test: 3 runs per part
//   npm run bench:triggers -- --for 30s --runs 20 --only deployment
//
// Part A (DeploymentUnavailable, `for: F`): every run gets its own Deployment with 2 revisions whose pods are
// pinned to a kwok node of the benchmark's own, and a fresh plan (a plan fires once). The bench cordons the
// node and deletes the pods (the replacements stay Pending), as test/integration/rollbackplan-triggers.test.ts
// does. Onset = when the bench's own Deployment watch delivers availableReplicas < minAvailable (1).
// Detection latency = status.trigger.firedAt - (onset + F): the operator's overhead beyond the hold it was
// asked for. Also onset -> firedAt, firedAt -> startedAt and onset -> the rollback patch on the watch.
// Part B (Alert): a Prometheus rule on the exporter's 5xx rate (no `for`) and an Alertmanager posting to the
// operator's webhook receiver through a pass-through proxy in this process that timestamps each POST's
// arrival and the receiver's answer. End to end = raise of the exporter's error rate -> firedAt; the
// operator's part = POST arrival at the proxy -> firedAt; the monitoring stack's part (baseline) = raise ->
// POST arrival. Between runs the alert is resolved (error rate 0) until the operator holds no firing alert.
// Clocks: the bench, the operator and Prometheus run on one machine and stamp with the same wall clock
// (Date.now(), toISOString()), so differences between their timestamps are meaningful to the millisecond.
// The Markdown report goes to stdout, progress to stderr.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs, promisify } from 'node:util';
import { parseDuration } from '../operator/api/v1alpha1/common.js';
import { KWOK_NODE_LABEL, LocalControlPlane } from '../test/env/control-plane.js';
import { installCrds } from '../test/env/crds.js';
import { alertReceiverSettings, errorRateRule, startAlertingStack } from '../test/support/monitoring.js';
import {
  benchClients,
  createNamespace,
  deploymentWithHistory,
  PLAN_API,
  templateOf,
  type BenchClients,
} from './lib/kube.js';
import { mapLimit, progress, runBenchmark, sleep } from './lib/lifecycle.js';
import { codeRevision, machineInfo, machineMarkdown } from './lib/machine.js';
import { startBenchOperator, type BenchOperator } from './lib/operator.js';
import { operatorWork, scrape, sum, type OperatorWork } from './lib/prom.js';
import { summarize } from './lib/stats.js';
import { fmtMs, markdownTable, SUMMARY_HEADERS, summaryCells } from './lib/table.js';
import { TimingProxy } from './lib/timing-proxy.js';
import { WallClock } from './lib/wall-clock.js';
import { ObjectWatcher, type RawObject } from './lib/watch.js';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    for: { type: 'string', default: '5s' },
    only: { type: 'string' },
    replicas: { type: 'string', default: '2' },
    'error-rate': { type: 'string', default: '20' },
    'group-wait': { type: 'string', default: '0s' },
    'group-interval': { type: 'string', default: '1s' },
    'settle-ms': { type: 'string', default: '1000' },
  },
});
const int = (name: string, v: string | undefined, fallback: number, min = 0): number => {
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be a whole number >= ${min}; got ${v}`);
  return n;
};
const RUNS = int('runs', flags.runs, flags.quick ? 3 : 20, 1);
const FOR = flags.for!;
const FOR_MS = parseDuration(FOR);
const REPLICAS = int('replicas', flags.replicas, 2, 1);
const ERROR_RATE = int('error-rate', flags['error-rate'], 20, 2);
const SETTLE_MS = int('settle-ms', flags['settle-ms'], 1000, 0);
if (flags.only && !['deployment', 'alert'].includes(flags.only))
  throw new Error(`--only must be deployment or alert; got ${flags.only}`);
const PART_A = flags.only !== 'alert';
const PART_B = flags.only !== 'deployment';
const ROUTE = { group_wait: flags['group-wait']!, group_interval: flags['group-interval']! };
// The rule fires above 1/s; the exporter serves 50 ok/s throughout and ERROR_RATE errors/s while raised.
const ALERT = 'BenchHighErrorRate';
const ALERT_THRESHOLD = 1;
const IMAGES = ['nginx:1.25', 'nginx:1.26'];
const TERMINAL = new Set(['Succeeded', 'Failed', 'DryRunComplete', 'Expired', 'Vetoed']);
const RUN_TIMEOUT_MS = 120_000 + FOR_MS;

const log = progress('bench:triggers');
const execFileAsync = promisify(execFile);
const commandLine =
  process.env.npm_lifecycle_event === 'bench:triggers'
    ? `npm run bench:triggers${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`
    : `npx tsx bench/trigger-detection.ts ${process.argv.slice(2).join(' ')}`.trim();

// Module constants used from the main block must be declared above it (no temporal dead zone at run time).
const available = (d: RawObject): number => d.status?.availableReplicas ?? 0;
const ms = (iso: string) => Date.parse(iso);
const firingOurs = (payload: any, notBefore: number) =>
  (payload?.alerts ?? []).some(
    (a: any) => a.status === 'firing' && a.labels?.alertname === ALERT && ms(a.startsAt) >= notBefore,
  );

/** Part A, per run; all in ms. */
interface UnavailableRun {
  /** firedAt - (onset + for): the operator's overhead beyond the hold. */
  overheadMs: number;
  onsetToFiredMs: number;
  firedToStartedMs: number;
  onsetToTemplateMs: number;
  /** status.trigger.conditionSince - onset: where the operator put the start of the hold. */
  sinceMinusOnsetMs: number;
  /** onset -> the plan with status.trigger delivered by the bench's plan watch. */
  onsetToWatchMs: number;
  /** firedAt - conditionSince - for: how late the requeueAfter timer fired the condition. */
  timerLateMs: number;
}
/** Part B, per run; all in ms. */
interface AlertRun {
  totalMs: number;
  /** raise -> the rule's activeAt (the alert's startsAt): scrape + rule evaluation. */
  raiseToStartsAtMs: number;
  /** startsAt -> POST arrival at the proxy: Prometheus -> Alertmanager -> webhook (grouping, dispatch). */
  startsAtToPostMs: number;
  /** raise -> POST arrival: the monitoring stack's whole part (the baseline). */
  raiseToPostMs: number;
  /** POST arrival -> firedAt: the operator's part, its receiver included. */
  postToFiredMs: number;
  /** POST arrival -> the receiver's 200 (the store applied the alert). */
  postToAnswerMs: number;
  /** receiver's 200 -> firedAt: wake-up and reconcile up to the moment it stamps firedAt. */
  answerToFiredMs: number;
  /** POST arrival -> the plan with status.trigger delivered by the bench's plan watch (status write included). */
  postToWatchMs: number;
  firedToStartedMs: number;
  raiseToTemplateMs: number;
  /** Notifications with our firing alert that reached the receiver before firedAt (1 = the first did it). */
  postsBeforeFire: number;
}

await runBenchmark(async (cleanup) => {
  const machine = machineInfo();
  const revision = codeRevision();
  log(`runs=${RUNS} for=${FOR} parts=${[PART_A && 'A', PART_B && 'B'].filter(Boolean).join('+')}`);
  log('starting the local control plane');
  const cp = await LocalControlPlane.start({ log: (m) => log(`control-plane: ${m}`) });
  cleanup.add('control plane', () => cp.stop());
  const kubectlBin = cp.bins.path('kubectl');
  // Asynchronous: a blocked event loop would stamp the watch events that arrive meanwhile late.
  const kubectl = async (...args: string[]) =>
    (await execFileAsync(kubectlBin, [`--kubeconfig=${cp.kubeconfigPath}`, ...args])).stdout;
  await installCrds(kubectlBin, cp.kubeconfigPath);
  const versions = JSON.parse(await kubectl('version', '-o', 'json')) as Record<
    string,
    { gitVersion: string }
  >;

  const c = benchClients(cp.kubeconfigPath);
  const id = randomBytes(3).toString('hex');
  const nsA = `bench-unavail-${id}`;
  const nsB = `bench-alert-${id}`;
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
  const wall = new WallClock([deployments, plans]);
  await deployments.start();
  await plans.start();
  cleanup.add('watches', () => {
    deployments.stop();
    plans.stop();
  });

  // The receiver listens on its own port; Alertmanager posts to the proxy, which forwards to it.
  const receiver = await alertReceiverSettings();
  cleanup.add('receiver settings', () => receiver.cleanup());
  const proxy = await TimingProxy.start(receiver.url);
  cleanup.add('proxy', () => proxy.stop());

  const op = await startBenchOperator({
    kubeconfigPath: cp.kubeconfigPath,
    env: { LOG_LEVEL: 'info', WATCH_NAMESPACES: `${nsA},${nsB}`, ...receiver.env },
  });
  let finished = false;
  cleanup.add('operator', async () => {
    if (!finished) console.error(`operator log tail:\n${op.logs().split('\n').slice(-40).join('\n')}`);
    await op.stop();
  });
  await op.waitReady();
  log('operator ready');

  const ctx: Ctx = { c, deployments, plans, wall, kubectl, op, proxy };
  const work: { phase: string; w: OperatorWork }[] = [];
  const names = ['warm', ...Array.from({ length: RUNS }, (_, i) => String(i))];

  // ---------------------------------------------------------------------------------------------------
  const partA: UnavailableRun[] = [];
  if (PART_A) {
    const node = `bench-trig-${id}`;
    await createKwokNode(c, node);
    cleanup.add('kwok node', () => c.core.deleteNode({ name: node }).catch(() => {}));
    const pinned = { nodeSelector: { 'nxt.bench/pool': node } };
    log(`Part A: creating ${names.length} pinned Deployments with 2 revisions each`);
    const rev1 = new Map<string, string>();
    await mapLimit(names, 4, async (n) => {
      const t = await deploymentWithHistory(c, deployments, nsA, `web-${n}`, IMAGES, REPLICAS, pinned);
      rev1.set(n, t[0]!);
    });
    await sleep(2000);
    const before = await scrape(op.metricsUrl);
    for (const [i, n] of names.entries()) {
      const r = await runUnavailable(ctx, nsA, node, `web-${n}`, rev1.get(n)!);
      if (n !== 'warm') {
        partA.push(r);
        log(
          `A ${i}/${RUNS}: overhead ${fmtMs(r.overheadMs)}, onset->firedAt ${fmtMs(r.onsetToFiredMs)}, ` +
            `firedAt->startedAt ${fmtMs(r.firedToStartedMs)}, onset->template ${fmtMs(r.onsetToTemplateMs)}`,
        );
      }
      await sleep(SETTLE_MS);
    }
    work.push({
      phase: `Part A: ${names.length} plans, one at a time`,
      w: operatorWork(before, await scrape(op.metricsUrl), 'rollbackplan'),
    });
  }

  // ---------------------------------------------------------------------------------------------------
  const partB: AlertRun[] = [];
  if (PART_B) {
    log('Part B: starting exporter, Prometheus and Alertmanager');
    const stack = await startAlertingStack({
      webhookUrl: proxy.url,
      token: receiver.token,
      rules: errorRateRule({
        alert: ALERT,
        perSecondAbove: ALERT_THRESHOLD,
        labels: { severity: 'critical' },
      }),
      rates: { ok: 50 },
      targetLabels: { namespace: nsB },
      route: ROUTE,
    });
    cleanup.add('alerting stack', () => stack.stop());
    log(`Part B: creating ${names.length} Deployments with 2 revisions each`);
    const rev1 = new Map<string, string>();
    await mapLimit(names, 4, async (n) => {
      const t = await deploymentWithHistory(c, deployments, nsB, `api-${n}`, IMAGES, REPLICAS);
      rev1.set(n, t[0]!);
    });
    await sleep(2000);
    const before = await scrape(op.metricsUrl);
    for (const [i, n] of names.entries()) {
      const r = await runAlert(ctx, stack, nsB, `api-${n}`, rev1.get(n)!);
      if (n !== 'warm') {
        partB.push(r);
        log(
          `B ${i}/${RUNS}: total ${fmtMs(r.totalMs)} = stack ${fmtMs(r.raiseToPostMs)} + operator ${fmtMs(r.postToFiredMs)}` +
            ` (receiver ${fmtMs(r.postToAnswerMs)}), firedAt->startedAt ${fmtMs(r.firedToStartedMs)}`,
        );
      }
      await sleep(SETTLE_MS);
    }
    work.push({
      phase: `Part B: ${names.length} plans, one at a time`,
      w: operatorWork(before, await scrape(op.metricsUrl), 'rollbackplan'),
    });
  }

  finished = true;
  console.log(
    report({
      machine: machineMarkdown(machine, {
        code: `commit ${revision}`,
        kubernetes: `${versions.serverVersion?.gitVersion ?? '?'} (kubectl ${versions.clientVersion?.gitVersion ?? '?'}), kwok fake nodes, ${REPLICAS} replicas per Deployment`,
        monitoring: `${toolVersion('/usr/bin/prometheus')}, ${toolVersion('/usr/bin/prometheus-alertmanager')}`,
        operator:
          'operator/main.ts via tsx, LOG_LEVEL=info, PLAN_MAX_CONCURRENT_RECONCILES=16 and MAX_CONCURRENT_RECONCILES=4 (the defaults)',
      }),
      partA,
      partB,
      work,
      watchReconnects: deployments.reconnects + plans.reconnects,
    }),
  );
});

// -------------------------------------------------------------------------------------------------------

interface Ctx {
  c: BenchClients;
  deployments: ObjectWatcher;
  plans: ObjectWatcher;
  wall: WallClock;
  kubectl: (...args: string[]) => Promise<string>;
  op: BenchOperator;
  proxy: TimingProxy;
}

function toolVersion(bin: string): string {
  try {
    const out = execFileSync(bin, ['--version'], { stdio: 'pipe' }).toString();
    const m = /^(\S+), version (\S+)/m.exec(out);
    return m ? `${m[1]} ${m[2]}` : bin;
  } catch {
    return `${bin} (version unknown)`;
  }
}

async function createKwokNode(c: BenchClients, node: string): Promise<void> {
  await c.core.createNode({
    body: {
      metadata: {
        name: node,
        labels: {
          [KWOK_NODE_LABEL]: 'true',
          'kubernetes.io/hostname': node,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          type: 'kwok',
          'nxt.bench/pool': node,
        },
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      },
    },
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const n = await c.core.readNode({ name: node });
    if (n.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')) return;
    if (Date.now() > deadline) throw new Error(`node ${node} not Ready after 60 s`);
    await sleep(200);
  }
}

function autoPlan(name: string, deployment: string, condition: Record<string, unknown>) {
  return {
    apiVersion: `${PLAN_API.group}/${PLAN_API.version}`,
    kind: 'RollbackPlan',
    metadata: { name },
    spec: {
      scope: 'app',
      severity: 'critical', // the gate executes at once: what is measured is detection, not approval
      reason: 'benchmark',
      targets: { deployments: [{ name: deployment }] },
      validation: { timeout: '2m' },
      trigger: { mode: 'auto', conditions: [condition] },
    },
  };
}

async function createArmedPlan(ctx: Ctx, namespace: string, body: ReturnType<typeof autoPlan>) {
  const key = `${namespace}/${body.metadata.name}`;
  const armed = ctx.plans.waitFor(
    key,
    (p) => p.status?.phase === 'Armed',
    60_000,
    `RollbackPlan ${key} Armed`,
  );
  await ctx.c.custom.createNamespacedCustomObject({ ...PLAN_API, namespace, body });
  const p = await armed;
  // Every condition observed (Healthy), so the run starts from a steady armed plan.
  await ctx.plans.waitFor(
    key,
    (x) => x.status?.triggerConditions?.[0]?.state === 'Healthy',
    60_000,
    `RollbackPlan ${key} condition Healthy`,
  );
  return p;
}

async function runUnavailable(
  ctx: Ctx,
  namespace: string,
  node: string,
  deployment: string,
  rev1: string,
): Promise<UnavailableRun> {
  const plan = `auto-${deployment}`;
  const planKey = `${namespace}/${plan}`;
  const depKey = `${namespace}/${deployment}`;
  await createArmedPlan(
    ctx,
    namespace,
    autoPlan(plan, deployment, { type: 'DeploymentUnavailable', deployment, for: FOR }),
  );
  const onsetP = ctx.wall.next(depKey, (d) => available(d) < 1, 60_000, `${depKey} unavailable`);
  const firedP = ctx.wall.next(planKey, (p) => !!p.status?.trigger, RUN_TIMEOUT_MS, `${planKey} fired`);
  const templateP = ctx.wall.next(
    depKey,
    (d) => templateOf(d) === rev1,
    RUN_TIMEOUT_MS,
    `${depKey} template restored`,
  );
  await ctx.kubectl('cordon', node);
  await ctx.kubectl('-n', namespace, 'delete', 'pods', '-l', `app=${deployment}`, '--wait=false');
  const onset = await onsetP.catch(async (e: Error) => {
    const d = ctx.deployments.get(depKey);
    const pods = await ctx
      .kubectl('-n', namespace, 'get', 'pods', '-o', 'wide')
      .catch((x: Error) => x.message);
    throw new Error(`${e.message}; Deployment status ${JSON.stringify(d?.status)}; pods:\n${pods}`);
  });
  const fired = await firedP;
  // The rolled-back revision needs a schedulable node to become available (post-validation).
  await ctx.kubectl('uncordon', node);
  const template = await templateP;
  const done = await ctx.plans.waitFor(
    planKey,
    (p) => TERMINAL.has(p.status?.phase),
    RUN_TIMEOUT_MS,
    `${planKey} done`,
  );
  const st = done.obj.status;
  if (st.phase !== 'Succeeded')
    throw new Error(`${planKey} ended ${st.phase}: ${JSON.stringify(st.conditions).slice(0, 1500)}`);
  if (st.trigger?.type !== 'DeploymentUnavailable')
    throw new Error(`${planKey} fired ${JSON.stringify(st.trigger)}`);
  const firedAt = ms(st.trigger.firedAt);
  return {
    overheadMs: firedAt - (onset.at + FOR_MS),
    onsetToFiredMs: firedAt - onset.at,
    firedToStartedMs: ms(st.startedAt) - firedAt,
    onsetToTemplateMs: template.at - onset.at,
    sinceMinusOnsetMs: ms(st.trigger.conditionSince) - onset.at,
    onsetToWatchMs: fired.at - onset.at,
    timerLateMs: firedAt - ms(st.trigger.conditionSince) - FOR_MS,
  };
}

type Stack = Awaited<ReturnType<typeof startAlertingStack>>;

async function alertsHeld(op: BenchOperator): Promise<number> {
  return sum(await scrape(op.metricsUrl), 'nxt_alerts_firing');
}

async function runAlert(
  ctx: Ctx,
  stack: Stack,
  namespace: string,
  deployment: string,
  rev1: string,
): Promise<AlertRun> {
  const plan = `auto-${deployment}`;
  const planKey = `${namespace}/${plan}`;
  const depKey = `${namespace}/${deployment}`;
  await createArmedPlan(
    ctx,
    namespace,
    autoPlan(plan, deployment, {
      type: 'Alert',
      matchers: [
        { name: 'alertname', value: ALERT },
        { name: 'namespace', value: namespace },
      ],
    }),
  );
  const firedP = ctx.wall.next(planKey, (p) => !!p.status?.trigger, RUN_TIMEOUT_MS, `${planKey} fired`);
  const templateP = ctx.wall.next(
    depKey,
    (d) => templateOf(d) === rev1,
    RUN_TIMEOUT_MS,
    `${depKey} template restored`,
  );
  const raisedAt = Date.now();
  stack.app.setRates({ error: ERROR_RATE });
  // startsAt is the rule evaluation that first saw the raised rate, so it lies after the raise (1 s of slack
  // for rounding); an older startsAt would be an earlier run's episode.
  const post = await ctx.proxy.waitFor(
    (p) => p.arrivedAt >= raisedAt && firingOurs(p.payload, raisedAt - 1000),
    60_000,
    'Alertmanager to post the firing alert',
  );
  const fired = await firedP;
  const template = await templateP;
  // Resolve before the next run: error rate 0 until Prometheus drops the alert and the operator holds none.
  stack.app.setRates({ error: 0 });
  const done = await ctx.plans.waitFor(
    planKey,
    (p) => TERMINAL.has(p.status?.phase),
    RUN_TIMEOUT_MS,
    `${planKey} done`,
  );
  await stack.prometheus.waitForAlert(ALERT, 'inactive', 60_000);
  const deadline = Date.now() + 60_000;
  while ((await alertsHeld(ctx.op)) > 0) {
    if (Date.now() > deadline)
      throw new Error('the operator still holds a firing alert 60 s after the resolve');
    await sleep(200);
  }
  const st = done.obj.status;
  if (st.phase !== 'Succeeded')
    throw new Error(`${planKey} ended ${st.phase}: ${JSON.stringify(st.conditions).slice(0, 1500)}`);
  if (st.trigger?.type !== 'Alert') throw new Error(`${planKey} fired ${JSON.stringify(st.trigger)}`);
  const firedAt = ms(st.trigger.firedAt);
  const startsAt = Math.min(
    ...post.payload.alerts
      .filter((a: any) => a.status === 'firing' && a.labels?.alertname === ALERT)
      .map((a: any) => ms(a.startsAt)),
  );
  return {
    totalMs: firedAt - raisedAt,
    raiseToStartsAtMs: startsAt - raisedAt,
    startsAtToPostMs: post.arrivedAt - startsAt,
    raiseToPostMs: post.arrivedAt - raisedAt,
    postToFiredMs: firedAt - post.arrivedAt,
    postToAnswerMs: post.answeredAt - post.arrivedAt,
    answerToFiredMs: firedAt - post.answeredAt,
    postToWatchMs: fired.at - post.arrivedAt,
    firedToStartedMs: ms(st.startedAt) - firedAt,
    raiseToTemplateMs: template.at - raisedAt,
    postsBeforeFire: ctx.proxy.posts.filter(
      (p) => p.arrivedAt >= raisedAt && p.arrivedAt <= firedAt && firingOurs(p.payload, raisedAt - 1000),
    ).length,
  };
}

// -------------------------------------------------------------------------------------------------------

function pct(r: number): string {
  return Number.isFinite(r) ? `${(r * 100).toFixed(2)} %` : 'n/a';
}

function report(r: {
  machine: string;
  partA: UnavailableRun[];
  partB: AlertRun[];
  work: { phase: string; w: OperatorWork }[];
  watchReconnects: number;
}): string {
  const out: string[] = [];
  out.push(`## bench:triggers`, '', `Command: \`${commandLine}\``, '', r.machine, '');
  const row = (label: string, values: number[]) => [label, ...summaryCells(summarize(values))];

  if (r.partA.length) {
    const a = r.partA;
    out.push(
      `### Part A: DeploymentUnavailable, \`for: ${FOR}\` (${a.length} runs, 1 warm-up discarded)`,
      '',
      "Onset = the bench's Deployment watch delivers `availableReplicas < 1` (node cordoned, pods deleted). " +
        `Detection latency = \`status.trigger.firedAt\` - (onset + ${FOR}): what the operator adds to the hold.`,
      '',
      markdownTable(
        ['measure', ...SUMMARY_HEADERS],
        [
          row(
            `**detection latency** (firedAt - onset - ${FOR})`,
            a.map((x) => x.overheadMs),
          ),
          row(
            'onset -> firedAt',
            a.map((x) => x.onsetToFiredMs),
          ),
          row(
            'firedAt -> startedAt (gate, steps begin)',
            a.map((x) => x.firedToStartedMs),
          ),
          row(
            'onset -> template restored (rollback patch on the watch)',
            a.map((x) => x.onsetToTemplateMs),
          ),
          row(
            "onset -> plan with status.trigger on the bench's watch",
            a.map((x) => x.onsetToWatchMs),
          ),
          row(
            '= conditionSince - onset (the operator saw the Deployment later)',
            a.map((x) => x.sinceMinusOnsetMs),
          ),
          row(
            `+ firedAt - conditionSince - ${FOR} (the hold's timer late by)`,
            a.map((x) => x.timerLateMs),
          ),
        ],
      ),
      '',
    );
  }
  if (r.partB.length) {
    const b = r.partB;
    // Shares per run, then summarized (not a ratio of two medians).
    const shareTotal = summarize(b.map((x) => x.postToFiredMs / x.totalMs));
    const shareStack = summarize(b.map((x) => x.postToFiredMs / x.raiseToPostMs));
    out.push(
      `### Part B: Alert via Alertmanager (${b.length} runs, 1 warm-up discarded)`,
      '',
      `Rule \`sum by (namespace, job) (rate(http_requests_total{code="500"}[5s])) > ${ALERT_THRESHOLD}\`, no \`for\`; ` +
        `exporter raised from 0 to ${ERROR_RATE} errors/s (50 ok/s throughout). Prometheus: scrape_interval 1s, ` +
        'evaluation_interval 1s, `--rules.alert.resend-delay=1s`. Alertmanager: group_by [...], ' +
        `group_wait ${ROUTE.group_wait}, group_interval ${ROUTE.group_interval}, repeat_interval 1m, webhook with ` +
        'send_resolved. "POST" = the webhook request arriving at the timing proxy in front of the receiver.',
      '',
      markdownTable(
        ['measure', ...SUMMARY_HEADERS],
        [
          row(
            '**end to end**: error rate raised -> firedAt',
            b.map((x) => x.totalMs),
          ),
          row(
            'baseline: raised -> POST (Prometheus + Alertmanager)',
            b.map((x) => x.raiseToPostMs),
          ),
          row(
            '**operator part**: POST -> firedAt',
            b.map((x) => x.postToFiredMs),
          ),
          row(
            'raised -> alert startsAt (scrape + rule evaluation)',
            b.map((x) => x.raiseToStartsAtMs),
          ),
          row(
            'startsAt -> POST (send to Alertmanager, grouping, dispatch)',
            b.map((x) => x.startsAtToPostMs),
          ),
          row(
            'POST -> receiver answered 200 (store applied)',
            b.map((x) => x.postToAnswerMs),
          ),
          row(
            'receiver 200 -> firedAt (wake-up, reconcile)',
            b.map((x) => x.answerToFiredMs),
          ),
          row(
            "POST -> plan with status.trigger on the bench's watch",
            b.map((x) => x.postToWatchMs),
          ),
          row(
            'firedAt -> startedAt',
            b.map((x) => x.firedToStartedMs),
          ),
          row(
            'raised -> template restored',
            b.map((x) => x.raiseToTemplateMs),
          ),
        ],
      ),
      '',
      markdownTable(
        ['share, per run', 'median', 'p90', 'max'],
        [
          ['operator part / end to end', pct(shareTotal.median), pct(shareTotal.p90), pct(shareTotal.max)],
          [
            'operator part / Prometheus + Alertmanager (baseline)',
            pct(shareStack.median),
            pct(shareStack.p90),
            pct(shareStack.max),
          ],
        ],
      ),
      '',
      `Firing notifications that reached the receiver before firedAt, per run: ${[
        ...new Set(b.map((x) => x.postsBeforeFire)),
      ]
        .sort()
        .map((k) => `${k} (${b.filter((x) => x.postsBeforeFire === k).length} runs)`)
        .join(', ')}.`,
      '',
    );
  }
  out.push(
    '### What the operator did (deltas of its own /metrics)',
    '',
    markdownTable(
      ['phase', 'reconciles', 'API requests by code', 'mean reconcile', 'operator CPU'],
      r.work.map(({ phase, w }) => [
        phase,
        `${Math.round(w.reconcileCount)} (${w.reconciles})`,
        `${Math.round(w.requestCount)} (${w.requests})`,
        fmtMs(w.meanReconcileMs),
        `${w.cpuSeconds.toFixed(1)} s`,
      ]),
    ),
    '',
  );
  if (r.watchReconnects) out.push(`Watch streams reopened ${r.watchReconnects} time(s) during the run.`, '');
  return out.join('\n');
}
