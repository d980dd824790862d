import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace, deleteTestNamespace, eventually } from '../support/kube.js';
import { metricValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan } from '../support/plans.js';
import { isAlive, operatorKubeconfig, readLease, waitLeaseHeldBy, within } from '../support/rbac.js';

// Leader election fencing with two real operator processes (defect 7): the lease is renewed from the moment
// it is acquired (also while the caches sync and while a SIGTERM drain runs), and a cache sync is bounded.
// Short leases keep the tests quick; RENEW_DEADLINE stays well above a loaded machine's request latency.

const rand = () => randomBytes(3).toString('hex');
const LEASE = { LEASE_DURATION: '8s', RENEW_DEADLINE: '6s', RETRY_PERIOD: '1s' };
const LEASE_MS = 8_000;

interface Sample {
  at: number;
  holder: string;
  renewTime?: string;
  leading: Record<string, number | undefined>;
}

describe('leader election fencing', () => {
  let ns = '';
  let ops: OperatorProcess[] = [];

  async function start(podName: string, id: string, env: Record<string, string> = {}) {
    const op = await startOperator({
      name: podName,
      env: {
        WATCH_NAMESPACES: ns,
        POD_NAME: podName,
        LEADER_ELECT: 'true',
        LEADER_ELECTION_NAMESPACE: ns,
        LEADER_ELECTION_ID: id,
        ...LEASE,
        ...env,
      },
    });
    ops.push(op);
    return op;
  }

  /** Samples the Lease and every replica's leader_election_master_status until `until` resolves true. */
  async function observe(
    id: string,
    replicas: Record<string, OperatorProcess>,
    until: () => boolean,
    maxMs: number,
  ): Promise<Sample[]> {
    const samples: Sample[] = [];
    const end = Date.now() + maxMs;
    while (!until() && Date.now() < end) {
      const lease = await readLease(ns, id);
      const leading: Record<string, number | undefined> = {};
      for (const [name, op] of Object.entries(replicas)) {
        leading[name] = isAlive(op)
          ? await metricValue(op.metricsUrl, 'leader_election_master_status', { name: id }).catch(
              () => undefined,
            )
          : undefined;
      }
      samples.push({
        at: Date.now(),
        holder: lease?.holderIdentity ?? '',
        renewTime: lease?.renewTime,
        leading,
      });
      await new Promise((r) => setTimeout(r, 300));
    }
    return samples;
  }
  const holders = (samples: Sample[]) => [...new Set(samples.map((s) => s.holder.split('_')[0] ?? ''))];
  const bothLeading = (samples: Sample[]) =>
    samples.filter((s) => Object.values(s.leading).filter((v) => v === 1).length > 1);

  beforeAll(async () => {
    ns = await createTestNamespace('leader');
  });
  afterEach(async () => {
    await Promise.all(ops.map((o) => o.kill('SIGKILL')));
    ops = [];
  });
  afterAll(async () => {
    if (ns) await deleteTestNamespace(ns);
  });

  // The reproduction: nothing renewed the lease between acquiring it and the caches syncing, so
  // with a cache sync longer than the lease the standby took over while the first replica went on to lead.
  it('a cache sync longer than the lease duration gives no second leader: the lease is renewed throughout', async ({
    annotate,
  }) => {
    const id = `slow-sync-${rand()}`;
    const [a, b] = [`a-${rand()}`, `b-${rand()}`];
    const slow = await start(a, id, { NXT_FAILPOINTS: 'slow-cache-sync=sleep(25000)' });
    await waitLeaseHeldBy(ns, id, a, 30_000);
    const first = (await readLease(ns, id))!;
    const standby = await start(b, id);
    await standby.waitReady(60_000);
    const samples = await observe(
      id,
      { [a]: slow, [b]: standby },
      () => slow.logs().includes('starting workers'),
      60_000,
    );
    // A few more seconds with both running controllers' lease loops.
    samples.push(...(await observe(id, { [a]: slow, [b]: standby }, () => false, 4_000)));
    await annotate(
      `${samples.length} samples over ${Math.round((samples.at(-1)!.at - samples[0]!.at) / 1000)} s`,
    );
    expect(slow.logs(), 'the slow replica finished its cache sync').toMatch(
      /caches synced, starting controllers/,
    );
    expect(holders(samples), 'Lease holders seen while the first replica synced its caches').toEqual([a]);
    expect(
      bothLeading(samples),
      'samples where both replicas reported leader_election_master_status 1',
    ).toEqual([]);
    expect(standby.logs(), 'the standby never acquired').not.toMatch(/successfully acquired lease/);
    const renewed = samples.map((s) => s.renewTime).filter((t) => t && t > first.renewTime!);
    expect(renewed.length, 'renewTime moved on during the cache sync').toBeGreaterThan(0);
    expect(isAlive(slow), `the slow replica exited:\n${slow.logs().slice(-2000)}`).toBe(true);
  });

  it('keeps renewing while draining on SIGTERM and releases the lease only after the drain', async ({
    annotate,
  }) => {
    const id = `drain-${rand()}`;
    const [a, b] = [`a-${rand()}`, `b-${rand()}`];
    // Every reconcile of the first replica takes 15 s: a SIGTERM arrives while one is in flight.
    const leader = await start(a, id, { NXT_FAILPOINTS: 'slow-reconcile=sleep(15000)' });
    await waitLeaseHeldBy(ns, id, a, 30_000);
    await leader.waitReady(60_000);
    const standby = await start(b, id);
    await standby.waitReady(60_000);
    await applyPlan(ns, `drain-${rand()}`, { scope: 'app', targets: { deployments: [{ name: 'absent' }] } });
    await eventually('a reconcile in flight on the leader', async () =>
      leader.logs().includes('failpoint slow-reconcile: sleeping'),
    );
    const termAt = Date.now();
    leader.child.kill('SIGTERM');
    const samples = await observe(id, { [a]: leader, [b]: standby }, () => !isAlive(leader), 40_000);
    const drainMs = Date.now() - termAt;
    expect(
      await within(5_000, 'leader exit after its drain', leader.exited),
      'exit 0: never lost the lease',
    ).toBe(0);
    await annotate(`drain took ${drainMs} ms (lease ${LEASE_MS} ms)`);
    expect(
      drainMs,
      'the drain outlasted the lease, so an unrenewed lease would have expired',
    ).toBeGreaterThan(LEASE_MS + 2_000);
    const logs = leader.logs();
    expect(logs.indexOf('released leader lease'), 'released after the drain').toBeGreaterThan(
      logs.lastIndexOf('failpoint slow-reconcile: sleeping'),
    );
    await waitLeaseHeldBy(ns, id, b, LEASE_MS / 2);
    // The standby may take the lease as soon as it is released, which can be before this test sees the
    // leader's process end (a lease read that started before the release can return the standby). So which
    // record the standby replaced decides: the released one ('' ), never the draining leader's.
    const acquired = await eventually('the standby logs its acquisition', async () =>
      standby
        .logs()
        .split('\n')
        .find((l) => l.includes('successfully acquired lease')),
    );
    expect(
      JSON.parse(acquired).previousHolder,
      "the standby took over the released lease, not the draining leader's",
    ).toBe('');
    // Until the standby appears, the samples show the draining leader (or the released lease) only.
    const firstB = samples.findIndex((s) => s.holder.startsWith(b));
    const beforeB = firstB < 0 ? samples : samples.slice(0, firstB);
    expect(
      holders(beforeB).filter((h) => h !== ''),
      'Lease holders while the leader drained',
    ).toEqual([a]);
    const renewals = new Set(beforeB.filter((s) => s.holder.startsWith(a)).map((s) => s.renewTime));
    expect(renewals.size, 'renewTime moved on during the drain').toBeGreaterThan(2);
    expect(bothLeading(samples)).toEqual([]);
    // And when: a lease released a few seconds into the 15 s reconcile is a released one too. The standby's
    // acquisition (logged after its PUT, which read the released record) comes after the leader's slow
    // reconcile finished and its drain was done; the processes share this machine's clock.
    const logTime = (text: string, message: string) => {
      const line = text.split('\n').find((l) => l.includes(`"message":"${message}`));
      return line ? Date.parse(JSON.parse(line).timestamp) : NaN;
    };
    const reconcileDone = Math.max(
      ...[...logs.matchAll(/failpoint slow-reconcile: slept \d+ ms, at (\S+)/g)].map((m) =>
        Date.parse(m[1]!),
      ),
    );
    const drainDone = logTime(logs, 'drain done');
    const acquiredAt = Date.parse(JSON.parse(acquired).timestamp);
    const times = `slow reconcile done ${new Date(reconcileDone).toISOString()}, drain done ${new Date(drainDone).toISOString()}, standby acquired ${new Date(acquiredAt).toISOString()}`;
    await annotate(times);
    expect(Number.isFinite(reconcileDone) && Number.isFinite(drainDone), times).toBe(true);
    expect(
      acquiredAt,
      `the standby acquired after the slow reconcile finished: ${times}`,
    ).toBeGreaterThanOrEqual(reconcileDone);
    expect(acquiredAt, `the standby acquired after the drain was done: ${times}`).toBeGreaterThanOrEqual(
      drainDone,
    );
    expect(drainDone, `the drain waited for the slow reconcile: ${times}`).toBeGreaterThanOrEqual(
      reconcileDone,
    );
  });

  it('exits 1 when its caches do not sync within CACHE_SYNC_TIMEOUT, naming them, and releases the lease', async () => {
    const id = `sync-timeout-${rand()}`;
    const a = `a-${rand()}`;
    const op = await start(a, id, {
      CACHE_SYNC_TIMEOUT: '3s',
      NXT_FAILPOINTS: 'slow-cache-sync=sleep(600000)',
    });
    await waitLeaseHeldBy(ns, id, a, 30_000);
    expect(await within(30_000, 'operator exit after the cache sync timeout', op.exited)).toBe(1);
    const logs = await eventually(
      'the timeout in the log',
      async () => /timed out waiting for caches to sync/.test(op.logs()) && op.logs(),
    );
    expect(logs).toMatch(/"cacheSyncTimeout":"3s"/);
    expect((await readLease(ns, id))?.holderIdentity, 'holderIdentity after the timeout').toBe('');
  });

  it('exits 1 when RBAC keeps its caches from ever syncing (CACHE_SYNC_TIMEOUT), listing the informers', async () => {
    // The namespace's default ServiceAccount may read nothing, so no informer ever syncs.
    const kubeconfigPath = await operatorKubeconfig({ namespace: ns, serviceAccount: 'default' });
    const name = `unsynced-${rand()}`;
    const op = await startOperator({
      name,
      kubeconfigPath,
      env: { WATCH_NAMESPACES: ns, POD_NAME: name, CACHE_SYNC_TIMEOUT: '5s' },
    });
    ops.push(op);
    expect(await within(40_000, 'operator exit after the cache sync timeout', op.exited)).toBe(1);
    const logs = await eventually(
      'the timeout in the log',
      async () => /timed out waiting for caches to sync/.test(op.logs()) && op.logs(),
    );
    expect(logs, 'the unsynced informers are named').toMatch(
      /"unsynced":\[[^\]]*rollbackplans\.rollback\.nxtnewday\.io/,
    );
  });
});
