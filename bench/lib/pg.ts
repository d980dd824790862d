// PostgreSQL helpers for the restore benchmark: libpq environments, spawning the pg tools, running the
// runner in-process with the time of each of its log events, and table checksums that let a benchmark refuse
// to report a fast restore of the wrong data.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { runnerMain } from '../../operator/backup/runner/cli.js';
import { databaseUrl, type PostgresInfo } from '../../test/env/postgres.js';

/** The tables `pgbench -i` creates; pgbench_history starts empty. */
export const PGBENCH_TABLES = [
  'pgbench_accounts',
  'pgbench_branches',
  'pgbench_tellers',
  'pgbench_history',
] as const;

/** libpq environment for one database, plus PG_BIN_DIR for the runner. The password never goes on argv. */
export function pgEnv(info: PostgresInfo, database: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    PGHOST: info.host,
    PGPORT: String(info.port),
    PGDATABASE: database,
    PGUSER: info.user,
    PGPASSWORD: info.password,
    PG_BIN_DIR: info.binDir,
  };
}

/** Spawns `cmd`; resolves with its stdout, rejects with its stderr on a non-zero exit. */
export function runTool(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...env, PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve({ stdout })
        : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`)),
    );
  });
}

export async function withClient<T>(
  info: PostgresInfo,
  database: string,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const c = new pg.Client({ connectionString: databaseUrl(info, database) });
  c.on('error', () => {}); // a server shutdown (Ctrl-C) must not crash the process; the query rejects anyway
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

export interface TableSum {
  rows: number;
  /** Sum over rows of the first 64 bits of md5(row as text): order-independent, changes with any value. */
  sum: string;
}
export type Checksums = Record<string, TableSum>;

/** Row count and content checksum of every table in `tables`. */
export async function checksums(
  info: PostgresInfo,
  database: string,
  tables: readonly string[] = PGBENCH_TABLES,
): Promise<Checksums> {
  return withClient(info, database, async (c) => {
    const out: Checksums = {};
    for (const t of tables) {
      const r = await c.query<{ n: string; s: string }>(
        `select count(*) as n,
                coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text as s
           from ${pg.escapeIdentifier(t)} t`,
      );
      out[t] = { rows: Number(r.rows[0]!.n), sum: r.rows[0]!.s };
    }
    return out;
  });
}

/** Tables whose count or checksum differ; [] when `a` and `b` hold the same data. */
export function checksumDiff(a: Checksums, b: Checksums): string[] {
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return names.filter((t) => a[t]?.rows !== b[t]?.rows || a[t]?.sum !== b[t]?.sum);
}

/**
 * The "bad release" of a pgbench database: every 7th account's balance changed, the last 1,000 accounts
 * deleted, 1,000 rows of history added. Checksums and the accounts row count both change.
 */
export async function badRelease(info: PostgresInfo, database: string): Promise<void> {
  await withClient(info, database, async (c) => {
    await c.query('update pgbench_accounts set abalance = abalance - 500 where aid % 7 = 0');
    await c.query('delete from pgbench_accounts where aid > (select max(aid) - 1000 from pgbench_accounts)');
    await c.query(
      `insert into pgbench_history (tid, bid, aid, delta, mtime)
       select 1, 1, g, -500, now() from generate_series(1, 1000) g`,
    );
  });
}

/** `drop database if exists ... with (force)` (PostgreSQL 13+): disconnects whoever is still in it. */
export async function dropDatabase(admin: pg.Client, name: string): Promise<void> {
  await admin.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
}

export interface InProcessRun {
  code: number;
  /** Wall time of runnerMain, ms (performance.now()). */
  ms: number;
  result: Record<string, any> | undefined;
  /** Milliseconds from log event `a` (or the start, when undefined) to log event `b`; NaN if either is missing. */
  between(a: string | undefined, b: string): number;
  lastLines: string[];
}

/** Runs a runner command in-process (what `operator/main.ts <command>` runs in a Job pod), timing its log events. */
export async function runnerInProcess(argv: string[], env: NodeJS.ProcessEnv): Promise<InProcessRun> {
  const events: { event: string; at: number; line: Record<string, any> }[] = [];
  const lines: string[] = [];
  const t0 = performance.now();
  const code = await runnerMain(argv, env, {
    writeLog: (line) => {
      const at = performance.now();
      lines.push(line.trimEnd());
      const parsed = JSON.parse(line) as Record<string, any>;
      events.push({ event: String(parsed.event), at, line: parsed });
    },
  });
  const ms = performance.now() - t0;
  const result = events.find((e) => e.event === 'runner.result')?.line.result as
    Record<string, any> | undefined;
  return {
    code,
    ms,
    result,
    between: (a, b) => {
      const from = a ? events.find((e) => e.event === a)?.at : t0;
      const to = events.find((e) => e.event === b)?.at;
      return from !== undefined && to !== undefined ? to - from : Number.NaN;
    },
    lastLines: lines.slice(-10),
  };
}

export interface BackgroundSample {
  /** Date.now() of the sample. */
  at: number;
  /** e.g. `autovacuum: VACUUM public.pgbench_accounts`. */
  query: string;
}

/**
 * Samples pg_stat_activity every `intervalMs` for autovacuum workers, so a benchmark can say whether the
 * server was vacuuming (and taking CPU) while something was being timed. stop() returns what was seen.
 */
export function sampleAutovacuum(info: PostgresInfo, intervalMs = 250) {
  const samples: BackgroundSample[] = [];
  const c = new pg.Client({ connectionString: databaseUrl(info, 'postgres') });
  c.on('error', () => {});
  let stopped = false;
  const loop = (async () => {
    await c.connect();
    while (!stopped) {
      const r = await c.query<{ query: string }>(
        `select query from pg_stat_activity where backend_type = 'autovacuum worker' and query <> ''`,
      );
      const at = Date.now();
      for (const row of r.rows) samples.push({ at, query: row.query });
      await new Promise((res) => setTimeout(res, intervalMs));
    }
  })().catch(() => {});
  return {
    samples,
    async stop(): Promise<BackgroundSample[]> {
      stopped = true;
      await loop;
      await c.end().catch(() => {});
      return samples;
    },
  };
}
