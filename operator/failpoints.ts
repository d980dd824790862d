import { sleep } from './kube/timers.js';

/**
 * Failpoints for crash-consistency tests (the etcd/gofail idea): when NXT_FAILPOINTS names a point, the
 * process kills itself with SIGKILL right there, as a node crash or OOM kill would. `name@N` kills it at the
 * N-th hit of the point instead of the first (the last of several Deployment patches, say); `name` alone is
 * `name@1`. `name=sleep(ms)` makes failpointSleep(name) wait that long instead (a slow API server, a slow
 * reconcile). Unset in production.
 */
export function parseFailpoints(value: string): {
  kills: Map<string, number>;
  sleeps: Map<string, number>;
} {
  const kills = new Map<string, number>();
  const sleeps = new Map<string, number>();
  for (const e of value.split(',').filter(Boolean)) {
    const s = /^([\w-]+)=sleep\((\d+)\)$/.exec(e);
    if (s) {
      sleeps.set(s[1]!, Number(s[2]));
      continue;
    }
    const k = /^([\w-]+)(?:@([1-9]\d*))?$/.exec(e);
    if (k) kills.set(k[1]!, Number(k[2] ?? 1));
  }
  return { kills, sleeps };
}

const { kills, sleeps } = parseFailpoints(process.env.NXT_FAILPOINTS ?? '');
const hits = new Map<string, number>();

/** Counts a hit of `name`; true at the hit NXT_FAILPOINTS names (`name` or `name@N`). */
export function failpointDue(name: string, points = kills, counts = hits): boolean {
  const at = points.get(name);
  if (at === undefined) return false;
  const n = (counts.get(name) ?? 0) + 1;
  counts.set(name, n);
  return n === at;
}

export function failpoint(name: string): void {
  if (failpointDue(name)) {
    process.stderr.write(`failpoint ${name}: killing the process (hit ${hits.get(name)})\n`);
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
