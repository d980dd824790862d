// Ending the CLI process: the exit code only after stdout and stderr took everything written to them.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

interface Flushable {
  write(chunk: string, cb: (err?: Error | null) => void): boolean;
}

/**
 * Calls `exit(code)` once both streams have flushed what was written before. process.exit right after a write
 * can cut the output short where pipes are asynchronous (macOS); an empty write's callback runs after every
 * earlier write was handed to the OS.
 */
export function exitAfterFlush(
  code: number,
  streams: Flushable[] = [process.stdout, process.stderr],
  exit: (code: number) => void = (c) => process.exit(c),
): void {
  let pending = streams.length;
  const done = () => {
    if (--pending === 0) exit(code);
  };
  for (const s of streams) s.write('', done);
}

/**
 * The version of this package (its own package.json, found from this file's directory: the sources and dist/
 * sit at different depths). npm_package_version would be the version of whatever project runs `npm run`.
 */
export function ownVersion(from = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'nxt-rollback-operator' && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
