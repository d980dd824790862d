import type { Logger } from 'winston';
import { describeError, isNotFound } from './errors.js';
import type { KubeClient, KubeObject } from './rest.js';
import { sleep } from './timers.js';

/** MicroTime needs 6 fractional digits; a plain Date serialises with 3 and the API server rejects it. */
export const microTime = (d = new Date()) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export interface LeaderElectionConfig {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/**
 * client-go's Lease leader election. Expiry of someone else's lease is judged by the local time at which we
 * last saw the record change, never by comparing their renewTime with our clock (clock skew safe).
 *
 * Fencing: the leader renews from the moment it acquires the lease (also while caches sync and while it
 * drains on SIGTERM), and it counts the renew deadline from its last SUCCESSFUL renewal. Standbys wait a
 * full lease duration from their last observation of a change, and renewDeadline < leaseDuration (checked
 * at config load), so a standby can only take over after the leader has given up.
 */
export class LeaderElector {
  private observedRecord = '';
  private observedAt = 0;
  private leading = false;
  /** When the request of the last successful acquire or renewal was sent (what the lease's renewTime says). */
  private lastRenewedAt = 0;
  private renewing: Promise<boolean> | undefined;
  private renewLoop: Promise<'lost' | 'stopped'> | undefined;
  private stopped = false;
  private renewStopped = new AbortController();
  /** The holderIdentity of the record the last successful acquire or renewal replaced ('' = none or released). */
  private replacedHolder = '';
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;

  constructor(
    private readonly client: KubeClient,
    private readonly cfg: LeaderElectionConfig,
    private readonly log: Logger,
    private readonly onLeaderChange: (leading: boolean) => void = () => {},
  ) {
    this.leaseMs = cfg.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = cfg.renewDeadlineMs ?? 10_000;
    this.retryMs = cfg.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get ref() {
    return {
      group: 'coordination.k8s.io',
      version: 'v1',
      plural: 'leases',
      namespace: this.cfg.namespace,
      name: this.cfg.name,
    };
  }

  /**
   * Blocks until leadership is acquired (resolves true) or stop() is called (resolves false). On success the
   * renewal loop is already running: see leadership().
   */
  async acquire(): Promise<boolean> {
    this.log.info('attempting to acquire leader lease', {
      lease: `${this.cfg.namespace}/${this.cfg.name}`,
      identity: this.cfg.identity,
    });
    while (!this.stopped) {
      const sentAt = Date.now();
      if (await this.tryAcquireOrRenew(this.renewDeadlineMs)) {
        this.lastRenewedAt = sentAt;
        if (this.stopped) {
          this.leading = true; // stop() during the request: the lease is ours, so release() hands it back
          return false;
        }
        this.leading = true;
        this.onLeaderChange(true);
        // previousHolder '' is a released (or new) lease; another identity is a takeover of an expired one.
        this.log.info('successfully acquired lease', {
          lease: `${this.cfg.namespace}/${this.cfg.name}`,
          previousHolder: this.replacedHolder,
        });
        this.renewLoop = this.renewUntilLost();
        return true;
      }
      await sleep(this.retryMs * (1 + Math.random() * 0.2), this.renewStopped.signal);
    }
    return false;
  }

  /** Resolves 'lost' when the renew deadline passed without a successful renewal, 'stopped' after stopRenewing(). */
  leadership(): Promise<'lost' | 'stopped'> {
    return this.renewLoop ?? Promise.resolve('stopped');
  }

  /**
   * Why this process may not write now, or undefined while it leads within its renew deadline. Judged by
   * the clock at the moment of asking, not by the renew loop having noticed: a timer that fires late (a
   * blocked event loop) must not leave a window in which a deposed leader still writes.
   */
  writeFenceReason(): string | undefined {
    if (!this.leading) return 'not the leader';
    const over = Date.now() - (this.lastRenewedAt + this.renewDeadlineMs);
    if (over >= 0) return `leader election lost: no successful renewal within the renew deadline`;
    return undefined;
  }

  /**
   * Renews every retry period after the last attempt. Leadership ends exactly when renewDeadline has passed
   * since the last successful renewal, whatever the reason (failed requests, a slow API server, a renewal
   * still in flight): the loop never sleeps past the deadline and races each renewal against it, as
   * client-go bounds its renew loop by a renewDeadline context. Then this process must stop acting at once.
   */
  private async renewUntilLost(): Promise<'lost' | 'stopped'> {
    const lease = `${this.cfg.namespace}/${this.cfg.name}`;
    const left = () => this.lastRenewedAt + this.renewDeadlineMs - Date.now();
    while (left() > 0) {
      await sleep(Math.min(this.retryMs, left()), this.renewStopped.signal);
      if (this.renewStopped.signal.aborted) return 'stopped';
      if (left() <= 0) break;
      const sentAt = Date.now();
      const atDeadline = new AbortController();
      this.renewing = this.tryAcquireOrRenew(left());
      const ok = await Promise.race([
        this.renewing,
        sleep(left(), atDeadline.signal).then(() => false),
      ]).finally(() => atDeadline.abort());
      this.renewing = undefined;
      if (ok) this.lastRenewedAt = sentAt;
    }
    this.leading = false;
    this.onLeaderChange(false);
    this.log.error('leader election lost: no successful renewal within the renew deadline', {
      lease,
      renewDeadlineMs: this.renewDeadlineMs,
      sinceLastRenewalMs: Date.now() - this.lastRenewedAt,
    });
    return 'lost';
  }

  /** Stops trying to acquire the lease (a candidate); the leader keeps renewing until stopRenewing(). */
  stop(): void {
    this.stopped = true;
    if (!this.leading) this.renewStopped.abort();
  }

  /** Ends the renewal loop, waiting for a renewal in flight (so release() does not race it). */
  async stopRenewing(): Promise<void> {
    this.stopped = true;
    this.renewStopped.abort();
    await this.renewLoop;
  }

  /**
   * Gives the lease up so a standby takes over at once instead of after the lease duration. Call only after
   * all work has stopped: from here on another replica may lead.
   */
  async release(): Promise<void> {
    await this.stopRenewing();
    // A renewal still in flight would bump the resourceVersion after our GET below, so the release PUT
    // would fail with 409 and the standby would wait out the whole lease instead.
    await this.renewing;
    if (!this.leading) return;
    this.leading = false;
    this.onLeaderChange(false);
    try {
      const lease = await this.client.get<KubeObject & { spec: LeaseSpec }>(this.ref);
      if (lease.spec?.holderIdentity !== this.cfg.identity) return;
      await this.client.request(
        'PUT',
        `/apis/coordination.k8s.io/v1/namespaces/${this.cfg.namespace}/leases/${this.cfg.name}`,
        {
          body: {
            ...lease,
            spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() },
          },
          timeoutMs: 5000,
          unfenced: true,
        },
      );
      this.log.info('released leader lease');
    } catch (e) {
      this.log.warn('could not release leader lease', { err: describeError(e) });
    }
  }

  /** One GET + PUT (or POST) of the Lease; both requests together are bounded by `budgetMs`. */
  async tryAcquireOrRenew(budgetMs: number): Promise<boolean> {
    const deadline = Date.now() + budgetMs;
    const remaining = () => Math.max(deadline - Date.now(), 1);
    const now = microTime();
    const durS = Math.round(this.leaseMs / 1000);
    let lease: KubeObject & { spec?: LeaseSpec };
    try {
      lease = await this.client.request(
        'GET',
        `/apis/coordination.k8s.io/v1/namespaces/${this.cfg.namespace}/leases/${this.cfg.name}`,
        { timeoutMs: remaining() },
      );
    } catch (e) {
      if (!isNotFound(e)) {
        this.log.warn('error retrieving lease', { err: describeError(e) });
        return false;
      }
      try {
        await this.client.request(
          'POST',
          `/apis/coordination.k8s.io/v1/namespaces/${this.cfg.namespace}/leases`,
          {
            timeoutMs: remaining(),
            unfenced: true,
            body: {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { name: this.cfg.name, namespace: this.cfg.namespace },
              spec: {
                holderIdentity: this.cfg.identity,
                leaseDurationSeconds: durS,
                acquireTime: now,
                renewTime: now,
                leaseTransitions: 0,
              },
            },
          },
        );
        this.observedAt = Date.now();
        this.replacedHolder = '';
        return true;
      } catch {
        return false;
      }
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify(spec);
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = Date.now();
    }
    const mine = spec.holderIdentity === this.cfg.identity;
    const heldByOther = !!spec.holderIdentity && !mine;
    if (heldByOther && this.observedAt + (spec.leaseDurationSeconds ?? durS) * 1000 > Date.now())
      return false;
    const next: LeaseSpec = {
      holderIdentity: this.cfg.identity,
      leaseDurationSeconds: durS,
      renewTime: now,
      acquireTime: mine ? spec.acquireTime : now,
      leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
    };
    try {
      const updated = await this.client.request<KubeObject & { spec: LeaseSpec }>(
        'PUT',
        `/apis/coordination.k8s.io/v1/namespaces/${this.cfg.namespace}/leases/${this.cfg.name}`,
        { timeoutMs: remaining(), unfenced: true, body: { ...lease, spec: next } },
      );
      this.observedRecord = JSON.stringify(updated.spec);
      this.observedAt = Date.now();
      this.replacedHolder = spec.holderIdentity ?? '';
      return true;
    } catch (e) {
      this.log.debug('lease update failed', { err: describeError(e) });
      return false;
    }
  }
}
