import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { inject } from 'vitest';
import { databaseUrl } from '../env/postgres.js';

const execFileP = promisify(execFile);

export function pgInfo() {
  return inject('postgres');
}

export function pgBin(name: 'pg_dump' | 'pg_restore' | 'pgbench' | 'psql'): string {
  return join(pgInfo().binDir, name);
}

/**
 * The environment a runner Job pod gets for the harness PostgreSQL (tool directory, connection with the
 * password in PGPASSWORD, `database`, no TLS), for running the runner's subcommands as the pod does; `extra`
 * is added last (and wins).
 */
export function runnerPgEnv(database: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const i = pgInfo();
  return {
    PATH: process.env.PATH,
    PG_BIN_DIR: i.binDir,
    PGHOST: i.host,
    PGPORT: String(i.port),
    PGUSER: i.user,
    PGPASSWORD: i.password,
    PGDATABASE: database,
    PGSSLMODE: 'disable',
    ...extra,
  };
}

/** Environment for libpq tools: the password goes through PGPASSWORD, never argv. */
export function pgEnv(): NodeJS.ProcessEnv {
  const i = pgInfo();
  return { ...process.env, PGHOST: i.host, PGPORT: String(i.port), PGUSER: i.user, PGPASSWORD: i.password };
}

export async function runPgTool(
  name: 'pg_dump' | 'pg_restore' | 'pgbench' | 'psql',
  args: string[],
): Promise<string> {
  try {
    const { stdout } = await execFileP(pgBin(name), args, { env: pgEnv(), maxBuffer: 256 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${name} ${args.join(' ')} failed: ${err.stderr ?? err.message}`);
  }
}

/** Creates a uniquely named database and returns its name and a connected client factory. */
export async function createTestDatabase(prefix: string): Promise<{ name: string; url: string }> {
  const name = `${prefix}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgInfo().url });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return { name, url: databaseUrl(pgInfo(), name) };
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Row count and an order-independent md5 over every row's text form, per table. */
export async function tableChecksum(url: string, table: string): Promise<{ rows: number; md5: string }> {
  return withClient(url, async (c) => {
    const r = await c.query(
      `select count(*)::int as rows, coalesce(md5(string_agg(t::text, '|' order by t::text)), '') as md5 from ${table} t`,
    );
    return { rows: r.rows[0].rows, md5: r.rows[0].md5 };
  });
}
