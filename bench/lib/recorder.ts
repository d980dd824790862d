// Records every event of one watch stream with its wall-clock arrival time (Date.now(), so it lines up with
// the ISO timestamps the operator and the runner write), for timelines built after the fact: when a Job was
// first seen, when its pod ran, when the Job turned Complete. ObjectWatcher (watch.ts) answers "wait until"
// and owns the stream; this answers "when did it happen".
import type { KubeConfig } from '@kubernetes/client-node';
import { ObjectWatcher, type RawObject } from './watch.js';

export interface RecordedEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** Date.now() when the event was dispatched. */
  at: number;
  obj: RawObject;
}

export class EventRecorder {
  readonly events: RecordedEvent[] = [];
  private readonly watcher: ObjectWatcher;

  constructor(
    kc: KubeConfig,
    path: string,
    query: Record<string, string> = {},
    log: (m: string) => void = () => {},
  ) {
    this.watcher = new ObjectWatcher(kc, path, query, log);
    this.watcher.onEach((type, obj, at) => this.events.push({ type, at, obj }));
  }

  get reconnects(): number {
    return this.watcher.reconnects;
  }

  start(): Promise<void> {
    return this.watcher.start();
  }

  stop(): void {
    this.watcher.stop();
  }

  /** The first recorded event matching `pred`, in arrival order. */
  first(pred: (e: RecordedEvent) => boolean): RecordedEvent | undefined {
    return this.events.find((e) => safe(pred, e));
  }

  /** The last recorded event matching `pred`. */
  last(pred: (e: RecordedEvent) => boolean): RecordedEvent | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (safe(pred, this.events[i]!)) return this.events[i];
    return undefined;
  }
}

function safe<T>(pred: (e: T) => boolean, e: T): boolean {
  try {
    return pred(e);
  } catch {
    return false;
  }
}
