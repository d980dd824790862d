import type { AlertMatcher } from '../api/v1alpha1/rollbackplan.js';
import { LabelMatcher } from './matchers.js';
import type { AlertSource, StoredAlert } from './types.js';

/** How long a firing alert is kept after it was last received, when no resolved notification comes. */
export const ALERT_TTL_MS = 24 * 3600_000;
/** Alerts kept at most; past this the least recently received are dropped (counted). */
export const MAX_ALERTS = 10_000;

/** One alert of an accepted webhook payload, as the receiver hands it over. */
export interface ReceivedAlert {
  status: 'firing' | 'resolved';
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: Date;
}

export interface AlertStoreOptions {
  ttlMs?: number;
  maxAlerts?: number;
  now?: () => number;
  /** Told the number of firing alerts after every change (the nxt_alerts_firing gauge). */
  onSize?: (size: number) => void;
  /** Told how many alerts were dropped because the store was full. */
  onDropped?: (count: number) => void;
  /** A change listener threw: reported here, the other listeners still run and the payload stays applied. */
  onListenerError?: (err: unknown) => void;
}

/** An alert a payload stored, refreshed or resolved: who may care is decided by its labels. */
export interface ChangedAlert {
  labels: Readonly<Record<string, string>>;
}

/**
 * Firing alerts received from Alertmanager, in memory, by fingerprint. Alertmanager re-sends firing alerts
 * every repeat_interval, so a restarted (or newly elected) operator learns them again; resolved
 * notifications remove them, and an alert not heard of for a day expires (a lost resolve).
 */
export class AlertStore implements AlertSource {
  private readonly listeners = new Set<(changed: readonly ChangedAlert[]) => void>();
  // Map order is the order of last receipt: the first entry is the stalest, expired or dropped first.
  private readonly alerts = new Map<string, StoredAlert>();
  private readonly matcher = new LabelMatcher();
  private readonly ttlMs: number;
  private readonly maxAlerts: number;
  private readonly now: () => number;

  constructor(private readonly opts: AlertStoreOptions = {}) {
    this.ttlMs = opts.ttlMs ?? ALERT_TTL_MS;
    this.maxAlerts = opts.maxAlerts ?? MAX_ALERTS;
    this.now = opts.now ?? Date.now;
  }

  firingMatching(matchers: readonly AlertMatcher[], notBefore: Date): StoredAlert | undefined {
    this.expire();
    let best: StoredAlert | undefined;
    for (const a of this.alerts.values()) {
      if (a.startsAt.getTime() < notBefore.getTime()) continue;
      if (best && a.startsAt.getTime() >= best.startsAt.getTime()) continue;
      if (this.matcher.matchesAll(matchers, a.labels)) best = a;
    }
    return best;
  }

  onChange(listener: (changed: readonly ChangedAlert[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Applies one accepted payload: firing alerts are stored (or refreshed), resolved ones removed, then the
   * listeners are told. A resolved alert removes only the firing instance it ends: a late resolve of an
   * earlier episode (an older startsAt) must not remove an alert that fired again.
   */
  apply(alerts: readonly ReceivedAlert[]): { stored: number; removed: number } {
    const receivedAt = new Date(this.now());
    let stored = 0;
    let removed = 0;
    const changed: ChangedAlert[] = [];
    for (const a of alerts) {
      const held = this.alerts.get(a.fingerprint);
      if (a.status === 'resolved') {
        if (held && held.startsAt.getTime() <= a.startsAt.getTime()) {
          this.alerts.delete(a.fingerprint);
          changed.push({ labels: held.labels });
          removed++;
        }
        continue;
      }
      changed.push({ labels: a.labels });
      this.alerts.delete(a.fingerprint); // re-inserted last: most recently received
      this.alerts.set(a.fingerprint, {
        fingerprint: a.fingerprint,
        labels: a.labels,
        annotations: a.annotations,
        startsAt: a.startsAt,
        receivedAt,
      });
      stored++;
    }
    let dropped = 0;
    while (this.alerts.size > this.maxAlerts) {
      this.alerts.delete(this.alerts.keys().next().value!);
      dropped++;
    }
    if (dropped) this.opts.onDropped?.(dropped);
    this.expire();
    this.opts.onSize?.(this.alerts.size);
    for (const l of [...this.listeners]) {
      try {
        l(changed);
      } catch (e) {
        this.opts.onListenerError?.(e);
      }
    }
    return { stored, removed };
  }

  /** The firing alerts held now (expired ones dropped first). */
  list(): StoredAlert[] {
    this.expire();
    return [...this.alerts.values()];
  }

  get size(): number {
    return this.alerts.size;
  }

  /** Drops alerts not received for ttlMs; cheap: only the stalest entries are looked at. */
  expire(): void {
    const cutoff = this.now() - this.ttlMs;
    let changed = false;
    for (const [fp, a] of this.alerts) {
      if (a.receivedAt.getTime() > cutoff) break;
      this.alerts.delete(fp);
      changed = true;
    }
    if (changed) this.opts.onSize?.(this.alerts.size);
  }
}
