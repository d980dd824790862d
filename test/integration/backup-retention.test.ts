import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { runnerMain } from '../../operator/backup/runner/cli.js';
import { FilesystemBackupStorage } from '../../operator/backup/runner/storage.js';
import { RunnerResultSchema, type RunnerResult } from '../../operator/backup/runner/result.js';
import type { TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  condition,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  dumpsIn,
  fillDatabase,
  getSchedule,
  patchSchedule,
  scheduleJobs,
  scheduleSpec,
  startRunnerKubelet,
  waitJobRecorded,
  waitScheduleCondition,
} from '../support/backups.js';
import { createTestNamespace, deleteTestNamespace, eventually, testClients } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, eventsFor, waitPlanPhase } from '../support/plans.js';
import {
  createTestDatabase,
  pgInfo,
  runnerPgEnv as connEnv,
  tableChecksum,
  withClient,
} from '../support/postgres.js';

// Retention against plans and schedules (issue 9, defect 5). The runner runs as a Job pod would (argv + env,
// result in a termination-log file) against the harness PostgreSQL; shared claims and safety backups run
// through BackupSchedules on the control plane, with the test kubelet running the runner pods.

const root = mkdtempSync(join(tmpdir(), 'nxt-retention-it-'));
let runs = 0;

async function runner(
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; result: RunnerResult }> {
  const terminationLog = join(root, `termination-${runs++}`);
  const code = await runnerMain([...argv, '--termination-log', terminationLog], env, { writeLog: () => {} });
  const message = readFileSync(terminationLog, 'utf8');
  const parsed = RunnerResultSchema.safeParse(JSON.parse(message));
  expect(parsed.success, `expected the termination message to parse: ${message}`).toBe(true);
  return { code, result: parsed.data! };
}

