// bench:restore — our restore against raw pg_restore, and the full-scope RTO, for a 1,000,000-row database.
//
//   npm run bench:restore                      # pgbench scale 10 (1,000,000 accounts), 3 reps, 2 full runs
//   npm run bench:restore -- --quick           # smoke test: scale 1 (100,000 accounts), 1 rep, 1 full run
//   npm run bench:restore -- --reps 5 --full-runs 3 --scale 10 --parts a,b [--no-build]
//
// Part A (restore ratio), one local PostgreSQL and nothing else running: `pgbench -i -s SCALE`, dumped once
// by our runner's `backup` (in-process runnerMain, what a Job pod runs). Then, per repetition and in
// alternating order, the same archive is restored three ways: raw `pg_restore --no-owner
// --single-transaction --exit-on-error -d DB FILE` into a fresh database created from template0 (the createdb
// is timed separately, not in the baseline); ours `restore --mode inPlace` into a database that holds the
// "bad release" (changed, deleted and added rows); ours `restore --mode newDatabaseSwap` against such a
// database too; and newDatabaseSwap as a whole process (`node dist/bundle/main.js restore ...`, dist/ built
// first unless --no-build), compared with createdb + raw pg_restore. Every restored database is checked against
// the source (row counts + checksums), untimed.
//
// Part B (full-scope RTO): a local control plane with the CRDs, the operator process, a TestKubelet that runs
// the runner Job pods as local processes, a BackupSchedule for a copy of that database (PVC bound to a
// pre-bound PV, as the integration tests do), one emergency backup (annotation backup-now). Per run: a fresh
// Deployment with 2 revisions and a fresh flag ConfigMap, the bad release applied to the data, then a
// `scope: full` RollbackPlan (Deployment + database pinned to the emergency backup + flag). Timed from the
// create call to the watch event that shows `Succeeded`; the plan's own journal, the runner Jobs' timelines
// (Job/pod watch events + the runner result in the termination message) say where the time went. After each
// run the data must equal the pre-release state, the Deployment must be back on revision 1's template and the
// flag off, or the benchmark fails. The Markdown report goes to stdout, progress to stderr.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { LocalControlPlane } from '../test/env/control-plane.js';
import { installCrds } from '../test/env/crds.js';
import { LocalPostgres, type PostgresInfo } from '../test/env/postgres.js';
import { operatorCommandMap, RUNNER_PLACEMENT, TestKubelet } from '../test/env/test-kubelet.js';
import { benchClients, createNamespace, deploymentWithHistory, PLAN_API, templateOf } from './lib/kube.js';
import { progress, runBenchmark, sleep, type Cleanup } from './lib/lifecycle.js';
import { codeRevision, machineInfo, machineMarkdown } from './lib/machine.js';
import { startBenchOperator } from './lib/operator.js';
import {
  badRelease,
  checksumDiff,
  checksums,
  dropDatabase,
  pgEnv,
  runnerInProcess,
  runTool,
  sampleAutovacuum,
  type BackgroundSample,
  type Checksums,
} from './lib/pg.js';
import { buildRunner, runnerProcess } from './lib/runner-process.js';
import { EventRecorder, type RecordedEvent } from './lib/recorder.js';
import { median, ratio } from './lib/stats.js';
import { fmtBytes, fmtMs, fmtRatio, markdownTable } from './lib/table.js';
import { ObjectWatcher, type RawObject } from './lib/watch.js';

const execFileP = promisify(execFile);

