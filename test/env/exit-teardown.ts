// Synchronous teardown for when the harness process ends before its async teardown can finish.
//
// vitest registers its own SIGINT/SIGTERM handler before any global setup runs (its Logger,
// addCleanupListeners in vitest/dist/chunks/cli-api.*.js) and that handler calls process.exit() 1 ms later:
// an async teardown started from a signal stops at its first await (the kubelet's exit, a DELETE to the API
// server). So every ProcessGroup (test/env/processes.ts) registers a synchronous clean-up here, run
//   - from process.on('exit'), which process.exit() still runs synchronously, and
//   - from the global setups' signal listener (tearDownOnSignals), prepended so it runs before vitest's.
// Each clean-up kills what its group started (SIGTERM, then SIGKILL) and removes its work dir (a real
// node's through node-sweep.ts's sweep). A normal teardown unregisters them. SIGKILL of the harness runs
// nothing: the next run's reapStaleRuns() (processes.ts) cleans up then (docs/reliability.md).
import { constants } from 'node:os';

const cleanups = new Map<number, { what: string; fn: () => void; signal?: () => void }>();
let nextId = 1;
let exitHooked = false;
let signalsHooked = false;

/**
 * Registers `fn` to run synchronously when the process exits (or on a signal, see tearDownOnSignals) unless
 * the returned function unregisters it first. Clean-ups run newest first (a node before its control plane).
 * `signal`, when given, runs for every clean-up before the first `fn`: each group signals its processes at
 * once, so they all stop within one shared grace time instead of one group's after the other's.
 */
export function onExitSync(what: string, fn: () => void, signal?: () => void): () => void {
  const id = nextId++;
  cleanups.set(id, { what, fn, signal });
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => runExitCleanups());
  }
  return () => {
    cleanups.delete(id);
  };
}

/** What is registered now (for tests and logs). */
export function pendingExitCleanups(): string[] {
  return [...cleanups.values()].map((c) => c.what);
}

/**
 * Runs every registered clean-up now, newest first, each once (every `signal` first, see onExitSync). A clean-up that throws (something stayed
 * mounted) is reported on stderr and makes the exit code non-zero.
 */
export function runExitCleanups(log: (m: string) => void = (m) => console.error(m)): void {
  const list = [...cleanups.entries()].reverse();
  if (list.length) log(`[exit-teardown] removing ${list.map(([, c]) => c.what).join(', ')}`);
  for (const [, c] of list) {
    try {
      c.signal?.();
    } catch (e) {
      log(`[exit-teardown] ${c.what}: ${(e as Error).message}`);
    }
  }
  for (const [id, c] of list) {
    cleanups.delete(id);
    try {
      c.fn();
    } catch (e) {
      log(`[exit-teardown] ${c.what}: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  }
}

/**
 * For a vitest global setup (the main process): on SIGINT, SIGTERM or SIGHUP, tear everything down
 * synchronously before vitest's own listener exits the process, and exit with 128 + the signal number.
 * Idempotent.
 */
export function tearDownOnSignals(log: (m: string) => void): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.prependListener(sig, () => {
      log(`${sig}: tearing the environment down synchronously`);
      runExitCleanups(log);
      if (!process.exitCode) process.exitCode = 128 + (constants.signals[sig] ?? 0);
      // vitest's own listener exits 1 ms after its clean-up; without one (SIGHUP) exit here
      setTimeout(() => process.exit(), 200);
    });
  }
}

/**
 * Awaits two servers started side by side (the control plane and PostgreSQL); when one fails, stops the
 * other before rethrowing (Promise.all would leave it running until the process exits).
 */
type Stoppable = { stop(): Promise<void> } | undefined;

export async function startBoth<A extends Stoppable, B extends Stoppable>(
  a: Promise<A>,
  b: Promise<B>,
): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'fulfilled' && rb.status === 'fulfilled') return [ra.value, rb.value];
  await Promise.allSettled([ra, rb].map((r) => (r.status === 'fulfilled' ? r.value?.stop() : undefined)));
  throw ra.status === 'rejected' ? ra.reason : (rb as PromiseRejectedResult).reason;
}
