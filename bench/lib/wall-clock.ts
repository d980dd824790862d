// Wall-clock (Date.now()) arrival times of watch events, for comparing with timestamps the operator writes
// (toISOString()); ObjectWatcher.waitFor answers in performance.now().
import { keyOf, type ObjectWatcher, type RawObject } from './watch.js';

/** Answers "the first event from now on that matched, and when it arrived". */
export class WallClock {
  private readonly waiters = new Set<{
    key: string;
    pred: (o: RawObject) => boolean;
    resolve: (v: { at: number; obj: RawObject }) => void;
  }>();

  constructor(watchers: ObjectWatcher[]) {
    for (const w of watchers)
      w.onEach((type, obj, at) => {
        if (type === 'DELETED') return;
        for (const x of [...this.waiters]) {
          if (x.key !== keyOf(obj)) continue;
          let ok = false;
          try {
            ok = x.pred(obj);
          } catch {
            /* a predicate reading a missing field is false */
          }
          if (!ok) continue;
          this.waiters.delete(x);
          x.resolve({ at, obj });
        }
      });
  }

  /** The first event for `key` from now on whose object satisfies `pred`, with its wall-clock arrival. */
  next(
    key: string,
    pred: (o: RawObject) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<{ at: number; obj: RawObject }> {
    const p = new Promise<{ at: number; obj: RawObject }>((resolve, reject) => {
      const w = { key, pred, resolve: (v: { at: number; obj: RawObject }) => (clearTimeout(t), resolve(v)) };
      const t = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(w);
    });
    p.catch(() => {}); // handled where awaited
    return p;
  }
}
