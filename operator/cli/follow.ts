// Following one object until a condition holds: a GET, then a WATCH from its resourceVersion (never a polling
// loop), resumed when the server ends the watch, re-read after a 410, bounded by a deadline.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { KubeClient, ResourceRef } from '../kube/rest.js';
import { resourcePath } from '../kube/rest.js';
import { CliError, ExitCode, fromApiError } from './errors.js';

export interface FollowOptions<T> {
  /** Gives up (timedOut: true) after this long. */
  timeoutMs: number;
  /** Called with the first version read and with every version the watch brings after it. */
  onChange?: (obj: T) => void;
  /** Following ends at the first version for which this is true. */
  until: (obj: T) => boolean;
  /** For messages: "RollbackPlan shop/x". */
  what: string;
}

export interface FollowResult<T> {
  last: T;
  timedOut: boolean;
}

/** Watch connections that fail in a row before the CLI gives up (exit 6). */
const MAX_WATCH_FAILURES = 5;
/** The server ends each watch after at most this long; the loop opens the next one. */
const MAX_WATCH_SECONDS = 300;

/** What following needs of an object: its resourceVersion, to watch from there. */
export type Followed = { metadata: { resourceVersion?: string } };

type WatchOutcome = 'until' | 'ended' | 'gone' | 'deleted' | 'deadline';

/** Follows the object `ref` (with a name); a 404 or a deletion while following is CliError NotFound. */
export async function follow<T extends Followed>(
  kc: KubeConfig,
  client: KubeClient,
  ref: ResourceRef,
  opts: FollowOptions<T>,
): Promise<FollowResult<T>> {
  if (!ref.name) throw new Error('follow needs the name of one object');
  const deadline = Date.now() + opts.timeoutMs;
  let last = await read<T>(client, ref, opts.what);
  opts.onChange?.(last);
  let failures = 0;
  while (!opts.until(last)) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { last, timedOut: true };
    let outcome: WatchOutcome;
    const opened = Date.now();
    try {
      outcome = await watchOnce<T>(kc, ref, last.metadata.resourceVersion, remaining, (obj) => {
        last = obj;
        failures = 0;
        opts.onChange?.(obj);
        return opts.until(obj);
      });
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      // Watch reports only the HTTP status; say which permission is missing, as the API server would.
      if (code === 401 || code === 403)
        throw new CliError(
          ExitCode.Forbidden,
          `watch ${opts.what}: forbidden: the current user may not watch resource "${ref.plural}" in API group "${ref.group}" in namespace "${ref.namespace}"`,
        );
      if (++failures >= MAX_WATCH_FAILURES) throw fromApiError(e, `watch ${opts.what}`);
      // A short pause before the next connection, within the deadline; then catch up with a GET.
      await new Promise((r) => setTimeout(r, Math.min(1000 * failures, Math.max(0, deadline - Date.now()))));
      outcome = 'gone';
    }
    // A watch the server ends at once, again and again, would spin: count it as a failure and pause.
    if (outcome === 'ended' && Date.now() - opened < 1000) {
      if (++failures >= MAX_WATCH_FAILURES)
        throw new CliError(
          ExitCode.Unavailable,
          `watch ${opts.what}: the API server keeps closing the watch`,
        );
      await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, deadline - Date.now()))));
    }
    if (outcome === 'deleted') throw new CliError(ExitCode.NotFound, `${opts.what} was deleted`);
    if (outcome === 'deadline') return { last, timedOut: true };
    if (outcome === 'gone') {
      last = await read<T>(client, ref, opts.what);
      opts.onChange?.(last);
    }
  }
  return { last, timedOut: false };
}

async function read<T>(client: KubeClient, ref: ResourceRef, what: string): Promise<T> {
  try {
    return await client.get<T>(ref);
  } catch (e) {
    throw fromApiError(e, `get ${what}`);
  }
}

/** One watch connection on the one object; resolves with why it ended. */
function watchOnce<T extends Followed>(
  kc: KubeConfig,
  ref: ResourceRef,
  resourceVersion: string | undefined,
  remainingMs: number,
  onObject: (obj: T) => boolean,
): Promise<WatchOutcome> {
  return new Promise<WatchOutcome>((resolve, reject) => {
    let settled = false;
    let abort: AbortController | undefined;
    const finish = (o: WatchOutcome | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      abort?.abort();
      if (o instanceof Error) reject(o);
      else resolve(o);
    };
    const timer = setTimeout(() => finish('deadline'), remainingMs);
    new Watch(kc)
      .watch(
        resourcePath({ ...ref, name: undefined }),
        {
          fieldSelector: `metadata.name=${ref.name}`,
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: Math.max(1, Math.min(MAX_WATCH_SECONDS, Math.ceil(remainingMs / 1000))),
        },
        (type: string, obj: T) => {
          if (settled) return;
          if (type === 'ERROR') {
            const status = obj as unknown as { code?: number; message?: string };
            if (status.code === 410) return finish('gone');
            return finish(new Error(`watch error ${status.code ?? ''}: ${status.message ?? ''}`));
          }
          if (type === 'BOOKMARK') return;
          if (type === 'DELETED') return finish('deleted');
          if (onObject(obj)) finish('until');
        },
        (err: unknown) => {
          if (settled) return;
          if (err && !(err instanceof Error && err.name === 'AbortError')) finish(err as Error);
          else finish('ended');
        },
      )
      .then(
        (ctrl) => {
          abort = ctrl;
          if (settled) ctrl.abort();
        },
        (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
      );
  });
}
