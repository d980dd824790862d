/**
 * `npm test`: every test. unit + integration run as NXT_TEST_SHARDS (default 2) vitest processes side by side,
 * each with its own control plane and PostgreSQL (its own globalSetup); then the e2e project alone (its own
 * control plane, a real node and the image build); then one merged report. Integration time is mostly waiting
 * (rollouts, Jobs, timers), so two shards take about half the wall time of one; inside a shard files still run
 * one at a time.
 *
 *   npm test                                  # shards, then e2e, then the merged report
 *   NXT_TEST_SHARDS=1 npm test                # one process for unit + integration
 *   npm test -- --reporter=json --outputFile.json=.tmp/r.json   # reporters apply to the merged report
 *   npm test -- --project integration test/integration/approvals.test.ts   # projects and filters pass through
 *
 * Shards are split by measured weight (test/env/sequencer.ts, shards.ts). Each run prints its progress with a
 * `[label]` prefix and writes a blob report; `vitest --merge-reports` then prints the summary and writes the
 * reports asked for. The exit code is non-zero if any run or the merge failed (a run whose set-up failed writes
 * no blob, so its exit code counts on its own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { phasesOf, splitArgs, splitProjects } from './shards.js';

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

/** Runs `vitest run` with `argv` as shards (count > 1) or one process, each writing a blob report. */
async function phase(label: string, argv: string[], count: number, blobDir: string): Promise<number[]> {
  const t0 = Date.now();
  const codes = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      run(
        vitest,
        [
          'run',
          ...argv,
          ...(count > 1 ? [`--shard=${i + 1}/${count}`] : []),
          '--passWithNoTests',
          '--reporter=default',
          '--reporter=blob',
          `--outputFile.blob=${join(blobDir, `blob-${label}-${i + 1}.json`)}`,
        ],
        count > 1 ? `${label} ${i + 1}/${count}` : label,
      ),
    ),
  );
  console.log(
    `[run-tests] ${label}: ${count > 1 ? `${count} shards ` : ''}finished in ` +
      `${Math.round((Date.now() - t0) / 1000)} s (exit code${count > 1 ? 's' : ''} ${codes.join(', ')})`,
  );
  return codes;
}

async function main(): Promise<number> {
  // Options that make a single process the only sensible thing: watch mode, an explicit shard, a merge.
  if (args.some((a) => /^--(shard|merge-reports|watch|ui)\b/.test(a) || a === '-w')) {
    return run(vitest, ['run', ...args]);
  }
  const { reporter, rest: nonReporter } = splitArgs(args);
  const { projects, rest } = splitProjects(nonReporter);
  const { sharded, after } = phasesOf(projects);
  const blobDir = join('.tmp', 'vitest-blobs');
  rmSync(blobDir, { recursive: true, force: true });
  mkdirSync(blobDir, { recursive: true });
  const t0 = Date.now();
  const codes: number[] = [];
  let expected = 0;
  // unit + integration as shards side by side; then each later project (e2e: its own control plane, a real
  // node and the image build) alone, so two of them never load the machine at the same time.
  if (sharded.length) {
    expected += shards;
    codes.push(
      ...(await phase('tests', [...sharded.flatMap((p) => ['--project', p]), ...rest], shards, blobDir)),
    );
  }
  for (const p of after) {
    if (signalled) break;
    expected += 1;
    codes.push(...(await phase(p, ['--project', p, ...rest], 1, blobDir)));
  }
  if (signalled) return 130;
  console.log(`[run-tests] all finished in ${Math.round((Date.now() - t0) / 1000)} s; merged report:\n`);
  const blobs = readdirSync(blobDir).length;
  const merged = blobs > 0 ? await run(vitest, ['run', `--merge-reports=${blobDir}`, ...reporter]) : 1;
  if (blobs < expected)
    console.error(`[run-tests] only ${blobs} of ${expected} runs wrote a report (see above)`);
  return codes.some((c) => c !== 0) || blobs < expected ? Math.max(1, merged) : merged;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
