import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl } from '../support/kube.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, waitPlanPhase } from '../support/plans.js';
import {
  bumpSchedule,
  createScheduleWithoutSecret,
  httpStatus,
  isAlive,
  metricSum,
  operatorKubeconfig,
  readLease,
  waitLeaseHeldBy,
  waitScheduleObserved,
  within,
} from '../support/rbac.js';
import { deploymentWithHistory } from '../support/workloads.js';

// The manager around the controllers, with the real operator process: Lease leader election between two
// replicas, surviving an API server restart, /metrics and probes, configuration errors and graceful stop.

/** Defaults of LEASE_DURATION and RETRY_PERIOD (client-go's); a standby polls every RETRY_PERIOD * [1, 1.2). */
const LEASE_MS = 15_000;
const RETRY_MS = 2_000;
/**
 * After a SIGKILL a standby may take over no sooner than LEASE_MS after it *saw* the last renewal (client-go
 * judges expiry by the local time of observation, never by the holder's renewTime). It sees a renewal up to
 * one poll after it was made, and notices expiry up to one poll late: LEASE_MS + 2 polls, plus slack for
 * a loaded 2-core machine.
 */
const KILL_TAKEOVER_BOUND_MS = LEASE_MS + 2 * RETRY_MS * 1.2 + 3_000;

const rand = () => randomBytes(3).toString('hex');
const reconciles = async (op: OperatorProcess) =>
  (await metricSum(op.metricsUrl, 'controller_runtime_reconcile_total', { controller: 'rollbackplan' })) ?? 0;

