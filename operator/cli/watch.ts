// Following one object until it reaches a state: a GET (or a list by name, for an object that may not exist)
// and then a WATCH from that resourceVersion, never a polling loop. The watch is re-established when the
// server ends it, the object re-read after 410 Gone or an ERROR event; a watch that keeps failing backs off and
// gives up. Every wait has a deadline; every exit path clears its timers and aborts its watch.
import { Watch } from '@kubernetes/client-node';
import { resourcePath, type KubeClient, type KubeObject, type ResourceRef } from '../kube/rest.js';
import { CliError, ExitCode, fromApiError } from './errors.js';
import { formatDuration } from './output.js';

/** Watch connections that fail (or end at once) in a row before the CLI gives up (exit 6). */
export const MAX_WATCH_FAILURES = 5;
/** The server ends each watch after at most this long; the loop opens the next one. */
const MAX_WATCH_SECONDS = 300;
/** A watch that ends sooner than this without an event counts as a failure. */
const QUICK_END_MS = 1000;
/** The longest pause before the next connection after a failure. */
const MAX_BACKOFF_MS = 1000;

/** What following needs of an object: its resourceVersion, to watch from there. */
export type Followed = { metadata: { resourceVersion?: string } };

export interface WatchOptions<O> {
  /** CliError(Timeout) once this has passed. */
  timeoutMs: number;
  /** The object, for error messages: "RollbackPlan shop/p" (default: `<plural>.<group> <namespace>/<name>`). */
  what?: string;
  /** What is awaited, for the timeout message: "the drill's rollback" (default: `what`). */
  waitingFor?: string;
  /** Sees every new version of the object (a re-read that returns the version already seen is no change). */
  onChange?: (obj: O) => void;
  /** Added to the timeout message in parentheses, e.g. a hint why nothing happened. */
  hint?: (last: O | undefined) => string | undefined;
}

/** The deadline passed: exit 5, with the last version of the object seen (for a final display). */
export class WatchTimeoutError<O = unknown> extends CliError {
  constructor(
    message: string,
    readonly last: O | undefined,
  ) {
    super(ExitCode.Timeout, message);
  }
}

/**
 * Follows the object `ref` names (it must exist) and resolves with the first non-undefined value `decide`
 * returns for a version of it. Rejects with CliError: NotFound when it is missing or deleted while followed,
 * Forbidden (naming verb, resource and namespace) when the user may not get or watch it, Unavailable when the
 * watch keeps failing, WatchTimeoutError (Timeout) at the deadline. An error `decide` throws ends the wait.
 */
export function watchObject<T extends Followed, R>(
  client: KubeClient,
  ref: ResourceRef,
  decide: (obj: T) => R | undefined,
  opts: WatchOptions<T>,
): Promise<R> {
  return follow<T, R>(client, ref, (o) => decide(o as T), opts as WatchOptions<T | undefined>, false);
}

/**
 * Like watchObject for an object that may not exist yet or may disappear: it is listed by name, and `decide`
 * and `onChange` see undefined while it does not exist (or once it was deleted).
 */
export function watchMaybe<T extends Followed, R>(
  client: KubeClient,
  ref: ResourceRef,
  decide: (obj: T | undefined) => R | undefined,
  opts: WatchOptions<T | undefined>,
): Promise<R> {
  return follow(client, ref, decide, opts, true);
}

/** Resolves once the object is gone (never existed, or deleted), e.g. a namespace being deleted. */
export function waitGone(client: KubeClient, ref: ResourceRef, timeoutMs: number): Promise<true> {
  return watchMaybe<KubeObject, true>(client, ref, (obj) => (obj === undefined ? true : undefined), {
    timeoutMs,
    waitingFor: `${ref.plural} ${ref.name} to be deleted`,
  });
}

/** `rollbackplans.rollback.nxtnewday.io`, `namespaces`: the resource as RBAC and the API server name it. */
export const resourceName = (ref: ResourceRef) => (ref.group ? `${ref.plural}.${ref.group}` : ref.plural);

