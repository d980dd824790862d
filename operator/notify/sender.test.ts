import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressPolicy } from '../rollback/address-policy.js';
import { classifyStatus, deliver, parseRetryAfter, redact, type RetryOptions } from './sender.js';

// Against a real HTTP server on loopback: the sender's status handling, backoff and bounds.
describe('deliver', () => {
  let server: Server;
  let base = '';
  const hits: Record<string, { at: number; headers: Record<string, unknown>; body: string }[]> = {};
  const plan: Record<string, (n: number) => [number, string, Record<string, string>?]> = {
    '/ok': () => [200, 'ok'],
    '/flaky': (n) => (n <= 2 ? [503, 'busy'] : [204, '']),
    '/gone': () => [404, 'no_service'],
    '/limited': (n) => (n === 1 ? [429, 'slow down', { 'retry-after': '1' }] : [200, 'ok']),
    '/down': () => [500, 'x'.repeat(100_000)],
    '/hang': () => [-1, ''],
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0]!.replace(/\/secret-[^/]*$/, '');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        (hits[path] ??= []).push({
          at: Date.now(),
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        const [code, body, headers] = plan[path]?.(hits[path]!.length) ?? [500, 'no route'];
        if (code < 0) return; // never answers
        res.writeHead(code, headers).end(body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const fast: RetryOptions = { maxAttempts: 5, baseDelayMs: 20, maxRetryAfterMs: 1500, random: () => 0.5 };
  const opts = (extra: object = {}) => ({
    policy: addressPolicy({ denyLinkLocal: true, denyLoopback: false, deniedCidrs: [] }),
    requestTimeoutMs: 2000,
    maxResponseBytes: 256,
    retry: fast,
    ...extra,
  });
  const task = () => ({ signal: new AbortController().signal, progress: () => {} });
  const url = (path: string) => async () => ({ url: `${base}${path}/secret-t0k3n?sig=t0k3n` });

  it('POSTs the body once with the idempotency header and reports it delivered', async () => {
    const r = await deliver(
      url('/ok'),
      '{"a":1}',
      { 'x-nxt-notification-id': 'uid/t/Started' },
      opts(),
      task(),
    );
    expect(r).toMatchObject({ delivered: true, attempts: 1, message: 'HTTP 200: ok' });
    expect(r.deliveredAt).toMatch(/Z$/);
    expect(hits['/ok']).toHaveLength(1);
    expect(hits['/ok']![0]!.headers['x-nxt-notification-id']).toBe('uid/t/Started');
    expect(hits['/ok']![0]!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(hits['/ok']![0]!.body).toBe('{"a":1}');
  });

  it('retries 5xx with exponential backoff until it is delivered', async () => {
    const r = await deliver(url('/flaky'), '{}', {}, opts(), task());
    expect(r).toMatchObject({ delivered: true, attempts: 3 });
    const [a, b, c] = hits['/flaky']!.map((h) => h.at);
    expect(b! - a!).toBeGreaterThanOrEqual(19); // 20 ms
    expect(c! - b!).toBeGreaterThanOrEqual(39); // 40 ms
  });

  it('does not retry a 404', async () => {
    const r = await deliver(url('/gone'), '{}', {}, opts(), task());
    expect(r).toMatchObject({ delivered: false, attempts: 1, message: 'HTTP 404: no_service (not retried)' });
    expect(hits['/gone']).toHaveLength(1);
  });

  it('honours Retry-After on a 429, up to its bound', async () => {
    const r = await deliver(url('/limited'), '{}', {}, opts(), task());
    expect(r).toMatchObject({ delivered: true, attempts: 2 });
    const [a, b] = hits['/limited']!.map((h) => h.at);
    expect(b! - a!).toBeGreaterThanOrEqual(990);
  });

  it('gives up after maxAttempts, reading a bounded part of each answer', async () => {
    const r = await deliver(url('/down'), '{}', {}, opts(), task());
    expect(r.delivered).toBe(false);
    expect(r.attempts).toBe(5);
    expect(hits['/down']).toHaveLength(5);
    expect(r.message).toMatch(/^HTTP 500: x+\.\.\. \(after 5 attempts\)$/);
    expect(r.message.length).toBeLessThan(400);
  });

  it('bounds a request that never answers by its timeout', async () => {
    const started = Date.now();
    const r = await deliver(
      url('/hang'),
      '{}',
      {},
      opts({ requestTimeoutMs: 200, retry: { ...fast, maxAttempts: 2 } }),
      task(),
    );
    expect(r).toMatchObject({ delivered: false, attempts: 2 });
    expect(r.message).toMatch(/no answer within 200 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('never puts the URL, its path token or its query into a message', async () => {
    const r = await deliver(
      async () => ({ url: `http://127.0.0.1:1/hooks/secret-t0k3n?sig=t0k3n` }),
      '{}',
      {},
      opts({ retry: { ...fast, maxAttempts: 1 } }),
      task(),
    );
    expect(r.delivered).toBe(false);
    expect(r.message).toMatch(/request failed/);
    expect(r.message).not.toContain('t0k3n');
    expect(
      redact(
        'POST http://h/a/secret-t0k3n?sig=t0k3n failed for /a/secret-t0k3n',
        new URL('http://h/a/secret-t0k3n?sig=t0k3n'),
      ),
    ).toBe('POST [redacted] failed for [redacted]');
  });

  it('refuses a denied address at once (the HTTP checks policy), without retrying', async () => {
    const denied = opts({
      policy: addressPolicy({ denyLinkLocal: true, denyLoopback: true, deniedCidrs: [] }),
    });
    const r = await deliver(url('/ok'), '{}', {}, denied, task());
    expect(r).toMatchObject({ delivered: false, attempts: 1 });
    expect(r.message).toMatch(/loopback.*HTTP_CHECK_DENY_LOOPBACK.*not retried/);
    const meta = await deliver(
      async () => ({ url: 'http://169.254.169.254/latest' }),
      '{}',
      {},
      opts(),
      task(),
    );
    expect(meta.message).toMatch(/cloud metadata address/);
  });

  it('judges a host name by the address it resolves to at connect time', async () => {
    const denied = opts({
      policy: addressPolicy({ denyLinkLocal: true, denyLoopback: true, deniedCidrs: [] }),
    });
    const port = new URL(base).port;
    const r = await deliver(async () => ({ url: `http://localhost:${port}/ok` }), '{}', {}, denied, task());
    expect(r).toMatchObject({ delivered: false });
    expect(r.message).toMatch(/localhost resolves to .*loopback/);
  });

  it('reports a missing Secret as final, and a Secret read error as retried', async () => {
    const missing = await deliver(
      async () => ({ permanent: 'Secret "x" not found' }),
      '{}',
      {},
      opts(),
      task(),
    );
    expect(missing).toEqual({ delivered: false, attempts: 0, message: 'Secret "x" not found' });
    let reads = 0;
    const flakySecret = async () => (++reads < 3 ? { retry: 'GET secrets: 500' } : { url: `${base}/ok` });
    const r = await deliver(flakySecret, '{}', {}, opts(), task());
    expect(r).toMatchObject({ delivered: true, attempts: 1 });
    expect(reads).toBe(3);
  });

  it('stops when its task is aborted', async () => {
    const ac = new AbortController();
    const p = deliver(url('/down'), '{}', {}, opts({ retry: { ...fast, baseDelayMs: 60_000 } }), {
      signal: ac.signal,
      progress: () => {},
    });
    setTimeout(() => ac.abort(), 100);
    const started = Date.now();
    expect((await p).message).toBe('aborted');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('status and Retry-After handling', () => {
  it.each([
    [200, 'delivered'],
    [204, 'delivered'],
    [400, 'permanent'],
    [401, 'permanent'],
    [404, 'permanent'],
    [408, 'retry'],
    [410, 'permanent'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
    [301, 'permanent'],
  ])('HTTP %i: %s', (code, kind) => expect(classifyStatus(code)).toBe(kind));

  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('Sun, 29 Nov 2026 10:00:10 GMT', Date.parse('2026-11-29T10:00:00Z'))).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
