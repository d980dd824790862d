import { ConditionType } from '../api/v1alpha1/common.js';
import { boundText } from '../kube/bounded.js';
import { setCondition, type Condition } from '../kube/conditions.js';
import { isNotFound, KubeApiError } from '../kube/errors.js';
import type { EventType } from '../kube/events.js';
import type { MultiInformer } from '../kube/informer.js';
import { resourcePath, type KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { addressPolicy } from '../rollback/address-policy.js';
import type { DueResult, NotificationRecord, NotifyTarget } from './due.js';
import type { NotificationMessage } from './messages.js';
import { payloadFor, type NotificationEnvelope } from './payloads.js';
import { Semaphore } from './semaphore.js';
import {
  attemptOnce,
  DEFAULT_RETRY,
  nextAttemptAt,
  type AttemptResult,
  type RetryOptions,
  type SendOptions,
  type UrlSource,
} from './sender.js';

/** status.notifications keeps at most this many records (the schema's maxItems). */
export const MAX_RECORDS = 64;
const MESSAGE_MAX = 1024;
/** The receiver's idempotency header: `<object uid>/<record id>`, the same for a resend after a restart. */
export const NOTIFICATION_ID_HEADER = 'x-nxt-notification-id';
/**
 * Delivery attempts in flight at once, across every object and both kinds: an outage of a receiver that many
 * objects notify must not open hundreds of sockets and Secret reads at once. The rest wait their turn (in
 * their background tasks, not in reconcile workers).
 */
export const DELIVERY_CONCURRENCY = 16;
const SHARED_SLOTS = new Semaphore(DELIVERY_CONCURRENCY);
/** How long a dropped attempt's decision is remembered: far longer than the informer's lag behind a write. */
const SETTLED_KEEP_MS = 10 * 60_000;

/** What the notifier needs to know about one kind (RollbackPlan, BackupSchedule). */
export interface NotifyKind {
  kind: NotificationEnvelope['kind'];
  /** spec.notify, validated; undefined when it does not parse (the controller reports the spec). */
  targets(obj: KubeObject): NotifyTarget[] | undefined;
  due(obj: KubeObject, status: StatusWithNotifications, targets: NotifyTarget[], now: Date): DueResult;
  message(
    obj: KubeObject,
    status: StatusWithNotifications,
    record: NotificationRecord,
    target: NotifyTarget,
  ): NotificationMessage;
  /** Extra envelope fields (severity, phase). */
  envelope?(obj: KubeObject, status: StatusWithNotifications): Partial<NotificationEnvelope>;
}

export interface StatusWithNotifications {
  notifications?: NotificationRecord[];
  conditions?: Condition[];
  [k: string]: unknown;
}

type EventSink = (type: EventType, reason: string, message: string) => void;

/** The background task of one attempt of one record: attempt n of a record is started once. */
const owner = (uid: string, id: string, attempt: number) => `notify/${uid}/${id}#${attempt}`;

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
/** Up to the next whole second (status timestamps have seconds): never earlier than the backoff asked. */
const isoCeil = (ms: number) => iso(Math.ceil(ms / 1000) * 1000);
const minutes = (ms: number) => `${Math.max(1, Math.round(ms / 60_000))} min`;

/** Where a POST went, without the URL (it often carries a token). */
const urlPlace = (t: NotifyTarget) =>
  `POST to the URL in Secret "${t.urlSecretRef.name}" key "${t.urlSecretRef.key}"`;

/** What one finished attempt makes of its record. */
interface AttemptOutcome {
  record: NotificationRecord;
  /** Not attempted: the object was deleted while the attempt waited for a slot. */
  skipped?: boolean;
}

/**
 * The record after attempt `attempts + 1`, made at `at` (epoch ms), ended with `result`: Delivered, Failed
 * (a final answer, or the retry span is over), or still Pending with the time of the next attempt.
 */
export function afterAttempt(
  r: NotificationRecord,
  result: AttemptResult,
  at: number,
  retry: RetryOptions,
  place?: string,
): NotificationRecord {
  const attempts = (r.attempts ?? 0) + 1;
  const first = r.firstAttemptAt ? Date.parse(r.firstAttemptAt) : at;
  const firstAt = Number.isNaN(first) ? at : first;
  const base = {
    id: r.id,
    target: r.target,
    event: r.event,
    attempts,
    firstAttemptAt: iso(firstAt),
    lastAttemptAt: iso(at),
  };
  const what = place ? `${place}: ${result.message}` : result.message;
  if (result.kind === 'delivered')
    return {
      ...base,
      state: 'Delivered',
      deliveredAt: iso(Date.now()),
      message: boundText(what, MESSAGE_MAX),
    };
  if (result.kind === 'permanent')
    return { ...base, state: 'Failed', message: boundText(`${what} (not retried)`, MESSAGE_MAX) };
  const next = nextAttemptAt(attempts, firstAt, at, result.retryAfterMs, retry);
  if (next === undefined)
    return {
      ...base,
      state: 'Failed',
      message: boundText(
        `${what} (gave up after ${attempts} attempts over ${minutes(at - firstAt)})`,
        MESSAGE_MAX,
      ),
    };
  return {
    ...base,
    state: 'Pending',
    nextAttemptAt: isoCeil(next),
    message: boundText(`${what} (attempt ${attempts}; tried again)`, MESSAGE_MAX),
  };
}

/**
 * Notification bookkeeping for one kind, called by that kind's reconciler just before every status write
 * (the reconciler stays the only writer of status): due notifications get a Pending record and a delivery
 * attempt in a background task (ctx.tasks, never a reconcile worker); a finished attempt turns its record
 * Delivered or Failed, or leaves it Pending with `nextAttemptAt`, and the object is woken through the queue
 * then: the retry schedule lives in status, so it survives a restart. A record that is Delivered or Failed is
 * never sent again; a Pending one whose attempt is gone (the operator restarted) is attempted again, with the
 * same idempotency id: at least once.
 */
export class Notifier {
  private readonly send: SendOptions;
  private readonly retry: RetryOptions;
  private readonly slots: Semaphore;
  /** Attempt tasks started and not yet dropped, by task owner. */
  private readonly live = new Map<
    string,
    { uid: string; id: string; attempt: number; decided?: NotificationRecord }
  >();
  /** Objects deleted while one of their attempts was still running: it finishes, then is dropped. */
  private readonly deleted = new Set<string>();
  /**
   * What attempts whose task was dropped decided, for a while: a reconcile that began before the informer
   * saw the record (a stale copy with the record still Pending) takes the same decision instead of starting
   * the attempt again, which would send it twice.
   */
  private readonly settled = new Map<string, { uid: string; record: NotificationRecord; at: number }>();

  constructor(
    private readonly ctx: Pick<ManagerContext, 'client' | 'tasks' | 'metrics' | 'log' | 'config'>,
    objects: MultiInformer<KubeObject>,
    private readonly spec: NotifyKind,
    /** Wakes the object's reconcile after `afterMs` (0: now): an attempt finished, a retry or escalation is due. */
    private readonly wake: (key: string, afterMs: number) => void,
    opts: { retry?: RetryOptions; slots?: Semaphore } = {},
  ) {
    this.send = {
      policy: addressPolicy({
        denyLinkLocal: ctx.config.HTTP_CHECK_DENY_LINK_LOCAL,
        denyLoopback: ctx.config.HTTP_CHECK_DENY_LOOPBACK,
        deniedCidrs: ctx.config.HTTP_CHECK_DENIED_CIDRS,
      }),
      requestTimeoutMs: 10_000,
    };
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.slots = opts.slots ?? SHARED_SLOTS;
    objects.addHandler({
      onUpdate: (_old, o) => this.forgetRecorded(o),
      onDelete: (o) => this.forgetDeleted(o),
    });
  }

  /** An attempt's task is dropped once the record it decided is durable; its decision is kept a while. */
  private forgetRecorded(o: KubeObject) {
    const uid = o.metadata.uid;
    if (!uid) return;
    const now = Date.now();
    for (const [key, s] of this.settled) if (now - s.at > SETTLED_KEEP_MS) this.settled.delete(key);
    const records = new Map(((o.status?.notifications ?? []) as NotificationRecord[]).map((r) => [r.id, r]));
    for (const [key, t] of this.live) {
      if (t.uid !== uid) continue;
      const r = records.get(t.id);
      if (r && (r.state !== 'Pending' || (r.attempts ?? 0) >= t.attempt)) {
        if (t.decided) this.settled.set(key, { uid, record: t.decided, at: now });
        this.drop(key);
      }
    }
  }

  /**
   * A deleted object's finished attempts are dropped now; one still running is let finish (the receiver may
   * be mid-request: aborting would leave it unknown whether it arrived), then dropped. Only the manager's stop
   * aborts an attempt.
   */
  private forgetDeleted(o: KubeObject) {
    const uid = o.metadata.uid;
    if (!uid) return;
    for (const [key, t] of this.live) {
      if (t.uid !== uid) continue;
      if (this.ctx.tasks.running(key) > 0) this.deleted.add(uid);
      else this.drop(key);
    }
    for (const [key, s] of this.settled) if (s.uid === uid) this.settled.delete(key);
  }

  private drop(key: string) {
    const t = this.live.get(key);
    this.ctx.tasks.forget(key);
    this.live.delete(key);
    if (t && ![...this.live.values()].some((o) => o.uid === t.uid)) this.deleted.delete(t.uid);
  }

  /** True while a record waits for its delivery: a finished object must still be reconciled for it. */
  static pending(status: { notifications?: NotificationRecord[] } | undefined): boolean {
    return (status?.notifications ?? []).some((r) => r.state === 'Pending');
  }

  /**
   * Brings status.notifications (and the NotificationsDelivered condition) up to date on the working copy of
   * `status`, starts the attempts due, and schedules a wake-up for the next retry or escalation. Events go to
   * `event`, to be recorded once the status that explains them is written. Never throws, never waits.
   * Returns when to look again (the wake-up is scheduled already; a caller may also requeue by it).
   */
  sync(
    obj: KubeObject,
    status: StatusWithNotifications,
    now: Date,
    event: EventSink,
  ): { requeueAfterMs?: number } {
    try {
      return this.syncRecords(obj, status, now, event);
    } catch (e) {
      // A bug here must not silently stop notifications: say so (bounded, no stack), look again in a minute.
      const why = boundText(e instanceof Error ? `${e.name}: ${e.message}` : String(e), 300);
      this.ctx.log.error('notification bookkeeping failed', { object: keyOf(obj), err: why });
      event('Warning', 'NotificationBookkeepingFailed', `notification bookkeeping failed: ${why}`);
      this.wake(keyOf(obj), 60_000);
      return { requeueAfterMs: 60_000 };
    }
  }

  private syncRecords(obj: KubeObject, status: StatusWithNotifications, now: Date, event: EventSink) {
    const targets = this.spec.targets(obj) ?? [];
    if (!targets.length && !status.notifications?.length) return {};
    const byName = new Map(targets.map((t) => [t.name, t]));
    const { due, nextAt: escalationAt } = this.spec.due(obj, status, targets, now);
    let nextAt = escalationAt;
    const existing = status.notifications ?? [];
    const known = new Set(existing.map((r) => r.id));
    const fresh: NotificationRecord[] = [];
    for (const d of due) {
      if (known.has(d.id)) continue;
      fresh.push({ id: d.id, target: d.target, event: d.event, state: 'Pending', attempts: 0 });
      known.add(d.id);
    }
    const records = admit(existing, fresh, new Set(due.map((d) => d.id)));
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      if (r.state !== 'Pending') continue;
      const target = byName.get(r.target);
      if (!target) {
        const { nextAttemptAt: _dropped, ...rest } = r;
        records[i] = {
          ...rest,
          state: 'Failed',
          message: 'the target was removed from spec.notify before delivery',
        };
        event('Warning', 'NotificationFailed', `${r.event} to ${r.target}: ${records[i]!.message}`);
        continue;
      }
      const waitUntil = r.nextAttemptAt ? Date.parse(r.nextAttemptAt) : NaN;
      const next = waitUntil > now.getTime() ? r : this.track(obj, status, r, target, now, event);
      records[i] = next;
      const at = next.state === 'Pending' && next.nextAttemptAt ? Date.parse(next.nextAttemptAt) : NaN;
      if (at > now.getTime()) nextAt = Math.min(nextAt ?? Infinity, at);
    }
    status.notifications = records;
    if (records.length) {
      status.conditions = setCondition(
        status.conditions,
        { ...deliveredCondition(records), observedGeneration: obj.metadata.generation ?? 1 },
        now,
      );
    }
    if (nextAt === undefined) return {};
    const requeueAfterMs = Math.max(0, nextAt - now.getTime()) + 100;
    this.wake(keyOf(obj), requeueAfterMs);
    return { requeueAfterMs };
  }

  /**
   * A Pending record due for an attempt: the attempt's task is started if there is none, and its outcome
   * taken once it is done.
   */
  private track(
    obj: KubeObject,
    status: StatusWithNotifications,
    r: NotificationRecord,
    target: NotifyTarget,
    now: Date,
    event: EventSink,
  ): NotificationRecord {
    const uid = obj.metadata.uid ?? keyOf(obj);
    const attempt = (r.attempts ?? 0) + 1;
    const key = owner(uid, r.id, attempt);
    const idempotencyId = `${uid}/${r.id}`;
    const envelope: NotificationEnvelope = {
      id: idempotencyId,
      kind: this.spec.kind,
      event: r.event,
      namespace: obj.metadata.namespace ?? '',
      name: obj.metadata.name,
      uid,
      target: target.name,
      timestamp: now.toISOString().replace(/\.\d+Z$/, 'Z'),
      ...this.spec.envelope?.(obj, status),
      message: this.spec.message(obj, status, r, target),
    };
    const body = JSON.stringify(payloadFor(target.type, envelope));
    const namespace = obj.metadata.namespace ?? '';
    const objectKey = keyOf(obj);
    const settled = this.settled.get(key);
    if (settled) return settled.record; // a stale copy of a record this attempt already decided
    if (!this.live.has(key)) this.live.set(key, { uid, id: r.id, attempt });
    const state = this.ctx.tasks.ensure<AttemptOutcome>(
      key,
      'deliver',
      (task) => this.attempt(uid, r, target, namespace, body, idempotencyId, task.signal),
      () => {
        if (this.deleted.has(uid)) this.drop(key);
        else this.wake(objectKey, 0);
      },
    );
    if (state.state === 'running') return r;
    const next: NotificationRecord =
      state.state === 'done'
        ? state.result.record
        : // attempt() catches everything: only a bug gets here, and its text stays out of status.
          afterAttempt(
            r,
            { kind: 'retry', message: 'internal error (see the operator log)' },
            Date.now(),
            this.retry,
          );
    const entry = this.live.get(key);
    if (entry) entry.decided = next;
    const what = `${r.event} to ${target.name} (${target.type})`;
    if (next.state === 'Delivered')
      event(
        'Normal',
        'NotificationSent',
        `sent ${what}${(next.attempts ?? 0) > 1 ? ` after ${next.attempts} attempts` : ''}`,
      );
    else if (next.state === 'Failed')
      event('Warning', 'NotificationFailed', `${what} failed: ${next.message ?? ''}`);
    return next;
  }

  /** One attempt, in a background task, holding one of the shared slots. Never throws. */
  private async attempt(
    uid: string,
    r: NotificationRecord,
    target: NotifyTarget,
    namespace: string,
    body: string,
    idempotencyId: string,
    signal: AbortSignal,
  ): Promise<AttemptOutcome> {
    let release: (() => void) | undefined;
    try {
      release = await this.slots.acquire(signal);
      if (this.deleted.has(uid)) return { record: r, skipped: true };
      const at = Date.now();
      let place: string | undefined;
      const source = this.urlFrom(namespace, target);
      const result = await attemptOnce(
        async () => {
          const got = await source();
          if ('url' in got) place = urlPlace(target);
          return got;
        },
        body,
        { [NOTIFICATION_ID_HEADER]: idempotencyId },
        this.send,
        signal,
      );
      const record = afterAttempt(r, result, at, this.retry, place);
      if (!signal.aborted && record.state !== 'Pending')
        this.ctx.metrics.notificationsTotal.inc({
          type: target.type,
          event: r.event,
          result: record.state === 'Delivered' ? 'delivered' : 'failed',
        });
      return { record };
    } catch (e) {
      // Aborted (the manager stops), or a bug: only the error's name is logged, a message could carry the URL.
      if (!signal.aborted)
        this.ctx.log.error('notification attempt failed unexpectedly', {
          target: target.name,
          err: e instanceof Error ? e.name : typeof e,
        });
      return {
        record: afterAttempt(
          r,
          { kind: 'retry', message: 'internal error (see the operator log)' },
          Date.now(),
          this.retry,
        ),
      };
    } finally {
      release?.();
    }
  }

  /**
   * Reads the target's URL from its Secret at send time: never cached, never copied anywhere. A missing
   * Secret or key is retried like an outage (GitOps may create the Secret after the object that uses it).
   */
  private urlFrom(namespace: string, target: NotifyTarget): UrlSource {
    const { name, key } = target.urlSecretRef;
    return async () => {
      let secret: KubeObject;
      try {
        secret = await this.ctx.client.request<KubeObject>(
          'GET',
          resourcePath({ group: '', version: 'v1', plural: 'secrets', namespace, name }),
          { timeoutMs: 10_000 },
        );
      } catch (e) {
        if (isNotFound(e))
          return {
            retry: `Secret "${name}" (urlSecretRef of target ${target.name}) not found in namespace ${namespace}`,
          };
        const code = e instanceof KubeApiError ? ` (HTTP ${e.code})` : '';
        return {
          retry: `reading Secret "${name}" (urlSecretRef of target ${target.name}) failed${code}`,
        };
      }
      const encoded = (secret.data as Record<string, string> | undefined)?.[key];
      if (encoded === undefined)
        return { retry: `Secret "${name}" has no key "${key}" (urlSecretRef of target ${target.name})` };
      const url = Buffer.from(encoded, 'base64').toString('utf8').trim();
      if (!url)
        return {
          retry: `key "${key}" of Secret "${name}" is empty (urlSecretRef of target ${target.name})`,
        };
      return { url };
    };
  }
}

