import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressPolicy } from '../rollback/address-policy.js';
import {
  attemptOnce,
  classifyStatus,
  DEFAULT_RETRY,
  networkErrorMessage,
  nextAttemptAt,
  parseRetryAfter,
  postOnce,
} from './sender.js';

// Against a real HTTP server on loopback: one attempt's status handling, bounds and messages.
describe('attemptOnce', () => {
  let server: Server;
  let base = '';
  const hits: Record<string, { at: number; headers: Record<string, unknown>; body: string }[]> = {};
  type Answer = [number, string, Record<string, string>?] | 'slow-body' | 'broken-body' | 'hang';
  const plan: Record<string, () => Answer> = {
    '/ok': () => [200, 'ok'],
    '/gone': () => [404, 'internal-db.corp:5432 says no (token t0k3n)'],
    '/limited': () => [429, 'slow down', { 'retry-after': '7' }],
    '/down': () => [500, 'x'.repeat(100_000)],
    '/hang': () => 'hang',
    '/slow-body': () => 'slow-body',
    '/broken-body': () => 'broken-body',
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
        const answer = plan[path]?.() ?? [500, 'no route'];
        if (answer === 'hang') return; // never answers
        if (answer === 'slow-body') {
          // A 2xx status line, then a body that never ends.
          res.writeHead(200, { 'content-length': '1000' });
          res.write('partial');
          return;
        }
        if (answer === 'broken-body') {
          res.writeHead(202, { 'content-length': '1000' });
          res.write('partial', () => setTimeout(() => res.socket?.destroy(), 20));
          return;
        }
        const [code, body, headers] = answer;
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

  const opts = (extra: object = {}) => ({
    policy: addressPolicy({ denyLinkLocal: true, denyLoopback: false, deniedCidrs: [] }),
    requestTimeoutMs: 2000,
    ...extra,
  });
  const signal = () => new AbortController().signal;
  const url = (path: string) => async () => ({ url: `${base}${path}/secret-t0k3n?sig=t0k3n` });

  it('POSTs the body once with the idempotency header and reports it delivered', async () => {
    const r = await attemptOnce(
      url('/ok'),
      '{"a":1}',
      { 'x-nxt-notification-id': 'uid/t/Started' },
      opts(),
      signal(),
    );
    expect(r).toEqual({ kind: 'delivered', message: 'HTTP 200' });
    expect(hits['/ok']).toHaveLength(1);
    expect(hits['/ok']![0]!.headers['x-nxt-notification-id']).toBe('uid/t/Started');
    expect(hits['/ok']![0]!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(hits['/ok']![0]!.body).toBe('{"a":1}');
  });

  it('counts a 2xx status line as delivered at once, whatever the body then does (slow or broken)', async () => {
    const started = Date.now();
    const slow = await attemptOnce(url('/slow-body'), '{}', {}, opts({ requestTimeoutMs: 1000 }), signal());
    expect(slow).toEqual({ kind: 'delivered', message: 'HTTP 200' });
    expect(Date.now() - started, 'not waiting for the body').toBeLessThan(900);
    const broken = await attemptOnce(
      url('/broken-body'),
      '{}',
      {},
      opts({ requestTimeoutMs: 1000 }),
      signal(),
    );
    expect(broken).toEqual({ kind: 'delivered', message: 'HTTP 202' });
  });

  it('does not retry a 404, and shows none of the body', async () => {
    const r = await attemptOnce(url('/gone'), '{}', {}, opts(), signal());
    expect(r).toEqual({ kind: 'permanent', message: 'HTTP 404' });
  });

  it('retries a 5xx and a 429, with its Retry-After, showing only the status', async () => {
    expect(await attemptOnce(url('/down'), '{}', {}, opts(), signal())).toEqual({
      kind: 'retry',
      message: 'HTTP 500',
      retryAfterMs: undefined,
    });
    expect(await attemptOnce(url('/limited'), '{}', {}, opts(), signal())).toEqual({
      kind: 'retry',
      message: 'HTTP 429',
      retryAfterMs: 7000,
    });
  });

  it('bounds a request that never answers by its timeout', async () => {
    const started = Date.now();
    const r = await attemptOnce(url('/hang'), '{}', {}, opts({ requestTimeoutMs: 200 }), signal());
    expect(r).toEqual({ kind: 'retry', message: 'no answer within 200 ms' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('never puts the URL, its host, path token or query into a message (errors are told by their code)', async () => {
    const r = await attemptOnce(
      async () => ({ url: `http://127.0.0.1:1/hooks/secret-t0k3n?sig=t0k3n` }),
      '{}',
      {},
      opts(),
      signal(),
    );
    expect(r).toEqual({ kind: 'retry', message: 'connection refused' });
    const enotfound = Object.assign(new Error('getaddrinfo ENOTFOUND hooks-t0k3n.internal'), {
      code: 'ENOTFOUND',
    });
    expect(networkErrorMessage(enotfound)).toBe('host name not found (DNS)');
    expect(networkErrorMessage(Object.assign(new Error('x'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }))).toBe(
      'TLS certificate not accepted (DEPTH_ZERO_SELF_SIGNED_CERT)',
    );
    expect(
      networkErrorMessage(Object.assign(new Error('t0k3n'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' })),
    ).toBe('TLS certificate not accepted (ERR_TLS_CERT_ALTNAME_INVALID)');
    expect(networkErrorMessage(Object.assign(new Error('t0k3n'), { code: 'weird t0k3n' }))).toBe(
      'request failed',
    );
    expect(networkErrorMessage(new Error('http://h/t0k3n'))).toBe('request failed');
  });

  it('does not throw, nor leave a timer behind, when Node refuses the request synchronously', async () => {
    const r = await postOnce(
      new URL(`${base}/ok`),
      '{}',
      { 'x-bad': 'a\nb' }, // Node throws ERR_INVALID_CHAR from http.request
      opts({ requestTimeoutMs: 50 }),
      signal(),
    );
    expect(r).toEqual({ kind: 'permanent', message: 'the URL cannot be used' });
    await new Promise((res) => setTimeout(res, 100)); // the old timer would have fired (and thrown) here
  });

  it('refuses a denied address at once (the HTTP checks policy), naming neither host nor address', async () => {
    const denied = opts({
      policy: addressPolicy({ denyLinkLocal: true, denyLoopback: true, deniedCidrs: [] }),
    });
    const r = await attemptOnce(url('/ok'), '{}', {}, denied, signal());
    expect(r.kind).toBe('permanent');
    expect(r.message).toMatch(/^the address connected to is .*loopback.*HTTP_CHECK_DENY_LOOPBACK/);
    expect(r.message).not.toContain('127.0.0.1');
    const meta = await attemptOnce(
      async () => ({ url: 'http://169.254.169.254/latest' }),
      '{}',
      {},
      opts(),
      signal(),
    );
    expect(meta.message).toMatch(/cloud metadata address/);
    expect(meta.message).not.toContain('169.254.169.254 ');
  });

  it('judges a host name by the address it resolves to at connect time', async () => {
    const denied = opts({
      policy: addressPolicy({ denyLinkLocal: true, denyLoopback: true, deniedCidrs: [] }),
    });
    const port = new URL(base).port;
    const r = await attemptOnce(
      async () => ({ url: `http://localhost:${port}/ok` }),
      '{}',
      {},
      denied,
      signal(),
    );
    expect(r.kind).toBe('permanent');
    expect(r.message).toMatch(/loopback/);
    expect(r.message).not.toContain('localhost');
  });

  it('passes on what the URL source says (Secret missing: retried; not a URL: final)', async () => {
    expect(
      await attemptOnce(async () => ({ retry: 'Secret "x" not found' }), '{}', {}, opts(), signal()),
    ).toEqual({
      kind: 'retry',
      message: 'Secret "x" not found',
    });
    expect(await attemptOnce(async () => ({ url: 'not a url t0k3n' }), '{}', {}, opts(), signal())).toEqual({
      kind: 'permanent',
      message: 'the value in the Secret is not a URL',
    });
    expect(
      await attemptOnce(
        async () => {
          throw new Error('http://t0k3n');
        },
        '{}',
        {},
        opts(),
        signal(),
      ),
    ).toEqual({ kind: 'retry', message: 'reading the URL from its Secret failed' });
  });
});

describe('the retry schedule', () => {
  const pinned = { ...DEFAULT_RETRY, random: () => 0.5 }; // no jitter

  it('backs off 1s, 2s, 4s ... capped at 2 min, for about 15 minutes after the first attempt', () => {
    const first = 0;
    let last = first;
    const waits: number[] = [];
    for (let n = 1; ; n++) {
      const next = nextAttemptAt(n, first, last, undefined, pinned);
      if (next === undefined) break;
      waits.push((next - last) / 1000);
      last = next + 500; // each attempt takes a moment
    }
    expect(waits.slice(0, 9)).toEqual([1, 2, 4, 8, 16, 32, 64, 120, 120]);
    expect(Math.max(...waits)).toBe(120);
    expect(last - first).toBeLessThanOrEqual(15 * 60_000 + 500);
    expect(last - first).toBeGreaterThan(13 * 60_000);
  });

  it('waits at least a Retry-After, up to its bound, and jitters by ±20%', () => {
    expect(nextAttemptAt(1, 0, 0, 30_000, pinned)).toBe(30_000);
    expect(nextAttemptAt(1, 0, 0, 3_600_000, pinned)).toBe(120_000);
    expect(nextAttemptAt(1, 0, 0, undefined, { ...pinned, random: () => 0 })).toBe(800);
    expect(nextAttemptAt(1, 0, 0, undefined, { ...pinned, random: () => 0.999 })).toBeCloseTo(1200, -1);
    expect(nextAttemptAt(3, 0, 15 * 60_000 - 1000, undefined, pinned), 'past the span').toBeUndefined();
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
