import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../env/binaries.js';

/**
 * Runs `bench/<file>` through tsx as its own process, as `npm run bench:*` does; resolves with its stdout
 * (the Markdown report) and fails with the tail of its stderr (the progress log) on a non-zero exit.
 */
export async function runBench(file: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench', file), ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0)
    throw new Error(`bench/${file} ${args.join(' ')} exited ${code}; stderr tail:\n${err.slice(-3000)}`);
  return out;
}
