import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressPolicy } from '../rollback/address-policy.js';
import { parseSampleValue, prometheusProbe, queryRequest, type PrometheusCondition } from './prometheus.js';

// A local HTTP stub answering every shape the Prometheus query API has (research §7).
describe('prometheusProbe against a stub of the query API', () => {
  let server: Server;
  let base = '';
  let answer: { status?: number; body: unknown; raw?: string; delayMs?: number } = { body: {} };
  const requests: { method: string; url: string; body: string; auth?: string }[] = [];
  const allowLoopback = addressPolicy({ denyLinkLocal: true, denyLoopback: false, deniedCidrs: [] });
  const signal = () => new AbortController().signal;
  const probe = (cond: Partial<PrometheusCondition> = {}, timeoutMs = 2000) =>
    prometheusProbe(
      { address: base, query: 'sum(rate(errors[1m]))', above: 0.05, ...cond },
      { timeoutMs, policy: allowLoopback, maxBodyBytes: 64 * 1024 },
    )(signal());
  const vector = (...values: string[]) => ({
    status: 'success',
    data: {
      resultType: 'vector',
      result: values.map((v, i) => ({ metric: { i: String(i) }, value: [1700000000.5, v] })),
    },
  });
  const respond = (body: unknown, status = 200) => (answer = { body, status });

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((r) => {
      let s = '';
      req.on('data', (c: Buffer) => (s += c.toString()));
      req.on('end', () => r(s));
    });

  beforeAll(async () => {
    server = createServer((req, res) => {
      void readBody(req).then((body) => {
        requests.push({ method: req.method!, url: req.url!, body, auth: req.headers.authorization });
        const send = () =>
          res
            .writeHead(answer.status ?? 200, { 'content-type': 'application/json' })
            .end(answer.raw ?? JSON.stringify(answer.body));
        if (answer.delayMs) setTimeout(send, answer.delayMs);
        else send();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('a vector of one series above the threshold is bad, with the comparison and the query in observed', async () => {
    respond(vector('0.12'));
    const o = await probe();
    expect(o).toMatchObject({ kind: 'bad', observed: '0.12 > 0.05 (query sum(rate(errors[1m])))' });
    const last = requests.at(-1)!;
    expect(last.method).toBe('GET');
    expect(new URL(last.url, 'http://x').pathname).toBe('/api/v1/query');
    expect(new URL(last.url, 'http://x').searchParams.get('query')).toBe('sum(rate(errors[1m]))');
  });

  it('a value within the limits is good; below is bad; either limit alone works', async () => {
    respond(vector('0.01'));
    expect(await probe()).toMatchObject({
      kind: 'good',
      observed: expect.stringMatching(/^0\.01 <= 0\.05 /),
    });
    respond(vector('0.5'));
    expect(await probe({ above: undefined, below: 0.9 })).toMatchObject({
      kind: 'bad',
      observed: expect.stringMatching(/^0\.5 < 0\.9 /),
    });
    expect(await probe({ above: 0.6, below: 0.4 })).toMatchObject({
      kind: 'good',
      observed: expect.stringMatching(/^0\.5 >= 0\.4 and <= 0\.6 /),
    });
    respond(vector('0.05'));
    expect((await probe()).kind, 'equal to above is not above').toBe('good');
  });

  it('a scalar result is a value', async () => {
    respond({ status: 'success', data: { resultType: 'scalar', result: [1700000000, '7'] } });
    expect(await probe({ above: 5 })).toMatchObject({
      kind: 'bad',
      observed: expect.stringMatching(/^7 > 5/),
    });
  });

  it('an empty vector and NaN are noData', async () => {
    respond(vector());
    expect(await probe()).toMatchObject({
      kind: 'noData',
      observed: expect.stringContaining('empty vector'),
    });
    respond(vector('NaN'));
    expect(await probe()).toMatchObject({ kind: 'noData', observed: expect.stringContaining('NaN') });
    respond({ status: 'success', data: { resultType: 'scalar', result: [1, 'NaN'] } });
    expect((await probe()).kind).toBe('noData');
  });

  it('+Inf and -Inf compare like numbers', async () => {
    respond(vector('+Inf'));
    expect(await probe()).toMatchObject({ kind: 'bad', observed: expect.stringMatching(/^\+Inf > 0\.05/) });
    respond(vector('-Inf'));
    expect((await probe()).kind).toBe('good');
    expect((await probe({ above: undefined, below: 0 })).kind).toBe('bad');
  });

  it('several series, a matrix, a string and a histogram sample are PrometheusResultInvalid naming the fix', async () => {
    const shapes: unknown[] = [
      vector('1', '2'),
      { status: 'success', data: { resultType: 'matrix', result: [{ metric: {}, values: [[1, '1']] }] } },
      { status: 'success', data: { resultType: 'string', result: [1, 'hello'] } },
      {
        status: 'success',
        data: { resultType: 'vector', result: [{ metric: {}, histogram: [1, { count: '2', sum: '3' }] }] },
      },
    ];
    for (const body of shapes) {
      respond(body);
      const o = await probe();
      expect(o, JSON.stringify(body)).toMatchObject({
        kind: 'error',
        reason: 'PrometheusResultInvalid',
        observed: expect.stringContaining('aggregate it to one series, e.g. sum(...)'),
      });
    }
    respond(vector('1', '2'));
    expect((await probe()).observed).toMatch(/^2 series, expected one/);
  });

  it('a value that is not a number and a malformed result are PrometheusResultInvalid', async () => {
    respond(vector('abc'));
    expect(await probe()).toMatchObject({ kind: 'error', reason: 'PrometheusResultInvalid' });
    respond({ status: 'success', data: { resultType: 'vector', result: [{ value: [1, 2] }] } });
    expect(await probe()).toMatchObject({ kind: 'error', reason: 'PrometheusResultInvalid' });
  });

  it('an API error (HTTP 4xx/5xx or status:error) is PrometheusQueryFailed with errorType and error, bounded', async () => {
    respond(
      { status: 'error', errorType: 'bad_data', error: 'invalid parameter "query": 1:5: parse error' },
      400,
    );
    expect(await probe()).toMatchObject({
      kind: 'error',
      reason: 'PrometheusQueryFailed',
      observed: expect.stringContaining('HTTP 400 from http://127.0.0.1:'),
    });
    expect((await probe()).observed).toContain('bad_data: invalid parameter "query": 1:5: parse error');
    respond({ status: 'error', errorType: 'execution', error: 'x'.repeat(5000) });
    const o = await probe();
    expect(o).toMatchObject({ kind: 'error', reason: 'PrometheusQueryFailed' });
    expect(o.observed.length).toBeLessThanOrEqual(256);
    answer = { status: 502, body: null, raw: '<html>bad gateway</html>' };
    expect(await probe()).toMatchObject({
      reason: 'PrometheusQueryFailed',
      observed: expect.stringMatching(/^HTTP 502 from/),
    });
    answer = { status: 200, body: null, raw: '<html>a login page</html>' };
    expect(await probe()).toMatchObject({
      reason: 'PrometheusQueryFailed',
      observed: expect.stringContaining('not JSON'),
    });
    respond({ hello: 'world' });
    expect(await probe()).toMatchObject({
      reason: 'PrometheusQueryFailed',
      observed: expect.stringContaining('not a Prometheus API response'),
    });
  });

  it('an answer larger than the bound is not read to the end', async () => {
    respond(vector(...Array.from({ length: 5000 }, () => '1')));
    expect(await probe()).toMatchObject({
      kind: 'error',
      reason: 'PrometheusResultInvalid',
      observed: expect.stringContaining('larger than 65536 bytes'),
    });
  });

  it('a slow answer is PrometheusUnreachable after timeoutMs', async () => {
    answer = { body: vector('1'), delayMs: 1500 };
    const t0 = Date.now();
    const o = await probe({}, 300);
    expect(o).toMatchObject({
      kind: 'error',
      reason: 'PrometheusUnreachable',
      observed: expect.stringContaining('300 ms'),
    });
    expect(Date.now() - t0).toBeLessThan(1200);
  });

  it('the signal cancels a query in flight', async () => {
    answer = { body: vector('1'), delayMs: 1500 };
    const ac = new AbortController();
    const p = prometheusProbe(
      { address: base, query: 'up', above: 1 },
      { timeoutMs: 5000, policy: allowLoopback },
    )(ac.signal);
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    expect(await p).toMatchObject({ kind: 'error', reason: 'Aborted' });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('connection refused is PrometheusUnreachable; a denied address is refused before connecting', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const o = await prometheusProbe(
      { address: `http://127.0.0.1:${port}`, query: 'up', above: 1 },
      { timeoutMs: 2000, policy: allowLoopback },
    )(signal());
    expect(o).toMatchObject({
      kind: 'error',
      reason: 'PrometheusUnreachable',
      observed: expect.stringContaining('ECONNREFUSED'),
    });
    const before = requests.length;
    const denied = await prometheusProbe(
      { address: base, query: 'up', above: 1 },
      {
        timeoutMs: 2000,
        policy: addressPolicy({ denyLinkLocal: true, denyLoopback: true, deniedCidrs: [] }),
      },
    )(signal());
    expect(denied).toMatchObject({
      kind: 'error',
      reason: 'PrometheusAddressDenied',
      observed: expect.stringContaining('HTTP_CHECK_DENY_LOOPBACK'),
    });
    // A host name is judged on what it resolves to, at connect time.
    const byName = await prometheusProbe(
      { address: base.replace('127.0.0.1', 'localhost'), query: 'up', above: 1 },
      {
        timeoutMs: 2000,
        policy: addressPolicy({ denyLinkLocal: true, denyLoopback: true, deniedCidrs: [] }),
      },
    )(signal());
    expect(byName).toMatchObject({ kind: 'error', reason: 'PrometheusAddressDenied' });
    expect(requests.length, 'no request reached the server').toBe(before);
  });

  it('an unresolvable host is PrometheusUnreachable', async () => {
    const o = await prometheusProbe(
      { address: 'http://no-such-host.invalid:9090', query: 'up', above: 1 },
      { timeoutMs: 3000, policy: allowLoopback },
    )(signal());
    expect(o).toMatchObject({ kind: 'error', reason: 'PrometheusUnreachable' });
  });

  it('credentials in the address are sent but never shown', async () => {
    respond({ status: 'error', errorType: 'bad_data', error: 'nope' }, 400);
    const o = await probe({ address: base.replace('http://', 'http://alice:s3cret@') + '/prom/?token=abc' });
    expect(requests.at(-1)!.auth).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    expect(requests.at(-1)!.url.startsWith('/prom/api/v1/query?')).toBe(true);
    expect(o.observed).not.toMatch(/s3cret|alice|token=abc/);
    expect(o.observed).toContain('/prom');
  });

  it('a long query goes as a POST form', async () => {
    respond(vector('0'));
    const long = `sum(rate(http_requests_total{path=~"${'a|'.repeat(1500)}b"}[5m]))`;
    expect((await probe({ query: long })).kind).toBe('good');
    const last = requests.at(-1)!;
    expect(last.method).toBe('POST');
    expect(new URLSearchParams(last.body).get('query')).toBe(long);
    expect((await probe({ query: long })).observed.length).toBeLessThanOrEqual(256);
  });
});

describe('Prometheus sample values and requests', () => {
  it('parses the float spellings Prometheus emits', () => {
    expect(parseSampleValue('1e-3')).toBe(0.001);
    expect(parseSampleValue('+Inf')).toBe(Infinity);
    expect(parseSampleValue('-Inf')).toBe(-Infinity);
    expect(parseSampleValue('NaN')).toBeNaN();
    expect(parseSampleValue('')).toBeUndefined();
    expect(parseSampleValue('twelve')).toBeUndefined();
  });

  it('keeps a path prefix of the address and drops its query string', () => {
    const r = queryRequest('http://prom.example:9090/prometheus/?x=1', 'up', 5000);
    expect(typeof r !== 'string' && r.url.href).toBe(
      'http://prom.example:9090/prometheus/api/v1/query?query=up&timeout=4900ms',
    );
  });
});
