import { createServer, type Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, transports } from 'winston';
import { BackgroundTasks } from '../kube/background-tasks.js';
import { addressPolicy } from '../rollback/address-policy.js';
import { BodyMatcher } from '../rollback/body-match.js';
import type { HttpProbeOptions } from '../rollback/http-check.js';
import { httpConditionProbe, Semaphore, TriggerMonitors } from './monitors.js';

const log = createLogger({ transports: [new transports.Console({ silent: true })] });
const opts: HttpProbeOptions = {
  policy: addressPolicy({ denyLinkLocal: true, denyLoopback: false, deniedCidrs: [] }),
  requestTimeoutMs: 2000,
  maxBodyBytes: 1024,
  matcher: new BodyMatcher({ timeoutMs: 1000, maxConcurrent: 1 }),
};

describe('HTTPCheck trigger probes (a real HTTP server on loopback)', () => {
  let server: Server;
  let url = '';
  let status = 200;
  beforeEach(async () => {
    server = createServer((_q, r) => r.writeHead(status).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  });
  afterEach(() => void server.close());

  it('is bad only after failureThreshold consecutive failures, held since the first; any 2xx is healthy', async () => {
    const probe = httpConditionProbe({ type: 'HTTPCheck', url, failureThreshold: 3 }, opts);
    const signal = new AbortController().signal;
    status = 204;
    expect((await probe(signal)).kind).toBe('good');
    status = 500;
    const first = await probe(signal);
    expect(first.kind).toBe('good');
    expect((await probe(signal)).kind).toBe('good');
    const third = await probe(signal);
    expect(third).toMatchObject({ kind: 'bad', since: first.at });
    expect(third.observed).toMatch(/got HTTP 500, expected a 2xx status \(3 consecutive/);
    status = 200;
    expect((await probe(signal)).kind).toBe('good');
    status = 500;
    expect((await probe(signal)).kind, 'the count starts again after a success').toBe('good');
  });

  it('expectStatus, when given, is the only healthy status', async () => {
    const probe = httpConditionProbe(
      { type: 'HTTPCheck', url, expectStatus: 204, failureThreshold: 1 },
      opts,
    );
    status = 200;
    expect((await probe(new AbortController().signal)).kind).toBe('bad');
  });

  it('a denied address cannot be evaluated: error, never bad', async () => {
    const denying = {
      ...opts,
      policy: addressPolicy({ denyLinkLocal: true, denyLoopback: true, deniedCidrs: [] }),
    };
    const probe = httpConditionProbe({ type: 'HTTPCheck', url, failureThreshold: 1 }, denying);
    expect(await probe(new AbortController().signal)).toMatchObject({
      kind: 'error',
      reason: 'HTTPCheckDenied',
    });
  });

  it('the monitor probes every period in the background, wakes on changes only, and stops when forgotten', async () => {
    const tasks = new BackgroundTasks(log);
    const monitors = new TriggerMonitors(tasks, opts);
    const cond = { type: 'HTTPCheck' as const, url, period: '50ms', failureThreshold: 2 };
    let requests = 0;
    server.on('request', () => requests++);
    let wakes = 0;
    status = 200;
    expect(monitors.observe('uid', 'c', cond, () => wakes++)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(monitors.observe('uid', 'c', cond, () => wakes++)?.kind).toBe('good');
    expect(requests).toBeGreaterThanOrEqual(4);
    expect(wakes, 'one wake for the first observation, none for the same again').toBe(1);
    status = 500;
    await new Promise((r) => setTimeout(r, 300));
    expect(monitors.observe('uid', 'c', cond, () => wakes++)?.kind).toBe('bad');
    expect(wakes).toBe(2);
    monitors.forget('uid');
    expect(tasks.running()).toBe(0);
    const after = requests;
    await new Promise((r) => setTimeout(r, 200));
    expect(requests).toBe(after);
    tasks.stop();
  });
});

// Regression (review): no bound on probes in flight; many armed plans meant a burst of requests.
describe('Semaphore (the bound on trigger probes in flight)', () => {
  it('admits at most its size; a waiter whose signal aborts gives up', async () => {
    const s = new Semaphore(2);
    const never = new AbortController().signal;
    expect(await s.acquire(never)).toBe(true);
    expect(await s.acquire(never)).toBe(true);
    let third = false;
    const waiting = s.acquire(never).then((ok) => (third = ok));
    const aborted = new AbortController();
    const gaveUp = s.acquire(aborted.signal);
    await new Promise((r) => setImmediate(r));
    expect(third).toBe(false);
    expect(s.inUse).toBe(2);
    aborted.abort();
    expect(await gaveUp).toBe(false);
    s.release();
    await waiting;
    expect(third).toBe(true);
    expect(s.inUse).toBe(2);
    s.release();
    s.release();
    expect(s.inUse).toBe(0);
  });
});
