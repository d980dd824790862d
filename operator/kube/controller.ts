import { randomUUID } from 'node:crypto';
import type { Logger } from 'winston';
import { failpointSleep } from '../failpoints.js';
import type { Metrics } from '../metrics.js';
import { describeError, isConflict, KubeApiError, TerminalError } from './errors.js';
import { objectKey, type MultiInformer } from './informer.js';
import { controllerOf } from './objects.js';
import type { KubeObject } from './rest.js';
import { ExponentialBackoff, WorkQueue, type Priority } from './workqueue.js';

export interface Request {
  namespace: string;
  name: string;
}

export interface ReconcileContext {
  log: Logger;
  reconcileId: string;
}

/** What a reconcile asks of the queue; nothing means done until the next event. */
export interface ReconcileResult {
  requeueAfterMs?: number;
  requeue?: boolean;
}

export interface Reconciler {
  reconcile(req: Request, ctx: ReconcileContext): Promise<ReconcileResult | void>;
}

/** False for a resync: the informer re-delivers a cached object unchanged (same resourceVersion). */
export const changed = (o: KubeObject, n: KubeObject): boolean =>
  o.metadata.resourceVersion === undefined || o.metadata.resourceVersion !== n.metadata.resourceVersion;

export const parseKey = (key: string): Request => {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
};

/**
 * controller-runtime's controller: informers feed keys into a deduplicating work queue; N workers run
 * reconcile(key). Errors are retried with per-key exponential backoff; TerminalError is recorded and not
 * retried; a conflict (409) is a plain requeue, not an error. Exceptions never escape a worker.
 */
export class Controller {
  readonly queue: WorkQueue;
  private workers: Promise<void>[] = [];
  private readonly log: Logger;

  constructor(
    readonly name: string,
    private readonly reconciler: Reconciler,
    private readonly opts: {
      log: Logger;
      metrics: Metrics;
      workers?: number;
      backoff?: ExponentialBackoff;
      /** Which keys only wait for something outside and may go behind the others (see WorkQueue). */
      priorityOf?: (key: string) => Priority;
    },
  ) {
    const m = opts.metrics;
    const labels = { name, controller: name };
    this.log = opts.log.child({ controller: name });
    this.queue = new WorkQueue(
      opts.backoff ?? new ExponentialBackoff(5, 1_000_000),
      {
        depth: (n) => m.workqueueDepth.set({ ...labels, priority: '' }, n),
        added: () => m.workqueueAdds.inc(labels),
        retried: () => m.workqueueRetries.inc(labels),
        queued: (s) => m.workqueueQueueDuration.observe(labels, s),
        worked: (s) => m.workqueueWorkDuration.observe(labels, s),
      },
      { priorityOf: opts.priorityOf },
    );
    m.maxConcurrentReconciles.set({ controller: name }, opts.workers ?? 1);
    m.activeWorkers.set({ controller: name }, 0);
    m.workqueueDepth.set({ ...labels, priority: '' }, 0);
    m.workqueueUnfinishedWork.set(labels, 0);
    m.workqueueLongestRunning.set(labels, 0);
    m.reconcileTotal.inc({ controller: name, result: 'success' }, 0);
    m.reconcileTotal.inc({ controller: name, result: 'error' }, 0);
    m.reconcileErrors.inc({ controller: name }, 0);
  }

  /** Reconcile an object whenever it changes. */
  watches<T extends KubeObject>(informer: MultiInformer<T>): this {
    const enqueue = (o: T) => this.queue.add(objectKey(o));
    informer.addHandler({ onAdd: enqueue, onUpdate: (_o, n) => enqueue(n), onDelete: enqueue });
    return this;
  }

  /**
   * Reconcile the controlling owner (of kind `ownerKind`) when an owned object changes. A resync of an owned
   * object (same resourceVersion) enqueues nothing: the owner's own resync already reconciles it, and 10,000
   * cached Deployments would otherwise wake their plans every RESYNC_PERIOD.
   */
  owns<T extends KubeObject>(informer: MultiInformer<T>, ownerKind: string): this {
    const enqueue = (o: T) => {
      const ref = controllerOf(o);
      if (ref?.kind === ownerKind && o.metadata.namespace)
        this.queue.add(`${o.metadata.namespace}/${ref.name}`);
    };
    informer.addHandler({
      onAdd: enqueue,
      onUpdate: (o, n) => changed(o, n) && enqueue(n),
      onDelete: enqueue,
    });
    return this;
  }

