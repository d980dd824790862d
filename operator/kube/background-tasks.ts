import type { Logger } from 'winston';
import { describeError } from './errors.js';

/** What a reconcile sees of a background task: still running (with its latest progress note), or its result. */
export type TaskState<R> =
  | { state: 'running'; progress?: string }
  | { state: 'done'; result: R }
  | { state: 'crashed'; error: string };

export interface TaskContext {
  /** Aborted when the owner goes away (deleted, finished) or the manager stops. */
  signal: AbortSignal;
  /**
   * A note for status while the task runs; read at the owner's next reconcile. It wakes the owner only with
   * `wake` (news the owner acts on, such as a failed attempt that Ready should name); the owner's status
   * writes of such notes are bounded by the owner, not here.
   */
  progress(message: string, opts?: { wake?: boolean }): void;
}

interface Entry {
  owner: string;
  abort: AbortController;
  state: TaskState<unknown>;
}

/**
 * Long waits (HTTP checks with periods of minutes, say) run here, outside the reconcile workers: a reconcile
 * starts a task once by key, returns at once with a requeue, and the task wakes it by `notify` when it has
 * news. controller-runtime's answer to the same problem is a source channel feeding the queue; this is that,
 * plus the bookkeeping of results. Owned by the manager: stop() aborts everything on shutdown.
 */
export class BackgroundTasks {
  private readonly tasks = new Map<string, Entry>();
  private stopped = false;

  constructor(private readonly log: Logger) {}

  /**
   * The task `name` of `owner`: started now if there is none (or the last one was aborted), else its state.
   * `notify` is called on completion and on a progress note given with `wake`, never after the task was aborted.
   */
  ensure<R>(
    owner: string,
    name: string,
    start: (t: TaskContext) => Promise<R>,
    notify: () => void,
  ): TaskState<R> {
    const key = `${owner}\u0000${name}`;
    const existing = this.tasks.get(key);
    if (existing && !existing.abort.signal.aborted) return existing.state as TaskState<R>;
    if (this.stopped) return { state: 'running' };
    const entry: Entry = { owner, abort: new AbortController(), state: { state: 'running' } };
    this.tasks.set(key, entry);
    const { signal } = entry.abort;
    const wake = () => {
      if (signal.aborted) return;
      try {
        notify();
      } catch (e) {
        this.log.error('background task notify failed', { task: name, err: describeError(e) });
      }
    };
    const progress = (message: string, opts?: { wake?: boolean }) => {
      if (entry.state.state !== 'running') return;
      entry.state = { state: 'running', progress: message };
      if (opts?.wake) wake();
    };
    // Started on the next tick: a task that finishes synchronously still reports after ensure() returned.
    void Promise.resolve()
      .then(() => start({ signal, progress }))
      .then(
        (result) => {
          entry.state = { state: 'done', result };
        },
        (e: unknown) => {
          entry.state = { state: 'crashed', error: e instanceof Error ? e.message : String(e) };
          if (!signal.aborted)
            this.log.error('background task failed', { task: name, err: describeError(e) });
        },
      )
      .finally(wake);
    return entry.state as TaskState<R>;
  }

  /** Aborts the owner's running tasks; finished results stay readable until forget(). */
  abort(owner: string): void {
    for (const e of this.tasks.values())
      if (e.owner === owner && e.state.state === 'running') e.abort.abort();
  }

  /** Aborts and drops everything of `owner` (deleted, or finished for good). */
  forget(owner: string): void {
    for (const [k, e] of this.tasks) {
      if (e.owner !== owner) continue;
      e.abort.abort();
      this.tasks.delete(k);
    }
  }

  /** Tasks still running (for tests and logs). */
  running(owner?: string): number {
    let n = 0;
    for (const e of this.tasks.values())
      if (e.state.state === 'running' && !e.abort.signal.aborted && (!owner || e.owner === owner)) n++;
    return n;
  }

  /** Aborts every task; no new ones start. */
  stop(): void {
    this.stopped = true;
    for (const e of this.tasks.values()) e.abort.abort();
    this.tasks.clear();
  }
}