const { values: flags } = parseArgs({
  options: {
    reps: { type: 'string' },
    'full-runs': { type: 'string' },
    scale: { type: 'string' },
    parts: { type: 'string', default: 'a,b' },
    quick: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
  },
});
const int = (name: string, v: string | undefined, fallback: number, min: number): number => {
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be a whole number >= ${min}; got ${v}`);
  return n;
};
const REPS = int('reps', flags.reps, flags.quick ? 1 : 3, 1);
const FULL_RUNS = int('full-runs', flags['full-runs'], flags.quick ? 1 : 2, 1);
const SCALE = int('scale', flags.scale, flags.quick ? 1 : 10, 1);
const PARTS = new Set(flags.parts.split(',').map((p) => p.trim().toLowerCase()));
for (const p of PARTS)
  if (p !== 'a' && p !== 'b') throw new Error(`--parts takes a, b or a,b; got ${flags.parts}`);
const ACCOUNTS = SCALE * 100_000;
/** The seed's objectives. */
const RTO_OBJECTIVE_MS = 10 * 60_000;
const DB_RESTORE_OBJECTIVE_MS = 5 * 60_000;
const PLAN_TIMEOUT_MS = 15 * 60_000;
const AUTOVACUUM_SAMPLE_MS = 250;
const BACKUP_ID = 'bench-source';
const SOURCE_DB = 'bench_src';
const SHOP_DB = 'shop';
const OPERATOR_IMAGE = 'nxt-rollback-operator:bench';
const IMAGES = ['shop/checkout:1.5.0', 'shop/checkout:1.6.0'];
const MAIN_STEPS = [
  'PreValidation',
  'SafetyBackup',
  'DatabaseRestore',
  'AppRollback',
  'FeatureFlags',
  'PostValidation',
];
const JOB_PURPOSES = ['verify', 'safety', 'restore'] as const;
type JobPurpose = (typeof JOB_PURPOSES)[number];
/** The journal entry that finishes when the operator has read each Job's outcome. */
const STEP_OF_JOB: Record<JobPurpose, string> = {
  verify: 'CheckBackupIntegrity',
  safety: 'SafetyBackup',
  restore: 'DatabaseRestore',
};

const log = progress('bench:restore');
const commandLine =
  process.env.npm_lifecycle_event === 'bench:restore'
    ? `npm run bench:restore${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`
    : `npx tsx bench/restore.ts ${process.argv.slice(2).join(' ')}`.trim();

interface Dataset {
  rows: number;
  accounts: number;
  sizeBytes: number;
  seedMs: number;
  backupMs: number;
  archiveBytes: number;
}

/** swapProcess: newDatabaseSwap as `node dist/bundle/main.js restore ...`, the whole process a Job pod runs. */
type Side = 'raw' | 'inPlace' | 'swap' | 'swapProcess';
interface RestoreRun {
  side: Side;
  ms: number;
  /** raw: the untimed `create database ... template template0` before it. */
  createdbMs?: number;
  /** ours: verify / pg_restore / validate / swap / other, ms. */
  phases?: Record<string, number>;
}

// After Ctrl-C every child in the process group (PostgreSQL, pg_restore, the runner's connections) goes
// away at once; an error from one of them must not end the process before the cleanup has run. The listener
// stays registered: npm and tsx relay Ctrl-C once more, and tsx's own handler exits the process when a
// signal arrives with no listener left (Cleanup listens only once).
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    if (interrupted) return log(`${sig} again; still cleaning up (kill -9 to abandon)`);
    interrupted = true;
    process.on('uncaughtException', (e) => log(`while cleaning up: ${e.message}`));
  });

await runBenchmark(async (cleanup) => {
  const machine = machineInfo();
  const revision = codeRevision();
  log(`scale=${SCALE} reps=${REPS} full-runs=${FULL_RUNS} parts=${[...PARTS].join(',')}`);
  const pgsql = await LocalPostgres.start((m) => log(`postgres: ${m}`));
  cleanup.add('postgres', () => pgsql.stop());
  const info = pgsql.info;
  const work = mkdtempSync(join(tmpdir(), 'nxt-bench-restore-'));
  cleanup.add('work dir', () => rmSync(work, { recursive: true, force: true }));
  const pgRestoreVersion = (await runTool(join(info.binDir, 'pg_restore'), ['--version'], {})).stdout.trim();
  log(`${info.version}; ${pgRestoreVersion}`);
  const admin = new pg.Client({ connectionString: info.url });
  // Ctrl-C reaches PostgreSQL too (same process group), which then ends this idle session: without a
  // handler that 'error' event would crash the process before the cleanup ran.
  admin.on('error', (e) => log(`admin connection: ${e.message}`));
  await admin.connect();
  cleanup.add('admin connection', () => admin.end());

  // --- the source database and its backup ---------------------------------------------------------------
  await admin.query(`create database ${SOURCE_DB}`);
  log(`pgbench -i -s ${SCALE}`);
  const t0 = performance.now();
  await runTool(join(info.binDir, 'pgbench'), ['-i', '-q', '-s', String(SCALE)], pgEnv(info, SOURCE_DB));
  const seedMs = performance.now() - t0;
  const good = await checksums(info, SOURCE_DB);
  if (good.pgbench_accounts?.rows !== ACCOUNTS)
    throw new Error(`pgbench made ${good.pgbench_accounts?.rows} accounts, expected ${ACCOUNTS}`);
  const sizeBytes = Number(
    (await admin.query<{ s: string }>('select pg_database_size($1) as s', [SOURCE_DB])).rows[0]!.s,
  );
  const storage = join(work, 'storage');
  mkdirSync(storage);
  const termLog = join(work, 'termination-log');
  const backup = await runnerInProcess(
    ['backup', '--storage-dir', storage, '--id', BACKUP_ID, '--termination-log', termLog],
    pgEnv(info, SOURCE_DB),
  );
  if (backup.code !== 0 || !backup.result?.success)
    throw new Error(
      `our backup failed (exit ${backup.code}): ${JSON.stringify(backup.result).slice(0, 2000)}`,
    );
  const dumpFile = join(storage, `${BACKUP_ID}.dump`);
  const ds: Dataset = {
    rows: Object.values(good).reduce((s, t) => s + t.rows, 0),
    accounts: ACCOUNTS,
    sizeBytes,
    seedMs,
    backupMs: backup.ms,
    archiveBytes: statSync(dumpFile).size,
  };
  log(
    `source: ${ds.rows} rows, ${fmtBytes(ds.sizeBytes)}, seeded in ${fmtMs(seedMs)}; ` +
      `backup ${fmtBytes(ds.archiveBytes)} in ${fmtMs(backup.ms)}`,
  );

  const partA = PARTS.has('a')
    ? await runPartA({ info, admin, storage, dumpFile, termLog, good })
    : undefined;
  const partB = PARTS.has('b') ? await runPartB({ cleanup, info, admin, work, good }) : undefined;

  console.log(
    report({
      machine: machineMarkdown(machine, {
        code: `commit ${revision}`,
        PostgreSQL: `${info.version} (local, fsync=off, synchronous_commit=off, full_page_writes=off); ${pgRestoreVersion}`,
        storage: `archives and the kubelet's PVC dirs in ${tmpdir()} (${fsType(tmpdir())})`,
        ...(partB ? { kubernetes: partB.versions, operator: partB.operatorFacts } : {}),
      }),
      ds,
      partA,
      partB,
    }),
  );
});

// ------------------------------------------------------------------------------------------------------
// Part A: restore ratio.

interface PartAResult {
  runs: RestoreRun[];
  checked: number;
}

