// Records every event of one watch stream with its wall-clock arrival time (Date.now(), so it lines up with
// the ISO timestamps the operator and the runner write), for timelines built after the fact: when a Job was
// first seen, when its pod ran, when the Job turned Complete. ObjectWatcher (watch.ts) answers "wait until";
// this answers "when did it happen".
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { RawObject } from './watch.js';

export interface RecordedEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** Date.now() when the event was dispatched. */
  at: number;
  obj: RawObject;
}

export class EventRecorder {
  readonly events: RecordedEvent[] = [];
  private controller: AbortController | undefined;
  private stopped = false;
  private resourceVersion: string | undefined;
  reconnects = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly path: string,
    private readonly query: Record<string, string> = {},
    private readonly log: (m: string) => void = () => {},
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
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

  private async connect(): Promise<void> {
    this.controller = await new Watch(this.kc).watch(
      this.path,
      {
        ...this.query,
        allowWatchBookmarks: true,
        ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}),
      },
      (type, obj: any) => {
        const at = Date.now();
        if (type === 'BOOKMARK') {
          this.resourceVersion = obj?.metadata?.resourceVersion ?? this.resourceVersion;
          return;
        }
        if (type === 'ERROR') {
          if (obj?.code === 410) this.resourceVersion = undefined;
          this.log(`watch ${this.path}: ${obj?.message ?? 'error event'}`);
          return;
        }
        this.resourceVersion = obj?.metadata?.resourceVersion ?? this.resourceVersion;
        this.events.push({ type: type as RecordedEvent['type'], at, obj: obj as RawObject });
      },
      (err) => this.onDone(err),
    );
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

function safe<T>(pred: (e: T) => boolean, e: T): boolean {
  try {
    return pred(e);
  } catch {
    return false;
  }
}
