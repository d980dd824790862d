// One batch of the invariant test: a namespace with fixtures, a real operator process watching it, the
// generated objects applied through the real API server, then 60 s of watching each accepted object while
// /healthz is probed every 200 ms.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { ApiException } from '@kubernetes/client-node';
import {
  applySchedule,
  backupNow,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  scheduleJobs,
  scheduleSpec,
  waitJobRecorded,
  waitScheduleCondition,
} from './backups.js';
import {
  buildObject,
  describeGenerated,
  type GeneratedObject,
  type Placeholders,
} from './invariant-arbitraries.js';
import { planVerdict, scheduleVerdict, type Verdict } from './invariant-verdicts.js';
import { createTestNamespace, deleteTestNamespace, eventually, testClients } from './kube.js';
import { createFeatureFlag } from './openfeature.js';
import { startOperator, type OperatorProcess } from './operator.js';
import { createTestDatabase, withClient } from './postgres.js';
import { deploymentWithHistory } from './workloads.js';

export const DEADLINE_MS = 60_000;
export const HEALTH_LIMIT_MS = 1_000;
const G = { group: 'rollback.nxtnewday.io', version: 'v1alpha1' } as const;
const PLURAL = { RollbackPlan: 'rollbackplans', BackupSchedule: 'backupschedules' } as const;

export interface Candidate {
  /** fast-check replay path (`fc.sample(arb, { seed, path })` gives the value back). */
  path: string;
  value: GeneratedObject;
}

export interface ObjectResult extends Candidate {
  name: string;
  body: Record<string, any>;
  /** The API server's message when it refused the object (the invariant holds: rejected at admission). */
  rejected?: string;
  verdict?: Verdict;
  /** ms after creation at which the invariant held. */
  satisfiedAfterMs?: number;
  /** Error and warning lines the operator logged about the object (violations only). */
  operatorLog?: string[];
}

export interface HealthSample {
  at: string;
  ms: number;
  error?: string;
  /** The same probe of a trivial server in a process of its own (the machine's share of the delay). */
  twinMs: number;
  /** 1-minute load average of the machine, on slow or failed probes. */
  load?: string;
}

export interface BatchResult {
  namespace: string;
  objects: ObjectResult[];
  /** Probes that took longer than 1 s or failed while the twin answered within 1 s. */
  slowHealth: HealthSample[];
  /** Slow probes during which the twin was slow as well: the machine, not the operator. */
  starvedHealth: HealthSample[];
  probes: number;
  maxHealthMs: number;
  operatorExited?: number | string;
}

