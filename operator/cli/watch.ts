// Following one object until it reaches a state: a GET (list by name, for its resourceVersion) and then a WATCH
// from there, re-listed when the server ends the watch; never a polling loop. Every wait has a deadline.
import { Watch } from '@kubernetes/client-node';
import { resourcePath, type KubeClient, type KubeObject, type ResourceRef } from '../kube/rest.js';
import { CliError, ExitCode } from './errors.js';
import { formatDuration } from './output.js';

export interface WaitOptions<T> {
  /** Exit 5 (Timeout) once this has passed. */
  timeoutMs: number;
  /** What is awaited, for the timeout message: "plan drill to finish". */
  what: string;
  /** Sees every version of the object (undefined: it does not exist), before `done` is asked. */
  onChange?: (obj: T | undefined) => void;
  /** Added to the timeout message, e.g. a hint why nothing happened. */
  hint?: (last: T | undefined) => string | undefined;
}

/**
 * Resolves with the first non-undefined value `done` returns for the object named by `ref` (called with
 * undefined while the object does not exist or once it was deleted). Rejects with CliError(Timeout) after
 * `timeoutMs`, and with the API error when the object cannot be read.
 */
export function waitForObject<T extends KubeObject, R>(
  client: KubeClient,
  ref: ResourceRef,
  done: (obj: T | undefined) => R | undefined,
  opts: WaitOptions<T>,
): Promise<R> {
  if (!ref.name) throw new Error(`waitForObject needs a name (${ref.plural})`);
  const collection = { ...ref, name: undefined };
  const fieldSelector = `metadata.name=${ref.name}`;
  let last: T | undefined;
  let lastVersion: string | undefined = '-';
  return new Promise<R>((resolve, reject) => {
    let settled = false;
    let abort: AbortController | undefined;
    const finish = (err: unknown, value?: R) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      abort?.abort();
      if (err) reject(err);
      else resolve(value as R);
    };
    const timer = setTimeout(() => {
      const hint = opts.hint?.(last);
      finish(
        new CliError(
          ExitCode.Timeout,
          `timed out after ${formatDuration(opts.timeoutMs / 1000)} waiting for ${opts.what}${hint ? ` (${hint})` : ''}`,
        ),
      );
    }, opts.timeoutMs);
    const see = (obj: T | undefined) => {
      if (settled) return;
      // A re-list delivers the version already seen: report changes only.
      const version = obj?.metadata?.resourceVersion;
      if (version === lastVersion && (obj === undefined) === (last === undefined)) return;
      last = obj;
      lastVersion = version;
      opts.onChange?.(obj);
      let value: R | undefined;
      try {
        value = done(obj);
      } catch (e) {
        return finish(e);
      }
      if (value !== undefined) finish(undefined, value);
    };
    const watchOnce = (resourceVersion: string | undefined) =>
      new Promise<void>((res) => {
        // The watch's own failures (dropped connection, 410 Gone) end it; the re-list that follows reports
        // anything persistent (403, 404 of the resource) as an API error.
        new Watch(client.kc)
          .watch(
            resourcePath(collection),
            {
              resourceVersion,
              fieldSelector,
              allowWatchBookmarks: true,
              timeoutSeconds: Math.max(1, Math.min(300, Math.ceil(opts.timeoutMs / 1000))),
            },
            (phase: string, obj: T) => {
              if (phase === 'BOOKMARK') return;
              if (phase === 'ERROR') return abort?.abort();
              see(phase === 'DELETED' ? undefined : obj);
            },
            () => res(),
          )
          .then(
            (ctrl) => {
              abort = ctrl;
              if (settled) ctrl.abort();
            },
            () => res(),
          );
      });
    void (async () => {
      let started = 0;
      while (!settled) {
        // A watch that ended within a second (an error) waits that second before the re-list.
        const wait = 1000 - (Date.now() - started);
        if (started && wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (settled) return;
        started = Date.now();
        const list = await client.list<T>(collection, { fieldSelector });
        see(list.items[0]);
        if (settled) return;
        await watchOnce(list.metadata.resourceVersion);
      }
    })().catch((e) => finish(e));
  });
}

/** Resolves once the object is gone (404 or deleted), e.g. a namespace being deleted. */
export function waitGone(client: KubeClient, ref: ResourceRef, timeoutMs: number) {
  return waitForObject(client, ref, (obj) => (obj === undefined ? true : undefined), {
    timeoutMs,
    what: `${ref.plural} ${ref.name} to be deleted`,
  });
}
