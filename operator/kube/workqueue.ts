import { setLongTimeout, type LongTimer } from './timers.js';

export interface QueueMetrics {
  depth(n: number): void;
  added(): void;
  retried(): void;
  /** Seconds a key waited in the queue before a worker took it. */
  queued(seconds: number): void;
  /** Seconds a worker held a key. */
  worked(seconds: number): void;
}

const noMetrics: QueueMetrics = { depth() {}, added() {}, retried() {}, queued() {}, worked() {} };

/**
 * Per-item exponential backoff (client-go ItemExponentialFailureRateLimiter: base * 2^failures, capped).
 */
export class ExponentialBackoff {
  private readonly failures = new Map<string, number>();
  constructor(
    readonly baseMs = 5,
    readonly maxMs = 1_000_000,
  ) {}
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
}

/**
 * How urgent a key is. `low`: the key only waits for something outside (a plan watching its rollout); it is
 * woken by watch events and must not hold up keys that have work to do (`high`: a plan not yet started).
 */
export type Priority = 'high' | 'low';

export interface WorkQueueOptions {
  /** The priority of a key when it is added (default: every key high, i.e. plain FIFO). */
  priorityOf?: (key: string) => Priority;
  /**
   * Fairness: while high keys are waiting, every `lowShare`-th key handed out is a low one (if any waits),
   * so a stream of high keys never starves the low ones.
   */
  lowShare?: number;
}

/**
 * A work queue with client-go semantics: a key is queued at most once (dirty set); a key being processed is
 * never handed to a second worker; adding it meanwhile marks it dirty and it is re-queued once on done().
 * Delayed adds keep the earliest ready time. After shutdown(), get() resolves undefined.
 *
 * Two priority levels, FIFO within each (controller-runtime's priority queue, reduced to two): a key is in
 * one level at a time; adding a queued low key as high moves it up, adding a queued high key as low keeps it
 * high. Workers take high keys first, but every `lowShare`-th take goes to the oldest low key while both wait.
 */
export class WorkQueue {
  /** Insertion-ordered sets: FIFO, with O(1) removal when a key changes level. */
  private readonly high = new Set<string>();
  private readonly low = new Set<string>();
  private readonly dirty = new Set<string>();
  /** Keys added while processing, with the highest priority they were added with (queued again on done). */
  private readonly dirtyPriority = new Map<string, Priority>();
  private readonly processing = new Set<string>();
  private readonly enqueuedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly waiting = new Map<string, { at: number; timer: LongTimer }>();
  private readonly getters: ((k: string | undefined) => void)[] = [];
  private shuttingDown = false;
  private drainWaiters: (() => void)[] = [];
  private readonly priorityOf: (key: string) => Priority;
  private readonly lowShare: number;
  /** High keys handed out in a row while low keys waited. */
  private highStreak = 0;

  constructor(
    readonly rateLimiter = new ExponentialBackoff(),
    private readonly metrics: QueueMetrics = noMetrics,
    opts: WorkQueueOptions = {},
  ) {
    this.priorityOf = opts.priorityOf ?? (() => 'high');
    this.lowShare = Math.max(2, opts.lowShare ?? 8);
  }

  add(key: string, priority?: Priority): void {
    if (this.shuttingDown) return;
    const p = priority ?? this.safePriority(key);
    if (this.dirty.has(key)) {
      // Already waiting: only a move up changes anything (dedup keeps one entry, at the higher level).
      if (p === 'high') {
        if (this.low.delete(key)) this.high.add(key);
        else if (this.processing.has(key)) this.dirtyPriority.set(key, 'high');
      }
      return;
    }
    this.metrics.added();
    this.dirty.add(key);
    if (!this.enqueuedAt.has(key)) this.enqueuedAt.set(key, performance.now());
    if (this.processing.has(key)) {
      this.dirtyPriority.set(key, p);
      return;
    }
    this.push(key, p);
  }