async function runPartA(a: {
  info: PostgresInfo;
  admin: pg.Client;
  storage: string;
  dumpFile: string;
  termLog: string;
  good: Checksums;
}): Promise<PartAResult> {
  const { info, admin } = a;
  let checked = 0;
  /** Untimed: the restored database must hold exactly the source's data. */
  const check = async (database: string, what: string) => {
    const diff = checksumDiff(a.good, await checksums(info, database));
    if (diff.length) throw new Error(`${what}: ${database} differs from the source in ${diff.join(', ')}`);
    checked++;
  };
  /** A database that holds the source data after the bad release: what an in-place restore overwrites. */
  const damaged = async (database: string) => {
    await dropDatabase(admin, database);
    await admin.query(`create database ${database} template ${SOURCE_DB}`);
    await badRelease(info, database);
  };
  const ours = async (side: Exclude<Side, 'raw'>, rep: string): Promise<RestoreRun> => {
    const database = side === 'inPlace' ? 'bench_inplace' : 'bench_swap';
    await damaged(database);
    const argv = [
      'restore',
      '--storage-dir',
      a.storage,
      '--id',
      BACKUP_ID,
      '--mode',
      side === 'inPlace' ? 'inPlace' : 'newDatabaseSwap',
    ];
    const r =
      side === 'swapProcess'
        ? await runnerProcess(argv, pgEnv(info, database), a.termLog)
        : await runnerInProcess([...argv, '--termination-log', a.termLog], pgEnv(info, database));
    if (r.code !== 0 || !r.result?.success)
      throw new Error(
        `our restore (${side}) failed (exit ${r.code}): ${JSON.stringify(r.result).slice(0, 2000)}\n${r.lastLines.join('\n')}`,
      );
    const res = r.result;
    const verify = r.between(undefined, 'restore.start');
    const restore = Number(res.restoreSeconds ?? NaN) * 1000;
    const validate = Number(res.validateSeconds ?? NaN) * 1000;
    const swap = side === 'inPlace' ? 0 : Number(res.swapSeconds ?? NaN) * 1000;
    await check(database, `ours ${side} ${rep}`);
    await dropDatabase(admin, database);
    if (res.previousDatabase) await dropDatabase(admin, String(res.previousDatabase));
    return {
      side,
      ms: r.ms,
      phases: { verify, restore, validate, swap, other: r.ms - verify - restore - validate - swap },
    };
  };
  const raw = async (rep: string): Promise<RestoreRun> => {
    const database = 'bench_raw';
    await dropDatabase(admin, database);
    let t0 = performance.now();
    await admin.query(`create database ${database} template template0`);
    const createdbMs = performance.now() - t0;
    t0 = performance.now();
    await runTool(
      join(info.binDir, 'pg_restore'),
      ['--no-owner', '--single-transaction', '--exit-on-error', '-d', database, a.dumpFile],
      pgEnv(info, database),
    );
    const ms = performance.now() - t0;
    await check(database, `raw ${rep}`);
    await dropDatabase(admin, database);
    return { side: 'raw', ms, createdbMs };
  };

  // Warm-up (discarded): the first pg_restore of the archive and the first in-process runner restore.
  if (!flags['no-build']) await buildRunner(log);
  log('Part A: warm-up (raw + ours inPlace + ours whole process, discarded)');
  await raw('warm-up');
  await ours('inPlace', 'warm-up');
  await ours('swapProcess', 'warm-up');

  const runs: RestoreRun[] = [];
  const order: Side[] = ['raw', 'inPlace', 'swap', 'swapProcess'];
  for (let rep = 0; rep < REPS; rep++) {
    const label = `rep ${rep + 1}/${REPS}`;
    for (const side of rep % 2 === 0 ? order : [...order].reverse()) {
      const r = side === 'raw' ? await raw(label) : await ours(side, label);
      runs.push(r);
    }
    const of = (s: Side) => fmtMs(runs.filter((r) => r.side === s).at(-1)!.ms);
    log(
      `Part A ${label}: raw ${of('raw')}, inPlace ${of('inPlace')}, swap ${of('swap')}, ` +
        `swap whole process ${of('swapProcess')}`,
    );
  }
  return { runs, checked };
}

// ------------------------------------------------------------------------------------------------------
// Part B: full-scope RTO.

interface JobTimeline {
  purpose: JobPurpose;
  name: string;
  /** Wall-clock ms (Date.now() / Date.parse) of each event; NaN when not seen. */
  created: number;
  podRunning: number;
  runnerStarted: number;
  runnerFinished: number;
  podDone: number;
  jobComplete: number;
  stepFinished: number;
  result: Record<string, any> | undefined;
}

interface FullRun {
  plan: string;
  /** Date.now() at the create call. */
  wallStart: number;
  /** performance.now(): create call start -> watch event with phase Succeeded. */
  ms: number;
  createCallMs: number;
  /** Date.parse(status.startedAt) - wall clock at the create call. */
  pickupMs: number;
  durationSeconds: number;
  rtoMet: string;
  /** Journal: name -> {start offset from status.startedAt, duration}, ms. */
  steps: Record<string, { offsetMs: number; ms: number; result: string }>;
  jobs: JobTimeline[];
  restoreSeconds: number;
  checksOk: string;
  /** Autovacuum workers seen in pg_stat_activity while the plan ran (sampled every 250 ms). */
  autovacuum: BackgroundSample[];
}

interface PartBResult {
  versions: string;
  operatorFacts: string;
  emergency: { ms: number; runner: Record<string, any> | undefined; id: string };
  runs: FullRun[];
  reconnects: number;
}

