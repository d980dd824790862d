// The restore benchmark's smoke test (`bench/restore.ts --quick`: its own PostgreSQL and, for Part B, its own
// control plane, operator process and test kubelet; pgbench scale 1, one rep, one full-scope run; dist/ built
// first): it must run end to end and print the restore ratios against raw pg_restore from the same run and
// the full-scope RTO with its Job timeline. It asserts that the benchmark works, not any number.
import { describe, expect, inject, it } from 'vitest';
import { runBench } from '../support/bench.js';

describe.skipIf(inject('existingCluster'))('bench:restore --quick', () => {
  it('restores against raw pg_restore (ratios) and runs a full-scope RollbackPlan (RTO, Job timeline)', async () => {
    const out = await runBench('restore.ts', ['--quick']);
    expect(out).toContain('### Part A: restore of the same archive (median of 1 rep(s) per side');
    for (const side of [
      'ours `restore --mode inPlace`',
      'ours `restore --mode newDatabaseSwap`',
      'ours newDatabaseSwap, whole process',
    ])
      expect(out, `the ratio of ${side}`).toContain(`| ${side}`);
    expect(out).toMatch(/\| ours newDatabaseSwap, whole process +\| +[\d.]+ m?s \|.*\| +\d+\.\d\dx \|/);
    expect(out).toMatch(/all equal/); // every restored database matched the source
    expect(out).toContain('### Part B: full-scope RollbackPlan (1 run(s)');
    expect(out).toMatch(/\| create call -> `Succeeded` \(watch\) +\| +[\d.]+ m?s \|/);
    for (const job of ['`verify` (in PreValidation)', '`safety`', '`restore`'])
      expect(out, `the timeline of the ${job} Job`).toContain(`| ${job}`);
    expect(out).toMatch(/Objective "RTO < 10 min": met/);
  }, 900_000);
});
