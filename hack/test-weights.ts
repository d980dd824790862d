/**
 * Prints the WEIGHTS table of test/env/shards.ts from a vitest JSON report (default .tmp/vitest-results.json,
 * which `bash .ci/run` writes): seconds per integration file of at least 15 s, slowest first. Paste the
 * output over the table when the shards drift apart (`[run-tests] … shards finished` shows both times).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const report = JSON.parse(readFileSync(process.argv[2] ?? '.tmp/vitest-results.json', 'utf8')) as {
  testResults: { name: string; startTime: number; endTime: number }[];
};
const rows = report.testResults
  .filter((t) => t.name.includes('/test/integration/'))
  .map((t) => ({
    name: basename(t.name).replace(/\.test\.ts$/, ''),
    s: Math.round((t.endTime - t.startTime) / 1000),
  }))
  .filter((r) => r.s >= 15)
  .sort((a, b) => b.s - a.s);
for (const r of rows) console.log(`  ${/^[a-z]+$/.test(r.name) ? r.name : `'${r.name}'`}: ${r.s},`);