async function runPartB(b: {
  cleanup: Cleanup;
  info: PostgresInfo;
  admin: pg.Client;
  work: string;
  good: Checksums;
}): Promise<PartBResult> {
  const { cleanup, info, admin } = b;
  // The database the BackupSchedule backs up: a copy of the source (same data, same checksums).
  await admin.query(`create database ${SHOP_DB} template ${SOURCE_DB}`);

  log('Part B: starting the local control plane');
  const cp = await LocalControlPlane.start({ log: (m) => log(`control-plane: ${m}`) });
  cleanup.add('control plane', () => cp.stop());
  const kubectlBin = cp.bins.path('kubectl');
  await installCrds(kubectlBin, cp.kubeconfigPath);
  const kubectl = async (...args: string[]) =>
    (await execFileP(kubectlBin, [`--kubeconfig=${cp.kubeconfigPath}`, ...args], { encoding: 'utf8' }))
      .stdout;
  const v = JSON.parse(await kubectl('version', '-o', 'json')) as Record<string, { gitVersion: string }>;
  const c = benchClients(cp.kubeconfigPath);
  const ns = `bench-restore-${randomBytes(3).toString('hex')}`;
  await createNamespace(c, ns);

  const deployments = new ObjectWatcher(
    c.kc,
    '/apis/apps/v1/deployments',
    { labelSelector: 'nxt.bench/app' },
    log,
  );
  const plans = new ObjectWatcher(
    c.kc,
    `/apis/${PLAN_API.group}/${PLAN_API.version}/namespaces/${ns}/${PLAN_API.plural}`,
    {},
    log,
  );
  const schedules = new ObjectWatcher(
    c.kc,
    `/apis/${PLAN_API.group}/${PLAN_API.version}/namespaces/${ns}/backupschedules`,
    {},
    log,
  );
  const jobs = new EventRecorder(c.kc, `/apis/batch/v1/namespaces/${ns}/jobs`, {}, log);
  const pods = new EventRecorder(c.kc, `/api/v1/namespaces/${ns}/pods`, { labelSelector: 'job-name' }, log);
  for (const w of [deployments, plans, schedules, jobs, pods]) await w.start();
  cleanup.add('watches', () => {
    for (const w of [deployments, plans, schedules, jobs, pods]) w.stop();
  });

  // The runner Job pods run here, as `node --import tsx operator/main.ts ARGS` with this PostgreSQL's tools.
  const kubeletLog: string[] = [];
  const kubelet = await TestKubelet.start({
    kubeconfigPath: cp.kubeconfigPath,
    workDir: join(b.work, 'kubelet'),
    log: (m) => kubeletLog.push(m),
    commandMap: operatorCommandMap({
      isOperatorImage: (image) => image === OPERATOR_IMAGE,
      env: { PG_BIN_DIR: info.binDir },
    }),
  });
  let finished = false;
  cleanup.add('test kubelet', async () => {
    if (!finished) console.error(`test kubelet log tail:\n${kubeletLog.slice(-30).join('\n')}`);
    await kubelet.stop();
  });
  const op = await startBenchOperator({
    kubeconfigPath: cp.kubeconfigPath,
    // validation.sql runs as the local superuser postgres: allowed explicitly (refused otherwise).
    env: { LOG_LEVEL: 'info', WATCH_NAMESPACES: ns, OPERATOR_IMAGE, ALLOW_SUPERUSER_ASSERTIONS: 'true' },
  });
  cleanup.add('operator', async () => {
    if (!finished) console.error(`operator log tail:\n${op.logs().split('\n').slice(-40).join('\n')}`);
    await op.stop();
  });
  await op.waitReady();
  log('Part B: operator and test kubelet ready');

  // Database Secret, a PVC bound to a pre-bound PV (no provisioner here), the BackupSchedule.
  await c.core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: { name: 'shop-db' },
      stringData: {
        host: info.host,
        port: String(info.port),
        database: SHOP_DB,
        username: info.user,
        password: info.password,
      },
    },
  });
  await c.core.createPersistentVolume({
    body: {
      metadata: { name: `${ns}-backups` },
      spec: {
        capacity: { storage: '5Gi' },
        accessModes: ['ReadWriteOnce'],
        storageClassName: 'manual',
        persistentVolumeReclaimPolicy: 'Retain',
        // Unused: the test kubelet maps the claim to <workDir>/pvc/<namespace>/<claim>.
        hostPath: { path: `/tmp/nxt-unused-hostpath/${ns}-backups` },
        claimRef: { namespace: ns, name: 'backups' },
      },
    },
  });
  await c.core.createNamespacedPersistentVolumeClaim({
    namespace: ns,
    body: {
      metadata: { name: 'backups' },
      spec: {
        storageClassName: 'manual',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '5Gi' } },
      },
    },
  });
  await pollUntil('PVC backups Bound', 60_000, async () => {
    const pvc = await c.core.readNamespacedPersistentVolumeClaim({ name: 'backups', namespace: ns });
    return pvc.status?.phase === 'Bound' ? true : undefined;
  });
  await c.custom.createNamespacedCustomObject({
    group: PLAN_API.group,
    version: PLAN_API.version,
    plural: 'backupschedules',
    namespace: ns,
    body: {
      apiVersion: `${PLAN_API.group}/${PLAN_API.version}`,
      kind: 'BackupSchedule',
      metadata: { name: 'shop-db' },
      spec: {
        database: { secretRef: { name: 'shop-db' } },
        storage: { persistentVolumeClaim: { claimName: 'backups' } },
        podTemplate: RUNNER_PLACEMENT,
      },
    },
  });
  const scheduleKey = `${ns}/shop-db`;
  await pollUntil('BackupSchedule shop-db Ready', 60_000, () => {
    const s = schedules.get(scheduleKey);
    const ready = s && condition(s, 'Ready');
    if (ready?.status === 'True') return true;
    return undefined;
  }).catch((e: Error) => {
    throw new Error(`${e.message}; status: ${JSON.stringify(schedules.get(scheduleKey)?.status)}`);
  });

  // The emergency backup, before the "release".
  log('Part B: emergency backup (annotation rollback.nxtnewday.io/backup-now)');
  const value = `bench-${Date.now()}`;
  const tBackup = performance.now();
  await kubectl(
    '-n',
    ns,
    'annotate',
    '--overwrite',
    'bks',
    'shop-db',
    `rollback.nxtnewday.io/backup-now=${value}`,
  );
  const emergencyId = await pollUntil('the emergency backup to be recorded and verified', 10 * 60_000, () => {
    const s = schedules.get(scheduleKey);
    const job =
      s?.status?.lastBackupNow?.annotationValue === value ? s.status.lastBackupNow.jobName : undefined;
    if (!job) return undefined;
    if ((s!.status.backups ?? []).some((x: any) => x.id === job && x.verified === true)) return String(job);
    const failed = jobs.last((e) => e.obj.metadata.name === job && hasCondition(e.obj, 'Failed'));
    if (failed) throw new Error(`emergency backup Job ${job} failed: ${JSON.stringify(failed.obj.status)}`);
    return undefined;
  });
  const emergencyMs = performance.now() - tBackup;
  const emergencyRunner = runnerResultOf(pods, emergencyId);
  log(`Part B: emergency backup ${emergencyId} recorded after ${fmtMs(emergencyMs)}`);

  const runs: FullRun[] = [];
  for (let i = 0; i < FULL_RUNS; i++) {
    const n = i + 1;
    const deploy = `checkout-${n}`;
    const flagsCm = `flags-${n}`;
    const plan = `full-${n}`;
    log(
      `Part B run ${n}/${FULL_RUNS}: Deployment ${deploy} with 2 revisions, ConfigMap ${flagsCm}, bad release`,
    );
    const templates = await deploymentWithHistory(c, deployments, ns, deploy, IMAGES, 2);
    await c.core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: flagsCm }, data: { 'new-checkout': 'true', other: 'true' } },
    });
    await badRelease(info, SHOP_DB);
    const bad = await checksums(info, SHOP_DB);
    if (checksumDiff(b.good, bad).length === 0) throw new Error('the bad release did not change the data');
    await sleep(2000);

    const vacuum = sampleAutovacuum(info, AUTOVACUUM_SAMPLE_MS);
    const done = deferred(
      plans.waitFor(
        `${ns}/${plan}`,
        (p) => ['Succeeded', 'Failed'].includes(p.status?.phase),
        PLAN_TIMEOUT_MS,
        `RollbackPlan ${plan} finished`,
      ),
    );
    const wallStart = Date.now();
    const t0 = performance.now();
    await c.custom.createNamespacedCustomObject({
      ...PLAN_API,
      namespace: ns,
      body: fullPlan(plan, deploy, flagsCm, emergencyId),
    });
    const createCallMs = performance.now() - t0;
    const end = await done;
    const autovacuum = await vacuum.stop();
    const ms = end.at - t0;
    const st = end.obj.status;
    if (st?.phase !== 'Succeeded')
      throw new Error(
        `RollbackPlan ${plan} ended ${st?.phase}: ${JSON.stringify({ conditions: st?.conditions, steps: st?.steps })}`,
      );
    log(`Part B run ${n}: Succeeded after ${fmtMs(ms)} (status.durationSeconds ${st.durationSeconds})`);

    // The result must be right, not only fast.
    const after = await checksums(info, SHOP_DB);
    const diff = checksumDiff(b.good, after);
    if (diff.length)
      throw new Error(`run ${n}: the database differs from the pre-release state in ${diff.join(', ')}`);
    if (after.pgbench_accounts?.rows !== ACCOUNTS)
      throw new Error(`run ${n}: ${after.pgbench_accounts?.rows} accounts, expected ${ACCOUNTS}`);
    const d = (await c.custom.getNamespacedCustomObject({
      group: 'apps',
      version: 'v1',
      plural: 'deployments',
      namespace: ns,
      name: deploy,
    })) as RawObject;
    if (templateOf(d) !== templates[0])
      throw new Error(`run ${n}: ${deploy} is not back on revision 1's template`);
    const cm = await c.core.readNamespacedConfigMap({ name: flagsCm, namespace: ns });
    if (cm.data?.['new-checkout'] !== 'false' || cm.data?.other !== 'true')
      throw new Error(`run ${n}: flags are ${JSON.stringify(cm.data)}`);

    const startedAt = Date.parse(st.startedAt);
    const steps: FullRun['steps'] = {};
    for (const s of st.steps ?? []) {
      steps[s.name] = {
        offsetMs: Date.parse(s.startedAt) - startedAt,
        ms: s.finishedAt ? Date.parse(s.finishedAt) - Date.parse(s.startedAt) : NaN,
        result: s.result,
      };
    }
    const finishedOf = (name: string) => {
      const s = (st.steps ?? []).find((x: any) => x.name === name);
      return s?.finishedAt ? Date.parse(s.finishedAt) : NaN;
    };
    // The last pod events may arrive a moment after the plan's; give the watches a beat.
    await sleep(500);
    const jobsOfRun = JOB_PURPOSES.map((purpose) =>
      jobTimeline(jobs, pods, purpose, `${plan}-${purpose}`, finishedOf(STEP_OF_JOB[purpose])),
    );
    runs.push({
      plan,
      wallStart,
      ms,
      createCallMs,
      pickupMs: startedAt - wallStart,
      durationSeconds: Number(st.durationSeconds),
      rtoMet: condition(end.obj, 'RTOMet')?.status ?? '?',
      steps,
      jobs: jobsOfRun,
      restoreSeconds: Number(jobsOfRun.find((j) => j.purpose === 'restore')?.result?.restoreSeconds ?? NaN),
      checksOk: `${ACCOUNTS.toLocaleString('en-US')} accounts, checksums = pre-release; template = rev 1; flag off`,
      autovacuum,
    });
    await sleep(3000);
  }
  finished = true;
  return {
    versions: `${v.serverVersion?.gitVersion ?? '?'} (local control plane, kwok fake nodes for the Deployments, a test kubelet running the runner Jobs as local processes)`,
    operatorFacts: `operator/main.ts manager via tsx, LOG_LEVEL=info, runner Jobs as \`node --import tsx operator/main.ts ...\``,
    emergency: { ms: emergencyMs, runner: emergencyRunner, id: emergencyId },
    runs,
    reconnects:
      deployments.reconnects + plans.reconnects + schedules.reconnects + jobs.reconnects + pods.reconnects,
  };
}

