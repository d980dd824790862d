import type pg from 'pg';
import { z } from 'zod';
import { countRows } from './database.js';
import { pgFailure, RunnerFailure } from './failure.js';
import type { AssertionOutcome, TableMismatch } from './result.js';

/** A user's check of restored data: the first column of the first row, as text, must equal `expect`. */
export const SqlAssertionSchema = z.object({
  name: z.string().min(1),
  query: z.string().min(1),
  expect: z.string(),
});
export type SqlAssertion = z.infer<typeof SqlAssertionSchema>;

/** Every table of the manifest must be there with the same number of rows; extra tables are not checked. */
export function compareRowCounts(
  expected: Record<string, number>,
  actual: Record<string, number>,
): { tablesVerified: number; mismatches: TableMismatch[] } {
  const mismatches: TableMismatch[] = [];
  for (const [table, rows] of Object.entries(expected).sort(([a], [b]) => a.localeCompare(b))) {
    const got = actual[table];
    if (got !== rows) mismatches.push({ table, expected: rows, actual: got ?? null });
  }
  return { tablesVerified: Object.keys(expected).length - mismatches.length, mismatches };
}

// Raw text exactly as PostgreSQL prints it, so `expect: '42'` or `'t'` compares what a user sees in psql.
const asText = { getTypeParser: () => (v: string) => v };

/** Runs each assertion in a read-only transaction that is rolled back: a check cannot change data. */
export async function runSqlAssertions(
  c: pg.Client,
  assertions: SqlAssertion[],
): Promise<AssertionOutcome[]> {
  const outcomes: AssertionOutcome[] = [];
  for (const [i, a] of assertions.entries()) {
    await c.query("begin read only; set local statement_timeout = '60s'");
    try {
      // A named (prepared) statement takes exactly one command, so `commit; delete ...` cannot escape.
      const r = await c.query<unknown[]>({
        name: `assertion_${i}`,
        text: a.query,
        rowMode: 'array',
        types: asText,
      });
      const first = r.rows[0]?.[0];
      const actual = first === undefined || first === null ? null : String(first);
      outcomes.push({ name: a.name, passed: actual === a.expect, expect: a.expect, actual });
    } catch (e) {
      outcomes.push({
        name: a.name,
        passed: false,
        expect: a.expect,
        actual: null,
        error: (e as Error).message,
      });
    } finally {
      await c.query('rollback');
    }
  }
  return outcomes;
}

export interface Validation {
  tablesVerified: number;
  mismatchCount: number;
  mismatches: TableMismatch[];
  assertions: AssertionOutcome[];
}

/** Counts rows and runs assertions; throws RowCountMismatch/AssertionFailed with the details attached. */
export async function validateRestoredDatabase(
  c: pg.Client,
  expectTables: Record<string, number>,
  assertions: SqlAssertion[],
): Promise<Validation> {
  let actual: Record<string, number>;
  try {
    actual = await countRows(c, new Set(Object.keys(expectTables)));
  } catch (e) {
    throw pgFailure(e, 'counting rows of the restored database', 'RestoreFailed');
  }
  const { tablesVerified, mismatches } = compareRowCounts(expectTables, actual);
  const outcomes = await runSqlAssertions(c, assertions);
  const v = { tablesVerified, mismatchCount: mismatches.length, mismatches, assertions: outcomes };
  if (mismatches.length) {
    const m = mismatches[0]!;
    throw new ValidationFailure(
      'RowCountMismatch',
      `${mismatches.length} table(s) differ from the manifest, e.g. ${m.table}: expected ${m.expected} rows, ` +
        `found ${m.actual ?? 'no table'}`,
      v,
    );
  }
  const failed = outcomes.filter((o) => !o.passed);
  if (failed.length) {
    const f = failed[0]!;
    throw new ValidationFailure(
      'AssertionFailed',
      `${failed.length} SQL assertion(s) failed, e.g. ${f.name}: expected ${JSON.stringify(f.expect)}, ` +
        (f.error
          ? `query failed: ${f.error}`
          : `got ${f.actual === null ? 'no row' : JSON.stringify(f.actual)}`),
      v,
    );
  }
  return v;
}

export class ValidationFailure extends RunnerFailure {
  constructor(
    reason: 'RowCountMismatch' | 'AssertionFailed',
    message: string,
    readonly validation: Validation,
  ) {
    super(reason, message);
  }
}
