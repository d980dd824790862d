import { sleep } from './kube/timers.js';

/**
 * Failpoints for crash-consistency tests (the etcd/gofail idea): when NXT_FAILPOINTS names a point, the
 * process kills itself with SIGKILL right there, as a node crash or OOM kill would. `name=sleep(ms)` makes
 * failpointSleep(name) wait that long instead (a slow API server, a slow reconcile). Unset in production.
 */
const entries = (process.env.NXT_FAILPOINTS ?? '').split(',').filter(Boolean);
const enabled = new Set(entries);
const sleeps = new Map(
  entries.flatMap((e) => {
    const m = /^([\w-]+)=sleep\((\d+)\)$/.exec(e);
    return m ? [[m[1]!, Number(m[2])] as const] : [];
  }),
);

export function failpoint(name: string): void {
  if (enabled.has(name)) {
    process.stderr.write(`failpoint ${name}: killing the process\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}

/** Resolves at once unless NXT_FAILPOINTS holds `name=sleep(ms)`; then after ms. */
export async function failpointSleep(name: string): Promise<void> {
  const ms = sleeps.get(name);
  if (ms === undefined) return;
  process.stderr.write(`failpoint ${name}: sleeping ${ms} ms\n`);
  await sleep(ms);
  // With the time, for tests that order it against other processes' logs (the leadership drain test).
  process.stderr.write(`failpoint ${name}: slept ${ms} ms, at ${new Date().toISOString()}\n`);
}
