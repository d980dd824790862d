import { ConditionType } from '../api/v1alpha1/common.js';
import { boundText } from '../kube/bounded.js';
import { setCondition, type Condition } from '../kube/conditions.js';
import { describeError, isNotFound } from '../kube/errors.js';
import type { EventType } from '../kube/events.js';
import type { MultiInformer } from '../kube/informer.js';
import { resourcePath, type KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { addressPolicy } from '../rollback/address-policy.js';
import type { DueResult, NotificationRecord, NotifyTarget } from './due.js';
import type { NotificationMessage } from './messages.js';
import { payloadFor, type NotificationEnvelope } from './payloads.js';
import {
  deliver,
  type DeliveryResult,
  type RetryOptions,
  type SendOptions,
  type UrlSource,
} from './sender.js';

/** status.notifications keeps at most this many records (the schema's maxItems). */
export const MAX_RECORDS = 64;
const MESSAGE_MAX = 1024;
/** The receiver's idempotency header: `<object uid>/<record id>`, the same for a resend after a restart. */
export const NOTIFICATION_ID_HEADER = 'x-nxt-notification-id';

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

const owner = (uid: string, id: string) => `notify/${uid}/${id}`;

/**
 * Notification bookkeeping for one kind, called by that kind's reconciler just before every status write
 * (the reconciler stays the only writer of status): due notifications get a Pending record and a delivery
 * task (ctx.tasks, never a reconcile worker); finished tasks turn their record Delivered or Failed. A record
 * that is Delivered or Failed is never sent again; a Pending one whose task is gone (the operator restarted)
 * is sent again, with the same idempotency id: at least once.
 */
export class Notifier {
  private readonly send: SendOptions & { retry?: RetryOptions };

  constructor(
    private readonly ctx: Pick<ManagerContext, 'client' | 'tasks' | 'metrics' | 'log' | 'config'>,
    objects: MultiInformer<KubeObject>,
    private readonly spec: NotifyKind,
    /** Wakes the object's reconcile after `afterMs` (0: now): a delivery finished, an escalation is due. */
    private readonly wake: (key: string, afterMs: number) => void,
    opts: { retry?: RetryOptions } = {},
  ) {
    this.send = {
      policy: addressPolicy({
        denyLinkLocal: ctx.config.HTTP_CHECK_DENY_LINK_LOCAL,
        denyLoopback: ctx.config.HTTP_CHECK_DENY_LOOPBACK,
        deniedCidrs: ctx.config.HTTP_CHECK_DENIED_CIDRS,
      }),
      requestTimeoutMs: 10_000,
      maxResponseBytes: 4096,
      ...(opts.retry ? { retry: opts.retry } : {}),
    };
    // A task's result is dropped once the record it decided is durable (or the object is gone).
    const forget = (o: KubeObject, finishedOnly: boolean) => {
      const uid = o.metadata.uid;
      if (!uid) return;
      for (const r of (o.status?.notifications ?? []) as NotificationRecord[])
        if (!finishedOnly || r.state !== 'Pending') ctx.tasks.forget(owner(uid, r.id));
    };
    objects.addHandler({
      onUpdate: (_old, o) => forget(o, true),
      onDelete: (o) => forget(o, false),
    });
  }

  /** True while a record waits for its delivery: a finished object must still be reconciled for it. */
  static pending(status: { notifications?: NotificationRecord[] } | undefined): boolean {
    return (status?.notifications ?? []).some((r) => r.state === 'Pending');
  }

  /**
   * Brings status.notifications (and the NotificationsDelivered condition) up to date on the working copy of
   * `status`, starts the deliveries due, and schedules a wake-up for the next escalation. Events go to
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
      this.ctx.log.error('notification bookkeeping failed', { err: describeError(e) });
      return {};
    }
  }

  private syncRecords(obj: KubeObject, status: StatusWithNotifications, now: Date, event: EventSink) {
    const targets = this.spec.targets(obj) ?? [];
    if (!targets.length && !status.notifications?.length) return {};
    const byName = new Map(targets.map((t) => [t.name, t]));
    const { due, nextAt } = this.spec.due(obj, status, targets, now);
    const records = [...(status.notifications ?? [])];
    const known = new Set(records.map((r) => r.id));
    for (const d of due) {
      if (known.has(d.id)) continue;
      records.push({ id: d.id, target: d.target, event: d.event, state: 'Pending', attempts: 0 });
      known.add(d.id);
    }
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      if (r.state !== 'Pending') continue;
      const target = byName.get(r.target);
      if (!target) {
        records[i] = {
          ...r,
          state: 'Failed',
          message: 'the target was removed from spec.notify before delivery',
        };
        event('Warning', 'NotificationFailed', `${r.event} to ${r.target}: ${records[i]!.message}`);
        continue;
      }
      records[i] = this.track(obj, status, r, target, now, event);
    }
    const dueIds = new Set(due.map((d) => d.id));
    status.notifications = bound(records, dueIds);
    if (status.notifications.length) {
      status.conditions = setCondition(
        status.conditions,
        { ...deliveredCondition(status.notifications), observedGeneration: obj.metadata.generation ?? 1 },
        now,
      );
    }
    if (nextAt === undefined) return {};
    const requeueAfterMs = Math.max(0, nextAt - now.getTime()) + 100;
    this.wake(keyOf(obj), requeueAfterMs);
    return { requeueAfterMs };
  }

  /** A Pending record with its delivery task: started if there is none, turned final once it is done. */
  private track(
    obj: KubeObject,
    status: StatusWithNotifications,
    r: NotificationRecord,
    target: NotifyTarget,
    now: Date,
    event: EventSink,
  ): NotificationRecord {
    const uid = obj.metadata.uid ?? keyOf(obj);
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
    const state = this.ctx.tasks.ensure<DeliveryResult>(
      owner(uid, r.id),
      'deliver',
      async (task) => {
        const result = await deliver(
          this.urlFrom(namespace, target),
          body,
          { [NOTIFICATION_ID_HEADER]: idempotencyId },
          this.send,
          task,
        );
        if (!task.signal.aborted)
          this.ctx.metrics.notificationsTotal.inc({
            type: target.type,
            event: r.event,
            result: result.delivered ? 'delivered' : 'failed',
          });
        return result;
      },
      () => this.wake(keyOf(obj), 0),
    );
    if (state.state === 'running')
      return state.progress ? { ...r, message: boundText(state.progress, MESSAGE_MAX) } : r;
    const result: DeliveryResult =
      state.state === 'done'
        ? state.result
        : { delivered: false, attempts: r.attempts ?? 0, message: `delivery crashed: ${state.error}` };
    const what = `${r.event} to ${target.name} (${target.type})`;
    const message = boundText(result.message, MESSAGE_MAX);
    if (result.delivered)
      event(
        'Normal',
        'NotificationSent',
        `sent ${what}${result.attempts > 1 ? ` after ${result.attempts} attempts` : ''}`,
      );
    else event('Warning', 'NotificationFailed', `${what} failed: ${message}`);
    return {
      id: r.id,
      target: r.target,
      event: r.event,
      state: result.delivered ? 'Delivered' : 'Failed',
      attempts: result.attempts,
      ...(result.lastAttemptAt ? { lastAttemptAt: result.lastAttemptAt } : {}),
      ...(result.deliveredAt ? { deliveredAt: result.deliveredAt } : {}),
      message,
    };
  }

  /** Reads the target's URL from its Secret at send time: never cached, never copied anywhere. */
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
            permanent: `Secret "${name}" (urlSecretRef of target ${target.name}) not found in namespace ${namespace}`,
          };
        return { retry: e instanceof Error ? boundText(e.message, 300) : String(e) };
      }
      const encoded = (secret.data as Record<string, string> | undefined)?.[key];
      if (encoded === undefined)
        return { permanent: `Secret "${name}" has no key "${key}" (urlSecretRef of target ${target.name})` };
      const url = Buffer.from(encoded, 'base64').toString('utf8').trim();
      if (!url)
        return {
          permanent: `key "${key}" of Secret "${name}" is empty (urlSecretRef of target ${target.name})`,
        };
      return { url };
    };
  }
}

const keyOf = (obj: KubeObject) => `${obj.metadata.namespace}/${obj.metadata.name}`;

/**
 * At most MAX_RECORDS records: the oldest finished ones go first, except those still due (dropping one of
 * those would send it again). Records are appended, so list order is age.
 */
export function bound(records: NotificationRecord[], dueIds: ReadonlySet<string>): NotificationRecord[] {
  let excess = records.length - MAX_RECORDS;
  if (excess <= 0) return records;
  const drop = new Set<number>();
  for (const pass of [(r: NotificationRecord) => !dueIds.has(r.id), () => true])
    records.forEach((r, i) => {
      if (excess > 0 && r.state !== 'Pending' && !drop.has(i) && pass(r)) {
        drop.add(i);
        excess--;
      }
    });
  return records.filter((_, i) => !drop.has(i)).slice(-MAX_RECORDS);
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
      message: `${pending.map((r) => `${r.event} to ${r.target}`).join(', ')} on the way`,
    };
  return {
    type: ConditionType.NotificationsDelivered,
    status: 'True' as const,
    reason: 'Delivered',
    message: 'every notification due was delivered',
  };
}