/** The HTTP endpoints the generated checks call: fast, failing, slow, huge and regex-hostile answers. */
export async function startCheckServer(): Promise<{ url: string; close(): Promise<void> }> {
  const big = Buffer.alloc(1024 * 1024, 'a');
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === '/ok') return res.writeHead(200).end('ok');
    if (path.startsWith('/status/')) return res.writeHead(Number(path.slice(8)) || 500).end('status');
    if (path === '/slow') {
      const t = setTimeout(() => res.writeHead(200).end('late'), 20_000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    if (path === '/big') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let sent = 0;
      const more = () => {
        while (sent < 20 && res.write(big)) sent++;
        if (sent >= 20) res.end();
      };
      res.on('drain', () => {
        sent++;
        more();
      });
      return more();
    }
    // 25 x "a" then "!": /(a+)+$/ backtracks ~2^25 steps in a backtracking engine (seconds)
    if (path === '/aaaa') return res.writeHead(200).end('a'.repeat(25) + '!');
    res.writeHead(404).end('not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// The prober is a process of its own, so a busy event loop in this test process (the test kubelet lives
// here) never shows up as a slow operator. Each tick it probes /healthz and, at the same moment, a twin: a
// trivial HTTP server in another process of its own. When the twin is slow too, the machine was starved
// (2 shared cores); a slow operator next to a fast twin is the operator's own doing.
const TWIN = `require('node:http').createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1', function () {
  process.stdout.write(String(this.address().port));
});`;
const PROBER = `
const { spawn } = require('node:child_process');
const url = process.argv[1];
const twin = spawn('setpriv', ['--pdeathsig', 'KILL', '--', process.execPath, '-e', ${JSON.stringify(TWIN)}], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let stopped = false;
process.on('SIGTERM', () => { stopped = true; });
const timed = async (u) => {
  const t0 = performance.now();
  let error;
  try {
    const res = await fetch(u, { signal: AbortSignal.timeout(5000) });
    await res.text();
    if (res.status !== 200) error = 'HTTP ' + res.status;
  } catch (e) { error = e.message; }
  return { ms: Math.round(performance.now() - t0), error };
};
(async () => {
  const port = await new Promise((r) => twin.stdout.once('data', (d) => r(String(d))));
  const twinUrl = 'http://127.0.0.1:' + port + '/';
  while (!stopped) {
    const [op, tw] = await Promise.all([timed(url), timed(twinUrl)]);
    const slow = op.ms > 1000 || op.error;
    const load = slow ? require('node:os').loadavg()[0].toFixed(1) : undefined;
    process.stdout.write(JSON.stringify({ at: new Date().toISOString(), ms: op.ms, error: op.error, twinMs: tw.ms, load }) + '\\n');
    await new Promise((r) => setTimeout(r, Math.max(0, 200 - op.ms)));
  }
  twin.kill();
  process.exit(0);
})();
`;

/** Probes /healthz every ~200 ms until stopped; each probe is bounded by 5 s. */
function probeHealth(url: string) {
  const child = spawn(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', process.execPath, '-e', PROBER, `${url}/healthz`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let samples: HealthSample[] | undefined;
  return {
    async stop(): Promise<HealthSample[]> {
      if (!samples) {
        child.kill('SIGTERM');
        await exited;
        samples = out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as HealthSample);
      }
      return samples;
    },
  };
}

/** Fixtures the templates refer to; returns the placeholder values and what to clean up. */
async function prepareNamespace(
  ns: string,
  httpUrl: string,
): Promise<{ placeholders: Placeholders; pvs: string[] }> {
  const { core } = testClients();
  // Two databases: generated schedules back up `db`; plans restore `sched`'s own, so a restore never waits
  // for the table locks of a generated schedule's dump.
  const [db, restored] = await Promise.all([createTestDatabase('inv'), createTestDatabase('invrestore')]);
  for (const d of [db, restored])
    await withClient(d.url, async (c) => {
      await c.query('create table notes (id int primary key, body text not null)');
      await c.query("insert into notes select g, 'note ' || g from generate_series(1, 100) g");
    });
  const pvs: string[] = [];
  await Promise.all([
    createDbSecret(ns, 'db', dbSecretData(db.name)),
    createDbSecret(ns, 'db-nokeys', { host: 'localhost' }),
    createDbSecret(ns, 'db-sched', dbSecretData(restored.name)),
    createBoundClaim(ns, 'backups').then((pv) => pvs.push(pv)),
    core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: { name: 'flags' },
        data: { beta: 'on', 'long-value': 'v'.repeat(2000), 'dots.key': 'true' },
      },
    }),
    createFeatureFlag(ns, 'ff', { beta: 'ENABLED' }),
    deploymentWithHistory(ns, 'web', ['shop/web:1.0.0', 'shop/web:1.1.0']),
  ]);
  await applySchedule(ns, 'sched', scheduleSpec('db-sched', 'backups', { suspend: true }));
  await waitScheduleCondition(ns, 'sched', 'Ready', 'True');
  await backupNow(ns, 'sched', 'fixture');
  const job = await eventually('the fixture backup Job', async () => (await scheduleJobs(ns, 'sched'))[0]);
  await waitJobRecorded(ns, job.metadata!.name!);
  await waitScheduleCondition(ns, 'sched', 'LastBackupSucceeded', 'True', undefined, 60_000);
  return { placeholders: { http: httpUrl, backup: job.metadata!.name! }, pvs };
}

async function create(ns: string, body: Record<string, any>): Promise<string | undefined> {
  const { custom } = testClients();
  try {
    await custom.createNamespacedCustomObject({
      ...G,
      plural: PLURAL[body.kind as keyof typeof PLURAL],
      namespace: ns,
      body,
    });
    return undefined;
  } catch (e) {
    if (e instanceof ApiException && e.code >= 400 && e.code < 500) {
      const text = typeof e.body === 'string' ? e.body : JSON.stringify(e.body);
      try {
        return `${e.code}: ${JSON.parse(text).message}`;
      } catch {
        return `${e.code}: ${text}`;
      }
    }
    throw e;
  }
}

async function listAll(ns: string) {
  const { custom, batch, core } = testClients();
  const list = (plural: string) =>
    custom.listNamespacedCustomObject({ ...G, plural, namespace: ns }).then((l: any) => l.items as any[]);
  const [plans, schedules, jobs, pods] = await Promise.all([
    list('rollbackplans'),
    list('backupschedules'),
    batch.listNamespacedJob({ namespace: ns }).then((l) => l.items as any[]),
    core.listNamespacedPod({ namespace: ns }).then((l) => l.items as any[]),
  ]);
  return { plans, schedules, jobs, pods };
}

