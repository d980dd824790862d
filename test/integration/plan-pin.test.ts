import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { operatorCommandMap, TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  dumpsIn,
  fillDatabase,
  OPERATOR_TEST_IMAGE,
  patchSchedule,
  scheduleJobs,
  scheduleSpec,
  waitJobRecorded,
  waitScheduleCondition,
} from '../support/backups.js';
import { createTestDatabase, pgInfo, withClient } from '../support/postgres.js';
import { createTestNamespace, deleteTestNamespace, eventually, testClients } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, condition, waitPlanPhase } from '../support/plans.js';

/**
 * A TCP proxy in front of the harness PostgreSQL that holds every connection until released: the plan's
 * restore Job connects through it, so its restore stops after the runner renewed the pin and before
 * pg_restore touches the database. (A table lock, as in rollbackplan-exactly-once, would also stop the
 * emergency backup's pg_dump: its ACCESS SHARE queues behind the restore's waiting DROP.)
 */
async function holdingProxy(target: { host: string; port: number }) {
  const held: Socket[] = [];
  let released = false;
  const forward = (s: Socket) => {
    const up = createConnection(target.port, target.host);
    s.pipe(up).pipe(s);
    const close = () => {
      s.destroy();
      up.destroy();
    };
    s.on('error', close);
    up.on('error', close);
  };
  const server: Server = createServer((s) => {
    if (released) forward(s);
    else {
      held.push(s);
      s.on('error', () => s.destroy());
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    heldCount: () => held.filter((s) => !s.destroyed).length,
    release() {
      released = true;
      for (const s of held.splice(0)) if (!s.destroyed) forward(s);
    },
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

// Issue 9, defect 5 ("prune ignores backups pinned by running plans"), end to end: the operator sets the
// plan's identity on its verify and restore Jobs, the runner pins the backup in storage, and a schedule's
// emergency backup prunes around it while the restore is held; the test kubelet runs every Job pod.
describe.skipIf(inject('existingCluster'))('a RollbackPlan pins its backup against retention', () => {
  let ns = '';
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  let proxy: Awaited<ReturnType<typeof holdingProxy>>;
  const kubeletLog: string[] = [];
  const pvs: string[] = [];
  const PLAN = 'undo';

  beforeAll(async () => {
    ns = await createTestNamespace('pin');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-pin-kubelet-'));
    const pg = pgInfo();
    proxy = await holdingProxy({ host: pg.host, port: pg.port });
    const runner = operatorCommandMap({
      isOperatorImage: (image) => image === OPERATOR_TEST_IMAGE,
      env: { PG_BIN_DIR: pg.binDir },
    });
    kubelet = await TestKubelet.start({
      kubeconfigPath: inject('kubeconfigPath'),
      workDir,
      log: (m) => kubeletLog.push(m),
      // Only the plan's restore Job goes through the proxy; it waits there as long as the test holds it.
      commandMap: (image, command, args, ctx) => {
        const spec = runner(image, command, args, ctx);
        if (!spec || !ctx.pod.startsWith(`${PLAN}-restore-`)) return spec;
        return {
          ...spec,
          env: { ...spec.env, PGHOST: '127.0.0.1', PGPORT: String(proxy.port), PGCONNECT_TIMEOUT: '600' },
        };
      },
    });
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(
        `--- test kubelet ---\n${kubeletLog.slice(-40).join('\n')}\n--- operator ---\n${op.logs().slice(-5000)}`,
      );
    }
  });
  afterAll(async () => {
    proxy?.release();
    await op?.kill();
    await deleteTestNamespace(ns);
    await kubelet?.stop();
    await proxy?.close();
    await deletePvs(pvs);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  /** backup-now=value; the new Job's name (= the backup id) once the operator recorded it. */
  async function takeBackup(value: string) {
    const before = new Set((await scheduleJobs(ns, 'shop-db')).map((j) => j.metadata!.name));
    await backupNow(ns, 'shop-db', value);
    const job = await eventually('a new backup Job', async () =>
      (await scheduleJobs(ns, 'shop-db')).find((j) => !before.has(j.metadata!.name)),
    );
    await waitJobRecorded(ns, job.metadata!.name!, 120_000);
    return job.metadata!.name!;
  }

  it('keeps the backup a running plan restores through an emergency backup that prunes to keepLast 1', async () => {
    const db = await createTestDatabase('pin');
    await fillDatabase(db.url, db.name);
    await createDbSecret(ns, 'db', dbSecretData(db.name));
    pvs.push(await createBoundClaim(ns, 'backups'));
    const dir = kubelet.pvcDir(ns, 'backups');
    const note = (id: number) =>
      withClient(db.url, (c) => c.query(`insert into notes values ($1, 'after a backup')`, [id]));
    const hasNote = async (id: number) =>
      (await withClient(db.url, (c) => c.query('select 1 from notes where id = $1', [id]))).rowCount === 1;

    // Two backups first (no retention yet, so B's own prune keeps A), then keepLast 1.
    await applySchedule(ns, 'shop-db', scheduleSpec('db', 'backups'));
    await waitScheduleCondition(ns, 'shop-db', 'Ready', 'True', 'Scheduled');
    const a = await takeBackup('a');
    await note(500001);
    const b = await takeBackup('b');
    await note(500002);
    expect(dumpsIn(dir)).toEqual([a, b].map((id) => `${id}.dump`).sort());
    await patchSchedule(ns, 'shop-db', { spec: { retention: { keepLast: 1 } } });
    await waitScheduleCondition(
      ns,
      'shop-db',
      'Ready',
      'True',
      'Scheduled',
      30_000,
      (s) => s.status.observedGeneration === 2,
    );

    // The plan restores the older backup A; its restore is held after the runner started.
    const plan = await applyPlan(ns, PLAN, {
      scope: 'database',
      targets: {
        database: { backupScheduleRef: { name: 'shop-db' }, backup: { id: a }, safetyBackup: false },
      },
    });
    const uid = plan.metadata.uid as string;
    await eventually(
      'the restore to be held at its database connection',
      async () => (proxy.heldCount() > 0 ? true : undefined),
      180_000,
      200,
    );
    const pinFile = join(dir, `${a}.pin-${uid}.json`);
    expect(existsSync(pinFile), `expected ${pinFile} while the plan runs`).toBe(true);
    expect(JSON.parse(readFileSync(pinFile, 'utf8'))).toMatchObject({
      id: a,
      holder: uid,
      plan: { name: PLAN, uid },
      job: `${PLAN}-restore`, // written at verify, renewed by the restore Job
    });

    // An emergency backup of the same schedule prunes to one backup: B goes, the pinned A stays.
    const c = await takeBackup('during-the-plan');
    expect(dumpsIn(dir), 'expected the pinned backup A to survive the prune').toEqual(
      [a, c].map((id) => `${id}.dump`).sort(),
    );
    const { core } = testClients();
    const [pod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${c}` })).items;
    const result = JSON.parse(pod!.status!.containerStatuses![0]!.state!.terminated!.message!);
    expect(result, result.message).toMatchObject({ success: true, prunedCount: 1, pruned: [b] });
    expect(result.message).toMatch(/kept 1 pinned by a running plan/);
    expect(existsSync(pinFile), 'expected the pin still held').toBe(true);

    // Released, the plan restores A and drops its pin.
    proxy.release();
    const done = await waitPlanPhase(ns, PLAN, ['Succeeded', 'Failed'], 180_000);
    expect(done.status.phase, JSON.stringify(done.status.conditions)).toBe('Succeeded');
    expect(condition(done, 'DatabaseRestored')?.status).toBe('True');
    expect(done.status.database.backupId).toBe(a);
    expect(await hasNote(500001), 'written after A: gone after restoring A').toBe(false);
    expect(await hasNote(500002)).toBe(false);
    expect(
      readdirSync(dir).filter((f) => f.includes('.pin-')),
      'expected the pin released',
    ).toEqual([]);
  }, 600_000);
});
