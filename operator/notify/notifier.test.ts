import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import winston from 'winston';
import { BackgroundTasks } from '../kube/background-tasks.js';
import { KubeApiError } from '../kube/errors.js';
import type { KubeObject } from '../kube/rest.js';
import { createMetrics } from '../metrics.js';
import { planNotificationsDue, scheduleNotificationsDue, type NotificationRecord } from './due.js';
import { PLAN_NOTIFICATIONS } from './kinds.js';
import {
  admit,
  afterAttempt,
  deliveredCondition,
  MAX_RECORDS,
  Notifier,
  type NotifyKind,
} from './notifier.js';
import { Semaphore } from './semaphore.js';
import { DEFAULT_RETRY, type RetryOptions } from './sender.js';

const log = winston.createLogger({ silent: true });

// The bookkeeping with real background tasks and a real receiver; only the Secret read is stubbed.
describe('Notifier', () => {
  let server: Server;
  let base = '';
  const hits: string[] = [];
  let inFlight = 0;
  let peak = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.push(String(req.headers['x-nxt-notification-id']));
      inFlight++;
      peak = Math.max(peak, inFlight);
      const delay = req.url?.includes('/slow') ? 300 : 0;
      setTimeout(() => {
        inFlight--;
        res.writeHead(200).end();
      }, delay);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => server.close());

  function setup(opts: { retry?: RetryOptions; slots?: Semaphore; kind?: NotifyKind } = {}) {
    const tasks = new BackgroundTasks(log);
    const handlers: {
      onUpdate?: (o: KubeObject, n: KubeObject) => void;
      onDelete?: (o: KubeObject) => void;
    }[] = [];
    const wakes: [string, number][] = [];
    let woken: () => void = () => {};
    const secrets = new Map<string, string>([
      ['hook', `${base}/hook`],
      ['slow', `${base}/slow`],
    ]);
    const client = {
      request: async (_m: string, path: string) => {
        const name = path.split('/').pop()!;
        const url = secrets.get(name);
        if (url) return { data: { url: Buffer.from(url).toString('base64') } };
        throw new KubeApiError(404, 'NotFound', 'not found', 'GET', path);
      },
    };
    const metrics = createMetrics({ defaultMetrics: false });
    const notifier = new Notifier(
      {
        client: client as never,
        tasks,
        metrics,
        log,
        config: {
          HTTP_CHECK_DENY_LINK_LOCAL: true,
          HTTP_CHECK_DENY_LOOPBACK: false,
          HTTP_CHECK_DENIED_CIDRS: [],
        } as never,
      },
      { addHandler: (h: never) => handlers.push(h) } as never,
      opts.kind ?? PLAN_NOTIFICATIONS,
      (key, ms) => {
        wakes.push([key, ms]);
        if (ms === 0) woken();
      },
      { ...(opts.retry ? { retry: opts.retry } : {}), slots: opts.slots ?? new Semaphore(8) },
    );
    const nextWake = () => new Promise<void>((r) => (woken = r));
    return { notifier, tasks, handlers, wakes, nextWake, metrics, secrets };
  }
  const plan = (notify: object[], uid = 'uid-1', name = 'p'): KubeObject => ({
    metadata: { name, namespace: 'ns', uid, generation: 1, creationTimestamp: '2026-11-29T09:00:00Z' },
    spec: { scope: 'app', notify },
  });
  const hook = (name: string, extra: object = {}) => ({
    name,
    type: 'webhook',
    urlSecretRef: { name: 'hook', key: 'url' },
    ...extra,
  });
  const later = (ms: number) => new Date(Date.now() + ms);

  it('adds a Pending record, delivers it in the background, then records Delivered with an Event', async () => {
    const { notifier, nextWake, metrics } = setup();
    const obj = plan([hook('a', { events: ['Started'] })]);
    const status: any = { phase: 'Running', startedAt: '2026-11-29T09:00:01Z' };
    const events: string[] = [];
    const woke = nextWake();
    notifier.sync(obj, status, new Date(), (_t, r, m) => events.push(`${r}: ${m}`));
    expect(status.notifications).toEqual([
      { id: 'a/Started', target: 'a', event: 'Started', state: 'Pending', attempts: 0 },
    ]);
    expect(status.conditions[0]).toMatchObject({ type: 'NotificationsDelivered', status: 'Unknown' });
    await woke; // the task finished and woke the plan
    notifier.sync(obj, status, new Date(), (_t, r, m) => events.push(`${r}: ${m}`));
    expect(status.notifications[0]).toMatchObject({
      id: 'a/Started',
      state: 'Delivered',
      attempts: 1,
      message: 'POST to the URL in Secret "hook" key "url": HTTP 200',
    });
    expect(events).toEqual(['NotificationSent: sent Started to a (webhook)']);
    expect(hits).toContain('uid-1/a/Started');
    expect((await metrics.notificationsTotal.get()).values).toEqual([
      { labels: { type: 'webhook', event: 'Started', result: 'delivered' }, value: 1 },
    ]);
    // Asked again (every later status write): nothing is sent twice.
    const before = hits.length;
    notifier.sync(obj, status, new Date(), () => events.push('again'));
    await new Promise((r) => setTimeout(r, 50));
    expect(hits.length).toBe(before);
    expect(events).toHaveLength(1);
  });

  it('sends a Pending record again after a restart (its task is gone): at least once, same id', async () => {
    const first = setup();
    const obj = plan([hook('b', { events: ['Started'] })], 'uid-2');
    const status: any = { phase: 'Running', startedAt: '2026-11-29T09:00:01Z' };
    first.notifier.sync(obj, status, new Date(), () => {});
    first.tasks.stop(); // the operator process ends before anything was sent
    await new Promise((r) => setTimeout(r, 50));
    expect(hits.filter((h) => h === 'uid-2/b/Started')).toEqual([]);
    const restarted = setup();
    const woke = restarted.nextWake();
    restarted.notifier.sync(obj, structuredClone(status), new Date(), () => {});
    await woke;
    expect(hits.filter((h) => h === 'uid-2/b/Started')).toEqual(['uid-2/b/Started']);
  });

  it('retries a missing Secret (GitOps may create it later) and delivers once it is there', async () => {
    const { notifier, nextWake, wakes, secrets } = setup();
    const obj = plan([
      { ...hook('c', { events: ['Started'] }), urlSecretRef: { name: 'later', key: 'url' } },
    ]);
    const status: any = { phase: 'Running', startedAt: '2026-11-29T09:00:01Z' };
    const events: string[] = [];
    let woke = nextWake();
    notifier.sync(obj, status, new Date(), () => {});
    await woke;
    const r = notifier.sync(obj, status, new Date(), (t, why, m) => events.push(`${t} ${why}: ${m}`));
    const rec = status.notifications[0];
    expect(rec).toMatchObject({ state: 'Pending', attempts: 1 });
    expect(rec.message).toBe(
      'Secret "later" (urlSecretRef of target c) not found in namespace ns (attempt 1; tried again)',
    );
    expect(Date.parse(rec.nextAttemptAt) - Date.parse(rec.lastAttemptAt)).toBeGreaterThanOrEqual(1000);
    expect(events, 'no Event for an attempt that will be retried').toEqual([]);
    // The wait is a requeue, not a sleep: the object is woken when the next attempt is due.
    expect(r.requeueAfterMs).toBeGreaterThan(0);
    expect(wakes.at(-1)![1]).toBe(r.requeueAfterMs);
    // Before then, nothing is attempted.
    notifier.sync(obj, status, new Date(), () => {});
    expect(status.notifications[0].attempts).toBe(1);
    secrets.set('later', `${base}/hook`);
    woke = nextWake();
    notifier.sync(obj, status, later(5000), () => {});
    await woke;
    notifier.sync(obj, status, later(5000), (t, why, m) => events.push(`${t} ${why}: ${m}`));
    expect(status.notifications[0]).toMatchObject({ state: 'Delivered', attempts: 2 });
    expect(status.notifications[0].firstAttemptAt).toBe(rec.firstAttemptAt);
    expect(events).toEqual(['Normal NotificationSent: sent Started to c (webhook) after 2 attempts']);
  });

  it('fails a record once the retry span is over, with one Event', async () => {
    const { notifier, nextWake } = setup({ retry: { ...DEFAULT_RETRY, spanMs: 1500, random: () => 0.5 } });
    const obj = plan([{ ...hook('c', { events: ['Started'] }), urlSecretRef: { name: 'nope', key: 'url' } }]);
    const status: any = { phase: 'Running', startedAt: '2026-11-29T09:00:01Z' };
    const events: string[] = [];
    let woke = nextWake();
    notifier.sync(obj, status, new Date(), () => {});
    await woke;
    notifier.sync(obj, status, new Date(), () => {});
    expect(status.notifications[0]).toMatchObject({ state: 'Pending', attempts: 1 });
    woke = nextWake();
    notifier.sync(obj, status, later(60_000), () => {});
    await woke;
    notifier.sync(obj, status, later(60_000), (t, r, m) => events.push(`${t} ${r}: ${m}`));
    expect(status.notifications[0]).toMatchObject({ state: 'Failed', attempts: 2 });
    expect(status.notifications[0].nextAttemptAt).toBeUndefined();
    expect(status.notifications[0].message).toMatch(
      /^Secret "nope" \(urlSecretRef of target c\) not found in namespace ns \(gave up after 2 attempts over 1 min\)$/,
    );
    expect(events).toEqual([
      `Warning NotificationFailed: Started to c (webhook) failed: ${status.notifications[0].message}`,
    ]);
    expect(status.conditions[0]).toMatchObject({
      type: 'NotificationsDelivered',
      status: 'False',
      reason: 'DeliveryFailed',
    });
  });

  it('resumes the retry schedule kept in status (after a restart): waits for nextAttemptAt, then attempt n+1', async () => {
    const { notifier, nextWake, wakes } = setup();
    const obj = plan([hook('r', { events: ['Started'] })], 'uid-r');
    const now = new Date();
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
    const pending: NotificationRecord = {
      id: 'r/Started',
      target: 'r',
      event: 'Started',
      state: 'Pending',
      attempts: 3,
      firstAttemptAt: iso(now.getTime() - 10_000),
      lastAttemptAt: iso(now.getTime() - 2000),
      nextAttemptAt: iso(now.getTime() + 60_000),
    };
    const status: any = { phase: 'Running', startedAt: '2026-11-29T09:00:01Z', notifications: [pending] };
    const r = notifier.sync(obj, status, now, () => {});
    expect(r.requeueAfterMs).toBeGreaterThan(55_000);
    expect(wakes).toHaveLength(1);
    await new Promise((res) => setTimeout(res, 50));
    expect(hits).not.toContain('uid-r/r/Started');
    const woke = nextWake();
    notifier.sync(obj, status, new Date(now.getTime() + 61_000), () => {});
    await woke;
    notifier.sync(obj, status, new Date(now.getTime() + 61_000), () => {});
    expect(status.notifications[0]).toMatchObject({
      state: 'Delivered',
      attempts: 4,
      firstAttemptAt: pending.firstAttemptAt,
    });
    expect(hits.filter((h) => h === 'uid-r/r/Started')).toHaveLength(1);
  });

  it('schedules a wake-up for an escalation that is not due yet', () => {
    const { notifier, wakes } = setup();
    const obj = plan([hook('cto', { after: '30m' })]);
    const now = new Date('2026-11-29T09:10:00Z');
    const r = notifier.sync(obj, { phase: 'Running', startedAt: '2026-11-29T09:00:00Z' }, now, () => {});
    expect(r).toEqual({ requeueAfterMs: 20 * 60_000 + 100 });
    expect(wakes).toEqual([['ns/p', 20 * 60_000 + 100]]);
  });

  it('leaves status alone when the plan has no targets', () => {
    const { notifier } = setup();
    const status: any = { phase: 'Succeeded', startedAt: 'x' };
    notifier.sync(plan([]), status, new Date(), () => {});
    expect(status).toEqual({ phase: 'Succeeded', startedAt: 'x' });
  });

  it('drops the task of a record once the record is durably final', async () => {
    const { notifier, tasks, handlers, nextWake } = setup();
    const obj = plan([hook('d', { events: ['Started'] })], 'uid-4');
    const status: any = { phase: 'Running', startedAt: '2026-11-29T09:00:01Z' };
    const woke = nextWake();
    notifier.sync(obj, status, new Date(), () => {});
    await woke;
    notifier.sync(obj, status, new Date(), () => {});
    const ensure = (tasks as any).tasks as Map<string, unknown>;
    expect(ensure.size).toBe(1);
    handlers[0]!.onUpdate!(obj, { ...obj, status });
    expect(ensure.size).toBe(0);
  });

  it('does not send again from a stale copy of the object read before the informer saw the record', async () => {
    const { notifier, handlers, nextWake } = setup();
    const obj = plan([hook('st', { events: ['Started'] })], 'uid-stale');
    const status: any = { phase: 'Running', startedAt: '2026-11-29T09:00:01Z' };
    const woke = nextWake();
    notifier.sync(obj, status, new Date(), () => {});
    const stale = structuredClone(status); // Pending, attempts 0: what a reconcile that began now holds
    await woke;
    notifier.sync(obj, status, new Date(), () => {});
    expect(status.notifications[0]).toMatchObject({ state: 'Delivered', attempts: 1 });
    handlers[0]!.onUpdate!(obj, { ...obj, status }); // the informer sees the Delivered record: task dropped
    // ... and then the reconcile that began earlier writes its (stale) status.
    notifier.sync(obj, stale, new Date(), () => {});
    expect(stale.notifications[0]).toMatchObject({ state: 'Delivered', attempts: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(hits.filter((h) => h === 'uid-stale/st/Started')).toHaveLength(1);
  });

  it('lets an attempt in flight finish when its object is deleted, then drops it', async () => {
    const { notifier, tasks, handlers, metrics, wakes } = setup();
    const obj = plan(
      [{ ...hook('del', { events: ['Started'] }), urlSecretRef: { name: 'slow', key: 'url' } }],
      'uid-del',
    );
    const status: any = { phase: 'Running', startedAt: '2026-11-29T09:00:01Z' };
    notifier.sync(obj, status, new Date(), () => {});
    const ensure = (tasks as any).tasks as Map<string, unknown>;
    // Deleted while the receiver is still answering (it takes 300 ms).
    await new Promise((r) => setTimeout(r, 100));
    expect(tasks.running()).toBe(1);
    handlers[0]!.onDelete!(obj);
    await new Promise((r) => setTimeout(r, 500));
    expect(hits).toContain('uid-del/del/Started');
    expect((await metrics.notificationsTotal.get()).values, 'the attempt ran to its end').toEqual([
      { labels: { type: 'webhook', event: 'Started', result: 'delivered' }, value: 1 },
    ]);
    expect(ensure.size, 'and was dropped after').toBe(0);
    expect(
      wakes.filter(([, ms]) => ms === 0),
      'a deleted object is not woken',
    ).toEqual([]);
  });

  it('bounds the attempts in flight across objects by its slots', async () => {
    const slots = new Semaphore(2);
    const { notifier, nextWake } = setup({ slots });
    peak = 0;
    const objs = Array.from({ length: 6 }, (_, i) =>
      plan(
        [{ ...hook('s', { events: ['Started'] }), urlSecretRef: { name: 'slow', key: 'url' } }],
        `uid-slot${i}`,
        `p${i}`,
      ),
    );
    const statuses = objs.map(() => ({ phase: 'Running', startedAt: '2026-11-29T09:00:01Z' }) as any);
    objs.forEach((o, i) => notifier.sync(o, statuses[i], new Date(), () => {}));
    await new Promise((r) => setTimeout(r, 50));
    expect(slots.active).toBe(2);
    for (let round = 0; round < 20 && hits.filter((h) => h.startsWith('uid-slot')).length < 6; round++) {
      const woke = nextWake();
      await woke;
    }
    await new Promise((r) => setTimeout(r, 400));
    expect(hits.filter((h) => h.startsWith('uid-slot')).sort()).toHaveLength(6);
    expect(peak).toBe(2);
    expect(slots.active).toBe(0);
  });

  it('says so (Event, log) and looks again when the bookkeeping throws, instead of going quiet', () => {
    const broken: NotifyKind = {
      ...PLAN_NOTIFICATIONS,
      due: () => {
        throw new Error('boom');
      },
    };
    const { notifier, wakes } = setup({ kind: broken });
    const events: string[] = [];
    const r = notifier.sync(plan([hook('x')]), { phase: 'Running' }, new Date(), (t, why, m) =>
      events.push(`${t} ${why}: ${m}`),
    );
    expect(events).toEqual([
      'Warning NotificationBookkeepingFailed: notification bookkeeping failed: Error: boom',
    ]);
    expect(r).toEqual({ requeueAfterMs: 60_000 });
    expect(wakes).toEqual([['ns/p', 60_000]]);
  });
});

describe('afterAttempt', () => {
  const r: NotificationRecord = {
    id: 't/Started',
    target: 't',
    event: 'Started',
    state: 'Pending',
    attempts: 0,
  };
  const retry = { ...DEFAULT_RETRY, random: () => 0.5 };
  it('keeps a record Pending with its next attempt, then Failed once the span is over', () => {
    const t0 = Date.parse('2026-11-29T10:00:00Z');
    const one = afterAttempt(r, { kind: 'retry', message: 'HTTP 503' }, t0, retry, 'POST to X');
    expect(one).toEqual({
      ...r,
      attempts: 1,
      firstAttemptAt: '2026-11-29T10:00:00Z',
      lastAttemptAt: '2026-11-29T10:00:00Z',
      nextAttemptAt: '2026-11-29T10:00:01Z',
      message: 'POST to X: HTTP 503 (attempt 1; tried again)',
    });
    const late = afterAttempt(
      { ...one, attempts: 12 },
      { kind: 'retry', message: 'HTTP 503' },
      t0 + 14 * 60_000,
      retry,
    );
    expect(late).toMatchObject({
      state: 'Failed',
      attempts: 13,
      message: 'HTTP 503 (gave up after 13 attempts over 14 min)',
    });
    expect(late.nextAttemptAt).toBeUndefined();
    expect(afterAttempt(r, { kind: 'permanent', message: 'HTTP 404' }, t0, retry)).toMatchObject({
      state: 'Failed',
      message: 'HTTP 404 (not retried)',
    });
  });
});

describe('admit (the 64-record bound)', () => {
  const rec = (i: number, state: NotificationRecord['state'] = 'Delivered'): NotificationRecord => ({
    id: `t/BackupSucceeded/b${i}`,
    target: 't',
    event: 'BackupSucceeded',
    state,
  });
  it('makes room by dropping the oldest finished records no longer due, never a Pending or due one', () => {
    const existing = [rec(0), rec(1, 'Pending'), ...Array.from({ length: 62 }, (_, i) => rec(i + 2))];
    const fresh = [rec(100, 'Pending'), rec(101, 'Pending')];
    const kept = admit(existing, fresh, new Set(['t/BackupSucceeded/b0', 't/BackupSucceeded/b2']));
    expect(kept).toHaveLength(MAX_RECORDS);
    expect(kept.map((r) => r.id).slice(0, 4)).toEqual([
      't/BackupSucceeded/b0', // still due: dropping it would send it again
      't/BackupSucceeded/b1', // pending
      't/BackupSucceeded/b2', // still due
      't/BackupSucceeded/b5', // b3 and b4 made room
    ]);
    expect(kept.slice(-2)).toEqual(fresh);
  });

  it('never exceeds the bound: what does not fit waits (nothing kept is dropped, nothing is resent)', () => {
    const pending = Array.from({ length: 63 }, (_, i) => rec(i, 'Pending'));
    const due = new Set([rec(63).id]);
    const existing = [...pending, rec(63)];
    const kept = admit(existing, [rec(200, 'Pending'), rec(201, 'Pending')], due);
    expect(kept).toEqual(existing);
    // Once a Pending record finished and is no longer due, a waiting one gets its place.
    const finished = existing.map((r, i) => (i === 0 ? { ...r, state: 'Delivered' as const } : r));
    expect(admit(finished, [rec(200, 'Pending'), rec(201, 'Pending')], due).map((r) => r.id)).toEqual([
      ...finished.slice(1).map((r) => r.id),
      rec(200).id,
    ]);
  });

  it('always has room for everything due at once: 10 targets × the events that can be due together', () => {
    const targets = Array.from({ length: 10 }, (_, i) => ({
      name: `t${i}`,
      type: 'webhook' as const,
      urlSecretRef: { name: 's', key: 'u' },
    }));
    const everything = {
      metadata: { creationTimestamp: '2026-11-29T09:00:00Z' },
      spec: {},
      status: {
        phase: 'Succeeded' as const,
        trigger: { firedAt: '2026-11-29T09:00:00Z', condition: 'c', type: 'HTTPCheck' as const },
        approval: { approvedBy: 'a', approvedAt: '2026-11-29T09:00:00Z' },
        veto: { vetoedBy: 'b', vetoedAt: '2026-11-29T09:00:00Z' },
        startedAt: '2026-11-29T09:00:00Z',
        lastRearm: { rearmedAt: '2026-11-29T08:00:00Z', annotationValue: 'x' },
      },
    };
    const planDue = planNotificationsDue(everything as never, targets, new Date()).due.length;
    const scheduleDue = scheduleNotificationsDue(
      {
        conditions: [
          {
            type: 'LastBackupSucceeded',
            status: 'False',
            reason: 'x',
            message: 'backup Job j failed: x',
            lastTransitionTime: 't',
          },
          {
            type: 'RPOMet',
            status: 'False',
            reason: 'ObjectiveBreached',
            message: '',
            lastTransitionTime: 't',
          },
        ],
        lastSuccessfulBackup: { id: 'b', finishedAt: '2026-11-29T08:00:00Z', verified: true },
        lastTestRestore: { backupId: 'b', finishedAt: '2026-11-29T09:00:00Z', result: 'Failed' },
      } as never,
      targets,
      new Date(),
      '1h',
    ).due.length;
    expect(planDue).toBe(50);
    expect(scheduleDue).toBe(30);
    expect(Math.max(planDue, scheduleDue)).toBeLessThanOrEqual(MAX_RECORDS);
  });
});

describe('deliveredCondition', () => {
  it('looks at the newest record of each target', () => {
    const r = (target: string, state: NotificationRecord['state'], id = `${target}/x`) => ({
      id,
      target,
      event: 'Started',
      state,
    });
    expect(deliveredCondition([r('a', 'Failed'), r('a', 'Delivered', 'a/y')]).status).toBe('True');
    expect(deliveredCondition([r('a', 'Delivered'), r('b', 'Pending')]).status).toBe('Unknown');
    expect(deliveredCondition([r('a', 'Delivered'), r('b', 'Failed')])).toMatchObject({
      status: 'False',
      reason: 'DeliveryFailed',
    });
  });
});
