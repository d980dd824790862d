import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../env/processes.js';
import type { TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  getSchedule,
  scheduleJobs,
  scheduleSpec,
  startRunnerKubelet,
  waitJobRecorded,
  waitScheduleCondition,
} from '../support/backups.js';
import { createTestDatabase } from '../support/postgres.js';
import { createTestNamespace, deleteTestNamespace, eventually, testClients } from '../support/kube.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import {
  applyPlan,
  condition,
  eventsFor,
  getPlan,
  waitForEvents,
  waitPlanPhase,
  withReasons,
} from '../support/plans.js';
import { deploymentWithHistory } from '../support/workloads.js';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: any;
  at: number;
}

/**
 * A webhook receiver on loopback that records every request. Paths choose the answer: /flaky answers 500
 * twice then 200, /gone 404, /outage 503 while state.outage, /healthz 503 (a failing HTTP check), anything
 * else 200.
 */
async function startReceiver() {
  const received: Received[] = [];
  const state = { outage: false };
  let flaky = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: any;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const path = req.url ?? '';
      received.push({ path, headers: req.headers, raw, body, at: Date.now() });
      if (path.startsWith('/flaky')) return res.writeHead(++flaky <= 2 ? 500 : 200).end('x');
      if (path.startsWith('/gone')) return res.writeHead(404).end('no_service at internal-db.corp');
      if (path.startsWith('/outage')) return res.writeHead(state.outage ? 503 : 200).end('x');
      if (path.startsWith('/healthz')) return res.writeHead(503).end('down');
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    received,
    state,
    base: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    from: (prefix: string) => received.filter((r) => r.path.startsWith(prefix)),
  };
}

