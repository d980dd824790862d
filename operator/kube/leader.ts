import type { Logger } from 'winston';
import { describeError, isNotFound } from './errors.js';
import type { KubeClient, KubeObject } from './rest.js';

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
 */
export class LeaderElector {
  private observedRecord = '';
  private observedAt = 0;
  private leading = false;
  private renewing: Promise<boolean> | undefined;
  private stopped = false;
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

  /** Blocks until leadership is acquired (resolves true) or stop() is called (resolves false). */
  async acquire(): Promise<boolean> {
    this.log.info('attempting to acquire leader lease', {
      lease: `${this.cfg.namespace}/${this.cfg.name}`,
      identity: this.cfg.identity,
    });
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew()) {
        this.leading = true;
        this.onLeaderChange(true);
        this.log.info('successfully acquired lease', { lease: `${this.cfg.namespace}/${this.cfg.name}` });
        return true;
      }
      await sleep(this.retryMs * (1 + Math.random() * 0.2));
    }
    return false;
  }

  /** Renews every retry period; resolves when leadership is lost (renew deadline passed) or stop() is called. */
  async renewUntilLost(): Promise<'lost' | 'stopped'> {
    let lastRenew = Date.now();
    while (!this.stopped) {
      await sleep(this.retryMs);
      if (this.stopped) break;
      this.renewing = this.tryAcquireOrRenew();
      if (await this.renewing) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew > this.renewDeadlineMs) {
        this.leading = false;
        this.onLeaderChange(false);
        this.log.error('leader election lost', { lease: `${this.cfg.namespace}/${this.cfg.name}` });
        return 'lost';
      }
    }
    return 'stopped';
  }

  stop(): void {
    this.stopped = true;
  }

  /** Gives the lease up so a standby takes over at once instead of after the lease duration. */
  async release(): Promise<void> {
    if (!this.leading) return;
    // A renewal still in flight when stop() was called would bump the resourceVersion after our GET below,
    // so the release PUT would fail with 409 and the standby would wait out the whole lease instead.
    await this.renewing;
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
        },
      );
      this.log.info('released leader lease');
    } catch (e) {
      this.log.warn('could not release leader lease', { err: describeError(e) });
    }
  }

  async tryAcquireOrRenew(): Promise<boolean> {
    const timeoutMs = Math.max(this.renewDeadlineMs / 2, 1000);
    const now = microTime();
    const durS = Math.round(this.leaseMs / 1000);
    let lease: KubeObject & { spec?: LeaseSpec };
    try {
      lease = await this.client.request(
        'GET',
        `/apis/coordination.k8s.io/v1/namespaces/${this.cfg.namespace}/leases/${this.cfg.name}`,
        {
          timeoutMs,
        },
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
            timeoutMs,
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
        { timeoutMs, body: { ...lease, spec: next } },
      );
      this.observedRecord = JSON.stringify(updated.spec);
      this.observedAt = Date.now();
      return true;
    } catch (e) {
      this.log.debug('lease update failed', { err: describeError(e) });
      return false;
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
