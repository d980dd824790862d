import { randomBytes } from 'node:crypto';
import type { Logger } from 'winston';
import { describeError, isNotFound } from './errors.js';
import type { KubeClient, KubeObject } from './rest.js';

export type EventType = 'Normal' | 'Warning';

interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

/**
 * Records core/v1 Events about objects (shown by `kubectl describe` and `kubectl events`). Repeats of the same
 * (object, type, reason, message) are aggregated into one Event whose count grows, like client-go's recorder.
 * Recording never throws: an Event that cannot be written is logged and dropped.
 */
export class EventRecorder {
  private readonly seen = new Map<string, Seen>();
  /** The record in flight per key: records of one key run one after the other (see record). */
  private readonly inFlight = new Map<string, Promise<void>>();
  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  /**
   * Callers do not await this (an Event never holds up a reconcile), so two repeats of one Event can be in
   * flight at once. They are serialized per key: each one sees the count and the Event name the one before
   * it left, so concurrent repeats send counts 2, 3, ... and two repeats that both meet an expired Event
   * create one new Event, not two. Different keys do not wait for each other.
   */
  record(obj: KubeObject, type: EventType, reason: string, message: string, action = reason): Promise<void> {
    const note = message.length > 1024 ? message.slice(0, 1021) + '...' : message;
    const key = `${obj.metadata.uid}|${type}|${reason}|${note}`;
    const before = this.inFlight.get(key) ?? Promise.resolve();
    // recordNow never rejects.
    const run = before.then(() => this.recordNow(key, obj, type, reason, note, action));
    this.inFlight.set(key, run);
    void run.then(() => {
      if (this.inFlight.get(key) === run) this.inFlight.delete(key);
    });
    return run;
  }

  private async recordNow(
    key: string,
    obj: KubeObject,
    type: EventType,
    reason: string,
    note: string,
    action: string,
  ): Promise<void> {
    const ns = obj.metadata.namespace ?? 'default';
    const now = new Date().toISOString();
    const prev = this.seen.get(key);
    try {
      if (prev) {
        try {
          await this.client.patch(
            { group: '', version: 'v1', plural: 'events', namespace: prev.namespace, name: prev.name },
            'merge',
            { count: prev.count + 1, lastTimestamp: now },
          );
          prev.count++;
          return;
        } catch (e) {
          // The Event expired (the API server's event TTL, 1 h by default) or was deleted: a new one follows.
          if (!isNotFound(e)) throw e;
          this.seen.delete(key);
        }
      }
      const name = `${obj.metadata.name}.${Date.now().toString(16)}${randomBytes(2).toString('hex')}`;
      await this.client.create(
        { group: '', version: 'v1', plural: 'events', namespace: ns },
        {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name, namespace: ns },
          involvedObject: {
            apiVersion: obj.apiVersion,
            kind: obj.kind,
            name: obj.metadata.name,
            namespace: ns,
            uid: obj.metadata.uid,
            resourceVersion: obj.metadata.resourceVersion,
          },
          type,
          reason,
          message: note,
          action,
          source: { component: this.component },
          reportingComponent: this.component,
          reportingInstance: this.instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      );
      this.seen.set(key, { name, namespace: ns, count: 1, firstTimestamp: now });
      if (this.seen.size > 4096) this.seen.delete(this.seen.keys().next().value!);
    } catch (e) {
      this.seen.delete(key);
      this.log.warn('could not record event', {
        reason,
        object: `${ns}/${obj.metadata.name}`,
        err: describeError(e),
      });
    }
  }
}