function fullPlan(name: string, deployment: string, flagsCm: string, backupId: string) {
  return {
    apiVersion: `${PLAN_API.group}/${PLAN_API.version}`,
    kind: 'RollbackPlan',
    metadata: { name },
    spec: {
      scope: 'full',
      reason: 'benchmark: bad release',
      targets: {
        deployments: [{ name: deployment }],
        // Pinned: after run 1 the newest verified backup is that run's safety backup (the bad state).
        database: { backupScheduleRef: { name: 'shop-db' }, backup: { id: backupId } },
        featureFlags: { configMapRef: { name: flagsCm }, disable: ['new-checkout'] },
      },
      validation: {
        timeout: '5m',
        sql: [{ name: 'accounts', query: 'select count(*) from pgbench_accounts', expect: String(ACCOUNTS) }],
      },
    },
  };
}

function jobTimeline(
  jobs: EventRecorder,
  pods: EventRecorder,
  purpose: JobPurpose,
  name: string,
  stepFinished: number,
): JobTimeline {
  const ofJob = (e: RecordedEvent) => e.obj.metadata.name === name;
  const ofPod = (e: RecordedEvent) => e.obj.metadata.labels?.['job-name'] === name;
  const at = (e: RecordedEvent | undefined) => e?.at ?? NaN;
  const result = runnerResultOf(pods, name);
  return {
    purpose,
    name,
    created: at(jobs.first(ofJob)),
    podRunning: at(pods.first((e) => ofPod(e) && e.obj.status?.phase === 'Running')),
    runnerStarted: result?.startedAt ? Date.parse(result.startedAt) : NaN,
    runnerFinished: result?.finishedAt ? Date.parse(result.finishedAt) : NaN,
    podDone: at(pods.first((e) => ofPod(e) && ['Succeeded', 'Failed'].includes(e.obj.status?.phase))),
    jobComplete: at(jobs.first((e) => ofJob(e) && hasCondition(e.obj, 'Complete'))),
    stepFinished,
    result,
  };
}