describe('operator runtime', () => {
  let ns = '';
  let ops: OperatorProcess[] = [];

  /** Starts the real operator watching the test namespace; every one is SIGKILLed after its test. */
  async function start(podName: string, env: Record<string, string> = {}): Promise<OperatorProcess> {
    const op = await startOperator({
      name: podName,
      env: { WATCH_NAMESPACES: ns, POD_NAME: podName, ...env },
    });
    ops.push(op);
    return op;
  }
  const electing = (id: string) => ({
    LEADER_ELECT: 'true',
    LEADER_ELECTION_NAMESPACE: ns,
    LEADER_ELECTION_ID: id,
  });

  /** Two replicas competing for Lease `id`; resolves once one holds it, as [leader, follower]. */
  async function twoReplicas(id: string, extraEnv: Record<string, string> = {}) {
    const names = [`a-${rand()}`, `b-${rand()}`];
    const [a, b] = await Promise.all(names.map((n) => start(n, { ...electing(id), ...extraEnv })));
    await Promise.all([a!.waitReady(60_000), b!.waitReady(60_000)]);
    const lease = await eventually(
      `Lease ${id} to be held by ${names.join(' or ')}`,
      async () => {
        const l = await readLease(ns, id);
        return names.some((n) => l?.holderIdentity.startsWith(`${n}_`)) && l;
      },
      30_000,
      250,
    );
    const aLeads = lease.holderIdentity.startsWith(`${names[0]}_`);
    return aLeads
      ? { leader: a!, follower: b!, leaderName: names[0]!, followerName: names[1]! }
      : { leader: b!, follower: a!, leaderName: names[1]!, followerName: names[0]! };
  }

  const undoPlan = (deployment: string) => ({
    scope: 'app',
    targets: { deployments: [{ name: deployment }] },
  });
  async function expectSucceeded(name: string, timeoutMs = 60_000) {
    const plan = await waitPlanPhase(ns, name, ['Succeeded', 'Failed'], timeoutMs);
    expect(plan.status.phase, `plan ${name}: ${JSON.stringify(plan.status.conditions)}`).toBe('Succeeded');
    return plan;
  }

  beforeAll(async () => {
    ns = await createTestNamespace('runtime');
  });
  afterEach(async () => {
    await Promise.all(ops.map((o) => o.kill('SIGKILL')));
    ops = [];
  });
  afterAll(async () => {
    if (ns) await deleteTestNamespace(ns);
  });

  // With the default 15 s lease a standby cannot take over in under 15 s after a SIGKILL (it waits a full
  // lease from its own last observation); a 10 s lease (renew deadline 7 s) keeps failover within 15 s.
  it('with LEASE_DURATION=10s a standby takes over within 15 s of a SIGKILL of the leader', async ({
    annotate,
  }) => {
    const id = `fast-${rand()}`;
    const { leader, followerName } = await twoReplicas(id, { LEASE_DURATION: '10s', RENEW_DEADLINE: '7s' });
    const killedAt = Date.now();
    expect(await leader.kill('SIGKILL')).toBe('SIGKILL');
    await waitLeaseHeldBy(ns, id, followerName, 30_000);
    const takeoverMs = Date.now() - killedAt;
    await annotate(`standby held the Lease ${takeoverMs} ms after the SIGKILL (lease 10 s)`);
    expect(takeoverMs, 'ms from SIGKILL of the leader until the standby held the Lease').toBeLessThan(15_000);
  });

  it('two replicas: one leads and reconciles; after a SIGKILL the standby takes over', async ({
    annotate,
  }) => {
    const id = `kill-${rand()}`;
    await Promise.all([
      deploymentWithHistory(ns, 'kill-1', ['nginx:1.25', 'nginx:1.26']),
      deploymentWithHistory(ns, 'kill-2', ['nginx:1.25', 'nginx:1.26']),
    ]);
    const { leader, follower, followerName } = await twoReplicas(id);
    const master = (op: OperatorProcess) =>
      metricValue(op.metricsUrl, 'leader_election_master_status', { name: id });
    await eventually(
      'leader_election_master_status 1 on the leader',
      async () => (await master(leader)) === 1,
    );
    expect(await master(follower), 'leader_election_master_status on the standby').toBe(0);
    expect(await httpStatus(`${follower.healthUrl}/readyz`), 'a standby is ready (it serves, it waits)').toBe(
      200,
    );

    await applyPlan(ns, 'before-kill', undoPlan('kill-1'));
    await expectSucceeded('before-kill');
    expect(await reconciles(leader), 'rollbackplan reconciles on the leader').toBeGreaterThan(0);
    expect(await reconciles(follower), 'rollbackplan reconciles on the standby').toBe(0);
    const before = (await readLease(ns, id))!;

    const killedAt = Date.now();
    expect(await leader.kill('SIGKILL')).toBe('SIGKILL');
    await applyPlan(ns, 'after-kill', undoPlan('kill-2'));
    const lease = await waitLeaseHeldBy(ns, id, followerName, KILL_TAKEOVER_BOUND_MS + 10_000);
    const takeoverMs = Date.now() - killedAt;
    await annotate(`standby held the Lease ${takeoverMs} ms after the SIGKILL`);
    expect(takeoverMs, 'ms from SIGKILL of the leader until the standby held the Lease').toBeLessThan(
      KILL_TAKEOVER_BOUND_MS,
    );
    expect(lease.leaseTransitions).toBe(before.leaseTransitions + 1);
    await expectSucceeded('after-kill', 60_000);
    expect(Date.now() - killedAt, 'ms from SIGKILL until a new plan Succeeded').toBeLessThan(
      KILL_TAKEOVER_BOUND_MS + 15_000,
    );
    expect(await master(follower)).toBe(1);
    expect(await reconciles(follower), 'rollbackplan reconciles on the new leader').toBeGreaterThan(0);
    expect(isAlive(follower)).toBe(true);
  });

  it('SIGTERM of a lone leader releases the Lease and exits 0', async () => {
    const id = `release-${rand()}`;
    const name = `solo-${rand()}`;
    const op = await start(name, electing(id));
    await op.waitReady(60_000);
    await waitLeaseHeldBy(ns, id, name);
    expect(await within(15_000, 'operator exit after SIGTERM', op.kill('SIGTERM'))).toBe(0);
    const lease = await readLease(ns, id);
    expect(lease?.holderIdentity, 'holderIdentity after a graceful stop').toBe('');
    await eventually('"released leader lease" in the log', async () =>
      op.logs().includes('released leader lease'),
    );
  });

  it('SIGTERM of the leader hands over to the standby well under the lease duration', async ({
    annotate,
  }) => {
    const id = `handover-${rand()}`;
    const { leader, follower, leaderName, followerName } = await twoReplicas(id);
    await eventually('the leader to have synced and started', async () =>
      leader.logs().includes('starting workers'),
    );
    const termAt = Date.now();
    expect(await within(15_000, 'leader exit after SIGTERM', leader.kill('SIGTERM'))).toBe(0);
    expect((await readLease(ns, id))?.holderIdentity ?? '').not.toMatch(new RegExp(`^${leaderName}_`));
    await waitLeaseHeldBy(ns, id, followerName, LEASE_MS);
    const handoverMs = Date.now() - termAt;
    await annotate(`standby held the Lease ${handoverMs} ms after the SIGTERM`);
    expect(handoverMs, 'ms from SIGTERM of the leader until the standby held the Lease').toBeLessThan(
      LEASE_MS / 2,
    );
    await eventually('the new leader to start its controllers', async () =>
      follower.logs().includes('starting workers'),
    );
  });

  it.skipIf(!inject('harnessUrl'))(
    'survives a kube-apiserver restart; informers recover',
    async ({ annotate }) => {
      const op = await start(`restart-${rand()}`);
      await op.waitReady(60_000);
      await deploymentWithHistory(ns, 'restart-web', ['nginx:1.25', 'nginx:1.26']);
      await createScheduleWithoutSecret(ns, 'restart-db', 'absent');
      await waitScheduleObserved(ns, 'restart-db', 1, 30_000);
      const logOffset = op.logs().length;

      // Probe the operator the whole time the API server is away.
      let restarting = true;
      const probes: (number | string)[] = [];
      const prober = (async () => {
        while (restarting) {
          probes.push(isAlive(op) ? await httpStatus(`${op.healthUrl}/healthz`) : 'exited');
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const res = await fetch(`${inject('harnessUrl')}/apiserver/restart?downMs=3000`, {
        method: 'POST',
        signal: AbortSignal.timeout(110_000),
      }).finally(() => (restarting = false));
      await prober;
      expect(res.status, `harness restart: ${await res.text()}`).toBe(200);
      expect(await kubectl('get', '--raw', '/readyz')).toBe('ok');
      expect(probes.length, 'healthz probes during the restart').toBeGreaterThan(10);
      expect(
        probes.filter((p) => p !== 200),
        '/healthz answers other than 200 while the API server was down',
      ).toEqual([]);
      expect(op.logs().slice(logOffset), 'the operator noticed the outage').toMatch(
        /list\/watch failed|relisting|ECONNREFUSED/,
      );

      const back = Date.now();
      await applyPlan(ns, 'after-restart', undoPlan('restart-web'));
      await expectSucceeded('after-restart', 45_000);
      await bumpSchedule(ns, 'restart-db', '5 * * * *');
      await waitScheduleObserved(ns, 'restart-db', 2, 45_000);
      await annotate(
        `plan and schedule change reconciled ${Date.now() - back} ms after the API server was back`,
      );
      expect(Date.now() - back, 'ms after the API server was back until both were reconciled').toBeLessThan(
        60_000,
      );
      expect(isAlive(op), `the operator process exited:\n${op.logs().slice(-2000)}`).toBe(true);
    },
  );

  it('serves controller-runtime, workqueue, client, leader, domain and Node.js metrics, and probes', async () => {
    const id = `metrics-${rand()}`;
    const op = await start(`metrics-${rand()}`, electing(id));
    await op.waitReady(60_000);
    await deploymentWithHistory(ns, 'metrics-web', ['nginx:1.25', 'nginx:1.26']);
    await applyPlan(ns, 'metrics-plan', undoPlan('metrics-web'));
    await expectSucceeded('metrics-plan');
    await eventually(
      'nxt_rollback_total{scope="app",trigger="manual",result="succeeded"} to be 1',
      async () => {
        const v = await metricValue(op.metricsUrl, 'nxt_rollback_total', {
          scope: 'app',
          trigger: 'manual',
          result: 'succeeded',
        });
        return v === 1 || (v === undefined ? false : Promise.reject(new Error(`value ${v}`)));
      },
    );
    const res = await fetch(op.metricsUrl);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const has = (re: RegExp, what: string) => expect(text, `/metrics should expose ${what}`).toMatch(re);
    has(
      /^controller_runtime_reconcile_total\{controller="rollbackplan",result="success"\} [1-9]/m,
      'reconcile_total',
    );
    has(
      /^controller_runtime_reconcile_time_seconds_bucket\{[^}]*controller="rollbackplan"[^}]*\} [1-9]/m,
      'a histogram',
    );
    has(/^workqueue_depth\{[^}]*name="rollbackplan"[^}]*\} \d/m, 'workqueue_depth');
    has(/^workqueue_adds_total\{[^}]*name="rollbackplan"[^}]*\} [1-9]/m, 'workqueue_adds_total');
    has(
      /^rest_client_requests_total\{(?=[^}]*code="200")(?=[^}]*method="GET")[^}]*\} [1-9]/m,
      'rest_client_requests_total',
    );
    has(
      new RegExp(`^leader_election_master_status\\{name="${id}"\\} 1$`, 'm'),
      'leader_election_master_status',
    );
    has(/^process_cpu_user_seconds_total \d/m, 'process metrics');
    has(/^nodejs_heap_size_used_bytes \d/m, 'nodejs heap metrics');
    has(/^nodejs_eventloop_lag_seconds \d/m, 'nodejs event loop lag');
    expect(await httpStatus(`${op.healthUrl}/healthz`)).toBe(200);
    expect(await httpStatus(`${op.healthUrl}/readyz`)).toBe(200);
  });

  it('refuses an invalid LEADER_ELECT with exit code 2 and a message naming it', async () => {
    const op = await start(`invalid-${rand()}`, { LEADER_ELECT: 'maybe' });
    expect(await within(30_000, 'operator exit on invalid configuration', op.exited)).toBe(2);
    // The log file is written through a pipe that may drain just after the exit.
    const out = await eventually(
      'the message on stderr',
      async () => /LEADER_ELECT/.test(op.logs()) && op.logs(),
    );
    expect(out).toMatch(/invalid configuration/);
    expect(out).toMatch(/LEADER_ELECT\b/);
    expect(out, 'no stack trace').not.toMatch(/^\s+at .+[(:]\d+/m);
  });

  it('stops gracefully on SIGTERM while idle: exit 0 within a few seconds', async () => {
    const op = await start(`idle-${rand()}`);
    await op.waitReady(60_000);
    const t0 = Date.now();
    expect(await within(10_000, 'operator exit after SIGTERM', op.kill('SIGTERM'))).toBe(0);
    expect(Date.now() - t0, 'ms from SIGTERM to exit').toBeLessThan(5_000);
    await eventually('"manager stopped" in the log', async () => op.logs().includes('manager stopped'));
  });

  it('stops on SIGTERM even before its caches could sync (no permission to list): exit 0', async () => {
    // The namespace's default ServiceAccount may read nothing, so the informers never sync.
    const kubeconfigPath = await operatorKubeconfig({ namespace: ns, serviceAccount: 'default' });
    const name = `unsynced-${rand()}`;
    const op = await startOperator({ name, kubeconfigPath, env: { WATCH_NAMESPACES: ns, POD_NAME: name } });
    ops.push(op);
    await eventually('the informers to be refused', async () => /list\/watch failed/.test(op.logs()));
    expect(await httpStatus(`${op.healthUrl}/healthz`)).toBe(200);
    expect(await httpStatus(`${op.healthUrl}/readyz`), 'not ready before the caches synced').toBe(503);
    const t0 = Date.now();
    expect(await within(40_000, 'operator exit after SIGTERM', op.kill('SIGTERM'))).toBe(0);
    expect(Date.now() - t0, 'ms from SIGTERM to exit').toBeLessThan(5_000);
  });
});
