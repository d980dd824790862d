import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  scheduleSpec,
  startRunnerKubelet,
  waitScheduleCondition,
} from '../support/backups.js';
import { parseJson, runCli } from '../support/cli.js';
import { createTestNamespace, deleteTestNamespace, kubectl, testClients } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { getPlan } from '../support/plans.js';
import { createTestDatabase, withClient } from '../support/postgres.js';
import { deploymentWithHistory, imageOf } from '../support/workloads.js';

// `nxt-rollback emergency` for the scopes beyond app, end to end: the CLI takes a real backup (backup now),
// the "bad release" changes data, a Deployment and a flag, and one `emergency --scope full` command restores
// the database, rolls the Deployment back and disables the flag, as the operator does it (runner Jobs on the
// test kubelet against the harness PostgreSQL). Then `--scope feature` and `--scope database` on their own.
describe.skipIf(inject('existingCluster'))('CLI: emergency --scope full, feature and database', () => {
  const { core } = testClients();
  let ns = '';
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  const kubeletLog: string[] = [];
  const pvs: string[] = [];
  let db: { name: string; url: string };

  const count = (sql: string) => withClient(db.url, async (c) => Number((await c.query(sql)).rows[0].n));
  const flag = async (cm: string, key: string) =>
    (await core.readNamespacedConfigMap({ name: cm, namespace: ns })).data?.[key];

  beforeAll(async () => {
    ns = await createTestNamespace('cli-scopes');
    workDir = mkdtempSync(join(tmpdir(), 'nxt-cli-scopes-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
    db = await createTestDatabase('cliscopes');
    await withClient(db.url, async (c) => {
      await c.query('create table orders (id int primary key, total int not null)');
      await c.query('insert into orders select g, g from generate_series(1, 500) g');
    });
    await createDbSecret(ns, 'db', dbSecretData(db.name));
    pvs.push(await createBoundClaim(ns, 'backups'));
    await applySchedule(ns, 'shop-db', scheduleSpec('db', 'backups', { schedule: '0 3 * * *' }));
    await waitScheduleCondition(ns, 'shop-db', 'Ready', 'True', 'Scheduled');
    await deploymentWithHistory(ns, 'checkout', ['nginx:1.25', 'nginx:1.26']);
    await kubectl('-n', ns, 'create', 'configmap', 'flags', '--from-literal=new-checkout=true');
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      console.log(`--- test kubelet ---\n${kubeletLog.slice(-30).join('\n')}`);
      console.log(`--- operator ---\n${op.logs().slice(-4000)}`);
    }
  });
  afterAll(async () => {
    await op?.kill();
    if (ns) await deleteTestNamespace(ns);
    await kubelet?.stop();
    await deletePvs(pvs);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('full scope: one command restores the backup, rolls the Deployment back and disables the flag', async () => {
    const backup = await runCli(['-n', ns, 'backup', 'now', 'shop-db', '--wait', '--timeout', '120s']);
    expect(backup.code, backup.stderr).toBe(0);
    // The bad release: rows deleted, a flag switched on, a new image.
    await withClient(db.url, (c) => c.query('delete from orders where id > 100'));
    await kubectl('-n', ns, 'set', 'image', 'deployment/checkout', 'app=nginx:1.27');
    expect(await count('select count(*) as n from orders')).toBe(100);

    const r = await runCli(
      [
        '-n',
        ns,
        'emergency',
        '--scope',
        'full',
        'checkout',
        '--schedule',
        'shop-db',
        '--flags',
        'flags',
        '--disable',
        'new-checkout',
        '--reason',
        'orders lost after 1.27',
        '--name',
        'full-emergency',
        '--timeout',
        '4m',
        '-o',
        'json',
      ],
      { timeoutMs: 300_000 },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = parseJson(r);
    expect(out).toMatchObject({ name: 'full-emergency', phase: 'Succeeded' });
    expect(await count('select count(*) as n from orders'), 'the rows are back').toBe(500);
    expect(await imageOf(ns, 'checkout')).toBe('nginx:1.26');
    expect(await flag('flags', 'new-checkout')).toBe('false');
    const plan = await getPlan(ns, 'full-emergency');
    expect(plan.spec).toMatchObject({
      scope: 'full',
      severity: 'critical',
      reason: 'orders lost after 1.27',
    });
    expect(plan.status.database).toMatchObject({ backupScheduleRef: 'shop-db' });
    expect(plan.status.database.safetyBackupId, 'the pre-restore state was backed up first').toBeTruthy();
    expect(plan.status.featureFlags).toEqual([{ key: 'new-checkout', previous: 'true', now: 'false' }]);
  });

  it('feature scope alone switches a flag off and reports it', async () => {
    await kubectl('-n', ns, 'create', 'configmap', 'flags2', '--from-literal=beta=on');
    const r = await runCli([
      '-n',
      ns,
      'emergency',
      '--scope',
      'feature',
      '--flags',
      'flags2',
      '--disable',
      'beta',
      '--timeout',
      '90s',
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Succeeded in /);
    expect(await flag('flags2', 'beta')).toBe('false');
  });

  it('database scope alone restores the newest verified backup', async () => {
    await withClient(db.url, (c) => c.query('update orders set total = 0'));
    const r = await runCli(
      ['-n', ns, 'emergency', '--scope', 'database', '--schedule', 'shop-db', '--timeout', '4m'],
      { timeoutMs: 300_000 },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(await count('select count(*) as n from orders where total = 0'), 'the update is undone').toBe(0);
  });
});