// spec.notify end to end: the real operator delivers to a local receiver (loopback is allowed in the test
// operator: HTTP_CHECK_DENY_LOOPBACK=false) with the URLs read from Secrets.
describe('Notifications (RollbackPlan)', () => {
  const { core } = testClients();
  const token = `s3cr3t-${randomBytes(6).toString('hex')}`;
  let ns = '';
  let op: OperatorProcess;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let base = '';
  let received: Received[] = [];
  const from = (prefix: string) => receiver.from(prefix);
  const urlFor = (prefix: string) => `${base}${prefix}/${token}?sig=${token}`;
  const secret = (name: string, url: string) =>
    core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: { url } } });
  const target = (name: string, type: string, extra: object = {}) => ({
    name,
    type,
    urlSecretRef: { name: `hook-${name}`, key: 'url' },
    ...extra,
  });
  const records = async (plan: string, n: number) =>
    eventually(`${n} finished notification records on ${plan}`, async () => {
      const p = await getPlan(ns, plan);
      const rs = p.status?.notifications ?? [];
      return rs.length === n && rs.every((r: any) => r.state !== 'Pending') ? p : undefined;
    });

  beforeAll(async () => {
    ns = await createTestNamespace('notify');
    receiver = await startReceiver();
    received = receiver.received;
    base = receiver.base;
    for (const [name, prefix] of [
      ['web', '/hooks/webhook'],
      ['chat', '/hooks/slack'],
      ['teams', '/hooks/teams'],
      ['flaky', '/flaky'],
      ['gone', '/gone'],
      ['escalate', '/escalate'],
      ['outage', '/outage'],
    ] as const)
      await secret(`hook-${name}`, urlFor(prefix));
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(`--- operator ---\n${op.logs().slice(-6000)}`);
  });
  afterAll(async () => {
    await op?.kill();
    receiver?.server.close();
    await deleteTestNamespace(ns);
  });

  it('sends Started and Succeeded to a webhook, Slack and Teams target, each once, without the secret URL', async () => {
    await deploymentWithHistory(ns, 'web', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'undo-web', {
      scope: 'app',
      reason: '5xx after the 14:00 release',
      targets: { deployments: [{ name: 'web' }] },
      notify: [target('web', 'webhook'), target('chat', 'slack'), target('teams', 'msteams')],
    });
    const done = await waitPlanPhase(ns, 'undo-web', ['Succeeded', 'Failed']);
    expect(done.status.phase, JSON.stringify(done.status.conditions)).toBe('Succeeded');
    const plan = await records('undo-web', 6);
    const uid = plan.metadata.uid;
    for (const r of plan.status.notifications)
      expect(r, `record ${r.id}`).toMatchObject({ state: 'Delivered', attempts: 1 });
    expect(plan.status.notifications.map((r: any) => r.id).sort()).toEqual(
      ['chat', 'teams', 'web'].flatMap((t) => [`${t}/Started`, `${t}/Succeeded`]).sort(),
    );
    expect(condition(plan, 'NotificationsDelivered')).toMatchObject({ status: 'True', reason: 'Delivered' });

    for (const [prefix, t] of [
      ['/hooks/webhook', 'web'],
      ['/hooks/slack', 'chat'],
      ['/hooks/teams', 'teams'],
    ] as const) {
      const got = from(prefix);
      // Each event once: the receiver sees no duplicate (the idempotency id tells them apart).
      expect(got.map((r) => r.headers['x-nxt-notification-id']).sort(), prefix).toEqual([
        `${uid}/${t}/Started`,
        `${uid}/${t}/Succeeded`,
      ]);
      for (const r of got) expect(r.headers['content-type']).toMatch(/^application\/json/);
    }
    const webhook = from('/hooks/webhook').map((r) => r.body);
    const succeeded = webhook.find((b) => b.event === 'Succeeded');
    expect(succeeded).toMatchObject({
      version: 'nxt.rollback/v1',
      kind: 'RollbackPlan',
      event: 'Succeeded',
      namespace: ns,
      name: 'undo-web',
      uid,
      phase: 'Succeeded',
      target: 'web',
      title: `Rollback completed: ${ns}/undo-web`,
    });
    expect(succeeded.text).toMatch(/RTO objective 10m met/);
    expect(succeeded.facts).toEqual(
      expect.arrayContaining([
        { title: 'Plan', value: 'undo-web' },
        { title: 'Scope', value: 'app' },
        { title: 'Changed', value: 'Deployment web rolled back' },
      ]),
    );
    expect(webhook.find((b) => b.event === 'Started').text).toMatch(/5xx after the 14:00 release/);
    for (const r of from('/hooks/slack')) {
      expect(r.body.text).toMatch(/^Rollback (started|completed)/);
      expect(r.body.blocks[0]).toMatchObject({ type: 'header', text: { type: 'plain_text' } });
      expect(r.body.blocks.find((b: any) => b.fields)?.fields).toEqual(
        expect.arrayContaining([{ type: 'mrkdwn', text: '*Plan*\nundo-web' }]),
      );
    }
    for (const r of from('/hooks/teams')) {
      expect(r.body.type).toBe('message');
      const [a] = r.body.attachments;
      expect(a.contentType).toBe('application/vnd.microsoft.card.adaptive');
      expect(a.content).toMatchObject({ type: 'AdaptiveCard', version: '1.4' });
      expect(a.content.body[0]).toMatchObject({ type: 'TextBlock', weight: 'Bolder' });
      expect(a.content.body.find((b: any) => b.type === 'FactSet').facts).toEqual(
        expect.arrayContaining([{ title: 'Plan', value: 'undo-web' }]),
      );
    }
    // The URL (and the token in it) is nowhere: not in a payload, status, event or log.
    for (const r of received) expect(r.raw, r.path).not.toContain(token);
    expect(JSON.stringify(plan)).not.toContain(token);
    // The absence is read once every Event of the run is there: the six NotificationSent ones come last.
    const events = await waitForEvents(
      ns,
      'undo-web',
      (all) =>
        withReasons('Succeeded')(all) && all.filter((e) => e.reason === 'NotificationSent').length >= 6,
      'the Succeeded Event and 6 NotificationSent Events',
    );
    expect(JSON.stringify(events)).not.toContain(token);
    expect(op.logs()).not.toContain(token);
    expect(
      events
        .filter((e) => e.reason === 'NotificationSent')
        .map((e) => e.message)
        .sort(),
    ).toEqual([
      'sent Started to chat (slack)',
      'sent Started to teams (msteams)',
      'sent Started to web (webhook)',
      'sent Succeeded to chat (slack)',
      'sent Succeeded to teams (msteams)',
      'sent Succeeded to web (webhook)',
    ]);
    for (const type of ['webhook', 'slack', 'msteams'])
      for (const event of ['Started', 'Succeeded'])
        expect(
          await metricValue(op.metricsUrl, 'nxt_notifications_total', { type, event, result: 'delivered' }),
          `${type} ${event}`,
        ).toBe(1);
  });

  it('retries a failing receiver with backoff and a missing Secret until it appears, fails a 404 for good, and says so without the body', async () => {
    await deploymentWithHistory(ns, 'api', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'undo-api', {
      scope: 'app',
      targets: { deployments: [{ name: 'api' }] },
      notify: [
        target('flaky', 'webhook', { events: ['Started'] }),
        target('gone', 'slack', { events: ['Started'] }),
        {
          ...target('nosecret', 'msteams', { events: ['Started'] }),
          urlSecretRef: { name: 'absent', key: 'url' },
        },
      ],
    });
    // The Secret arrives after the plan (GitOps): the record waits for it, Pending, retried.
    const waiting = await eventually('the record of the missing Secret retried, Pending', async () => {
      const p = await getPlan(ns, 'undo-api');
      const r = (p.status?.notifications ?? []).find((x: any) => x.id === 'nosecret/Started');
      return r?.state === 'Pending' && r.attempts >= 1 ? r : undefined;
    });
    expect(waiting.message).toMatch(
      /^Secret "absent" .* not found in namespace .* \(attempt \d+; tried again\)$/,
    );
    expect(Date.parse(waiting.nextAttemptAt)).toBeGreaterThan(Date.parse(waiting.lastAttemptAt));
    await secret('absent', urlFor('/hooks/late'));
    const plan = await records('undo-api', 3);
    const byId = Object.fromEntries(plan.status.notifications.map((r: any) => [r.id, r]));
    expect(byId['flaky/Started']).toMatchObject({ state: 'Delivered', attempts: 3 });
    expect(from('/flaky').length, '500, 500, then 200').toBe(3);
    const gaps = from('/flaky').map((r, i, all) => (i ? r.at - all[i - 1]!.at : 0));
    expect(gaps[1], 'first backoff ~1s').toBeGreaterThanOrEqual(700);
    expect(gaps[2], 'second backoff ~2s').toBeGreaterThanOrEqual(1500);
    expect(byId['gone/Started']).toMatchObject({ state: 'Failed', attempts: 1 });
    expect(byId['gone/Started'].message).toBe(
      'POST to the URL in Secret "hook-gone" key "url": HTTP 404 (not retried)',
    );
    expect(from('/gone').length, 'a 404 is not retried').toBe(1);
    expect(byId['nosecret/Started']).toMatchObject({ state: 'Delivered' });
    expect(byId['nosecret/Started'].attempts).toBeGreaterThanOrEqual(2);
    expect(from('/hooks/late')).toHaveLength(1);
    expect(condition(plan, 'NotificationsDelivered')).toMatchObject({
      status: 'False',
      reason: 'DeliveryFailed',
    });
    const failed = (await waitForEvents(ns, 'undo-api', withReasons('NotificationFailed'))).filter(
      (e) => e.reason === 'NotificationFailed',
    );
    expect(failed.map((e) => e.type)).toEqual(['Warning']);
    expect(failed.map((e) => e.message).join('\n')).toMatch(/Started to gone \(slack\) failed: .*HTTP 404/);
    // Nothing of the receiver's answer reaches status or events (it could show a plan author an internal service).
    // Not racy: the Event that would carry the answer (NotificationFailed) was waited for above.
    const everything = JSON.stringify(plan) + JSON.stringify(await eventsFor(ns, 'undo-api'));
    expect(everything).not.toContain('no_service');
    expect(everything).not.toContain('127.0.0.1');
    expect(
      await metricValue(op.metricsUrl, 'nxt_notifications_total', {
        type: 'slack',
        event: 'Started',
        result: 'failed',
      }),
    ).toBe(1);
    expect(
      await metricValue(op.metricsUrl, 'nxt_notifications_total', {
        type: 'webhook',
        event: 'Started',
        result: 'delivered',
      }),
    ).toBe(2);
    for (const r of received) expect(r.raw).not.toContain(token);
    expect(JSON.stringify(plan)).not.toContain(token);
  });

  it('re-sends a notification a killed operator left Pending, from the next operator, with the same id', async () => {
    receiver.state.outage = true;
    await deploymentWithHistory(ns, 'rs', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'undo-rs', {
      scope: 'app',
      targets: { deployments: [{ name: 'rs' }] },
      notify: [target('outage', 'webhook', { events: ['Started'] })],
    });
    const pending = await eventually(
      'a Pending record with a failed attempt and the next one scheduled',
      async () => {
        const p = await getPlan(ns, 'undo-rs');
        const r = p.status?.notifications?.[0];
        return r?.state === 'Pending' && r.attempts >= 1 && r.nextAttemptAt ? p : undefined;
      },
    );
    await op.kill('SIGKILL'); // mid-backoff: the delivery task dies with the process
    const attemptsBefore = from('/outage').length;
    receiver.state.outage = false;
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
    const plan = await records('undo-rs', 1);
    // The schedule in status is resumed: the attempt count goes on from what the first operator recorded.
    expect(plan.status.notifications[0]).toMatchObject({ id: 'outage/Started', state: 'Delivered' });
    expect(plan.status.notifications[0].attempts).toBeGreaterThan(pending.status.notifications[0].attempts);
    expect(plan.status.notifications[0].attempts).toBeLessThanOrEqual(attemptsBefore + 1);
    expect(plan.status.notifications[0].firstAttemptAt).toBe(pending.status.notifications[0].firstAttemptAt);
    const ids = from('/outage').map((r) => r.headers['x-nxt-notification-id']);
    expect(ids.length, 'the attempts of the first operator, then one from the second').toBe(
      attemptsBefore + 1,
    );
    expect(new Set(ids), 'one idempotency id for all of them').toEqual(
      new Set([`${pending.metadata.uid}/outage/Started`]),
    );
  });

  it('escalates a plan still unfinished `after` its start, once', async () => {
    await deploymentWithHistory(ns, 'slow', ['nginx:1.25', 'nginx:1.26']);
    // Held in post-validation: its HTTP check keeps failing until validation.timeout.
    await applyPlan(ns, 'undo-slow', {
      scope: 'app',
      severity: 'high',
      targets: { deployments: [{ name: 'slow' }] },
      validation: {
        timeout: '1m',
        http: [{ url: `${base}/healthz`, expectStatus: 200, retries: 100, period: '1s' }],
      },
      notify: [target('escalate', 'webhook', { after: '5s' })],
    });
    const got = await eventually('the escalation', async () => from('/escalate')[0], 30_000);
    const plan = await getPlan(ns, 'undo-slow');
    expect(plan.status.phase).toBe('Running');
    expect(got.at - Date.parse(plan.status.startedAt)).toBeGreaterThanOrEqual(5000);
    expect(got.at - Date.parse(plan.status.startedAt), 'on time, not at a 30s resync').toBeLessThan(15_000);
    expect(got.body).toMatchObject({
      event: 'Escalated',
      severity: 'high',
      phase: 'Running',
      target: 'escalate',
    });
    expect(got.body.title).toBe(`ESCALATION: rollback ${ns}/undo-slow not finished after 5s`);
    await new Promise((r) => setTimeout(r, 7000));
    expect(from('/escalate').length, 'escalated once, and only escalated').toBe(1);
    const later = await getPlan(ns, 'undo-slow');
    expect(later.status.notifications).toEqual([
      expect.objectContaining({ id: 'escalate/Escalated', state: 'Delivered', attempts: 1 }),
    ]);
  });
});

