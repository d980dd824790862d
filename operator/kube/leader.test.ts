import { afterEach, describe, expect, it, vi } from 'vitest';
import winston from 'winston';
import { leaderElectionProblems } from '../config.js';
import { LeaderElector } from './leader.js';
import type { KubeClient } from './rest.js';

const log = winston.createLogger({ silent: true });

/**
 * A Lease endpoint that grants the first acquisition, then answers every request with `after` (an API server
 * that fails at once with 500, or one that never answers).
 */
function leaseServerThen(after: 'fail' | 'hang'): KubeClient {
  let acquired = false;
  const lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'l', namespace: 'ns', resourceVersion: '1' },
    spec: {},
  };
  return {
    request: async (method: string) => {
      if (acquired)
        return after === 'fail'
          ? Promise.reject(new Error('500 Internal Server Error'))
          : new Promise(() => {});
      if (method === 'GET') return lease;
      acquired = true;
      return { ...lease, spec: { holderIdentity: 'me', leaseDurationSeconds: 15 } };
    },
    get: async () => lease,
  } as unknown as KubeClient;
}

/** Acquires with `client`, then advances fake time until leadership is lost; returns ms led after acquiring. */
async function ledFor(
  client: KubeClient,
  cfg: { LEASE_DURATION: number; RENEW_DEADLINE: number; RETRY_PERIOD: number },
  onWhileLeading?: (elector: LeaderElector, at: number) => void,
): Promise<number | undefined> {
  const elector = new LeaderElector(
    client,
    {
      namespace: 'ns',
      name: 'l',
      identity: 'me',
      leaseDurationMs: cfg.LEASE_DURATION,
      renewDeadlineMs: cfg.RENEW_DEADLINE,
      retryPeriodMs: cfg.RETRY_PERIOD,
    },
    log,
  );
  const acquiredAt = Date.now();
  expect(await elector.acquire()).toBe(true);
  let lostAt: number | undefined;
  void elector.leadership().then(() => (lostAt = Date.now()));
  for (let i = 0; i < 120 && lostAt === undefined; i++) {
    onWhileLeading?.(elector, Date.now() - acquiredAt);
    await vi.advanceTimersByTimeAsync(250);
  }
  return lostAt === undefined ? undefined : lostAt - acquiredAt;
}

describe('LeaderElector fencing', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  // A standby takes the lease one lease duration after it last saw it change; the leader must have given up
  // by then. The renew loop used to look at the deadline only after a full retry period of sleep, so a
  // renewal that failed quickly was followed by another retryPeriod of "still leading" (22 s here).
  it('a leader whose renewals fail fast gives up exactly at the renew deadline, before a standby may take over', async () => {
    const cfg = { LEASE_DURATION: 15_000, RENEW_DEADLINE: 14_000, RETRY_PERIOD: 11_000 };
    expect(leaderElectionProblems(cfg)).toEqual([]); // the operator accepts this configuration
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const led = await ledFor(leaseServerThen('fail'), cfg);
    expect(led, 'leadership never lost').toBeDefined();
    expect(led!).toBeLessThan(cfg.LEASE_DURATION);
    expect(led!).toBeGreaterThanOrEqual(cfg.RENEW_DEADLINE);
    expect(led!).toBeLessThanOrEqual(cfg.RENEW_DEADLINE + 250); // one step of the fake clock
  });

  it('a renewal that never answers does not hold leadership past the renew deadline', async () => {
    const cfg = { LEASE_DURATION: 15_000, RENEW_DEADLINE: 10_000, RETRY_PERIOD: 2_000 };
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const led = await ledFor(leaseServerThen('hang'), cfg);
    expect(led, 'leadership never lost').toBeDefined();
    expect(led!).toBeLessThanOrEqual(cfg.RENEW_DEADLINE + 250);
  });

  // A blocked event loop fires the renew loop's timers late; the fence judges the clock at each write.
  it('writes are fenced from the renew deadline on, even before the renew loop notices', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const elector = new LeaderElector(
      leaseServerThen('hang'),
      { namespace: 'ns', name: 'l', identity: 'me', renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      log,
    );
    const acquiredAt = Date.now();
    expect(elector.writeFenceReason()).toBe('not the leader');
    expect(await elector.acquire()).toBe(true);
    expect(elector.writeFenceReason()).toBeUndefined();
    vi.setSystemTime(acquiredAt + 9_999); // the clock moves, no timer runs (the event loop is blocked)
    expect(elector.writeFenceReason()).toBeUndefined();
    vi.setSystemTime(acquiredAt + 10_000);
    expect(elector.isLeader, 'the renew loop has not run yet').toBe(true);
    expect(elector.writeFenceReason()).toMatch(/renew deadline/);
  });

  // The log tells a clean handover (the previous leader released the lease) from a takeover of an expired
  // lease; the leadership integration test relies on it to tell when a standby took over.
  it.each([
    ['a released lease', '', ''],
    ['an expired lease', 'old', 'old'],
  ])('logs the holder it replaced when it acquires %s', async (_what, holder, previousHolder) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const lease = {
      metadata: { name: 'l', namespace: 'ns', resourceVersion: '1' },
      spec: { holderIdentity: holder, leaseDurationSeconds: 1 },
    };
    const client = {
      request: async (method: string, _path: string, init: { body?: typeof lease }) =>
        method === 'GET' ? lease : init.body,
    } as unknown as KubeClient;
    const lines: Record<string, unknown>[] = [];
    const capture = winston.createLogger({
      transports: [new winston.transports.Console({ silent: true })],
    });
    capture.on('data', (l: Record<string, unknown>) => lines.push(l));
    const elector = new LeaderElector(
      client,
      { namespace: 'ns', name: 'l', identity: 'me', leaseDurationMs: 1_000, retryPeriodMs: 500 },
      capture,
    );
    const acquired = elector.acquire();
    await vi.advanceTimersByTimeAsync(3_000); // an expired lease is taken one lease duration after seen
    expect(await acquired).toBe(true);
    await elector.stopRenewing();
    const line = lines.find((l) => l.message === 'successfully acquired lease');
    expect(line, 'the acquisition is logged').toBeDefined();
    expect(line!.previousHolder).toBe(previousHolder);
  });
});
