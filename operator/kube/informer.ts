import { Watch } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import { describeError, isGone } from './errors.js';
import { resourcePath, type KubeClient, type KubeObject, type ResourceRef } from './rest.js';
import { cacheTransform, leanObject } from './lean.js';
import { setLongInterval, type LongTimer } from './timers.js';

export interface EventHandler<T extends KubeObject> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export const objectKey = (o: { metadata: { namespace?: string; name: string } }) =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;

export interface InformerOptions {
  labelSelector?: string;
  /** Periodic resync: every cached object is re-delivered as an update (client-go semantics). */
  resyncMs?: number;
  log: Logger;
  /** Called whenever the informer (re)connects or fails; for metrics. */
  onWatchError?: (e: unknown) => void;
  /**
   * What the cache keeps of each listed or watched object (client-go's SetTransform): applied before the
   * object is cached or handed to a handler. Default: leanObject (metadata.managedFields dropped).
   */
  transform?: (obj: KubeObject) => KubeObject;
}

class GoneError extends Error {}

/**
 * List-then-watch cache of one resource in one namespace (or all). Resumes watches from the last
 * resourceVersion (bookmarks keep it fresh), relists on 410 Gone, restarts with exponential backoff on any
 * other error, and never lets a handler exception escape. Objects are raw JSON in both list and watch paths.
 */
