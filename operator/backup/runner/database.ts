import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
// Before pg, in every module that loads pg itself, so no import order elsewhere decides it: see node-navigator.ts.
import './node-navigator.js';
import pg from 'pg';
import type { ConnectionSettings } from './connection.js';
import { pgFailure } from './failure.js';

/** node-postgres has no sslmode; this maps libpq's meaning onto TLS options. */
function tlsFor(s: ConnectionSettings, env: NodeJS.ProcessEnv): ConnectionOptions | false {
  const ca = env.PGSSLROOTCERT ? readFileSync(env.PGSSLROOTCERT, 'utf8') : undefined;
  switch (s.sslmode) {
    case 'disable':
      return false;
    case 'verify-full':
      return { rejectUnauthorized: true, ...(ca ? { ca } : {}) };
    case 'verify-ca':
      // libpq's verify-ca checks the chain but not the host name.
      return { rejectUnauthorized: true, ...(ca ? { ca } : {}), checkServerIdentity: () => undefined };
    default:
      // require/prefer/allow: encrypted, unauthenticated (as libpq does without a root certificate).
      return { rejectUnauthorized: false };
  }
}

/** Idle time before the first TCP keepalive probe (libpq's keepalives_idle; the OS default is 2 hours). */
export const KEEPALIVE_IDLE_MS = 60_000;

export function pgClientConfig(
  s: ConnectionSettings,
  database: string,
  env: NodeJS.ProcessEnv,
): pg.ClientConfig {
  const timeoutSeconds = Number(env.PGCONNECT_TIMEOUT ?? '10') || 10;
  return {
    host: s.host,
    port: s.port,
    database,
    user: s.user,
    ...(s.password !== undefined ? { password: s.password } : {}),
    ssl: tlsFor(s, env),
    connectionTimeoutMillis: timeoutSeconds * 1000,
    application_name: env.PGAPPNAME ?? 'nxt-rollback-runner',
    // TCP keepalives: the runner's sessions idle for as long as pg_dump or pg_restore runs (the snapshot's,
    // newDatabaseSwap's maintenance connection), and load balancers and NAT reap idle flows after minutes
    // (AWS NLB 350 s, Azure LB 4 min). The first probe after a minute idle keeps them alive. Node 20 sets only
    // that delay (the probe interval and count stay the kernel's), so a dead peer is noticed only after about
    // 12 minutes; and no keepalive stops a server-side idle_session_timeout or a pooler's idle limit.
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
  };
}

async function tryConnect(config: pg.ClientConfig): Promise<pg.Client> {
  const c = new pg.Client(config);
  // An idle client whose server goes away emits 'error'; without a listener that would crash the runner.
  c.on('error', () => {});
  try {
    await c.connect();
    return c;
  } catch (e) {
    await c.end().catch(() => {});
    throw e;
  }
}

/**
 * Connects with a reason on failure (DatabaseUnreachable, AuthenticationFailed, DatabaseNotFound).
 * sslmode prefer/allow (libpq's default) falls back to plain TCP when the server does not offer TLS.
 */
export async function connectDatabase(
  s: ConnectionSettings,
  env: NodeJS.ProcessEnv,
  database = s.database,
): Promise<pg.Client> {
  const config = pgClientConfig(s, database, env);
  try {
    try {
      return await tryConnect(config);
    } catch (e) {
      const mayFallBack = s.sslmode === undefined || s.sslmode === 'prefer' || s.sslmode === 'allow';
      if (mayFallBack && /does not support SSL/i.test((e as Error).message)) {
        return await tryConnect({ ...config, ssl: false });
      }
      throw e;
    }
  } catch (e) {
    throw pgFailure(e, `connecting to ${s.host}:${s.port}/${database} as ${s.user}`, 'DatabaseUnreachable');
  }
}

export interface UserTable {
  schema: string;
  name: string;
  /** `schema.table`, the key of manifests and results. */
  key: string;
}

/** Ordinary tables (partitions included, partitioned parents not: their rows live in the partitions). */
export async function listUserTables(c: pg.Client): Promise<UserTable[]> {
  const r = await c.query<{ schema: string; name: string }>(
    `select n.nspname as schema, c.relname as name
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r'
        and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp\\_%'
      order by 1, 2`,
  );
  return r.rows.map((t) => ({ ...t, key: `${t.schema}.${t.name}` }));
}

/** Exact `count(*)` per table; with `only`, just the tables whose key it contains. */
export async function countRows(c: pg.Client, only?: ReadonlySet<string>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const t of await listUserTables(c)) {
    if (only && !only.has(t.key)) continue;
    const r = await c.query<{ n: string }>(
      `select count(*) as n from ${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`,
    );
    counts[t.key] = Number(r.rows[0]?.n ?? 0);
  }
  return counts;
}

/** Longest pg_database_size may take (it stats every file of the database): a slow one is skipped. */
export const DATABASE_SIZE_TIMEOUT_MS = 30_000;

/**
 * The database's size on disk (pg_database_size of the connected database), in bytes; in a transaction of
 * its own whose statement_timeout bounds it to `timeoutMs`. Run before the dump's snapshot is exported.
 */
export async function databaseSize(c: pg.Client, timeoutMs = DATABASE_SIZE_TIMEOUT_MS): Promise<number> {
  await c.query('begin');
  try {
    await c.query(`set local statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
    const r = await c.query<{ b: string }>('select pg_database_size(current_database())::text as b');
    await c.query('commit');
    const n = Number(r.rows[0]?.b);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`pg_database_size returned ${r.rows[0]?.b}`);
    return n;
  } catch (e) {
    await c.query('rollback').catch(() => {});
    throw e;
  }
}
