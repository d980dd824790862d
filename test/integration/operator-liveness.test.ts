import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applySchedule, createDbSecret, scheduleSpec } from '../support/backups.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, condition, getPlan, waitPlanPhase } from '../support/plans.js';
import { metricSum, readLease, waitLeaseHeldBy } from '../support/rbac.js';
import { deploymentWithHistory, REVISION } from '../support/workloads.js';

// No check can stall the operator (defects 8 and 9, and the HTTP-check confused deputy): the real operator
// process, the real control plane, and a local HTTP server the checks probe.

const rand = () => randomBytes(3).toString('hex');
const G = { group: 'rollback.nxtnewday.io', version: 'v1alpha1' } as const;

/** A test HTTP server that counts requests per path and query, and those it is still holding. */
class CheckTarget {
  readonly seen = new Map<string, number>();
  readonly holding = new Map<string, number>();
  private server!: Server;
  base = '';

  async start() {
    this.server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const key = u.pathname + u.search;
      this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
      const hold = (ms: number | undefined, status: number) => {
        this.holding.set(key, (this.holding.get(key) ?? 0) + 1);
        const t = ms === undefined ? undefined : setTimeout(() => res.writeHead(status).end('late'), ms);
        res.on('close', () => {
          clearTimeout(t);
          this.holding.set(key, this.holding.get(key)! - 1);
        });
      };
      if (u.pathname === '/ok') return res.end('status: ok');
      if (u.pathname === '/down') return res.writeHead(503).end('down');
      if (u.pathname === '/slow') return hold(3_000, 503);
      if (u.pathname === '/hang') return hold(undefined, 200);
      // 48 a and a "!": (a+)+$ needs ~2^48 steps in a backtracking engine.
      if (u.pathname === '/aaa') return res.end(`${'a'.repeat(48)}!`);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }
  count(prefix: string) {
    return [...this.seen].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);
  }
  held(prefix: string) {
    return [...this.holding].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);
  }
  close() {
    this.server?.closeAllConnections();
    this.server?.close();
  }
}

