import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
// Before pg, in every module that loads pg itself, so no import order elsewhere decides it: see node-navigator.ts.
import './node-navigator.js';
import pg from 'pg';
import { pgFailure } from './failure.js';
import type { RunnerLog } from './log.js';

const ident = (name: string) => pg.escapeIdentifier(name);

/** PostgreSQL silently truncates identifiers beyond 63 bytes; we must not let it pick our names. */
export const MAX_IDENTIFIER_BYTES = 63;

/** Six hex characters: short enough for names, unique enough among a database's restores. */
export function newShortId(): string {
  return randomBytes(3).toString('hex');
}

/**
 * `<db>_<tag>_<shortId>`, shortening `<db>` (never the suffix) to stay within 63 bytes, so the name we
 * create is the name we later rename, drop and report.
 */
export function derivedDatabaseName(db: string, tag: 'restore' | 'pre' | 'verify', shortId: string): string {
  const suffix = `_${tag}_${shortId}`;
  let prefix = db;
  while (Buffer.byteLength(prefix + suffix, 'utf8') > MAX_IDENTIFIER_BYTES)
    prefix = [...prefix].slice(0, -1).join('');
  return prefix + suffix;
}

async function serverVersionNum(admin: pg.Client): Promise<number> {
  const r = await admin.query<{ v: string }>('show server_version_num');
  return Number(r.rows[0]?.v ?? 0);
}

/** Which of `names` exist, in one round trip. */
export async function existingDatabases(admin: pg.Client, names: string[]): Promise<Set<string>> {
  const r = await admin.query<{ datname: string }>(
    'select datname from pg_database where datname = any($1::text[])',
    [names],
  );
  return new Set(r.rows.map((x) => x.datname));
}

/**
 * Creates an empty database from template0 (template1 may hold objects the dump also creates) with the
 * encoding and libc collation of `like`, owned by like's owner when we may grant that. Without `like` in
 * the cluster it uses the server defaults.
 */
export async function createDatabaseLike(admin: pg.Client, name: string, like: string): Promise<void> {
  try {
    const hasProvider = (await serverVersionNum(admin)) >= 150000;
    const r = await admin.query<{
      encoding: string;
      collate: string;
      ctype: string;
      provider: string;
      owner: string;
      may_own: boolean;
    }>(
      `select pg_encoding_to_char(encoding) as encoding, datcollate as collate, datctype as ctype,
              ${hasProvider ? 'datlocprovider::text' : `'c'`} as provider, pg_get_userbyid(datdba) as owner,
              pg_has_role(current_user, datdba, 'MEMBER') as may_own
         from pg_database where datname = $1`,
      [like],
    );
    const src = r.rows[0];
    let sql = `create database ${ident(name)} template template0`;
    if (src) {
      sql += ` encoding ${pg.escapeLiteral(src.encoding)}`;
      // Other providers (icu, builtin) need provider-specific options; the server default is the safe choice.
      if (src.provider === 'c')
        sql += ` lc_collate ${pg.escapeLiteral(src.collate)} lc_ctype ${pg.escapeLiteral(src.ctype)}`;
      if (src.may_own) sql += ` owner ${ident(src.owner)}`;
    }
    await admin.query(sql);
  } catch (e) {
    throw pgFailure(e, `creating database ${name}`, 'RestoreFailed');
  }
}

/** Drops a database we created, disconnecting whoever is in it. No error when it does not exist. */
export async function dropDatabase(admin: pg.Client, name: string): Promise<void> {
  if ((await serverVersionNum(admin)) >= 130000) {
    await admin.query(`drop database if exists ${ident(name)} with (force)`);
    return;
  }
  await terminateConnections(admin, name, 0);
  await admin.query(`drop database if exists ${ident(name)}`);
}

async function terminateConnections(admin: pg.Client, db: string, waitMs: number): Promise<void> {
  // Since PostgreSQL 14 pg_terminate_backend can wait for the backend to be gone.
  const wait = waitMs > 0 && (await serverVersionNum(admin)) >= 140000;
  await admin.query(
    `select pg_terminate_backend(pid${wait ? ', $2' : ''}) from pg_stat_activity
      where datname = $1 and pid <> pg_backend_pid()`,
    wait ? [db, waitMs] : [db],
  );
}

/**
 * The first line of the comment swapDatabases puts on the database it swaps out: it names the database it
 * was swapped out of in full (a shortened `_pre_` name can be shared by two long database names), so
 * retention drops only what the runner itself made, and only for that database.
 */
export function previousDatabaseMarker(db: string): string {
  return `${MARKER_PREFIX}${JSON.stringify(db)}`;
}

const MARKER_PREFIX = 'nxt-rollback-operator previous of ';

/**
 * Puts `replacement` in place of `target` and keeps the old one as `previous`: blocks new connections to
 * the target, ends the existing ones, then renames both in one transaction, so clients either reach the
 * old database or the new one and never find the name missing for longer than the commit. The same
 * transaction marks `previous` (previousDatabaseMarker, then `note`) and moves a comment the target had
 * onto its replacement, so the user's description follows the name and no swapped-out database is unmarked.
 */
