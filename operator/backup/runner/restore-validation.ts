import type pg from 'pg';
import { countRows } from './database.js';
import { pgFailure, RunnerFailure } from './failure.js';
import type { AssertionOutcome, TableMismatch } from './result.js';

/**
 * A user's check of restored data: the first column of the first row, as text, must equal `expect`. `name` and
 * `query` are not empty (cli-args.ts sqlAssertionsIssue checks --sql-assertions-json by hand: no zod load).
 */
export interface SqlAssertion {
  name: string;
  query: string;
  expect: string;
}

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

/**
 * Set to "true" on the runner container when the operator configuration allows SQL assertions as a
 * superuser (ALLOW_SUPERUSER_ASSERTIONS); anything else refuses such roles.
 */
export const ALLOW_SUPERUSER_ASSERTIONS_ENV = 'NXT_ALLOW_SUPERUSER_ASSERTIONS';

export interface AssertionOptions {
  /** Run assertions even as a role that a read-only transaction does not contain (see assertionRoleRisk). */
  allowSuperuser?: boolean;
}

/**
 * Why the connected role must not run user-written SQL, or undefined when it may. A read-only transaction
 * stops writes to the database, not a superuser (or a member of pg_execute_server_program /
 * pg_write_server_files / pg_read_server_files) running programs or reading and writing files on the
 * server: `COPY (select 1) TO PROGRAM '...'` is a read. Membership counts when the role could SET ROLE to it.
 */
export async function assertionRoleRisk(c: pg.Client): Promise<string | undefined> {
  const r = await c.query<{
    role: string;
    superuser: boolean;
    programs: boolean;
    write_files: boolean;
    read_files: boolean;
  }>(
    `select current_user as role,
            exists (select 1 from pg_roles s where s.rolsuper and pg_has_role(current_user, s.oid, 'MEMBER')) as superuser,
            pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') as programs,
            pg_has_role(current_user, 'pg_write_server_files', 'MEMBER') as write_files,
            pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') as read_files`,
  );
  const row = r.rows[0]!;
  const powers = [
    row.superuser && 'is (or can become) a superuser',
    row.programs && 'may run programs on the server (pg_execute_server_program)',
    row.write_files && 'may write server files (pg_write_server_files)',
    row.read_files && 'may read server files (pg_read_server_files)',
  ].filter(Boolean);
  if (!powers.length) return undefined;
  return (
    `refusing to run SQL assertions as role "${row.role}": it ${powers.join(', ')}, which a read-only ` +
    'transaction does not stop (COPY ... TO PROGRAM). Give the credentials Secret a role without these ' +
    'privileges, or set ALLOW_SUPERUSER_ASSERTIONS=true in the operator configuration'
  );
}

/** Throws PermissionDenied when assertions would run as a role that can escape the read-only transaction. */
export async function refuseRiskyAssertionRole(c: pg.Client, opts: AssertionOptions = {}): Promise<void> {
  if (opts.allowSuperuser) return;
  let risk: string | undefined;
  try {
    risk = await assertionRoleRisk(c);
  } catch (e) {
    throw pgFailure(e, 'checking the privileges of the role that runs SQL assertions', 'PermissionDenied');
  }
  if (risk) throw new RunnerFailure('PermissionDenied', risk);
}

/**
 * Before anything is restored: the assertions of `assertions` could run at all with these credentials. A
 * refusal after an in-place restore would leave replaced data that was never validated.
 */
export async function preflightAssertionRole(
  connect: () => Promise<pg.Client>,
  assertions: SqlAssertion[],
  opts: AssertionOptions = {},
): Promise<void> {
  if (!assertions.length || opts.allowSuperuser) return;
  const c = await connect();
  try {
    await refuseRiskyAssertionRole(c, opts);
  } finally {
    await c.end().catch(() => {});
  }
}

// Raw text exactly as PostgreSQL prints it, so `expect: '42'` or `'t'` compares what a user sees in psql.
const asText = { getTypeParser: () => (v: string) => v };

/**
 * Runs each assertion in a read-only transaction that is rolled back: a check cannot change data. The
 * outcome says pass/fail, how many rows came back and, on an error, its SQLSTATE: never a value the query
 * returned nor the server's error text (which can quote values, e.g. `invalid input syntax for type
 * integer: "..."`), so a plan author cannot read table contents through status, Events or logs.
 */
export async function runSqlAssertions(
  c: pg.Client,
  assertions: SqlAssertion[],
  opts: AssertionOptions = {},
): Promise<AssertionOutcome[]> {
  if (assertions.length) await refuseRiskyAssertionRole(c, opts);
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
      const rows = r.rows.length;
      if (actual === a.expect) outcomes.push({ name: a.name, passed: true, expect: a.expect, rows });
      else
        outcomes.push({
          name: a.name,
          passed: false,
          expect: a.expect,
          rows,
          failure: rows ? 'mismatch' : 'noRow',
        });
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      outcomes.push({
        name: a.name,
        passed: false,
        expect: a.expect,
        rows: 0,
        failure: 'error',
        ...(typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? { sqlState: code } : {}),
      });
    } finally {
      await c.query('rollback');
    }
  }
  return outcomes;
}

/** A failed assertion in words, without any value the query produced. */
export function describeAssertionFailure(o: AssertionOutcome): string {
  switch (o.failure) {
    case 'noRow':
      return `${o.name}: the query returned no row`;
    case 'error':
      return `${o.name}: the query failed${o.sqlState ? ` (SQLSTATE ${o.sqlState})` : ''}`;
    default:
      return `${o.name}: the first column of the first row is not the expected value (${o.rows ?? '?'} row(s))`;
  }
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
  opts: AssertionOptions = {},
): Promise<Validation> {
  let actual: Record<string, number>;
  try {
    actual = await countRows(c, new Set(Object.keys(expectTables)));
  } catch (e) {
    throw pgFailure(e, 'counting rows of the restored database', 'RestoreFailed');
  }
  const { tablesVerified, mismatches } = compareRowCounts(expectTables, actual);
  const outcomes = await runSqlAssertions(c, assertions, opts);
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
    throw new ValidationFailure(
      'AssertionFailed',
      `${failed.length} of ${outcomes.length} SQL assertion(s) failed, e.g. ${describeAssertionFailure(failed[0]!)}`,
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