const keyOf = (obj: KubeObject) => `${obj.metadata.namespace}/${obj.metadata.name}`;

/**
 * `existing` plus as many of `fresh` as fit in MAX_RECORDS, making room by dropping the oldest finished
 * records that are no longer due. A Pending record or one still due is never dropped: dropping it would send
 * it again (and again). Fresh records that do not fit wait for a later call (a Pending record finishes within
 * the retry span and frees room). They always fit eventually: at most 5 plan events (or 3 schedule events)
 * are due at once per target, and there are at most 10 targets (notifier.test.ts checks the arithmetic).
 */
export function admit(
  existing: readonly NotificationRecord[],
  fresh: readonly NotificationRecord[],
  dueIds: ReadonlySet<string>,
): NotificationRecord[] {
  let room = MAX_RECORDS - existing.length;
  const drop = new Set<number>();
  for (let i = 0; i < existing.length && room < fresh.length; i++) {
    const r = existing[i]!;
    if (r.state !== 'Pending' && !dueIds.has(r.id)) {
      drop.add(i);
      room++;
    }
  }
  return [...existing.filter((_, i) => !drop.has(i)), ...fresh.slice(0, Math.max(0, room))];
}

/**
 * NotificationsDelivered from the newest record of each target: False names a failed one, Unknown while one
 * is on its way, True when all arrived.
 */
export function deliveredCondition(records: readonly NotificationRecord[]) {
  const newest = new Map<string, NotificationRecord>();
  for (const r of records) newest.set(r.target, r);
  const failed = [...newest.values()].filter((r) => r.state === 'Failed');
  const pending = [...newest.values()].filter((r) => r.state === 'Pending');
  if (failed.length)
    return {
      type: ConditionType.NotificationsDelivered,
      status: 'False' as const,
      reason: 'DeliveryFailed',
      message: boundText(
        failed.map((r) => `${r.event} to ${r.target}: ${r.message ?? 'failed'}`).join('; '),
        1024,
      ),
    };
  if (pending.length)
    return {
      type: ConditionType.NotificationsDelivered,
      status: 'Unknown' as const,
      reason: 'Delivering',
      message: boundText(
        `${pending
          .map(
            (r) =>
              `${r.event} to ${r.target}${r.attempts ? ` (attempt ${r.attempts} failed: ${r.message ?? ''})` : ''}`,
          )
          .join(', ')} on the way`,
        1024,
      ),
    };
  return {
    type: ConditionType.NotificationsDelivered,
    status: 'True' as const,
    reason: 'Delivered',
    message: 'every notification due was delivered',
  };
}