describe('checks never stall the operator', () => {
  let ns = '';
  let op: OperatorProcess;
  const target = new CheckTarget();
  const leaseId = `liveness-${rand()}`;

  const reconciles = async (controller: string) =>
    (await metricSum(op.metricsUrl, 'controller_runtime_reconcile_total', { controller })) ?? 0;
  /** An app plan on a fresh one-revision Deployment it leaves alone (toRevision 1 is current): only checks run. */
  async function checkOnlyPlan(name: string, validation: object) {
    await deploymentWithHistory(ns, name, ['nginx:1.25'], 1);
    await applyPlan(ns, name, {
      scope: 'app',
      targets: { deployments: [{ name, toRevision: 1 }] },
      validation,
    });
  }

  beforeAll(async () => {
    ns = await createTestNamespace('liveness');
    await target.start();
    op = await startOperator({
      name: 'liveness',
      env: {
        WATCH_NAMESPACES: ns,
        POD_NAME: 'liveness',
        LEADER_ELECT: 'true',
        LEADER_ELECTION_NAMESPACE: ns,
        LEADER_ELECTION_ID: leaseId,
        // Four plans with long checks against four plan workers: a check that held a worker would leave none.
        PLAN_MAX_CONCURRENT_RECONCILES: '4',
      },
    });
    await op.waitReady(60_000);
    await waitLeaseHeldBy(ns, leaseId, 'liveness');
  });
  afterAll(async () => {
    await op?.kill('SIGKILL');
    target.close();
    if (ns) await deleteTestNamespace(ns);
  });

  // Defect 9, reproduced in the issue: each plan's check slept inside a reconcile worker, so four of them
  // held all four workers for minutes, and deleting the plans did not free them.
  it('four plans with long HTTP checks leave the workers free; deleting the plans stops their probes', async ({
    annotate,
  }) => {
    const plans = ['long-1', 'long-2', 'long-3', 'long-4'];
    await Promise.all(
      plans.map((p) =>
        checkOnlyPlan(p, {
          timeout: '10m',
          http: [{ url: `${target.base}/slow?plan=${p}`, expectStatus: 200, retries: 100, period: '1s' }],
        }),
      ),
    );
    await eventually(
      'every long plan to be probing',
      async () => plans.every((p) => target.count(`/slow?plan=${p}`) > 0),
      60_000,
    );

    await deploymentWithHistory(ns, 'unrelated', ['nginx:1.25', 'nginx:1.26'], 1);
    const appliedAt = Date.now();
    await applyPlan(ns, 'unrelated', { scope: 'app', targets: { deployments: [{ name: 'unrelated' }] } });
    await eventually(
      'the unrelated plan to get a status',
      async () => !!(await getPlan(ns, 'unrelated')).status?.phase,
      8_000,
      100,
    );
    const statusMs = Date.now() - appliedAt;
    await waitPlanPhase(ns, 'unrelated', ['Succeeded'], 60_000);
    await annotate(`the unrelated plan had a status ${statusMs} ms after it was applied`);
    for (const p of plans) {
      const plan = await getPlan(ns, p);
      expect(plan.status.phase, `${p} still checking`).toBe('Running');
      expect(plan.status.steps.find((s: any) => s.name === 'PostValidation')?.result).toBe('Running');
    }

    await kubectl('-n', ns, 'delete', 'rbp', ...plans, '--wait=false');
    await eventually('no probe of a deleted plan in flight', async () => target.held('/slow') === 0, 10_000);
    const after = target.count('/slow');
    await new Promise((r) => setTimeout(r, 5_000));
    expect(target.count('/slow') - after, 'probes of deleted plans started after the deletion').toBe(0);
  });

  it('a catastrophic bodyMatch (a+)+$ does not block the event loop: /healthz answers, the lease is renewed', async () => {
    const before = (await readLease(ns, leaseId))!;
    await checkOnlyPlan('redos', {
      timeout: '2m',
      http: [{ url: `${target.base}/aaa`, expectStatus: 200, bodyMatch: '(a+)+$', retries: 4, period: '1s' }],
    });
    const slow: string[] = [];
    let probes = 0;
    let done = false;
    const prober = (async () => {
      while (!done) {
        const t0 = Date.now();
        const r = await fetch(`${op.healthUrl}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
          (res) => String(res.status),
          (e: Error) => e.name,
        );
        probes++;
        if (r !== '200') slow.push(`${r} after ${Date.now() - t0} ms`);
        await new Promise((res) => setTimeout(res, 200));
      }
    })();
    try {
      await eventually('the plan to probe /aaa', async () => target.count('/aaa') > 0, 60_000);
      const plan = await waitPlanPhase(ns, 'redos', ['Succeeded', 'Failed'], 60_000);
      expect(condition(plan, 'PostValidationPassed')).toMatchObject({
        status: 'False',
        reason: 'HTTPCheckFailed',
      });
      expect(condition(plan, 'PostValidationPassed').message).toMatch(
        /but the body does not match \/\(a\+\)\+\$\/ \(after 5 attempts\)/,
      );
    } finally {
      done = true;
      await prober;
    }
    expect(probes, '/healthz probes while the check ran').toBeGreaterThan(5);
    expect(slow, '/healthz answers that were not 200 within 1 s').toEqual([]);
    const after = (await readLease(ns, leaseId))!;
    expect(after.holderIdentity).toBe(before.holderIdentity);
    expect(after.renewTime! > before.renewTime!, 'the lease was renewed while the check ran').toBe(true);
  });

  it('validation.timeout bounds a check whose server never answers', async ({ annotate }) => {
    await checkOnlyPlan('hang', {
      timeout: '8s',
      http: [{ url: `${target.base}/hang`, expectStatus: 200, retries: 100, period: '1s' }],
    });
    const plan = await waitPlanPhase(ns, 'hang', ['Succeeded', 'Failed'], 60_000);
    const step = plan.status.steps.find((s: any) => s.name === 'PostValidation');
    const tookMs = Date.parse(step.finishedAt) - Date.parse(step.startedAt);
    await annotate(`PostValidation ended ${tookMs} ms after it started (validation.timeout 8s)`);
    expect(condition(plan, 'PostValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'HTTPCheckTimeout',
    });
    expect(condition(plan, 'PostValidationPassed').message).toMatch(
      /did not pass within validation\.timeout 8s \(\d of 101 attempts made; last: request failed: no complete answer within \d+ ms\)/,
    );
    expect(tookMs, 'ms from the step start to its failure').toBeLessThan(8_000 + 5_000);
  });

  it('refuses a cloud metadata URL and an invalid bodyMatch in pre-validation, before touching anything', async () => {
    await deploymentWithHistory(ns, 'deputy', ['nginx:1.25', 'nginx:1.26'], 1);
    await applyPlan(ns, 'metadata', {
      scope: 'app',
      targets: { deployments: [{ name: 'deputy' }] },
      validation: {
        timeout: '1m',
        http: [
          { url: 'http://169.254.169.254/latest/meta-data/iam/', expectStatus: 200, bodyMatch: 'Token' },
        ],
      },
    });
    const plan = await waitPlanPhase(ns, 'metadata', ['Succeeded', 'Failed'], 60_000);
    expect(condition(plan, 'PreValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'HTTPCheckDenied',
    });
    expect(condition(plan, 'PreValidationPassed').message).toMatch(
      /169\.254\.169\.254 is the cloud metadata address .*operator setting HTTP_CHECK_DENY_LINK_LOCAL/,
    );
    expect(plan.status.steps.map((s: any) => s.name)).not.toContain('AppRollback');

    await applyPlan(ns, 'bad-pattern', {
      scope: 'app',
      targets: { deployments: [{ name: 'deputy' }] },
      validation: {
        timeout: '1m',
        http: [{ url: `${target.base}/ok`, expectStatus: 200, bodyMatch: 'ok(' }],
      },
    });
    const bad = await waitPlanPhase(ns, 'bad-pattern', ['Succeeded', 'Failed'], 60_000);
    expect(condition(bad, 'PreValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'InvalidBodyMatch',
    });
    expect(condition(bad, 'PreValidationPassed').message).toMatch(
      /bodyMatch \/ok\(\/ is not a valid RE2 pattern/,
    );
    const { apps } = testClients();
    const d = await apps.readNamespacedDeployment({ name: 'deputy', namespace: ns });
    expect(d.metadata?.annotations?.[REVISION], 'the Deployment was not rolled back').toBe('2');
    expect(target.count('/ok'), 'requests of the refused plans').toBe(0);
  });

  // Review of issue 9: URLs the CRD's pattern accepted but Node's URL parser refuses made pre-validation throw
  // a TypeError inside the reconcile, retried for ever: the plan sat Running/PreValidation, silent. Now the
  // API server's isURL refuses what Go's parser refuses, and the plan fails with InvalidURL for the rest.
  it('a check URL Node cannot parse is refused at admission or fails the plan with InvalidURL within 60 s', async () => {
    await deploymentWithHistory(ns, 'badurl', ['nginx:1.25', 'nginx:1.26'], 1);
    const urls = ['http://a<b/', 'http://[::1/', 'http://1.2.3.4.5/', 'http://xn--a/'];
    const accepted: string[] = [];
    for (const [i, url] of urls.entries()) {
      const spec = {
        scope: 'app',
        targets: { deployments: [{ name: 'badurl' }] },
        validation: { timeout: '30s', http: [{ url, expectStatus: 200 }] },
      };
      const outcome = await applyPlan(ns, `badurl-${i}`, spec).then(
        () => 'accepted',
        (e) => String(e?.body ?? e),
      );
      if (outcome === 'accepted') accepted.push(`badurl-${i}`);
      else expect(outcome, url).toMatch(/url must be a valid URL/);
    }
    expect(accepted.length, 'URLs that only Node refuses reach the operator').toBeGreaterThan(0);
    for (const name of accepted) {
      const plan = await waitPlanPhase(ns, name, ['Succeeded', 'Failed'], 60_000);
      expect(condition(plan, 'PreValidationPassed'), name).toMatchObject({
        status: 'False',
        reason: 'InvalidURL',
      });
      expect(plan.status.steps.map((s: any) => s.name)).not.toContain('AppRollback');
    }
    const { apps } = testClients();
    const d = await apps.readNamespacedDeployment({ name: 'badurl', namespace: ns });
    expect(d.metadata?.annotations?.[REVISION], 'the Deployment was not rolled back').toBe('2');
  });

  // Defect 8: a 600h period slept via setTimeout fired after 1 ms.
  it('a 600h check period waits (no second attempt after 1 ms); validation.timeout ends it', async () => {
    const before = await reconciles('rollbackplan');
    await checkOnlyPlan('period-600h', {
      timeout: '6s',
      http: [{ url: `${target.base}/down?p=600h`, expectStatus: 200, retries: 1, period: '600h' }],
    });
    const plan = await waitPlanPhase(ns, 'period-600h', ['Succeeded', 'Failed'], 60_000);
    expect(condition(plan, 'PostValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'HTTPCheckTimeout',
    });
    expect(condition(plan, 'PostValidationPassed').message).toMatch(
      /\(1 of 2 attempts made; last: got HTTP 503/,
    );
    expect(target.count('/down?p=600h'), 'requests made').toBe(1);
    expect((await reconciles('rollbackplan')) - before, 'rollbackplan reconciles for this plan').toBeLessThan(
      40,
    );
  });

  // Defect 8: the RPO requeue (objective minus the backup's age, ~600h) fired after 1 ms, again and again.
  it('an RPO objective of 600h does not make the BackupSchedule a hot loop', async ({ annotate }) => {
    await createDbSecret(ns, 'db', { host: 'db.example', database: 'app', username: 'u', password: 'p' });
    // A claim the operator creates: an existing claimName would have to exist (ClaimNotFound otherwise).
    const storage = { persistentVolumeClaim: { create: { size: '1Gi' } } };
    await applySchedule(ns, 'rpo-600h', scheduleSpec('db', '', { storage, objectives: { rpo: '600h' } }));
    await eventually('the schedule to be Ready', async () => {
      const s = await testClients().custom.getNamespacedCustomObject({
        ...G,
        plural: 'backupschedules',
        namespace: ns,
        name: 'rpo-600h',
      });
      return (s as any).status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
    });
    // A backup that just finished: RPOMet is True and flips in ~600h, which is what the requeue waits for.
    await kubectl(
      '-n',
      ns,
      'patch',
      'bks',
      'rpo-600h',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: { lastSuccessfulBackup: { id: 'fresh', finishedAt: new Date().toISOString() } },
      }),
    );
    await eventually('RPOMet True', async () => {
      const s: any = await testClients().custom.getNamespacedCustomObject({
        ...G,
        plural: 'backupschedules',
        namespace: ns,
        name: 'rpo-600h',
      });
      return condition(s, 'RPOMet')?.status === 'True';
    });
    await new Promise((r) => setTimeout(r, 1_000));
    const start = await reconciles('backupschedule');
    await new Promise((r) => setTimeout(r, 5_000));
    const n = (await reconciles('backupschedule')) - start;
    await annotate(`${n} backupschedule reconciles in 5 s with RPOMet True`);
    expect(n, 'backupschedule reconciles in 5 s').toBeLessThan(5);
  });
});

describe('HTTP check address policy at connect time', () => {
  let ns = '';
  let op: OperatorProcess;
  const target = new CheckTarget();

  beforeAll(async () => {
    ns = await createTestNamespace('deputy');
    await target.start();
    // Loopback denied by configuration: a host NAME that resolves to it is judged when the probe connects.
    op = await startOperator({
      name: 'deputy',
      env: { WATCH_NAMESPACES: ns, HTTP_CHECK_DENIED_CIDRS: '127.0.0.0/8,::1/128' },
    });
    await op.waitReady(60_000);
  });
  afterAll(async () => {
    await op?.kill('SIGKILL');
    target.close();
    if (ns) await deleteTestNamespace(ns);
  });

  it('refuses a host name that resolves to a denied address, without sending a request', async () => {
    const port = new URL(target.base).port;
    await deploymentWithHistory(ns, 'named', ['nginx:1.25'], 1);
    await applyPlan(ns, 'named', {
      scope: 'app',
      targets: { deployments: [{ name: 'named', toRevision: 1 }] },
      validation: { timeout: '1m', http: [{ url: `http://localhost:${port}/ok`, expectStatus: 200 }] },
    });
    const plan = await waitPlanPhase(ns, 'named', ['Succeeded', 'Failed'], 60_000);
    expect(condition(plan, 'PostValidationPassed')).toMatchObject({
      status: 'False',
      reason: 'HTTPCheckDenied',
    });
    expect(condition(plan, 'PostValidationPassed').message).toMatch(
      /localhost resolves to (127\.0\.0\.1|::1) is in (127\.0\.0\.0\/8|::1\/128).*HTTP_CHECK_DENIED_CIDRS/,
    );
    expect(target.count('/ok'), 'requests that reached the server').toBe(0);
  });
});