/** The runner's result, from the termination message of the Job's pod. */
function runnerResultOf(pods: EventRecorder, job: string): Record<string, any> | undefined {
  const e = pods.last(
    (x) =>
      x.obj.metadata.labels?.['job-name'] === job &&
      (x.obj.status?.containerStatuses ?? []).some((s: any) => s.state?.terminated?.message),
  );
  const msg = (e?.obj.status?.containerStatuses ?? []).find((s: any) => s.state?.terminated?.message)?.state
    .terminated.message;
  try {
    return msg ? (JSON.parse(msg) as Record<string, any>) : undefined;
  } catch {
    return undefined;
  }
}

// Functions, not consts: the top-level await above runs before consts down here are initialised.
function condition(o: RawObject, type: string) {
  return (o.status?.conditions ?? []).find((x: { type: string }) => x.type === type) as
    { type: string; status: string; reason?: string; message?: string } | undefined;
}
function hasCondition(o: RawObject, type: string) {
  return condition(o, type)?.status === 'True';
}

/** Rejections of `p` are handled here and re-raised where `p` is awaited. */
function deferred<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** Calls `fn` every 250 ms until it returns a value; its errors end the wait. */
async function pollUntil<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined> | T | undefined,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

function fsType(dir: string): string {
  try {
    return execFileSync('stat', ['-f', '-c', '%T', dir]).toString().trim();
  } catch {
    return 'unknown filesystem';
  }
}

// ------------------------------------------------------------------------------------------------------

function report(r: { machine: string; ds: Dataset; partA?: PartAResult; partB?: PartBResult }): string {
  const { ds } = r;
  const out: string[] = [`## bench:restore`, '', `Command: \`${commandLine}\``, '', r.machine, ''];
  out.push(
    `Database: \`pgbench -i -s ${SCALE}\` = ${ds.accounts.toLocaleString('en-US')} rows in \`pgbench_accounts\` ` +
      `(${ds.rows.toLocaleString('en-US')} rows in its 4 tables), ${fmtBytes(ds.sizeBytes)} on disk, seeded in ` +
      `${fmtMs(ds.seedMs)}. Archive: ${fmtBytes(ds.archiveBytes)}, written once by our runner's \`backup\` ` +
      `(in-process) in ${fmtMs(ds.backupMs)}.`,
    '',
  );
  if (r.partA) out.push(...reportA(r.partA));
  if (r.partB) out.push(...reportB(r.partB));
  return out.join('\n');
}

function reportA(a: PartAResult): string[] {
  const of = (s: Side) => a.runs.filter((r) => r.side === s);
  const med = (s: Side) => median(of(s).map((r) => r.ms));
  const ph = (s: Side, k: string) => fmtMs(median(of(s).map((r) => r.phases?.[k] ?? NaN)));
  const rawMs = med('raw');
  const createdb = median(of('raw').map((r) => r.createdbMs ?? NaN));
  const row = (s: Side, label: string): string[] => [
    label,
    fmtMs(med(s)),
    of(s)
      .map((r) => fmtMs(r.ms))
      .join(', '),
    fmtRatio(ratio(med(s), rawMs)),
    ...(s === 'raw'
      ? ['', '', '', '', '']
      : [
          ph(s, 'verify'),
          ph(s, 'restore'),
          ph(s, 'validate'),
          s === 'inPlace' ? '' : ph(s, 'swap'),
          ph(s, 'other'),
        ]),
  ];
  return [
    `### Part A: restore of the same archive (median of ${REPS} rep(s) per side, alternating order, after one discarded warm-up of raw and inPlace)`,
    '',
    'Raw: `pg_restore --no-owner --single-transaction --exit-on-error -d DB FILE` into an empty database ' +
      `(its \`create database ... template template0\` is not in the time: median ${fmtMs(createdb)}). ` +
      'Ours in place: `restore --mode inPlace` into a database holding the bad release (verify the archive, ' +
      '`pg_restore --clean --if-exists --single-transaction --exit-on-error` from a stream, row counts against the ' +
      'manifest). Ours swap: `restore --mode newDatabaseSwap` against such a database (verify, create a ' +
      'replacement database, restore into it, row counts, rename both); dropping the previous database is not timed. ' +
      `Every restored database was compared with the source afterwards (row counts + checksums of all 4 tables, ` +
      `${a.checked} checks, all equal).`,
    '',
    markdownTable(
      ['side', 'median', 'all reps', 'ours / raw', 'verify', 'pg_restore', 'validate', 'swap', 'other'],
      [
        row('raw', 'raw `pg_restore` (empty db)'),
        row('inPlace', 'ours `restore --mode inPlace`'),
        row('swap', 'ours `restore --mode newDatabaseSwap`'),
        row('swapProcess', 'ours newDatabaseSwap, whole process'),
      ],
    ),
    '',
    `Phases are the runner's own: verify = start to its \`restore.start\` log event (re-hash the archive, ` +
      '`pg_restore --list`); pg_restore = `restoreSeconds` (for the swap this includes creating the replacement ' +
      'database); validate = `validateSeconds` (count(*) per manifest table); swap = `swapSeconds`; other = the rest ' +
      '(connections, argument parsing, the result). Counting the createdb on the raw side, ours inPlace / ' +
      `(createdb + raw) = ${fmtRatio(ratio(med('inPlace'), rawMs + createdb))}; **ours newDatabaseSwap as a whole ` +
      `process (\`node dist/bundle/main.js restore ...\`, Node start-up included) / (createdb + raw) = ` +
      `${fmtRatio(ratio(med('swapProcess'), rawMs + createdb))}**.`,
    '',
  ];
}

