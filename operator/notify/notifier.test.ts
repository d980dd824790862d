import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import winston from 'winston';
import { BackgroundTasks } from '../kube/background-tasks.js';
import { KubeApiError } from '../kube/errors.js';
import type { KubeObject } from '../kube/rest.js';
import { createMetrics } from '../metrics.js';
import type { NotificationRecord } from './due.js';
import { PLAN_NOTIFICATIONS } from './kinds.js';
import { bound, deliveredCondition, MAX_RECORDS, Notifier } from './notifier.js';

const log = winston.createLogger({ silent: true });

// The bookkeeping with real background tasks and a real receiver; only the Secret read is stubbed.
describe('Notifier', () => {
  let server: Server;
  let base = '';
  const hits: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.push(String(req.headers['x-nxt-notification-id']));
      res.writeHead(200).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => server.close());

  function setup() {
    const tasks = new BackgroundTasks(log);
    const handlers: { onUpdate?: (o: KubeObject, n: KubeObject) => void }[] = [];
    const wakes: [string, number][] = [];
    let woken: () => void = () => {};
    const client = {
      request: async (_m: string, path: string) => {
        if (path.endsWith('/secrets/hook'))
          return { data: { url: Buffer.from(`${base}/hook`).toString('base64') } };
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
      PLAN_NOTIFICATIONS,
      (key, ms) => {
        wakes.push([key, ms]);
        if (ms === 0) woken();
      },
    );
    const nextWake = () => new Promise<void>((r) => (woken = r));
    return { notifier, tasks, handlers, wakes, nextWake, metrics };
  }
  const plan = (notify: object[], uid = 'uid-1'): KubeObject => ({
    metadata: { name: 'p', namespace: 'ns', uid, generation: 1, creationTimestamp: '2026-11-29T09:00:00Z' },
    spec: { scope: 'app', notify },
  });
  const hook = (name: string, extra: object = {}) => ({
    name,
    type: 'webhook',
    urlSecretRef: { name: 'hook', key: 'url' },
    ...extra,
  });

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
    expect(status.notifications[0]).toMatchObject({ id: 'a/Started', state: 'Delivered', attempts: 1 });
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

  it('fails a record whose Secret is missing, once, with a clear message', async () => {
    const { notifier, nextWake } = setup();
    const obj = plan([{ ...hook('c', { events: ['Started'] }), urlSecretRef: { name: 'nope', key: 'url' } }]);
    const status: any = { phase: 'Running', startedAt: '2026-11-29T09:00:01Z' };
    const events: string[] = [];
    const woke = nextWake();
    notifier.sync(obj, status, new Date(), () => {});
    await woke;
    notifier.sync(obj, status, new Date(), (t, r, m) => events.push(`${t} ${r}: ${m}`));
    expect(status.notifications[0]).toMatchObject({ state: 'Failed', attempts: 0 });
    expect(status.notifications[0].message).toBe(
      'Secret "nope" (urlSecretRef of target c) not found in namespace ns',
    );
    expect(events).toEqual([
      'Warning NotificationFailed: Started to c (webhook) failed: Secret "nope" (urlSecretRef of target c) not found in namespace ns',
    ]);
    expect(status.conditions[0]).toMatchObject({
      type: 'NotificationsDelivered',
      status: 'False',
      reason: 'DeliveryFailed',
    });
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
});

describe('bound', () => {
  const rec = (i: number, state: NotificationRecord['state'] = 'Delivered'): NotificationRecord => ({
    id: `t/BackupSucceeded/b${i}`,
    target: 't',
    event: 'BackupSucceeded',
    state,
  });
  it(`keeps at most ${MAX_RECORDS}, dropping the oldest finished ones that are no longer due`, () => {
    const records = [rec(0), rec(1, 'Pending'), ...Array.from({ length: 66 }, (_, i) => rec(i + 2))];
    const kept = bound(records, new Set(['t/BackupSucceeded/b0']));
    expect(kept).toHaveLength(MAX_RECORDS);
    expect(kept.map((r) => r.id).slice(0, 3)).toEqual([
      't/BackupSucceeded/b0', // still due: dropping it would send it again
      't/BackupSucceeded/b1', // pending
      't/BackupSucceeded/b6',
    ]);
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
