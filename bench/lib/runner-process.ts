// The runner as a Job pod runs it: `node dist/bundle/main.js <command> ...` (the image's ENTRYPOINT, the
// esbuild bundle of operator/main.ts) as a child process, so the whole process (Node start-up, module
// loading, exit) is timed, not only runnerMain. The benchmarks build first (buildRunner), exactly what the
// image's `npm run build` produces: tsc's dist/operator/ and the bundle in dist/bundle/. TSC_ENTRY, the tsc
// build of the same entry point (what the image ran before the bundle), is the baseline for the start-up:
// e.g. `npm run bench:backup -- --baseline-entry dist/operator/main.js`.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleOperator } from '../../hack/bundle.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The image's entry point (Dockerfile ENTRYPOINT): the bundle, relative to the repository. */
export const RUNNER_ENTRY = join(REPO_ROOT, 'dist', 'bundle', 'main.js');
/** The tsc build of operator/main.ts: the same code, one module per source file. */
export const TSC_ENTRY = join(REPO_ROOT, 'dist', 'operator', 'main.js');

/** `npm run build` (tsc -p tsconfig.build.json, then hack/bundle.ts), so dist/ is the code under test. */
export async function buildRunner(log: (m: string) => void): Promise<void> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`build failed (${code}): ${out}`)),
    );
  });
  const t1 = performance.now();
  await bundleOperator();
  log(
    `built dist/ (tsc -p tsconfig.build.json) in ${Math.round(t1 - t0)} ms and dist/bundle/ (hack/bundle.ts) in ${Math.round(performance.now() - t1)} ms`,
  );
}

export interface ProcessRun {
  code: number | null;
  /** spawn to exit, ms (performance.now()). */
  ms: number;
  /** The runner's result, read back from its termination log. */
  result: Record<string, any> | undefined;
  /** ms from spawn (a undefined) or log event a to log event b, by arrival time on stderr; NaN if missing. */
  between(a: string | undefined, b: string): number;
  lastLines: string[];
}

/** Runs `node dist/bundle/main.js ...argv` (or another build's `entry`, e.g. TSC_ENTRY) with `env` (plus the termination log), timing the whole process. */
export async function runnerProcess(
  argv: string[],
  env: NodeJS.ProcessEnv,
  terminationLog: string,
  entry = RUNNER_ENTRY,
): Promise<ProcessRun> {
  rmSync(terminationLog, { force: true });
  const events: { event: string; at: number }[] = [];
  const lines: string[] = [];
  let partial = '';
  const t0 = performance.now();
  const child = spawn(process.execPath, [entry, ...argv, '--termination-log', terminationLog], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    const at = performance.now();
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.trim()) continue;
      lines.push(line);
      try {
        events.push({ event: String((JSON.parse(line) as { event?: unknown }).event), at });
      } catch {
        // not a runner log line (a Node warning): kept in lastLines only
      }
    }
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  const ms = performance.now() - t0;
  let result: Record<string, any> | undefined;
  try {
    result = JSON.parse(readFileSync(terminationLog, 'utf8')) as Record<string, any>;
  } catch {
    result = undefined;
  }
  return {
    code,
    ms,
    result,
    between: (a, b) => {
      const from = a ? events.find((e) => e.event === a)?.at : t0;
      const to = events.find((e) => e.event === b)?.at;
      return from !== undefined && to !== undefined ? to - from : Number.NaN;
    },
    lastLines: lines.slice(-10),
  };
}
