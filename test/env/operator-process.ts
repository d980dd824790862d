import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './binaries.js';
import { freePort } from './processes.js';

export interface OperatorProcess {
  child: ChildProcess;
  metricsUrl: string;
  healthUrl: string;
  logFile: string;
  logs(): string;
  /** Resolves when /readyz answers 200; throws with the log tail if the process exits first. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
  /** SIGTERM, SIGKILL after `graceMs`, then removes the log directory. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Runs the real operator entrypoint (operator/main.ts through tsx) as its own process, as tests, the demo and
 * the benchmarks need: it can be killed the way a node failure would kill it, and it dies with its parent
 * (PR_SET_PDEATHSIG) even on kill -9.
 */
export async function startOperatorProcess(opts: {
  kubeconfigPath: string;
  env?: Record<string, string>;
  name?: string;
  /** Node arguments that run the operator; default: operator/main.ts through tsx. bench:scale runs a build. */
  entry?: string[];
}): Promise<OperatorProcess> {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'nxt-operator-'));
  const logFile = join(dir, `${opts.name ?? 'operator'}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      process.execPath,
      ...(opts.entry ?? ['--import', 'tsx', join(REPO_ROOT, 'operator', 'main.ts')]),
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
        LOG_LEVEL: 'debug',
        OPERATOR_IMAGE: 'nxt-rollback-operator:test',
        // The harness's check targets (and the demo's) listen on loopback; in a cluster nothing does.
        HTTP_CHECK_DENY_LOOPBACK: 'false',
        ...opts.env,
      },
    },
  );
  // Both streams into one file, ended once the child is gone and both are drained: `exited` resolves only
  // after the file holds the process's last line ('exit' can come before the pipes' last data, and a test
  // reading logs() right after a failpoint's SIGKILL would miss the failpoint's own message).
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  const exited = new Promise<number | string>((r) =>
    child.once('close', (code, signal) => {
      out.end(() => r(code ?? signal ?? -1));
    }),
  );
  const healthUrl = `http://127.0.0.1:${healthPort}`;
  const alive = () => child.exitCode === null && child.signalCode === null;
  const op: OperatorProcess = {
    child,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    healthUrl,
    logFile,
    logs: () => readFileSync(logFile, 'utf8'),
    exited,
    async waitReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (!alive()) throw new Error(`operator exited early:\n${op.logs().slice(-3000)}`);
        const ok = await fetch(`${healthUrl}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`operator not ready after ${timeoutMs} ms:\n${op.logs().slice(-3000)}`);
    },
    async kill(signal = 'SIGTERM') {
      if (alive()) child.kill(signal);
      return exited;
    },
    async stop(graceMs = 10_000) {
      const t = setTimeout(() => alive() && child.kill('SIGKILL'), graceMs);
      await op.kill('SIGTERM');
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return op;
}