  /** A throwing priority function must not lose the key: it is queued high. */
  private safePriority(key: string): Priority {
    try {
      return this.priorityOf(key);
    } catch {
      return 'high';
    }
  }

  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    this.metrics.retried();
    const at = Date.now() + ms;
    const existing = this.waiting.get(key);
    if (existing && existing.at <= at) return;
    existing?.timer.cancel();
    // Capped and re-armed (timers.ts): a requeue of 600h must not come back after 1 ms.
    const timer = setLongTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms).unref();
    this.waiting.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    this.addAfter(key, this.rateLimiter.when(key));
  }

  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  get length(): number {
    return this.high.size + this.low.size;
  }

  /** Queued keys by priority (for tests and metrics). */
  lengths(): Record<Priority, number> {
    return { high: this.high.size, low: this.low.size };
  }

  /** Resolves with the next key, or undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.next();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((r) => this.getters.push(r));
  }

  done(key: string): void {
    const started = this.startedAt.get(key);
    if (started !== undefined) this.metrics.worked((performance.now() - started) / 1000);
    this.startedAt.delete(key);
    this.processing.delete(key);
    const again = this.dirtyPriority.get(key);
    this.dirtyPriority.delete(key);
    if (this.dirty.has(key)) this.push(key, again ?? 'high');
    if (this.processing.size === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Longest time any key has been held by a worker, in seconds (workqueue_longest_running_processor_seconds). */
  longestRunningSeconds(): number {
    let min = Infinity;
    for (const t of this.startedAt.values()) min = Math.min(min, t);
    return min === Infinity ? 0 : (performance.now() - min) / 1000;
  }

  unfinishedWorkSeconds(): number {
    let s = 0;
    const now = performance.now();
    for (const t of this.startedAt.values()) s += now - t;
    return s / 1000;
  }

  /**
   * Stops at once (leadership lost): queued and delayed keys are dropped, so no worker starts another
   * reconcile; keys in flight are not waited for.
   */
  shutDown(): void {
    this.shuttingDown = true;
    for (const w of this.waiting.values()) w.timer.cancel();
    this.waiting.clear();
    this.high.clear();
    this.low.clear();
    this.dirty.clear(); // a key in flight is not handed out again when it is done
    this.dirtyPriority.clear();
    this.metrics.depth(0);
    for (const g of this.getters.splice(0)) g(undefined);
  }

  /** Stops accepting keys; pending get() calls resolve undefined; resolves when in-flight keys are done. */
  async shutDownWithDrain(): Promise<void> {
    this.shuttingDown = true;
    for (const w of this.waiting.values()) w.timer.cancel();
    this.waiting.clear();
    for (const g of this.getters.splice(0)) g(undefined);
    if (this.processing.size > 0) await new Promise<void>((r) => this.drainWaiters.push(r));
  }

  private push(key: string, priority: Priority): void {
    const getter = this.getters.shift();
    if (getter) {
      // A worker waits only when nothing is queued: this key is next whatever its priority.
      getter(this.take(key));
      return;
    }
    (priority === 'high' ? this.high : this.low).add(key);
    this.metrics.depth(this.length);
  }

  /** The next key to hand out: high first, but every lowShare-th take a low one while both wait. */
  private next(): string | undefined {
    const first = (s: Set<string>) => {
      const k = s.values().next().value;
      if (k !== undefined) s.delete(k);
      return k;
    };
    if (this.low.size === 0) {
      this.highStreak = 0;
      return first(this.high);
    }
    if (this.high.size === 0 || this.highStreak >= this.lowShare - 1) {
      this.highStreak = 0;
      return first(this.low);
    }
    this.highStreak++;
    return first(this.high);
  }

  private take(key: string): string {
    this.metrics.depth(this.length);
    this.dirty.delete(key);
    this.processing.add(key);
    const queued = this.enqueuedAt.get(key);
    if (queued !== undefined) this.metrics.queued((performance.now() - queued) / 1000);
    this.enqueuedAt.delete(key);
    this.startedAt.set(key, performance.now());
    return key;
  }
}
