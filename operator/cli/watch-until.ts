// Following one object until it says what the command waits for: a GET, then a WATCH from its resourceVersion
// (re-established after the API server closes it), bounded by --timeout. Never a polling loop.
import { Watch } from '@kubernetes/client-node';
import { resourcePath, type KubeObject, type ResourceRef } from '../kube/rest.js';
import type { CliContext } from './context.js';
import { CliError, ExitCode, fromApiError } from './errors.js';

export interface WatchUntilOptions {
  /** How the object is named in messages, e.g. `BackupSchedule "app"`. */
  what: string;
  timeoutMs: number;
  /** Called with every version seen (for progress lines). */
  onChange?: (obj: KubeObject) => void;
}

/** How long to wait before re-establishing a watch the server ended (it does so every few minutes). */
const REWATCH_MS = 200;

/**
 * Resolves with `decide(obj)` for the first version of the object where it is not undefined. Rejects with
 * CliError: Timeout after `timeoutMs`, NotFound when the object is (or becomes) missing, Forbidden when the
 * user may not get or watch it.
 */
export async function watchUntil<T>(
  ctx: Pick<CliContext, 'client' | 'kc'>,
  ref: ResourceRef,
  decide: (obj: KubeObject) => T | undefined,
  opts: WatchUntilOptions,
): Promise<T> {
  if (!ref.name) throw new Error('watchUntil follows one named object');
  const collection = resourcePath({ ...ref, name: undefined });
  const watcher = new Watch(ctx.kc);
  let abort: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  return new Promise<T>((resolve, reject) => {
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      abort?.abort();
      fn();
    };
    const fail = (e: unknown, verb: string) => finish(() => reject(fromApiError(e, `${verb} ${opts.what}`)));
    const refused = () =>
      finish(() =>
        reject(
          new CliError(
            ExitCode.Forbidden,
            `watch ${opts.what}: forbidden: the current user may not watch ${ref.plural}${ref.group ? `.${ref.group}` : ''} in namespace ${ref.namespace}`,
          ),
        ),
      );
    const seen = (obj: KubeObject) => {
      if (settled) return;
      opts.onChange?.(obj);
      let v: T | undefined;
      try {
        v = decide(obj);
      } catch (e) {
        return finish(() => reject(e));
      }
      if (v !== undefined) finish(() => resolve(v as T));
    };
    timer = setTimeout(
      () =>
        finish(() =>
          reject(
            new CliError(
              ExitCode.Timeout,
              `timed out after ${Math.round(opts.timeoutMs / 1000)}s waiting for ${opts.what}`,
            ),
          ),
        ),
      opts.timeoutMs,
    );
    const start = async () => {
      let obj: KubeObject;
      try {
        obj = await ctx.client.get<KubeObject>(ref);
      } catch (e) {
        return fail(e, 'get');
      }
      seen(obj);
      if (settled) return;
      try {
        abort = await watcher.watch(
          collection,
          {
            fieldSelector: `metadata.name=${ref.name}`,
            resourceVersion: obj.metadata.resourceVersion,
            allowWatchBookmarks: true,
          },
          (type, o: KubeObject) => {
            if (type === 'ADDED' || type === 'MODIFIED') seen(o);
            else if (type === 'DELETED')
              finish(() => reject(new CliError(ExitCode.NotFound, `${opts.what} was deleted`)));
            else if (type === 'ERROR') restart();
          },
          (err: unknown) => (forbidden(err) ? refused() : restart()),
        );
        if (settled) abort.abort();
      } catch (e) {
        if (forbidden(e)) return refused();
        restart();
      }
    };
    // The server ended the watch (timeout, 410 Gone, a dropped connection): GET and watch again.
    const restart = () => {
      if (settled) return;
      abort?.abort();
      setTimeout(() => void start(), REWATCH_MS);
    };
    void start();
  });
}

/** A watch refused for lack of permission: the message must name the verb and resource, so it is reported. */
function forbidden(e: unknown): boolean {
  const code = (e as { statusCode?: number; code?: number })?.statusCode ?? (e as { code?: number })?.code;
  if (code === 403 || code === 401) return true;
  return /\b(403|forbidden)\b/i.test(String((e as Error)?.message ?? ''));
}
