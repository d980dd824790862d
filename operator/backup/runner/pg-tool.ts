import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Redact } from './redact.js';

export type PgToolName = 'pg_dump' | 'pg_restore';

/** `$PG_BIN_DIR/<name>` when set (the image pins one PostgreSQL major), else looked up on PATH. */
export function pgToolPath(env: NodeJS.ProcessEnv, name: PgToolName): string {
  return env.PG_BIN_DIR ? join(env.PG_BIN_DIR, name) : name;
}

export interface ToolRunOptions {
  path: string;
  args: string[];
  /** Carries the connection (PG* vars); the password is never in args. */
  env: NodeJS.ProcessEnv;
  redact: Redact;
  /** Fed to the tool's stdin; the tool may stop reading early (pg_restore --list reads only the TOC). */
  stdin?: Readable;
  /** Consumes stdout; when it fails the tool is killed. Without it, stdout is collected (bounded). */
  onStdout?: (stdout: Readable) => Promise<void>;
  tailLines?: number;
}

export interface ToolRun {
  /** Exit code; null when the tool was killed by `signal`. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last lines of stderr, redacted: safe to log and to put in a result. */
  stderrTail: string;
  /** Collected stdout when no onStdout was given (the last 1 MiB). */
  stdout: string;
  stdinError?: Error;
  stdoutError?: Error;
}

export class ToolNotRunnableError extends Error {
  constructor(path: string, cause: Error) {
    super(
      `could not run ${path}: ${cause.message} (set PG_BIN_DIR or put the PostgreSQL client tools on PATH)`,
    );
    this.name = 'ToolNotRunnableError';
  }
}

const STDERR_KEEP = 64 * 1024;
const STDOUT_KEEP = 1024 * 1024;

// The tool closing its stdin early is normal (it has read what it needs); only a failing source matters.
const isEarlyClose = (e: unknown) =>
  ['EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED'].includes(
    (e as NodeJS.ErrnoException).code ?? '',
  );

export function lastLines(text: string, n: number, redact: Redact): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-n)
    .map((l) => redact(l.length > 500 ? l.slice(0, 499) + '…' : l))
    .join('\n');
}

/** Runs a PostgreSQL client tool to completion with streaming stdin/stdout and a bounded stderr tail. */
export async function runTool(o: ToolRunOptions): Promise<ToolRun> {
  const child = spawn(o.path, o.args, { env: o.env, stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  // Listen before anything is awaited: a quick tool can be gone by then.
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  // Both are pipes by the stdio setting above; the types cannot see that.
  const childOut = child.stdout!;
  const childErr = child.stderr!;
  let stderr = '';
  childErr.setEncoding('utf8');
  childErr.on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_KEEP)));

  let stdinError: Error | undefined;
  let stdoutError: Error | undefined;
  let stdout = '';
  const stdinDone =
    o.stdin && child.stdin
      ? pipeline(o.stdin, child.stdin).catch((e: Error) => {
          if (isEarlyClose(e)) return;
          stdinError = e;
          child.kill('SIGTERM');
        })
      : Promise.resolve();
  const stdoutDone = o.onStdout
    ? o.onStdout(childOut).catch((e: Error) => {
        stdoutError = e;
        child.kill('SIGTERM');
      })
    : (async () => {
        childOut.setEncoding('utf8');
        for await (const d of childOut) stdout = (stdout + String(d)).slice(-STDOUT_KEEP);
      })();

  try {
    await spawned;
  } catch (e) {
    o.stdin?.destroy();
    await Promise.allSettled([stdinDone, stdoutDone]);
    throw new ToolNotRunnableError(o.path, e as Error);
  }
  const [{ code, signal }] = await Promise.all([closed, stdinDone, stdoutDone]);
  return {
    code,
    signal,
    stderrTail: lastLines(stderr, o.tailLines ?? 15, o.redact),
    stdout,
    ...(stdinError ? { stdinError } : {}),
    ...(stdoutError ? { stdoutError } : {}),
  };
}

/** `pg_dump (PostgreSQL) 17.2` → recorded in the manifest to know which pg_restore can read the dump. */
export async function pgToolVersion(path: string, env: NodeJS.ProcessEnv, redact: Redact): Promise<string> {
  const r = await runTool({ path, args: ['--version'], env, redact });
  if (r.code !== 0) throw new Error(`${path} --version exited with ${r.code}: ${r.stderrTail}`);
  return r.stdout.trim();
}