function sumJobs(r: FullRun, f: (j: JobTimeline) => number): number {
  return r.jobs.reduce((t, j) => t + f(j), 0);
}

/**
 * A Job's span: from its creation to the journal entry that records its outcome. The safety backup's
 * SafetyBackup entry ends at the runner's own finish (it runs alongside the verify Job, and the plan reads it
 * once pre-validation is done), so its span ends at the later of that and PreValidation's end.
 */
function jobSpan(r: FullRun, j: JobTimeline): [number, number] {
  const pre = r.steps.PreValidation;
  const preEnd = pre ? r.wallStart + r.pickupMs + pre.offsetMs + pre.ms : NaN;
  const end = j.purpose === 'safety' && preEnd > j.stepFinished ? preEnd : j.stepFinished;
  return [j.created, end];
}

/** Milliseconds during which at least one of the plan's runner Jobs was in flight (union of the spans). */
function jobsInFlightMs(r: FullRun): number {
  const spans = r.jobs.map((j) => jobSpan(r, j)).sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [from, to] = spans[0] ?? [0, 0];
  for (const [a, b] of spans.slice(1)) {
    if (a > to) {
      total += to - from;
      [from, to] = [a, b];
    } else to = Math.max(to, b);
  }
  return total + (to - from);
}

/** Milliseconds during which the runner Jobs of both purposes were in flight (runner work included). */
function overlapMs(r: FullRun, p: JobPurpose, q: JobPurpose): number {
  const [a, b] = [p, q].map((x) =>
    jobSpan(
      r,
      r.jobs.find((j) => j.purpose === x)!,
    ),
  );
  return Math.max(0, Math.min(a![1], b![1]) - Math.max(a![0], b![0]));
}

/** Milliseconds in [from, to] during which an autovacuum worker was seen (samples x sample interval). */
function vacuumMs(r: FullRun, from: number, to: number): number {
  const at = new Set(r.autovacuum.filter((x) => x.at >= from && x.at <= to).map((x) => x.at));
  return at.size * AUTOVACUUM_SAMPLE_MS;
}

