import { type KubeConfig, Watch } from '@kubernetes/client-node';

/**
 * A watch that sees every event of a collection for as long as it runs: `list` first (its items are noted and
 * its resourceVersion is where the watch starts), and after a transient end (a reset, a failed start under
 * load: Watch.watch never throws, it passes those to its done callback) a new watch from the last
 * resourceVersion seen. It fails (errors) only when events may have been lost: 410 Gone (the server no longer
 * has that resourceVersion) or 20 failed starts in a row.
 */
export interface ResumableWatch {
  /** Why events may have been lost; [] while every event was seen. */
  errors: unknown[];
  /** How many times the watch was started again after a transient end. */
  restarts: number;
  /** Ends the current request as a reset would (tests). */
  interrupt(): void;
  stop(): void;
}

export async function resumableWatch(
  kc: KubeConfig,
  path: string,
  list: () => Promise<{ items: unknown[]; metadata?: { resourceVersion?: string } }>,
  note: (obj: any) => void,
): Promise<ResumableWatch> {
  const listed = await list();
  for (const o of listed.items) note(o);
  let rv = listed.metadata?.resourceVersion ?? '';
  let stopped = false;
  let failedStarts = 0;
  let current: AbortController | undefined;
  const w: ResumableWatch = {
    errors: [],
    restarts: 0,
    interrupt: () => current?.abort(),
    stop: () => {
      stopped = true;
      current?.abort();
    },
  };
  const start = async (): Promise<void> => {
    if (stopped) return;
    let gone = false;
    current = await new Watch(kc).watch(
      path,
      { resourceVersion: rv, allowWatchBookmarks: true },
      (type, obj: any) => {
        failedStarts = 0;
        if (type === 'ERROR') {
          if (obj?.code === 410) gone = true;
          else w.errors.push(new Error(`the watch of ${path} failed: ${JSON.stringify(obj)}`));
          return;
        }
        if (obj?.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
        if (type !== 'BOOKMARK') note(obj);
      },
      (err) => {
        if (stopped) return;
        if (gone) {
          w.errors.push(new Error(`the watch of ${path} lost events: 410 Gone at resourceVersion ${rv}`));
          return;
        }
        if (++failedStarts > 20) {
          w.errors.push(err ?? new Error(`the watch of ${path} ended 20 times in a row`));
          return;
        }
        w.restarts++;
        setTimeout(() => void start().catch((e: unknown) => w.errors.push(e)), 500);
      },
    );
  };
  await start();
  return w;
}