/** Error and warning lines of the operator's JSON log about one object. */
function logLinesAbout(op: OperatorProcess, name: string): string[] {
  const out: string[] = [];
  for (const line of op.logs().split('\n')) {
    if (!line.includes(`"${name}"`)) continue;
    try {
      const l = JSON.parse(line);
      if (l.name === name && (l.level === 'error' || l.level === 'warn'))
        out.push(`${l.level}: ${l.message}${l.err ? ` ${JSON.stringify(l.err).slice(0, 400)}` : ''}`);
    } catch {
      // not JSON: a stack trace or tsx output, not about this object
    }
  }
  return [...new Set(out)].slice(-4);
}

/**
 * Runs one batch: namespace, operator, fixtures, the objects, up to 60 s of observation per object.
 * `firstIndex` numbers the objects (their names are `p<index>` / `s<index>`).
 */
export async function runBatch(
  label: string,
  candidates: Candidate[],
  firstIndex: number,
  httpUrl: string,
  log: (m: string) => void,
): Promise<BatchResult> {
  const ns = await createTestNamespace('inv');
  const op = await startOperator({ env: { WATCH_NAMESPACES: ns }, name: label });
  const pvs: string[] = [];
  let health: ReturnType<typeof probeHealth> | undefined;
  try {
    await op.waitReady(60_000);
    health = probeHealth(op.healthUrl);
    const fx = await prepareNamespace(ns, httpUrl);
    pvs.push(...fx.pvs);
    const objects: (ObjectResult & { createdAt: number })[] = candidates.map((c, i) => {
      const body = buildObject(c.value, firstIndex + i, fx.placeholders);
      return { ...c, name: body.metadata.name, body, createdAt: 0 };
    });
    log(`${label}: namespace ${ns} ready, applying ${objects.length} objects`);
    for (let i = 0; i < objects.length; i += 8) {
      await Promise.all(
        objects.slice(i, i + 8).map(async (o) => {
          const rejected = await create(ns, o.body);
          o.createdAt = Date.now();
          if (rejected) o.rejected = rejected;
        }),
      );
    }
    const accepted = objects.filter((o) => !o.rejected);
    const deadline = Math.max(...objects.map((o) => o.createdAt)) + DEADLINE_MS;
    for (;;) {
      const seen = await listAll(ns);
      const now = Date.now();
      for (const o of accepted) {
        if (o.satisfiedAfterMs !== undefined || now - o.createdAt > DEADLINE_MS + 1_500) continue;
        const live =
          o.body.kind === 'RollbackPlan'
            ? seen.plans.find((p) => p.metadata.name === o.name)
            : seen.schedules.find((s) => s.metadata.name === o.name);
        o.verdict =
          o.body.kind === 'RollbackPlan'
            ? planVerdict(live, seen.jobs, seen.pods)
            : scheduleVerdict(live, seen.jobs, seen.pods);
        if (o.verdict.ok) o.satisfiedAfterMs = now - o.createdAt;
      }
      if (accepted.every((o) => o.satisfiedAfterMs !== undefined) || now > deadline + 1_500) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    for (const o of accepted) if (o.satisfiedAfterMs === undefined) o.operatorLog = logLinesAbout(op, o.name);
    const samples = await health.stop();
    const slow = samples.filter((s) => s.error || s.ms > HEALTH_LIMIT_MS);
    const starved = (s: HealthSample) => s.twinMs > HEALTH_LIMIT_MS;
    const exitCode = op.child.exitCode ?? op.child.signalCode ?? undefined;
    return {
      namespace: ns,
      objects: objects.map(({ createdAt: _c, ...o }) => o),
      slowHealth: slow.filter((s) => !starved(s)),
      starvedHealth: slow.filter(starved),
      probes: samples.length,
      maxHealthMs: Math.max(0, ...samples.map((s) => s.ms)),
      ...(exitCode !== undefined && exitCode !== null ? { operatorExited: exitCode } : {}),
    };
  } catch (e) {
    log(`${label}: batch failed: ${(e as Error).message}\n--- operator ---\n${op.logs().slice(-3000)}`);
    throw e;
  } finally {
    await health?.stop();
    await op.stop();
    await deleteTestNamespace(ns);
    await deletePvs(pvs);
  }
}

export const isViolation = (o: ObjectResult) => !o.rejected && o.satisfiedAfterMs === undefined;

export function describeViolation(o: ObjectResult): string {
  return [
    `  ${describeGenerated(o.value)}`,
    `    after 60 s: ${o.verdict?.detail ?? 'never observed'}`,
    ...(o.operatorLog ?? []).map((l) => `    operator: ${l}`),
  ].join('\n');
}
