import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import winston from 'winston';
import { HTTPCheck } from '../api/v1alpha1/common.js';
import { loadConfig } from '../config.js';
import { BackgroundTasks } from '../kube/background-tasks.js';
import type { MultiInformer } from '../kube/informer.js';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { addressPolicy } from './address-policy.js';
import { BodyMatcher } from './body-match.js';
import { probeOnce, runHttpCheck, type HttpProbeOptions } from './http-check.js';
import { HttpChecks } from './post-validation.js';

// A real local HTTP server: the probe's own behaviour (redirects, body cap, address checks at connect time).
describe('HTTP check probe', () => {
  let server: Server;
  let base = '';
  let port = '';
  const seen: string[] = [];
  const opts = (over: Partial<HttpProbeOptions> = {}): HttpProbeOptions => ({
    policy: addressPolicy({ denyLinkLocal: true, deniedCidrs: [] }),
    requestTimeoutMs: 2000,
    maxBodyBytes: 64 * 1024,
    matcher: new BodyMatcher({ timeoutMs: 2000, maxConcurrent: 2 }),
    ...over,
  });
  const signal = () => new AbortController().signal;

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.url ?? '');
      if (req.url === '/redirect') return res.writeHead(301, { location: '/ok' }).end();
      if (req.url === '/ok') return res.end('status: ok');
      if (req.url === '/down') return res.writeHead(503).end('down');
      // 1 MiB: "needle" at the start, "late" after 70 KiB; the rest streams slowly and is never needed.
      if (req.url === '/big') {
        res.write(`needle${'x'.repeat(70_000)}late`);
        const t = setInterval(() => res.write('y'.repeat(1024)), 20);
        res.on('close', () => clearInterval(t));
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = String((server.address() as { port: number }).port);
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('compares a redirect as it is, without following it', async () => {
    expect(await probeOnce({ url: `${base}/redirect`, expectStatus: 200 }, opts(), signal())).toMatchObject({
      ok: false,
      message: 'got HTTP 301, expected 200',
    });
  });

  it('reads at most maxBodyBytes of a body: a match early in it passes, one beyond it does not', async () => {
    const t0 = Date.now();
    expect(
      await probeOnce({ url: `${base}/big`, expectStatus: 200, bodyMatch: '^needle' }, opts(), signal()),
    ).toMatchObject({ ok: true });
    expect(
      await probeOnce({ url: `${base}/big`, expectStatus: 200, bodyMatch: 'late' }, opts(), signal()),
    ).toMatchObject({ ok: false, message: expect.stringMatching(/body does not match \/late\//) });
    expect(Date.now() - t0, 'ms for two probes of an endless body').toBeLessThan(3000);
  });

  it('refuses a metadata IP literal without connecting', async () => {
    expect(
      await probeOnce({ url: 'http://169.254.169.254/latest/', expectStatus: 200 }, opts(), signal()),
    ).toMatchObject({ ok: false, denied: true, message: expect.stringMatching(/cloud metadata address/) });
  });

  it('refuses a host name whose address is denied, judged at lookup: no request reaches the server', async () => {
    const before = seen.length;
    const denyLoopback = opts({
      policy: addressPolicy({ denyLinkLocal: true, deniedCidrs: ['127.0.0.0/8', '::1/128'] }),
    });
    const r = await probeOnce(
      { url: `http://localhost:${port}/ok`, expectStatus: 200 },
      denyLoopback,
      signal(),
    );
    expect(r).toMatchObject({
      ok: false,
      denied: true,
      message: expect.stringMatching(/^localhost resolves to .* HTTP_CHECK_DENIED_CIDRS\)$/),
    });
    expect(seen.length - before).toBe(0);
  });

  it('started after its deadline: "not attempted" (no request); otherwise progress from the first attempt on', async () => {
    const before = seen.length;
    const notes: string[] = [];
    const late = await runHttpCheck(
      { url: `${base}/ok`, expectStatus: 200 },
      opts(),
      { signal: signal(), progress: (m) => notes.push(m) },
      { at: Date.now() - 1, timeout: '10s' },
    );
    expect(late).toMatchObject({
      passed: false,
      attempts: 0,
      reason: 'HTTPCheckTimeout',
      message: `${base}/ok: not attempted before the deadline (the operator was unavailable or busy)`,
    });
    expect(seen.length - before).toBe(0);
    expect(notes).toEqual([]);
    await runHttpCheck(
      { url: `${base}/ok`, expectStatus: 200 },
      opts(),
      { signal: signal(), progress: (m) => notes.push(m) },
      { at: Date.now() + 10_000, timeout: '10s' },
    );
    expect(notes).toEqual([`${base}/ok: first attempt running`]);
  });

  it('stops retrying at the deadline with HTTPCheckTimeout, and at once when aborted', async () => {
    const task = { signal: signal(), progress: () => {} };
    const timedOut = await runHttpCheck(
      { url: `${base}/down`, expectStatus: 200, retries: 100, period: '100ms' },
      opts(),
      task,
      { at: Date.now() + 500, timeout: '500ms' },
    );
    expect(timedOut).toMatchObject({
      passed: false,
      reason: 'HTTPCheckTimeout',
      message: expect.stringMatching(
        /did not pass within validation\.timeout 500ms \(\d+ of 101 attempts made; last: got HTTP 503/,
      ),
    });
    const ac = new AbortController();
    const t0 = Date.now();
    const pending = runHttpCheck(
      { url: `${base}/down`, expectStatus: 200, retries: 5, period: '600h' },
      opts(),
      { signal: ac.signal, progress: () => {} },
      { at: Date.now() + 3_600_000, timeout: '1h' },
    );
    setTimeout(() => ac.abort(), 200);
    expect(await pending).toMatchObject({ passed: false, attempts: 1, message: 'aborted' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

// URLs the CRD's pattern accepts (and some the API server's isURL, Go's parser, accepts too) but Node's WHATWG
// parser refuses. Pre-validation called new URL() inside the reconcile: a TypeError retried with backoff for
// ever, the plan Running/PreValidation with no condition naming the problem.
describe('HTTP check URLs the schema accepts but Node cannot parse', () => {
  const log = winston.createLogger({ silent: true });
  const unparsable = ['http://a<b/', 'http://a|b/', 'http://[::1/', 'http://1.2.3.4.5/', 'http://xn--a/'];

  it.each(unparsable)('%s: pre-validation reports InvalidURL instead of throwing', (url) => {
    const check = HTTPCheck.parse({ url, expectStatus: 200 }); // the runtime parse of the spec accepts it
    const ctx = { config: loadConfig({}), tasks: new BackgroundTasks(log) } as unknown as ManagerContext;
    const plans = { addHandler: () => {} } as unknown as MultiInformer<KubeObject>;
    const checks = new HttpChecks(ctx, plans, () => {}).forPlan({
      apiVersion: 'rollback.nxtnewday.io/v1alpha1',
      kind: 'RollbackPlan',
      metadata: { name: 'p', namespace: 'ns', uid: 'u1' },
    } as KubeObject);
    let problem: unknown;
    expect(() => (problem = checks.problem(check)), 'problem() throws in the reconcile').not.toThrow();
    expect(problem).toMatchObject({ reason: 'InvalidURL', message: expect.stringContaining(url) });
  });

  it('a probe of such a URL ends with InvalidURL at the first attempt', async () => {
    const r = await runHttpCheck(
      { url: 'http://1.2.3.4.5/', expectStatus: 200, retries: 5 },
      {
        policy: addressPolicy({ denyLinkLocal: true, deniedCidrs: [] }),
        requestTimeoutMs: 1000,
        maxBodyBytes: 1024,
        matcher: new BodyMatcher({ timeoutMs: 1000, maxConcurrent: 1 }),
      },
      { signal: new AbortController().signal, progress: () => {} },
      { at: Date.now() + 10_000, timeout: '10s' },
    );
    expect(r).toMatchObject({ passed: false, attempts: 1, reason: 'InvalidURL' });
  });
});
