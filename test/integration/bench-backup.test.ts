// The backup benchmark's smoke test (`bench/backup-throughput.ts --quick`: its own PostgreSQL, pgbench scale 1
// and the 10,000-row table, one rep, dist/ built first): it must run end to end and print each ratio against
// its baseline from the same run, the restore for both shapes (pgbench, and pgbench plus 4 tables). It asserts that the benchmark works, not any number.
import { describe, expect, it } from 'vitest';
import { runBench } from '../support/bench.js';

describe('bench:backup --quick', () => {
  it('times our runner (whole process and in-process) against raw pg_dump and pg_restore, and prints the ratios', async () => {
    const out = await runBench('backup-throughput.ts', ['--quick']);
    expect(out).toContain('### Backup (median of 1 rep(s) per side');
    for (const db of ['10,000-row table', 'pgbench scale 1'])
      expect(out, `the backup row of ${db}: whole process / raw, in-process / raw, 2/2 verified`).toMatch(
        new RegExp(
          `\\| ${db} +\\|.*\\| +\\*\\*\\d+\\.\\d\\dx\\*\\* \\|.*\\| +\\d+\\.\\d\\dx \\|.*\\| +2/2 \\|`,
        ),
      );
    expect(out).toMatch(/Objective "backup < 30 s for 10,000 records": met/);
    expect(out).toContain('### Restore of pgbench scale 1 (');
    // Also the shape where pg_restore --jobs has table loads and index builds to overlap.
    expect(out).toContain('### Restore of pgbench scale 1 + 4 tables (');
    const restoreRatios = out.match(/\| ours, whole process +\|.*\| +\d+\.\d\dx \|/g) ?? [];
    expect(restoreRatios, 'a whole-process restore ratio per restored shape').toHaveLength(2);
  }, 900_000);
});