/** The message of a refused watch: the watch reports only the HTTP status, so it is said as the server would. */
export function watchForbidden(ref: ResourceRef, what: string, code: number): CliError {
  return new CliError(
    ExitCode.Forbidden,
    `watch ${what}: ${code === 401 ? 'unauthorized' : 'forbidden'}: the current user may not watch ${resourceName(ref)}` +
      (ref.namespace ? ` in namespace ${ref.namespace}` : ''),
  );
}

type Outcome<R> =
  | { kind: 'decided'; value: R }
  /** The server ended the watch. */
  | { kind: 'ended' }
  /** 410 Gone or another ERROR event: read again. */
  | { kind: 'gone' }
  | { kind: 'deleted' }
  | { kind: 'deadline' }
  | { kind: 'failed'; error: unknown };

const DEADLINE = Symbol('deadline');

async function follow<T extends Followed, R>(
  client: KubeClient,
  ref: ResourceRef,
  decide: (obj: T | undefined) => R | undefined,
  opts: WatchOptions<T | undefined>,
  mayBeAbsent: boolean,
): Promise<R> {
  if (!ref.name) throw new Error(`following needs the name of one object (${ref.plural})`);
  const what = opts.what ?? `${resourceName(ref)} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
  const collection = { ...ref, name: undefined };
  const fieldSelector = `metadata.name=${ref.name}`;
  const deadline = Date.now() + opts.timeoutMs;
  const expiry = new AbortController();
  const timer = setTimeout(() => expiry.abort(), opts.timeoutMs);
  const expired = new Promise<typeof DEADLINE>((r) =>
    expiry.signal.addEventListener('abort', () => r(DEADLINE), { once: true }),
  );

  let last: T | undefined;
  let seenAny = false;
  let lastVersion: string | undefined;
  /** Reports a version when it is new and asks `decide`; `{ value }` when following ends. */
  const see = (obj: T | undefined): { value: R } | undefined => {
    const version = obj?.metadata?.resourceVersion;
    if (seenAny && version === lastVersion && (obj === undefined) === (last === undefined)) return undefined;
    seenAny = true;
    last = obj;
    lastVersion = version;
    opts.onChange?.(obj);
    const value = decide(obj);
    return value === undefined ? undefined : { value };
  };
  const timedOut = () => {
    const hint = opts.hint?.(last);
    return new WatchTimeoutError<T | undefined>(
      `timed out after ${formatDuration(opts.timeoutMs >= 1000 ? Math.round(opts.timeoutMs / 1000) : opts.timeoutMs / 1000)} waiting for ${opts.waitingFor ?? what}${hint ? ` (${hint})` : ''}`,
      last,
    );
  };
  /** The object (or undefined: absent) and the resourceVersion to watch from; DEADLINE when time ran out. */
  const read = async (): Promise<{ obj: T | undefined; rv: string | undefined } | typeof DEADLINE> => {
    const verb = mayBeAbsent ? 'list' : 'get';
    const request = mayBeAbsent
      ? client
          .list<T>(collection, { fieldSelector })
          .then((l) => ({ obj: l.items[0], rv: l.metadata.resourceVersion }))
      : client.get<T>(ref).then((obj) => ({ obj, rv: obj.metadata.resourceVersion }));
    try {
      // A read still under way at the deadline is left to its own request timeout; its result is ignored.
      return await Promise.race([request, expired]);
    } catch (e) {
      throw fromApiError(e, `${verb} ${what}`);
    }
  };
  const pause = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(done, Math.max(0, Math.min(ms, deadline - Date.now())));
      function done() {
        clearTimeout(t);
        expiry.signal.removeEventListener('abort', done);
        r();
      }
      expiry.signal.addEventListener('abort', done, { once: true });
    });

  try {
    let failures = 0;
    let rv: string | undefined;
    let reread = true;
    for (;;) {
      if (expiry.signal.aborted) throw timedOut();
      if (reread) {
        const r = await read();
        if (r === DEADLINE) throw timedOut();
        const decided = see(r.obj);
        if (decided) return decided.value;
        rv = r.rv;
        reread = false;
      }
      const opened = Date.now();
      const { outcome, events } = await watchOnce<T, R>(
        client,
        resourcePath(collection),
        {
          fieldSelector,
          resourceVersion: rv,
          allowWatchBookmarks: true,
          timeoutSeconds: Math.max(1, Math.min(MAX_WATCH_SECONDS, Math.ceil((deadline - Date.now()) / 1000))),
        },
        expiry.signal,
        (type, obj) => {
          if (obj?.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
          if (type === 'BOOKMARK') return undefined;
          if (type === 'DELETED' && !mayBeAbsent) return { kind: 'deleted' };
          const decided = see(type === 'DELETED' ? undefined : obj);
          return decided && { kind: 'decided', value: decided.value };
        },
      );
      // A watch that delivered events or lasted a while was healthy: only failures in a row count.
      const healthy = events > 0 || Date.now() - opened >= QUICK_END_MS;
      if (healthy) failures = 0;
      switch (outcome.kind) {
        case 'decided':
          return outcome.value;
        case 'deleted':
          throw new CliError(ExitCode.NotFound, `${what} was deleted`);
        case 'deadline':
          throw timedOut();
        case 'ended':
          // The server ends every watch after timeoutSeconds: resume from the last version seen. One it ends at
          // once, again and again, would spin: that counts as a failure.
          if (healthy) continue;
          break;
        case 'gone':
          // 410 Gone (the version is too old) or another ERROR event: read again, then watch.
          break;
        case 'failed': {
          if (outcome.error instanceof DecideError) throw outcome.error.cause;
          const code = (outcome.error as { statusCode?: number })?.statusCode;
          if (code === 401 || code === 403) throw watchForbidden(ref, what, code);
          break;
        }
      }
      if (++failures >= MAX_WATCH_FAILURES) {
        const cause =
          outcome.kind === 'failed'
            ? `: ${(outcome.error as Error)?.message ?? String(outcome.error)}`
            : outcome.kind === 'gone'
              ? ': the API server keeps reporting errors'
              : ': the API server keeps ending it at once';
        throw new CliError(
          ExitCode.Unavailable,
          `watch ${what}: failed ${MAX_WATCH_FAILURES} times in a row${cause}`,
        );
      }
      // A short pause within the deadline, then catch up with a read before the next watch.
      await pause(Math.min(MAX_BACKOFF_MS, 125 * 2 ** failures));
      reread = true;
    }
  } finally {
    clearTimeout(timer);
    expiry.abort();
  }
}

/**
 * One watch connection; resolves (never rejects) with why it ended and how many events (other than ERROR) it
 * delivered. The connection is closed on every path.
 */
function watchOnce<T, R>(
  client: KubeClient,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  expiry: AbortSignal,
  onEvent: (type: string, obj: T) => Outcome<R> | undefined,
): Promise<{ outcome: Outcome<R>; events: number }> {
  return new Promise((resolve) => {
    let settled = false;
    let events = 0;
    let ctrl: AbortController | undefined;
    const finish = (o: Outcome<R>) => {
      if (settled) return;
      settled = true;
      expiry.removeEventListener('abort', onExpiry);
      ctrl?.abort();
      resolve({ outcome: o, events });
    };
    const onExpiry = () => finish({ kind: 'deadline' });
    if (expiry.aborted) return finish({ kind: 'deadline' });
    expiry.addEventListener('abort', onExpiry, { once: true });
    new Watch(client.kc)
      .watch(
        path,
        query,
        (type: string, obj: T) => {
          if (settled) return;
          // 410 Gone (the version is too old) or another error: the watch is over; read again.
          if (type === 'ERROR') return finish({ kind: 'gone' });
          events++;
          let o: Outcome<R> | undefined;
          try {
            o = onEvent(type, obj);
          } catch (e) {
            return finish({ kind: 'failed', error: new DecideError(e) });
          }
          if (o) finish(o);
        },
        (err: unknown) => {
          if (settled) return;
          if (err && !(err instanceof Error && err.name === 'AbortError'))
            finish({ kind: 'failed', error: err });
          else finish({ kind: 'ended' });
        },
      )
      .then(
        (c) => {
          ctrl = c;
          if (settled) c.abort();
        },
        (err: unknown) => finish({ kind: 'failed', error: err }),
      );
  });
}

/** An error `decide` or `onChange` threw inside a watch callback: it ends the wait as it is. */
class DecideError {
  constructor(readonly cause: unknown) {}
}
