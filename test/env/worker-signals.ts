// vitest setupFiles of the integration and e2e projects: the clean-ups registered in a test WORKER (a second
// real node, flux, s3, prometheus, alertmanager, git work dirs started by a test file) on SIGINT/SIGTERM/SIGHUP.
// The main process tears down on a signal (exit-teardown.ts tearDownOnSignals), but vitest's fork workers have
// no listener: Ctrl-C (SIGINT to the whole process group) or the pool stopping a worker (fork.kill(): SIGTERM)
// killed them without running their 'exit' hooks, and what they started stayed until a later reapStaleRuns.
import { constants } from 'node:os';
import { runExitCleanups } from './exit-teardown.js';

const KEY = Symbol.for('nxt.workerSignalListeners');
const g = globalThis as { [KEY]?: Map<NodeJS.Signals, () => void> };

/** Hooks the signals once per process (a setup file runs again for every test file). */
export function hookWorkerSignals(): void {
  const previous = g[KEY];
  // the latest test file's module instance of exit-teardown.ts holds its clean-ups: replace older listeners
  for (const [sig, fn] of previous ?? []) process.off(sig, fn);
  const listeners = new Map<NodeJS.Signals, () => void>();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const fn = () => {
      runExitCleanups((m) => console.error(m));
      process.exit(128 + (constants.signals[sig] ?? 0));
    };
    listeners.set(sig, fn);
    process.prependListener(sig, fn);
  }
  g[KEY] = listeners;
}

hookWorkerSignals();