// A BackupSchedule's failed backup, really run: the test kubelet runs the runner against a closed port.
describe.skipIf(inject('existingCluster'))('Notifications (BackupSchedule)', () => {
  const { core } = testClients();
  const token = `s3cr3t-${randomBytes(6).toString('hex')}`;
  let ns = '';
  let workDir = '';
  let kubelet: TestKubelet;
  let op: OperatorProcess;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const pvs: string[] = [];

  beforeAll(async () => {
    ns = await createTestNamespace('notify-bks');
    receiver = await startReceiver();
    workDir = mkdtempSync(join(tmpdir(), 'nxt-notify-kubelet-'));
    kubelet = await startRunnerKubelet(workDir, () => {});
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    await op.waitReady();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(`--- operator ---\n${op.logs().slice(-6000)}`);
  });
  afterAll(async () => {
    await op?.kill();
    receiver?.server.close();
    await deleteTestNamespace(ns);
    await kubelet?.stop();
    await deletePvs(pvs);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('sends BackupFailed once for the run that failed, keyed by its Job', async () => {
    const db = await createTestDatabase('notify');
    await createDbSecret(ns, 'db', dbSecretData(db.name, await freePort())); // nothing listens there
    pvs.push(await createBoundClaim(ns, 'backups'));
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'hook' }, stringData: { url: `${receiver.base}/backups/${token}` } },
    });
    const ops = { name: 'ops', type: 'webhook', urlSecretRef: { name: 'hook', key: 'url' } };
    await applySchedule(ns, 'down', scheduleSpec('db', 'backups', { notify: [ops] }));
    await waitScheduleCondition(ns, 'down', 'Ready', 'True', 'Scheduled');
    await backupNow(ns, 'down', 'now');
    const job = await eventually('the backup Job', async () => (await scheduleJobs(ns, 'down'))[0]);
    const name = job.metadata!.name!;
    await waitJobRecorded(ns, name, 120_000);
    const s = await eventually('the BackupFailed record delivered', async () => {
      const got = await getSchedule(ns, 'down');
      return got.status?.notifications?.find((r: any) => r.state === 'Delivered') ? got : undefined;
    });
    expect(s.status.notifications).toEqual([
      expect.objectContaining({ id: `ops/BackupFailed/${name}`, event: 'BackupFailed', state: 'Delivered' }),
    ]);
    const [got] = receiver.from('/backups');
    expect(receiver.from('/backups')).toHaveLength(1);
    expect(got!.headers['x-nxt-notification-id']).toBe(`${s.metadata.uid}/ops/BackupFailed/${name}`);
    expect(got!.body).toMatchObject({
      version: 'nxt.rollback/v1',
      kind: 'BackupSchedule',
      event: 'BackupFailed',
      namespace: ns,
      name: 'down',
      title: `Backup FAILED: ${ns}/down`,
    });
    expect(got!.body.text).toContain(`backup Job ${name} failed: DatabaseUnreachable`);
    expect(got!.body.facts).toContainEqual({ title: 'Run', value: name });
    // No backup yet is not an RPO breach: nothing else was sent, and nothing carries the URL.
    expect(got!.raw).not.toContain(token);
    expect(JSON.stringify(s)).not.toContain(token);
    await waitForEvents(ns, 'down', withReasons('NotificationSent'));
    expect(
      await metricValue(op.metricsUrl, 'nxt_notifications_total', {
        type: 'webhook',
        event: 'BackupFailed',
        result: 'delivered',
      }),
    ).toBe(1);
  });
});
