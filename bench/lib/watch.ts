// One watch stream per resource type, with waiters: `waitFor(key, predicate)` resolves with the time
// (performance.now(), taken when the event arrived) of the first event whose object satisfies the predicate.
// Every latency in the rollback benchmark is "action -> watch event", so both sides of a comparison are
// observed through the same stream and pay the same watch delivery delay.
import { Watch, type KubeConfig } from '@kubernetes/client-node';

export interface RawObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  spec?: any;
  status?: any;
}

export interface Observed<T> {
  /** performance.now() when the event carrying `obj` was dispatched. */
  at: number;
  obj: T;
}

interface Waiter<T> {
  predicate: (obj: T) => boolean;
  resolve: (o: Observed<T>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export const keyOf = (o: RawObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class ObjectWatcher<T extends RawObject = RawObject> {
  private readonly objects = new Map<string, T>();
  private readonly waiters = new Map<string, Set<Waiter<T>>>();
  private controller: AbortController | undefined;
  private stopped = false;
  private resourceVersion: string | undefined;
  /** Number of times the stream ended and was reopened. */
  reconnects = 0;
  events = 0;
  private readonly listeners: ((
    type: 'ADDED' | 'MODIFIED' | 'DELETED',
    obj: T,
    wallClockMs: number,
  ) => void)[] = [];

  /** Calls `fn` for every ADDED/MODIFIED/DELETED event, with Date.now() at arrival (see recorder.ts). */
  onEach(fn: (type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T, wallClockMs: number) => void): void {
    this.listeners.push(fn);
  }

  constructor(
    private readonly kc: KubeConfig,
    private readonly path: string,
    private readonly query: Record<string, string> = {},
    private readonly log: (m: string) => void = () => {},
  ) {}

  /** Resolves once the watch request is established (its initial ADDED events may still be arriving). */
  async start(): Promise<void> {
    await this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
    for (const [, set] of this.waiters) {
      for (const w of set) {
        clearTimeout(w.timer);
        w.reject(new Error(`watch ${this.path} stopped`));
      }
    }
    this.waiters.clear();
  }

  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  /**
   * Resolves at the first event for `key` (namespace/name) whose object satisfies `predicate`; the object in
   * the cache is checked first. Rejects after `timeoutMs`, naming `what` and the last object seen.
   */
  waitFor(
    key: string,
    predicate: (obj: T) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<Observed<T>> {
    const current = this.objects.get(key);
    if (current && safe(predicate, current)) return Promise.resolve({ at: performance.now(), obj: current });
    return new Promise<Observed<T>>((resolve, reject) => {
      const set = this.waiters.get(key) ?? new Set<Waiter<T>>();
      this.waiters.set(key, set);
      const w: Waiter<T> = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          set.delete(w);
          const last = this.objects.get(key);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${
                last
                  ? JSON.stringify({ metadata: last.metadata, status: last.status }).slice(0, 1500)
                  : 'nothing'
              }`,
            ),
          );
        }, timeoutMs),
      };
      set.add(w);
    });
  }

  private async connect(): Promise<void> {
    const query = {
      ...this.query,
      allowWatchBookmarks: true,
      ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}),
    };
    this.controller = await new Watch(this.kc).watch(
      this.path,
      query,
      (type, obj) => this.onEvent(type, obj),
      (err) => this.onDone(err),
    );
  }

  private onEvent(type: string, obj: any): void {
    const at = performance.now();
    if (type === 'BOOKMARK') {
      this.resourceVersion = obj?.metadata?.resourceVersion ?? this.resourceVersion;
      return;
    }
    if (type === 'ERROR') {
      // 410 Gone: our resourceVersion is too old; the reconnect starts from the current state.
      if (obj?.code === 410) this.resourceVersion = undefined;
      this.log(`watch ${this.path}: ${obj?.message ?? 'error event'}`);
      return;
    }
    this.events++;
    this.resourceVersion = obj?.metadata?.resourceVersion ?? this.resourceVersion;
    const wall = Date.now();
    for (const l of this.listeners) l(type as 'ADDED' | 'MODIFIED' | 'DELETED', obj as T, wall);
    const key = keyOf(obj);
    if (type === 'DELETED') {
      this.objects.delete(key);
      return;
    }
    this.objects.set(key, obj as T);
    const set = this.waiters.get(key);
    if (!set) return;
    for (const w of [...set]) {
      if (!safe(w.predicate, obj)) continue;
      clearTimeout(w.timer);
      set.delete(w);
      w.resolve({ at, obj });
    }
    if (set.size === 0) this.waiters.delete(key);
  }

  private onDone(err: unknown): void {
    if (this.stopped) return;
    this.reconnects++;
    this.log(`watch ${this.path} ended (${(err as Error)?.message ?? 'closed by the server'}); reopening`);
    setTimeout(() => {
      if (this.stopped) return;
      this.connect().catch((e: Error) => this.onDone(e));
    }, 200);
  }
}

function safe<T>(predicate: (o: T) => boolean, obj: T): boolean {
  try {
    return predicate(obj);
  } catch {
    return false;
  }
}
