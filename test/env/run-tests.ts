/**
 * `npm test`: every test, with the integration files split over NXT_TEST_SHARDS (default 2) vitest processes
 * that run side by side, each with its own control plane and PostgreSQL (its own globalSetup), then one merged
 * report. Integration time is mostly waiting (rollouts, Jobs, timers), so two shards take about half the wall
 * time of one; inside a shard files still run one at a time.
 *
 *   npm test                                  # 2 shards, then the merged report
 *   NXT_TEST_SHARDS=1 npm test                # one vitest process, as `vitest run`
 *   npm test -- --reporter=json --outputFile.json=.tmp/r.json   # reporters apply to the merged report
 *   npm test -- test/integration/approvals.test.ts              # filters go to every shard
 *
 * Shards are split by measured weight (test/env/sequencer.ts). Each shard prints its progress with a
 * `[shard i/N]` prefix and writes a blob report; `vitest --merge-reports` then prints the summary and
 * writes the reports asked for. The exit code is non-zero if any shard or the merge failed (a shard whose
 * set-up failed writes no blob, so its exit code counts on its own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { splitArgs } from './shards.js';

const args = process.argv.slice(2);
// Against an existing cluster (USE_EXISTING_CLUSTER=true) shards would share it: one process unless asked.
const defaultShards = process.env.USE_EXISTING_CLUSTER === 'true' ? '1' : '2';
const shards = Math.max(1, Math.min(8, Number(process.env.NXT_TEST_SHARDS ?? defaultShards) || 1));
const vitest = join('node_modules', '.bin', 'vitest');

const children = new Set<ChildProcess>();
// A signal sent to this process alone (a CI timeout, `kill`) is passed on, so every shard's globalSetup tears
// its control plane down; this process exits when they have (Ctrl-C reaches the whole process group anyway).
let signalled = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    signalled = true;
    for (const c of children) c.kill(sig);
  });
}

function run(cmd: string, argv: string[], prefix?: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, {
      stdio: prefix ? ['ignore', 'pipe', 'pipe'] : 'inherit',
      env: { ...process.env, NXT_TEST_SHARD: prefix ?? '' },
    });
    children.add(child);
    if (prefix) {
      for (const [stream, out] of [
        [child.stdout!, process.stdout],
        [child.stderr!, process.stderr],
      ] as const) {
        createInterface({ input: stream }).on('line', (line) => out.write(`[${prefix}] ${line}\n`));
      }
    }
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

async function main(): Promise<number> {
  // Options that make a single process the only sensible thing: watch mode, an explicit shard, a merge.
  const single =
    shards === 1 || args.some((a) => /^--(shard|merge-reports|watch|ui)\b/.test(a) || a === '-w');
  if (single) return run(vitest, ['run', ...args]);

  const { reporter, rest } = splitArgs(args);
  const blobDir = join('.tmp', 'vitest-blobs');
  rmSync(blobDir, { recursive: true, force: true });
  mkdirSync(blobDir, { recursive: true });
  const t0 = Date.now();
  // Ctrl-C reaches every shard through the process group; each shard's globalSetup tears its cluster down.
  const codes = await Promise.all(
    Array.from({ length: shards }, (_, i) =>
      run(
        vitest,
        [
          'run',
          ...rest,
          `--shard=${i + 1}/${shards}`,
          '--passWithNoTests',
          '--reporter=default',
          '--reporter=blob',
          `--outputFile.blob=${join(blobDir, `blob-${i + 1}.json`)}`,
        ],
        `shard ${i + 1}/${shards}`,
      ),
    ),
  );
  if (signalled) return 130;
  console.log(
    `\n[run-tests] ${shards} shards finished in ${Math.round((Date.now() - t0) / 1000)} s ` +
      `(exit codes ${codes.join(', ')}); merged report:\n`,
  );
  const blobs = readdirSync(blobDir).length;
  const merged = blobs > 0 ? await run(vitest, ['run', `--merge-reports=${blobDir}`, ...reporter]) : 1;
  if (blobs < shards)
    console.error(`[run-tests] only ${blobs} of ${shards} shards wrote a report (see above)`);
  return codes.some((c) => c !== 0) || blobs < shards ? Math.max(1, merged) : merged;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