  /**
   * Reconcile the keys `map` returns when an object changes (e.g. plans that target a Deployment). As with
   * owns(), a resync (same resourceVersion) of the watched object enqueues nothing.
   */
  watchesMapped<T extends KubeObject>(informer: MultiInformer<T>, map: (o: T) => string[]): this {
    const enqueue = (o: T) => {
      try {
        for (const k of map(o)) this.queue.add(k);
      } catch (e) {
        this.log.error('mapping function threw', { err: describeError(e) });
      }
    };
    informer.addHandler({
      onAdd: enqueue,
      onUpdate: (o, n) => changed(o, n) && enqueue(n),
      onDelete: enqueue,
    });
    return this;
  }

  start(): void {
    const n = this.opts.workers ?? 1;
    for (let i = 0; i < n; i++) this.workers.push(this.runWorker());
    this.log.info('starting workers', { workers: n });
  }

  /** Stops taking new keys and waits for in-flight reconciles to finish. */
  async stop(): Promise<void> {
    await this.queue.shutDownWithDrain();
    await Promise.all(this.workers);
  }

  /**
   * Leadership lost: no new reconcile starts, and nothing is waited for (the process exits). Reconciles in
   * flight cannot write any more: the client refuses writes once the lease is gone (see KubeClient.fenceWrites).
   */
  abandon(): void {
    this.queue.shutDown();
  }

  private async runWorker(): Promise<void> {
    const m = this.opts.metrics;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      m.activeWorkers.inc({ controller: this.name });
      try {
        await this.processKey(key);
      } finally {
        m.activeWorkers.dec({ controller: this.name });
        this.queue.done(key);
        m.workqueueLongestRunning.set(
          { name: this.name, controller: this.name },
          this.queue.longestRunningSeconds(),
        );
        m.workqueueUnfinishedWork.set(
          { name: this.name, controller: this.name },
          this.queue.unfinishedWorkSeconds(),
        );
      }
    }
  }

  private async processKey(key: string): Promise<void> {
    const m = this.opts.metrics;
    const req = parseKey(key);
    const reconcileId = randomUUID();
    const log = this.log.child({ namespace: req.namespace, name: req.name, reconcileID: reconcileId });
    const end = m.reconcileTime.startTimer({ controller: this.name });
    try {
      await failpointSleep('slow-reconcile'); // tests: a reconcile still in flight when SIGTERM arrives
      const res = (await this.reconciler.reconcile(req, { log, reconcileId })) ?? {};
      if (res.requeueAfterMs && res.requeueAfterMs > 0) {
        this.queue.forget(key);
        this.queue.addAfter(key, res.requeueAfterMs);
        m.reconcileTotal.inc({ controller: this.name, result: 'requeue_after' });
      } else if (res.requeue) {
        this.queue.addRateLimited(key);
        m.reconcileTotal.inc({ controller: this.name, result: 'requeue' });
      } else {
        this.queue.forget(key);
        m.reconcileTotal.inc({ controller: this.name, result: 'success' });
      }
    } catch (e) {
      if (e instanceof TerminalError) {
        this.queue.forget(key);
        m.terminalReconcileErrors.inc({ controller: this.name });
        m.reconcileTotal.inc({ controller: this.name, result: 'error' });
        log.error('terminal reconcile error; not retrying', { reason: e.reason, err: describeError(e) });
      } else if (isConflict(e)) {
        // Our cached copy was stale: re-read and try again, quietly (CloudNativePG treats this as a requeue).
        this.queue.addRateLimited(key);
        m.reconcileTotal.inc({ controller: this.name, result: 'requeue' });
        log.debug('conflict, requeueing', { err: describeError(e) });
      } else {
        this.queue.addRateLimited(key);
        m.reconcileErrors.inc({ controller: this.name });
        m.reconcileTotal.inc({ controller: this.name, result: 'error' });
        // Not an API error: a bug or an unexpected condition (controller-runtime counts recovered panics).
        if (!(e instanceof KubeApiError)) m.reconcilePanics.inc({ controller: this.name });
        log.error('Reconciler error', { err: describeError(e), retries: this.queue.numRequeues(key) });
      }
    } finally {
      end();
    }
  }
}
