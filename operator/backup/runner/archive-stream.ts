import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { lastLines } from './pg-tool.js';
import type { Redact } from './redact.js';

/**
 * What one pass over an archive learns on its way through: its SHA-256 and size, and whether pg_restore can
 * read its table of contents. The backup runs it on pg_dump's output as it streams into the storage sink
 * and a verify on the stored file as it is read, so neither reads an archive twice.
 */
export interface ArchivePass {
  /** Put it between the source and the sink: it passes every byte through unchanged. */
  readonly tap: Transform;
  /** After the source ended (or failed): digest, size and the TOC listing. */
  result(): Promise<ArchivePassResult>;
}

export interface ArchivePassResult {
  sha256: string;
  bytes: number;
  toc: TocListing;
  /** performance.now() when the first byte came through; undefined for an empty source. */
  firstByteAt?: number;
}

export interface TocListing {
  /** pg_restore --list's exit code; null when it was killed (signal) or could not be started (error). */
  code: number | null;
  signal?: NodeJS.Signals | null;
  /** Archive entries it listed (`<dumpId>; ...` lines). */
  entries: number;
  /** Last lines of its stderr, redacted. */
  stderrTail: string;
  /** It could not be started (no pg_restore). */
  error?: Error;
}

export interface ArchivePassOptions {
  pgRestorePath: string;
  /** pg_restore --list reads no database: pass an environment without credentials. */
  env: NodeJS.ProcessEnv;
  redact: Redact;
}

/** `<dumpId>; <catalog ids> <type> ...`: one archive entry in pg_restore --list's output. */
export function countTocEntries(listing: string): number {
  return listing.split('\n').filter((l) => /^\d+;/.test(l)).length;
}

const STDOUT_KEEP = 4 * 1024 * 1024;
const STDERR_KEEP = 64 * 1024;

/**
 * Hashes and counts what flows through `tap`, and feeds the same bytes to `pg_restore --list`, which reads
 * the header and table of contents at the start of a custom-format archive and exits: from then on the
 * bytes only go to the hash and the sink. A slow pg_restore holds the stream back (backpressure) only
 * while it reads the TOC.
 */
export function startArchivePass(o: ArchivePassOptions): ArchivePass {
  const hash = createHash('sha256');
  let bytes = 0;
  let firstByteAt: number | undefined;
  const child = spawn(o.pgRestorePath, ['--list'], { env: o.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let spawnError: Error | undefined;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    if (stdout.length < STDOUT_KEEP) stdout += d;
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_KEEP)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (e) => {
      spawnError = e;
      resolve({ code: null, signal: null });
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const listIn: Writable = child.stdin;
  // pg_restore closing its stdin after the TOC is the normal case (EPIPE): from then on nothing goes there.
  let listOpen = true;
  listIn.on('error', () => (listOpen = false));
  listIn.on('close', () => (listOpen = false));
  void exited.then(() => (listOpen = false));

  const feedList = (chunk: Buffer, done: TransformCallback) => {
    if (!listOpen) return done(null, chunk);
    if (listIn.write(chunk)) return done(null, chunk);
    // Wait for it to take more, or to be gone: whichever comes first.
    let waiting = true;
    const go = () => {
      if (!waiting) return;
      waiting = false;
      listIn.off('drain', go);
      listIn.off('close', go);
      done(null, chunk);
    };
    listIn.once('drain', go);
    listIn.once('close', go);
    void exited.then(go);
  };
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      firstByteAt ??= performance.now();
      hash.update(chunk);
      bytes += chunk.length;
      feedList(chunk, done);
    },
    flush(done) {
      if (listOpen) listIn.end();
      done();
    },
  });
  // A failed source: pg_restore must not wait for the rest of a TOC that never comes.
  tap.once('error', () => child.kill('SIGTERM'));
  tap.once('close', () => {
    if (!tap.writableFinished && listOpen) child.kill('SIGTERM');
  });

  return {
    tap,
    result: async () => {
      const { code, signal } = await exited;
      return {
        sha256: hash.digest('hex'),
        bytes,
        toc: {
          code,
          signal,
          entries: countTocEntries(stdout),
          stderrTail: lastLines(stderr, 15, o.redact),
          ...(spawnError ? { error: spawnError } : {}),
        },
        ...(firstByteAt !== undefined ? { firstByteAt } : {}),
      };
    },
  };
}

/** Why a TOC listing does not show a readable archive; undefined when it does. */
export function tocProblem(toc: TocListing): string | undefined {
  if (toc.error) return `could not run pg_restore --list: ${toc.error.message}`;
  if (toc.code === 0 && toc.entries > 0) return undefined;
  return `pg_restore --list cannot read it (exit ${toc.code ?? toc.signal}): ${toc.stderrTail || 'no entries'}`;
}
