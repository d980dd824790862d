// The real operator entrypoint as its own process, through the same launcher the tests and the demo use.
import type { ChildProcess } from 'node:child_process';
import { startOperatorProcess } from '../../test/env/operator-process.js';

export interface BenchOperator {
  child: ChildProcess;
  logFile: string;
  metricsUrl: string;
  logs(): string;
  waitReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then SIGKILL after 10 s; removes the log directory unless `keepLogs`. */
  stop(keepLogs?: boolean): Promise<void>;
}

export async function startBenchOperator(opts: {
  kubeconfigPath: string;
  env: Record<string, string>;
  /** Node arguments that run the operator (default: operator/main.ts through tsx). */
  entry?: string[];
}): Promise<BenchOperator> {
  const op = await startOperatorProcess({
    kubeconfigPath: opts.kubeconfigPath,
    entry: opts.entry,
    env: { LOG_LEVEL: 'info', OPERATOR_IMAGE: 'nxt-rollback-operator:bench', ...opts.env },
    name: 'bench-operator',
  });
  return {
    child: op.child,
    logFile: op.logFile,
    metricsUrl: op.metricsUrl,
    logs: op.logs,
    waitReady: (timeoutMs = 60_000) => op.waitReady(timeoutMs),
    async stop(keepLogs = false) {
      if (keepLogs) {
        const t = setTimeout(() => op.child.kill('SIGKILL'), 10_000);
        await op.kill('SIGTERM');
        clearTimeout(t);
      } else await op.stop();
    },
  };
}
