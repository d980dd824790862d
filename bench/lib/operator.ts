// Starts the real operator entrypoint (operator/main.ts through tsx) as its own process. The lines that
// matter are copied from test/support/operator.ts, which imports vitest for its default kubeconfig.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../test/env/binaries.js';
import { freePort } from '../../test/env/processes.js';

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
}): Promise<BenchOperator> {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'nxt-bench-operator-'));
  const logFile = join(dir, 'operator.log');
  const out = createWriteStream(logFile);
  // setpriv --pdeathsig: the operator dies with the benchmark even on kill -9.
  const child = spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      process.execPath,
      '--import',
      'tsx',
      join(REPO_ROOT, 'operator', 'main.ts'),
      'manager',
    ],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        KUBECONFIG: opts.kubeconfigPath,
        METRICS_ADDR: `127.0.0.1:${metricsPort}`,
        HEALTH_ADDR: `127.0.0.1:${healthPort}`,
        OPERATOR_IMAGE: 'nxt-rollback-operator:bench',
        ...opts.env,
      },
    },
  );
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const op: BenchOperator = {
    child,
    logFile,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    logs: () => readFileSync(logFile, 'utf8'),
    async waitReady(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (!alive()) throw new Error(`operator exited early:\n${op.logs().slice(-3000)}`);
        const ok = await fetch(`http://127.0.0.1:${healthPort}/readyz`, {
          signal: AbortSignal.timeout(1000),
        }).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`operator not ready after ${timeoutMs} ms:\n${op.logs().slice(-3000)}`);
    },
    async stop(keepLogs = false) {
      if (alive()) {
        child.kill('SIGTERM');
        const t = setTimeout(() => alive() && child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      out.end();
      if (!keepLogs) rmSync(dir, { recursive: true, force: true });
    },
  };
  return op;
}
