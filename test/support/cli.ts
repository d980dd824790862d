// Runs the nxt-rollback CLI as users do: a real process (bin/nxt-rollback) against the cluster under test.
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { inject } from 'vitest';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(REPO_ROOT, 'bin', 'nxt-rollback');
export const KUBECTL_PLUGIN = join(REPO_ROOT, 'bin', 'kubectl-nxt_rollback');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Defaults to the admin kubeconfig of the cluster under test. */
  kubeconfig?: string;
  env?: NodeJS.ProcessEnv;
  /** Kills the process after this long (default 120 s); the result then has code -1. */
  timeoutMs?: number;
}

/** Runs `nxt-rollback --kubeconfig <k> ...args`; never throws on a non-zero exit. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const kubeconfig = opts.kubeconfig ?? inject('kubeconfigPath');
  return new Promise((resolve) => {
    execFile(
      CLI,
      [`--kubeconfig=${kubeconfig}`, ...args],
      {
        env: { ...process.env, NO_COLOR: '1', ...opts.env },
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** `-o json` output, parsed; fails with the process's stderr when it is not JSON. */
export function parseJson<T = any>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/** Starts the CLI and returns the child, for tests that watch its output while it runs. */
export function spawnCli(args: string[], opts: CliOptions = {}) {
  const kubeconfig = opts.kubeconfig ?? inject('kubeconfigPath');
  return spawn(CLI, [`--kubeconfig=${kubeconfig}`, ...args], {
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