export class Informer<T extends KubeObject = KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: EventHandler<T>[] = [];
  private resourceVersion: string | undefined;
  private synced = false;
  private stopped = true;
  private abort: AbortController | undefined;
  private resyncTimer: LongTimer | undefined;
  private syncWaiters: (() => void)[] = [];
  private sleepTimer: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  readonly description: string;

  constructor(
    private readonly client: KubeClient,
    readonly ref: ResourceRef,
    private readonly opts: InformerOptions,
  ) {
    this.description = `${ref.plural}.${ref.group || 'core'}${ref.namespace ? ` in ${ref.namespace}` : ''}`;
  }

  addHandler(h: EventHandler<T>): void {
    this.handlers.push(h);
    // Late handlers see the current cache, as with client-go shared informers.
    if (this.synced) for (const o of this.cache.values()) this.emit('add', o);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((r) => this.syncWaiters.push(r));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.run();
    if (this.opts.resyncMs) {
      // Capped (timers.ts): a RESYNC_PERIOD beyond 24.8 days would otherwise resync every millisecond.
      this.resyncTimer = setLongInterval(() => {
        for (const o of this.cache.values()) this.emit('update', o, o);
      }, this.opts.resyncMs).unref();
    }
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    this.resyncTimer?.cancel();
    this.sleepTimer?.wake();
  }

  private async run(): Promise<void> {
    let backoff = 500;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        const sawEvents = await this.watchOnce();
        if (sawEvents) backoff = 500;
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof GoneError || isGone(e)) {
          this.opts.log.info('watch expired (410 Gone), relisting', { informer: this.description });
          this.resourceVersion = undefined;
          continue;
        }
        this.opts.onWatchError?.(e);
        this.opts.log.warn('list/watch failed, retrying', {
          informer: this.description,
          backoffMs: backoff,
          err: describeError(e),
        });
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      const timer = setTimeout(wake, ms);
      this.sleepTimer = { timer, wake };
    });
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.ref, { labelSelector: this.opts.labelSelector });
    const seen = new Set<string>();
    for (const raw of list.items) {
      const obj = this.transform({ ...raw, apiVersion: raw.apiVersion, kind: raw.kind } as T);
      const key = objectKey(obj);
      seen.add(key);
      const old = this.cache.get(key);
      this.cache.set(key, obj);
      if (!old) this.emit('add', obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit('update', old, obj);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit('delete', old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  /** One watch connection; resolves when the server ends it, rejects on errors. Returns whether events came. */
  private async watchOnce(): Promise<boolean> {
    const watch = new Watch(this.client.kc);
    // The server closes watches after timeoutSeconds; the inactivity timer guards against silently dead TCP
    // connections (a bookmark arrives about every minute on a live watch).
    const timeoutSeconds = 240 + Math.floor(Math.random() * 120);
    let sawEvents = false;
    let gone = false;
    let lastActivity = Date.now();
    return new Promise<boolean>((resolve, reject) => {
      let settled = false;
      let watchdog: NodeJS.Timeout | undefined = undefined;
      const finish = (err: unknown) => {
        if (settled) return;
        settled = true;
        if (watchdog) clearInterval(watchdog);
        if (gone) return reject(new GoneError('resourceVersion too old'));
        if (err && !(err instanceof Error && err.name === 'AbortError' && this.stopped)) return reject(err);
        resolve(sawEvents);
      };
      watchdog = setInterval(() => {
        if (Date.now() - lastActivity > (timeoutSeconds + 60) * 1000) {
          this.opts.log.warn('watch inactive, reconnecting', { informer: this.description });
          this.abort?.abort();
          finish(null);
        }
      }, 15_000);
      watchdog.unref();
      watch
        .watch(
          resourcePath({ ...this.ref, name: undefined }),
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds,
            labelSelector: this.opts.labelSelector,
          },
          (phase: string, obj: T) => {
            lastActivity = Date.now();
            if (phase === 'ERROR') {
              const status = obj as unknown as { code?: number; message?: string };
              if (status.code === 410) gone = true;
              else this.opts.log.warn('watch error event', { informer: this.description, status });
              this.abort?.abort();
              return;
            }
            if (obj?.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
            if (phase === 'BOOKMARK') return;
            sawEvents = true;
            const lean = this.transform(obj);
            const key = objectKey(lean);
            const old = this.cache.get(key);
            if (phase === 'DELETED') {
              this.cache.delete(key);
              this.emit('delete', lean);
            } else if (old && old.metadata.resourceVersion === lean.metadata.resourceVersion) {
              // The same version again (a watch resumed from an older resourceVersion): nothing changed.
              return;
            } else {
              this.cache.set(key, lean);
              if (old) this.emit('update', old, lean);
              else this.emit('add', lean);
            }
          },
          (err: unknown) => finish(err),
        )
        .then(
          (ctrl) => {
            this.abort = ctrl;
            if (this.stopped) ctrl.abort();
          },
          (err) => finish(err),
        );
    });
  }

  private transform(obj: T): T {
    return (this.opts.transform ?? leanObject)(obj) as T;
  }

  private emit(type: 'add' | 'update' | 'delete', a: T, b?: T): void {
    for (const h of this.handlers) {
      try {
        if (type === 'add') h.onAdd?.(a);
        else if (type === 'update') h.onUpdate?.(a, b ?? a);
        else h.onDelete?.(a);
      } catch (e) {
        this.opts.log.error('informer handler threw', { informer: this.description, err: describeError(e) });
      }
    }
  }
}

/**
 * One logical informer over several namespaces (WATCH_NAMESPACES) or all of them, shared by every
 * controller that asks for the same resource.
 */
export class InformerFactory {
  private readonly informers = new Map<string, MultiInformer<any>>();
  constructor(
    private readonly client: KubeClient,
    private readonly namespaces: string[],
    private readonly opts: Omit<InformerOptions, 'labelSelector'>,
  ) {}

  /**
   * The shared informer of a resource (and label selector). What its cache keeps is decided per resource
   * (cacheTransform), not per caller, so two controllers sharing an informer read the same fields.
   */
  for<T extends KubeObject>(
    ref: Omit<ResourceRef, 'namespace' | 'name'>,
    labelSelector?: string,
  ): MultiInformer<T> {
    const key = `${ref.group}/${ref.version}/${ref.plural}?${labelSelector ?? ''}`;
    let inf = this.informers.get(key);
    if (!inf) {
      const transform = cacheTransform(ref);
      const scopes = this.namespaces.length ? this.namespaces : [undefined];
      inf = new MultiInformer<T>(
        scopes.map(
          (ns) =>
            new Informer<T>(
              this.client,
              { ...ref, namespace: ns },
              { ...this.opts, labelSelector, transform },
            ),
        ),
      );
      this.informers.set(key, inf);
    }
    return inf as MultiInformer<T>;
  }

  start(): void {
    for (const i of this.informers.values()) i.start();
  }
  stop(): void {
    for (const i of this.informers.values()) i.stop();
  }
  hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }
  /** The informers still waiting for their first list, by description (for the cache sync timeout). */
  unsynced(): string[] {
    return [...this.informers.values()].flatMap((i) =>
      i.parts.filter((p) => !p.hasSynced()).map((p) => p.description),
    );
  }
  async waitForSync(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync()));
  }
}

export class MultiInformer<T extends KubeObject> {
  constructor(readonly parts: Informer<T>[]) {}
  addHandler(h: EventHandler<T>) {
    for (const p of this.parts) p.addHandler(h);
  }
  get(key: string): T | undefined {
    for (const p of this.parts) {
      const o = p.get(key);
      if (o) return o;
    }
    return undefined;
  }
  list(namespace?: string): T[] {
    const all = this.parts.flatMap((p) => p.list());
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }
  start() {
    for (const p of this.parts) p.start();
  }
  stop() {
    for (const p of this.parts) p.stop();
  }
  hasSynced() {
    return this.parts.every((p) => p.hasSynced());
  }
  async waitForSync() {
    await Promise.all(this.parts.map((p) => p.waitForSync()));
  }
}