/** What the operator sets on the CronJob's runner pods of schedule `app`. */
const SCHEDULE_ENV = { NXT_SCHEDULE_NAME: 'app', NXT_SCHEDULE_UID: '2b4f3f6e-1111-4c1e-9a51-6f0c2f1d9b7e' };
/** What it sets on a plan's verify and restore Jobs. */
const PLAN_ENV = { NXT_PLAN_NAME: 'undo', NXT_PLAN_UID: '7d3c1a52-2222-4000-8000-000000000001' };

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('retention and the runner against a real PostgreSQL', () => {
  let db: { name: string; url: string };
  const dir = join(root, 'backups');
  const files = () => readdirSync(dir).sort();

  beforeAll(async () => {
    mkdirSync(dir);
    db = await createTestDatabase('retention');
    await withClient(db.url, async (c) => {
      await c.query('create table items (id int primary key, v text)');
      await c.query(`insert into items select g, 'v' || g from generate_series(1, 1000) g`);
    });
  });

  const backup = async (id: string, keep?: string) => {
    const r = await runner(
      ['backup', '--storage-dir', dir, '--id', id, ...(keep ? ['--keep-last', keep] : [])],
      connEnv(db.name, SCHEDULE_ENV),
    );
    expect(r.code, `expected backup ${id} to succeed: ${r.result.message}`).toBe(0);
    return r;
  };

  it('keeps a backup a plan pinned at verify through a prune, restores it, and releases the pin', async () => {
    const original = await tableChecksum(db.url, 'items');
    await backup('app-backup-100');
    await withClient(db.url, (c) => c.query(`insert into items values (1001, 'after the first backup')`));
    await backup('app-backup-200');

    // The plan's verify Job checks the older backup it is going to restore, and pins it.
    const v = await runner(['verify', '--storage-dir', dir, '--id', 'app-backup-100'], {
      ...connEnv(db.name),
      ...PLAN_ENV,
    });
    expect(v.result, v.result.message).toMatchObject({ operation: 'verify', success: true });

    // Meanwhile the schedule's next backup prunes to one backup: the pinned one must survive it.
    const next = await backup('app-backup-300', '1');
    expect(files(), 'expected the pinned backup to survive the prune').toEqual(
      expect.arrayContaining(['app-backup-100.dump', 'app-backup-100.manifest.json']),
    );
    expect(files()).toContain(`app-backup-100.pin-${PLAN_ENV.NXT_PLAN_UID}.json`);
    expect(next.result, 'expected the pinned backup kept and reported').toMatchObject({
      success: true,
      pruned: ['app-backup-200'],
    });
    expect(next.result.message).toMatch(/kept 1 pinned by a running plan/);

    // The plan's restore Job restores exactly what was verified, then releases the pin.
    const r = await runner(
      ['restore', '--storage-dir', dir, '--id', 'app-backup-100', '--mode', 'inPlace'],
      connEnv(db.name, PLAN_ENV),
    );
    expect(r.code, `expected the restore of the pinned backup to succeed: ${r.result.message}`).toBe(0);
    expect(await tableChecksum(db.url, 'items')).toEqual(original);
    expect(
      files().filter((f) => f.includes('.pin-')),
      'expected the pin released',
    ).toEqual([]);

    // Unpinned, it goes at the next prune.
    const p = await runner(
      ['prune', '--storage-dir', dir, '--keep-last', '1'],
      connEnv(db.name, SCHEDULE_ENV),
    );
    expect(p.result).toMatchObject({ success: true, deleted: ['app-backup-100'], pinned: [] });
    expect(dumpsIn(dir)).toEqual(['app-backup-300.dump']);
  });

  it('removes the partial dump an interrupted backup left, never the one a running backup writes', async () => {
    writeFileSync(join(dir, 'app-backup-400.dump.partial'), 'PGDMP interrupted');
    writeFileSync(join(dir, 'app-backup-450.dump.partial'), 'PGDMP being written');
    const longAgo = new Date(Date.now() - 3 * 3_600_000);
    utimesSync(join(dir, 'app-backup-400.dump.partial'), longAgo, longAgo);
    const r = await backup('app-backup-500', '2');
    expect(r.result, 'expected the stale partial reported').toMatchObject({
      success: true,
      stalePartialsRemoved: ['app-backup-400'],
    });
    expect(existsSync(join(dir, 'app-backup-400.dump.partial')), 'expected the stale partial gone').toBe(
      false,
    );
    expect(existsSync(join(dir, 'app-backup-450.dump.partial')), 'expected a fresh partial kept').toBe(true);
    rmSync(join(dir, 'app-backup-450.dump.partial'));
  });

  it('removes a dump an interrupted backup left without its manifest once stale, never a young or pinned one', async () => {
    // Three real backups whose runner died between committing the dump and writing its manifest.
    for (const id of ['app-backup-600', 'app-backup-650', 'app-backup-675']) {
      await backup(id);
      rmSync(join(dir, `${id}.manifest.json`));
    }
    const longAgo = new Date(Date.now() - 3 * 3_600_000);
    utimesSync(join(dir, 'app-backup-600.dump'), longAgo, longAgo);
    utimesSync(join(dir, 'app-backup-675.dump'), longAgo, longAgo);
    // A plan holds app-backup-675 (as a restore Job's pin would).
    const now = new Date();
    await new FilesystemBackupStorage(dir).pin({
      pinVersion: 1,
      id: 'app-backup-675',
      holder: PLAN_ENV.NXT_PLAN_UID,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 3_600_000).toISOString(),
    });
    const p = await runner(
      ['prune', '--storage-dir', dir, '--keep-last', '10'],
      connEnv(db.name, SCHEDULE_ENV),
    );
    expect(p.result, p.result.message).toMatchObject({
      success: true,
      deleted: [],
      stalePartialsRemoved: [],
      orphanDumpsRemoved: ['app-backup-600'],
      orphans: ['app-backup-650', 'app-backup-675'],
    });
    expect(existsSync(join(dir, 'app-backup-600.dump')), 'the stale dump without a manifest is gone').toBe(
      false,
    );
    expect(
      existsSync(join(dir, 'app-backup-650.dump')),
      'a young one may be a backup about to write it',
    ).toBe(true);
    expect(existsSync(join(dir, 'app-backup-675.dump')), 'a pinned one stays').toBe(true);
    for (const f of readdirSync(dir).filter((f) => /^app-backup-6[57]/.test(f))) rmSync(join(dir, f));
  });

  it('keeps one <db>_pre_<id> database after repeated swaps, drops only older ones it made of that database', async () => {
    const swap = await createTestDatabase('retswap');
    await withClient(swap.url, async (c) => {
      await c.query('create table t (id int primary key)');
      await c.query('insert into t select generate_series(1, 100)');
    });
    const b = await runner(
      ['backup', '--storage-dir', dir, '--id', 'swap-backup-1'],
      connEnv(swap.name, SCHEDULE_ENV),
    );
    expect(b.code, b.result.message).toBe(0);
    // Look-alikes that are not this database's previous copies: a user's archive named like a leftover, a
    // database with a generated-looking name the runner never made (no marker), and near misses.
    const decoys = [
      `${swap.name}_pre_2024`,
      `${swap.name}_pre_a1b2c3`,
      `${swap.name}_pre_aaaa01_copy`,
      `${swap.name}x_pre_aaaa01`,
    ];
    await withClient(pgInfo().url, async (c) => {
      for (const d of decoys) await c.query(`create database ${d}`);
      await c.query(`comment on database ${swap.name} is 'orders of the shop'`);
    });
    const comment = (name: string) =>
      withClient(pgInfo().url, async (c) => {
        const r = await c.query<{ comment: string | null }>(
          `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
          [name],
        );
        return r.rows[0]?.comment;
      });
    const names = async () =>
      withClient(pgInfo().url, async (c) =>
        (
          await c.query<{ datname: string }>(
            `select datname from pg_database where datname like $1 order by 1`,
            [`${swap.name}%_pre_%`],
          )
        ).rows
          .map((x) => x.datname)
          .sort(),
      );

    let last: RunnerResult | undefined;
    for (const shortId of ['aaaa01', 'aaaa02', 'aaaa03']) {
      const r = await runner(
        [
          'restore',
          '--storage-dir',
          dir,
          '--id',
          'swap-backup-1',
          '--mode',
          'newDatabaseSwap',
          '--short-id',
          shortId,
        ],
        connEnv(swap.name),
      );
      expect(r.code, `expected swap ${shortId} to succeed: ${r.result.message}`).toBe(0);
      last = r.result;
    }
    expect(last, 'expected the third swap to report what it kept and dropped').toMatchObject({
      previousDatabase: `${swap.name}_pre_aaaa03`,
      previousDatabasesKept: [`${swap.name}_pre_aaaa03`],
      previousDatabasesDropped: [`${swap.name}_pre_aaaa02`],
    });
    expect(await names(), 'expected one previous database and the look-alikes untouched').toEqual(
      [`${swap.name}_pre_aaaa03`, ...decoys].sort(),
    );
    expect(await comment(`${swap.name}_pre_aaaa03`), 'expected the kept copy marked as ours').toMatch(
      new RegExp(`^nxt-rollback-operator previous of "${swap.name}"\n`),
    );
    expect(await comment(swap.name), "expected the user's comment to follow the database name").toBe(
      'orders of the shop',
    );

    // keep 2 keeps the one just made and the newest before it.
    const r4 = await runner(
      [
        'restore',
        '--storage-dir',
        dir,
        '--id',
        'swap-backup-1',
        '--mode',
        'newDatabaseSwap',
        '--short-id',
        'aaaa04',
        '--keep-previous-databases',
        '2',
      ],
      connEnv(swap.name),
    );
    expect(r4.result).toMatchObject({
      success: true,
      previousDatabasesKept: [`${swap.name}_pre_aaaa04`, `${swap.name}_pre_aaaa03`],
      previousDatabasesDropped: [],
    });
  });
});

// BackupSchedules on the control plane: the operator creates the Jobs, the test kubelet runs their pods.
describe.skipIf(inject('existingCluster'))('retention through BackupSchedules', () => {
  const { batch } = testClients();
  const ns = { shared: '', safety: '', swap: '' };
  const pvs: string[] = [];
  const kubeletLog: string[] = [];
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;

  beforeAll(async () => {
    for (const k of Object.keys(ns) as (keyof typeof ns)[]) ns[k] = await createTestNamespace(`ret-${k}`);
    workDir = mkdtempSync(join(tmpdir(), 'nxt-retention-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator({ env: { WATCH_NAMESPACES: Object.values(ns).join(',') } });
    await op.waitReady();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(`--- test kubelet ---\n${kubeletLog.slice(-40).join('\n')}`);
      console.log(`--- operator ---\n${op.logs().slice(-4000)}`);
    }
  });
  afterAll(async () => {
    await op?.kill();
    await Promise.all(Object.values(ns).map((n) => deleteTestNamespace(n)));
    await kubelet?.stop();
    await deletePvs(pvs);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  /** backup-now=value on `name`; returns the new Job's name once the operator recorded it. */
  async function takeBackup(n: string, name: string, value: string) {
    const before = new Set((await scheduleJobs(n, name)).map((j) => j.metadata!.name));
    await backupNow(n, name, value);
    const job = await eventually('a new Job', async () =>
      (await scheduleJobs(n, name)).find((j) => !before.has(j.metadata!.name)),
    );
    await waitJobRecorded(n, job.metadata!.name!, 120_000);
    return job.metadata!.name!;
  }

  it('two schedules on one claim prune only their own backups and both report the shared claim', async () => {
    const n = ns.shared;
    const db = await createTestDatabase('retshared');
    await fillDatabase(db.url, db.name);
    await createDbSecret(n, 'db', dbSecretData(db.name));
    pvs.push(await createBoundClaim(n, 'shared'));
    const dir = kubelet.pvcDir(n, 'shared');
    for (const name of ['alpha', 'beta']) {
      await applySchedule(n, name, scheduleSpec('db', 'shared', { retention: { keepLast: 1 } }));
      await waitScheduleCondition(n, name, 'Ready', 'True', 'Scheduled');
    }
    const a1 = await takeBackup(n, 'alpha', 'a1');
    const b1 = await takeBackup(n, 'beta', 'b1');
    const a2 = await takeBackup(n, 'alpha', 'a2');
    expect(dumpsIn(dir), "expected alpha's keepLast 1 to delete its own older backup, not beta's").toEqual(
      [a2, b1].map((id) => `${id}.dump`).sort(),
    );
    expect(a1).not.toBe(a2);
    const b2 = await takeBackup(n, 'beta', 'b2');
    expect(dumpsIn(dir), "expected beta's prune to leave alpha's backup alone").toEqual(
      [a2, b2].map((id) => `${id}.dump`).sort(),
    );
    const [alpha, beta] = [await getSchedule(n, 'alpha'), await getSchedule(n, 'beta')];
    expect(alpha.status.backups.map((b: { id: string }) => b.id)).toEqual([a2]);
    expect(beta.status.backups.map((b: { id: string }) => b.id)).toEqual([b2]);

    for (const [self, other] of [
      ['alpha', 'beta'],
      ['beta', 'alpha'],
    ] as const) {
      const s = await waitScheduleCondition(n, self, 'StorageShared', 'True', 'ClaimShared');
      expect(condition(s, 'StorageShared').message).toContain(`also written by BackupSchedule(s) ${other};`);
      const warned = await eventually(`a ClaimShared event on ${self}`, async () =>
        (await eventsFor(n, self)).find((e) => e.reason === 'ClaimShared'),
      );
      expect(warned).toMatchObject({ type: 'Warning' });
    }

    // Moving beta to its own claim ends the sharing for alpha as well.
    pvs.push(await createBoundClaim(n, 'beta-own'));
    await patchSchedule(n, 'beta', {
      spec: { storage: { persistentVolumeClaim: { claimName: 'beta-own' } } },
    });
    await waitScheduleCondition(n, 'alpha', 'StorageShared', 'False', 'ClaimExclusive');
  });

  it('records safety backups as such, and latestVerified passes over them unless named by id', async () => {
    const n = ns.safety;
    const db = await createTestDatabase('retsafety');
    await fillDatabase(db.url, db.name);
    await createDbSecret(n, 'db', dbSecretData(db.name));
    pvs.push(await createBoundClaim(n, 'backups'));
    await applySchedule(n, 'gamma', scheduleSpec('db', 'backups'));
    await waitScheduleCondition(n, 'gamma', 'Ready', 'True', 'Scheduled');
    const good = await takeBackup(n, 'gamma', 'before-the-incident');

    // A plan's safety backup, as the plan's Job makes it: from the schedule's template, with the plan label,
    // controlled by a RollbackPlan that exists and uses this schedule (the schedule records no Job it cannot
    // trust by owner UID).
    const undo = await applyPlan(n, 'undo', {
      scope: 'database',
      dryRun: true,
      targets: { database: { backupScheduleRef: { name: 'gamma' }, backup: { latestVerified: true } } },
    });
    const cron = await batch.readNamespacedCronJob({ namespace: n, name: 'gamma-backup' });
    const tpl = structuredClone(cron.spec!.jobTemplate);
    const labels = { ...tpl.metadata!.labels, 'rollback.nxtnewday.io/plan': 'undo' };
    const pod = tpl.spec!.template;
    pod.metadata = { labels };
    pod.spec!.containers[0]!.args = ['backup', '--storage-dir', '/backups', '--id', '$(BACKUP_ID)'];
    await batch.createNamespacedJob({
      namespace: n,
      body: {
        metadata: {
          name: 'undo-safety',
          labels,
          ownerReferences: [
            {
              apiVersion: 'rollback.nxtnewday.io/v1alpha1',
              kind: 'RollbackPlan',
              name: 'undo',
              uid: undo.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: { ...tpl.spec!, backoffLimit: 0 },
      },
    });
    await waitJobRecorded(n, 'undo-safety', 120_000);
    await eventually('both backups in status', async () =>
      (await getSchedule(n, 'gamma')).status?.backups?.length === 2 ? true : undefined,
    );

    // The next plan asking for the newest verified backup must not get the pre-restore state.
    const plan = (name: string, backup: object) =>
      applyPlan(n, name, {
        scope: 'database',
        dryRun: true,
        targets: { database: { backupScheduleRef: { name: 'gamma' }, backup } },
      });
    await plan('latest', { latestVerified: true });
    await plan('before', { before: new Date(Date.now() + 60_000).toISOString() });
    await plan('named', { id: 'undo-safety' });
    const chosen = async (name: string) =>
      (await waitPlanPhase(n, name, ['DryRunComplete', 'Failed'])).status.dryRunReport?.database?.backupId;
    expect(await chosen('latest'), 'expected latestVerified to skip the safety backup').toBe(good);
    expect(await chosen('before'), 'expected before to skip the safety backup').toBe(good);
    expect(await chosen('named'), 'expected a safety backup named by id to be chosen').toBe('undo-safety');
    expect((await getSchedule(n, 'gamma')).status.backups).toEqual([
      expect.objectContaining({ id: 'undo-safety', purpose: 'safety', verified: true }),
      expect.objectContaining({ id: good, purpose: 'emergency', verified: true }),
    ]);
  });

  it('a newDatabaseSwap plan keeps one previous database and reports kept and dropped ones in status', async () => {
    const n = ns.swap;
    const db = await createTestDatabase('retplan');
    await withClient(db.url, async (c) => {
      await c.query('create table t (id int primary key)');
      await c.query('insert into t select generate_series(1, 100)');
    });
    await createDbSecret(n, 'db', dbSecretData(db.name));
    pvs.push(await createBoundClaim(n, 'backups'));
    await applySchedule(n, 'delta', scheduleSpec('db', 'backups'));
    await waitScheduleCondition(n, 'delta', 'Ready', 'True', 'Scheduled');
    await takeBackup(n, 'delta', 'seed');
    const exists = (name: string) =>
      withClient(pgInfo().url, async (c) => {
        const r = await c.query('select 1 from pg_database where datname = $1', [name]);
        return (r.rowCount ?? 0) > 0;
      });
    const restore = async (plan: string) => {
      await applyPlan(n, plan, {
        scope: 'database',
        targets: {
          database: { backupScheduleRef: { name: 'delta' }, mode: 'newDatabaseSwap', safetyBackup: false },
        },
      });
      const p = await waitPlanPhase(n, plan, ['Succeeded', 'Failed'], 180_000);
      expect(p.status.phase, JSON.stringify(p.status.conditions)).toBe('Succeeded');
      return p.status.database;
    };
    const first = await restore('swap-1');
    expect(first.previousDatabasesKept).toEqual([first.previousDatabase]);
    expect(first.previousDatabasesDropped).toEqual([]);
    const second = await restore('swap-2');
    expect(second, "expected the second swap to drop the first one's previous database").toMatchObject({
      previousDatabasesKept: [second.previousDatabase],
      previousDatabasesDropped: [first.previousDatabase],
    });
    expect(await exists(first.previousDatabase)).toBe(false);
    expect(await exists(second.previousDatabase)).toBe(true);
  });
});