function reportB(b: PartBResult): string[] {
  const runs = b.runs;
  const n = runs.length;
  const medOf = (f: (r: FullRun) => number) => median(runs.map(f));
  const perRun = (f: (r: FullRun) => number) => [
    ...runs.map((r) => fmtMs(f(r))),
    ...(n > 1 ? [fmtMs(medOf(f))] : []),
  ];
  const runHeaders = [...runs.map((_, i) => `run ${i + 1}`), ...(n > 1 ? ['median'] : [])];
  const em = b.emergency;
  const out: string[] = [
    `### Part B: full-scope RollbackPlan (${n} run(s), fresh plan, Deployment and ConfigMap each time)`,
    '',
    `Emergency backup (annotation \`rollback.nxtnewday.io/backup-now\` to the backup recorded and verified in ` +
      `the BackupSchedule's status): ${fmtMs(em.ms)}; the runner itself took ` +
      `${em.runner?.durationSeconds !== undefined ? fmtMs(em.runner.durationSeconds * 1000) : 'n/a'}.`,
    '',
    'Plan: `scope: full`, one Deployment (2 replicas, revision 2 = the bad release), the database pinned to the ' +
      'emergency backup (`mode: inPlace`, safety backup on, the defaults), one ConfigMap flag, SQL assertion ' +
      `\`select count(*) from pgbench_accounts\` = ${ACCOUNTS}. Clock: from the create call to the plan watch event ` +
      'with `phase: Succeeded`. Checked after each run: ' +
      (runs[0]?.checksOk ?? '') +
      '.',
    '',
    markdownTable(
      ['measure', ...runHeaders],
      [
        ['create call -> `Succeeded` (watch)', ...perRun((r) => r.ms)],
        ['`status.durationSeconds`', ...perRun((r) => r.durationSeconds * 1000)],
        ['create call -> `status.startedAt` (operator pickup)', ...perRun((r) => r.pickupMs)],
        ['RollbackPlan create call', ...perRun((r) => r.createCallMs)],
        ['restore Job: runner `restoreSeconds` (pg_restore)', ...perRun((r) => r.restoreSeconds * 1000)],
        [
          'of the total: at least one runner Job in flight (created -> recorded, overlaps counted once)',
          ...perRun((r) => jobsInFlightMs(r)),
        ],
        [
          '... of which `verify` and `safety` both in flight',
          ...perRun((r) => overlapMs(r, 'verify', 'safety')),
        ],
        [
          'summed over the 3 Jobs: runner work',
          ...perRun((r) => sumJobs(r, (j) => j.runnerFinished - j.runnerStarted)),
        ],
        [
          'summed over the 3 Jobs: runner process start-up',
          ...perRun((r) => sumJobs(r, (j) => j.runnerStarted - j.podRunning)),
        ],
        [
          'summed over the 3 Jobs: Job/pod bookkeeping',
          ...perRun((r) => sumJobs(r, (j) => j.podRunning - j.created + (j.stepFinished - j.runnerFinished))),
        ],
        [
          'of the total: everything else (no runner Job in flight: operator steps, Deployment rollout, flags)',
          ...perRun((r) => r.ms - jobsInFlightMs(r)),
        ],
        [
          `PostgreSQL autovacuum worker active during the plan (sampled every ${AUTOVACUUM_SAMPLE_MS} ms)`,
          ...perRun((r) => vacuumMs(r, r.wallStart, r.wallStart + r.ms)),
        ],
        [
          '... of which during the `verify` runner start-up',
          ...perRun((r) => {
            const v = r.jobs.find((j) => j.purpose === 'verify')!;
            return vacuumMs(r, v.podRunning, v.runnerStarted);
          }),
        ],
      ],
    ),
    '',
    `Autovacuum seen: ${
      [...new Set(runs.flatMap((r) => r.autovacuum.map((x) => x.query.replace(/\s+/g, ' ').slice(0, 80))))]
        .map((q) => `\`${q}\``)
        .join(', ') || 'none'
    }.`,
    '',
    "The plan's step journal (`status.steps`, millisecond timestamps): duration of each step, and in brackets " +
      'its start after `status.startedAt`.',
    '',
    markdownTable(
      ['step', ...runHeaders],
      MAIN_STEPS.map((s) => [
        s,
        ...runs.map((r) => {
          const x = r.steps[s];
          return x ? `${fmtMs(x.ms)} (+${fmtMs(x.offsetMs)})` : 'n/a';
        }),
        ...(n > 1 ? [fmtMs(medOf((r) => r.steps[s]?.ms ?? NaN))] : []),
      ]),
    ),
    '',
  ];
  // Runner Jobs: where a Job's time goes, medians over the runs.
  const seg = (p: JobPurpose, f: (j: JobTimeline) => number) =>
    fmtMs(median(runs.map((r) => f(r.jobs.find((j) => j.purpose === p)!))));
  out.push(
    `The plan's three runner Jobs (median over ${n} run(s)), from the Job and pod watches, the runner's result ` +
      '(termination message, `startedAt`/`finishedAt`) and the journal. "pod Running" is written by the test ' +
      'kubelet right after it spawned the process; "runner started" is when runnerMain began, after Node and tsx ' +
      'loaded operator/main.ts. The operator takes the result from the pod as soon as the runner container ' +
      'has terminated, so "Job Complete -> operator records it" is below 0 when it recorded the result before ' +
      'the Job controller set Complete (before that change it waited for Complete: a few ms below 0 only ' +
      'when its watch delivered the Job before ours did).',
    '',
    markdownTable(
      [
        'Job',
        'Job created -> pod Running',
        'pod Running -> runner started',
        'runner',
        'runner done -> Job Complete',
        'Job Complete -> operator records it',
        'runner done -> operator records it',
        'Job created -> recorded',
      ],
      JOB_PURPOSES.map((p) => [
        `\`${p}\`${p === 'verify' ? ' (in PreValidation)' : ''}`,
        seg(p, (j) => j.podRunning - j.created),
        seg(p, (j) => j.runnerStarted - j.podRunning),
        seg(p, (j) => j.runnerFinished - j.runnerStarted),
        seg(p, (j) => j.jobComplete - j.runnerFinished),
        seg(p, (j) => j.stepFinished - j.jobComplete),
        seg(p, (j) => j.stepFinished - j.runnerFinished),
        seg(p, (j) => j.stepFinished - j.created),
      ]),
    ),
    '',
    'Restore Job, runner result: ' +
      runs
        .map((r, i) => {
          const res = r.jobs.find((j) => j.purpose === 'restore')?.result ?? {};
          return `run ${i + 1}: total ${fmtMs(Number(res.durationSeconds) * 1000)}, pg_restore ${fmtMs(Number(res.restoreSeconds) * 1000)}, validate ${fmtMs(Number(res.validateSeconds) * 1000)}, ${res.tablesVerified ?? '?'} tables verified`;
        })
        .join('; ') +
      '.',
    '',
  );
  const worstRto = Math.max(...runs.map((r) => r.ms));
  const worstReported = Math.max(...runs.map((r) => r.durationSeconds * 1000));
  const worstDb = Math.max(...runs.map((r) => r.steps.DatabaseRestore?.ms ?? NaN));
  // From the SafetyBackup step's start to the restore's end (the safety backup may overlap PreValidation).
  const worstDbAll = Math.max(
    ...runs.map((r) => {
      const [safety, restore] = [r.steps.SafetyBackup, r.steps.DatabaseRestore];
      return safety && restore ? restore.offsetMs + restore.ms - safety.offsetMs : NaN;
    }),
  );
  out.push(
    `Objective "RTO < 10 min": ${worstRto < RTO_OBJECTIVE_MS && worstReported < RTO_OBJECTIVE_MS ? 'met' : 'MISSED'} ` +
      `(slowest of ${n}: ${fmtMs(worstRto)} by the watch, ${fmtMs(worstReported)} by \`status.durationSeconds\`; ` +
      `\`RTOMet\`: ${runs.map((r) => r.rtoMet).join(', ')}). ` +
      `Objective "database restore < 5 min": ${worstDb < DB_RESTORE_OBJECTIVE_MS ? 'met' : 'MISSED'} ` +
      `(slowest DatabaseRestore step ${fmtMs(worstDb)}; from the SafetyBackup step's start to the restore's end ${fmtMs(worstDbAll)}).`,
    '',
  );
  if (b.reconnects) out.push(`Watch streams reopened ${b.reconnects} time(s) during Part B.`, '');
  return out;
}