export async function swapDatabases(
  admin: pg.Client,
  names: { target: string; replacement: string; previous: string },
  log: RunnerLog,
  note = '',
): Promise<void> {
  const { target, replacement, previous } = names;
  const marker = previousDatabaseMarker(target) + (note ? `\n${note}` : '');
  const former = await databaseComment(admin, target);
  await admin.query(`alter database ${ident(target)} with allow_connections false`);
  try {
    for (let attempt = 1; ; attempt++) {
      await terminateConnections(admin, target, 5000);
      try {
        await admin.query('begin');
        await admin.query(`alter database ${ident(target)} rename to ${ident(previous)}`);
        await admin.query(`alter database ${ident(replacement)} rename to ${ident(target)}`);
        await admin.query(`comment on database ${ident(previous)} is ${pg.escapeLiteral(marker)}`);
        if (former !== null && !isMarkedPrevious(former))
          await admin.query(`comment on database ${ident(target)} is ${pg.escapeLiteral(former)}`);
        await admin.query('commit');
        break;
      } catch (e) {
        await admin.query('rollback').catch(() => {});
        // 55006 object_in_use: a backend we terminated has not exited yet.
        if ((e as { code?: string }).code !== '55006' || attempt >= 10) throw e;
        log('warn', 'restore.swap-retry', { attempt, error: (e as Error).message });
        await sleep(500);
      }
    }
  } catch (e) {
    await admin.query(`alter database ${ident(target)} with allow_connections true`).catch(() => {});
    throw pgFailure(e, `swapping ${replacement} into ${target}`, 'SwapFailed');
  }
  // The kept copy stays reachable for inspection and undo.
  await admin.query(`alter database ${ident(previous)} with allow_connections true`);
}

async function databaseComment(admin: pg.Client, name: string): Promise<string | null> {
  const r = await admin.query<{ comment: string | null }>(
    `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
    [name],
  );
  return r.rows[0]?.comment ?? null;
}

const isMarkedPrevious = (comment: string) => comment.startsWith(MARKER_PREFIX);

/** What newShortId produces, and so the only --short-id a runner accepts: 6 lower-case hex characters. */
export const SHORT_ID_PATTERN = /^[0-9a-f]{6}$/;

/** A database as dropOldPreviousDatabases sees it in pg_database. */
export interface DatabaseEntry {
  name: string;
  /** Its comment (shobj_description), null without one. */
  comment: string | null;
}

/**
 * Whether `d` is a `<db>_pre_<shortId>` database that swapDatabases made of `db`: its name is exactly what
 * derivedDatabaseName gives for a generated short id, and its comment starts with the marker line naming
 * `db` in full. Names alone cannot tell a user's `shop_pre_2024` archive from a leftover, nor two long
 * database names that shorten to the same prefix. Pure.
 */
export function isPreviousDatabaseOf(d: DatabaseEntry, db: string): boolean {
  const at = d.name.lastIndexOf('_pre_');
  if (at < 0 || d.comment === null) return false;
  const shortId = d.name.slice(at + '_pre_'.length);
  if (!SHORT_ID_PATTERN.test(shortId) || derivedDatabaseName(db, 'pre', shortId) !== d.name) return false;
  return d.comment.split('\n', 1)[0] === previousDatabaseMarker(db);
}

/**
 * Keeps the `keep` newest `<db>_pre_*` databases this runner made of `db` (isPreviousDatabaseOf) and
 * drops the older ones; any other database is never touched. `newest` (the one the swap just
 * made) is the newest whatever its OID; the others are ordered by OID, which PostgreSQL hands out in
 * creation order: a `_pre_` database was created as the restore that replaced it, and replaced by the
 * next restore, so creation order is the order in which they were swapped out. A failed drop is
 * reported and the rest go on: the restore is done either way.
 */
export async function dropOldPreviousDatabases(
  admin: pg.Client,
  db: string,
  newest: string,
  keep: number,
  log: RunnerLog,
): Promise<{ kept: string[]; dropped: string[]; failed: string[] }> {
  const r = await admin.query<{ datname: string; oid: string; comment: string | null }>(
    `select datname, oid::int8::text as oid, shobj_description(oid, 'pg_database') as comment
       from pg_database`,
  );
  const previous = r.rows
    .filter((x) => isPreviousDatabaseOf({ name: x.datname, comment: x.comment ?? null }, db))
    .sort((a, b) => {
      if (a.datname === newest) return -1;
      if (b.datname === newest) return 1;
      return Number(BigInt(b.oid) - BigInt(a.oid)) || b.datname.localeCompare(a.datname);
    })
    .map((x) => x.datname);
  const out = { kept: previous.slice(0, keep), dropped: [] as string[], failed: [] as string[] };
  for (const name of previous.slice(keep)) {
    try {
      await dropDatabase(admin, name);
      out.dropped.push(name);
      log('info', 'restore.previous-dropped', { database: name });
    } catch (e) {
      out.failed.push(name);
      log('warn', 'restore.previous-drop-failed', { database: name, error: (e as Error).message });
    }
  }
  return out;
}
