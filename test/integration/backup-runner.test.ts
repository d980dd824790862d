import { createHash, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerMain } from '../../operator/backup/runner/cli.js';
import type { BackupManifest } from '../../operator/backup/runner/manifest.js';
import {
  ALLOW_SUPERUSER_ASSERTIONS_ENV,
  runSqlAssertions,
} from '../../operator/backup/runner/restore-validation.js';
import { RunnerResultSchema, type RunnerResult } from '../../operator/backup/runner/result.js';
import {
  createTestDatabase,
  pgInfo,
  runnerPgEnv as connEnv,
  runPgTool,
  tableChecksum,
  withClient,
} from '../support/postgres.js';

// Runs the runner's subcommands exactly as a Job pod would (argv + env, result in a termination-log file)
// against the real PostgreSQL of the integration environment.

interface Run {
  code: number;
  result: RunnerResult;
  /** Raw termination message and every log line, to search for secrets. */
  output: string;
  logs: Record<string, unknown>[];
}

const root = mkdtempSync(join(tmpdir(), 'nxt-runner-it-'));
const storageDir = join(root, 'backups');
let runs = 0;

/** What a verify or prune Job gets: tool locations, no connection settings. */
const toolsOnly = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, PG_BIN_DIR: pgInfo().binDir });

/**
 * Runs one subcommand and parses its termination message. `via: 'env'` passes the termination log's path
 * as TERMINATION_LOG_PATH instead of --termination-log, as the test kubelet does.
 */
async function runner(argv: string[], env: NodeJS.ProcessEnv, via: 'flag' | 'env' = 'flag'): Promise<Run> {
  const terminationLog = join(root, `termination-${runs++}`);
  const lines: string[] = [];
  const code = await runnerMain(
    via === 'flag' ? [...argv, '--termination-log', terminationLog] : argv,
    via === 'flag' ? env : { ...env, TERMINATION_LOG_PATH: terminationLog },
    { writeLog: (l) => lines.push(l) },
  );
  const message = readFileSync(terminationLog, 'utf8');
  const parsed = RunnerResultSchema.safeParse(JSON.parse(message));
  expect(
    parsed.success,
    `expected the termination message to parse with RunnerResultSchema: ${message}`,
  ).toBe(true);
  const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, result: parsed.data!, output: [message, ...lines].join('\n'), logs };
}

const filesOf = (id: string) => readdirSync(storageDir).filter((f) => f.startsWith(`${id}.`));
const sha256File = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const readManifest = (id: string) =>
  JSON.parse(readFileSync(join(storageDir, `${id}.manifest.json`), 'utf8')) as BackupManifest;

/** A copy of a committed backup under another id, to damage without touching the original. */
function cloneBackup(from: string, to: string, patch: Partial<BackupManifest> = {}): void {
  copyFileSync(join(storageDir, `${from}.dump`), join(storageDir, `${to}.dump`));
  writeFileSync(
    join(storageDir, `${to}.manifest.json`),
    JSON.stringify({ ...readManifest(from), id: to, ...patch }),
  );
}

async function exactCounts(url: string): Promise<Record<string, number>> {
  return withClient(url, async (c) => {
    const tables = await c.query<{ s: string; t: string }>(
      `select schemaname as s, tablename as t from pg_tables
        where schemaname not in ('pg_catalog', 'information_schema') order by 1, 2`,
    );
    const counts: Record<string, number> = {};
    for (const { s, t } of tables.rows) {
      const r = await c.query(
        `select count(*)::int as n from ${pg.escapeIdentifier(s)}.${pg.escapeIdentifier(t)}`,
      );
      counts[`${s}.${t}`] = r.rows[0].n;
    }
    return counts;
  });
}

async function databaseNames(pattern: string): Promise<string[]> {
  return withClient(pgInfo().url, async (c) => {
    const r = await c.query<{ datname: string }>('select datname from pg_database where datname like $1', [
      pattern,
    ]);
    return r.rows.map((x) => x.datname);
  });
}

const CHECKED_TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'shop.orders'];

async function checksums(url: string) {
  return Object.fromEntries(
    await Promise.all(CHECKED_TABLES.map(async (t) => [t, await tableChecksum(url, t)])),
  );
}

/** A TCP port on which nothing listens. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('backup runner against a real PostgreSQL', () => {
  let src: { name: string; url: string };
  const id = 'nightly-20260301020000';
  // The provenance a Job pod gets from the pod builders: a retried pod of the same Job reuses the backup.
  const nightlyJob = { NXT_BACKUP_PURPOSE: 'scheduled', NXT_JOB_NAME: id, NXT_JOB_UID: 'job-uid-1' };
  let backup: Run;
  let original: Record<string, { rows: number; md5: string }>;

  beforeAll(async () => {
    mkdirSync(storageDir);
    src = await createTestDatabase('runner_src');
    await runPgTool('pgbench', ['-i', '-s', '1', '-q', src.name]);
    await withClient(src.url, async (c) => {
      await c.query('create schema shop');
      await c.query(
        'create table shop.orders (id bigint primary key, customer text not null, total numeric(12,2))',
      );
      await c.query(
        `insert into shop.orders select g, 'customer-' || (g % 97), (g * 7 % 1000) / 3.0 from generate_series(1, 10000) g`,
      );
    });
    original = await checksums(src.url);
    backup = await runner(['backup', '--storage-dir', storageDir, '--id', id], connEnv(src.name, nightlyJob));
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('backs up pgbench and a 10,000-row table with a manifest that matches the real counts and the file', async () => {
    expect(backup.code, `expected exit code 0, got ${backup.code}: ${backup.result.message}`).toBe(0);
    expect(filesOf(id).sort(), 'expected exactly the committed dump and its manifest').toEqual([
      `${id}.dump`,
      `${id}.manifest.json`,
    ]);
    const manifest = readManifest(id);
    expect(manifest.tables, 'expected the manifest row counts to equal count(*) of every table').toEqual(
      await exactCounts(src.url),
    );
    expect(manifest.tables['public.pgbench_accounts']).toBe(100_000);
    expect(manifest.tables['shop.orders']).toBe(10_000);
    expect(manifest.sha256, 'expected the manifest sha256 to be that of the file on disk').toBe(
      sha256File(join(storageDir, `${id}.dump`)),
    );
    expect(manifest).toMatchObject({
      id,
      database: src.name,
      host: pgInfo().host,
      format: 'custom',
      verified: true,
      rowCountsFromDumpSnapshot: true,
    });
    expect(manifest.pgDumpVersion).toMatch(/^pg_dump \(PostgreSQL\) \d+/);
    expect(manifest.serverVersion).toMatch(/^\d+/);
    expect(backup.result).toMatchObject({
      operation: 'backup',
      success: true,
      sha256: manifest.sha256,
      bytes: manifest.bytes,
      tableCount: Object.keys(manifest.tables).length,
    });
    expect(backup.output, 'expected the password nowhere in the output').not.toContain(pgInfo().password);
    expect(backup.logs.map((l) => l.event)).toEqual(
      expect.arrayContaining(['backup.start', 'backup.dumped', 'runner.result']),
    );
  });

  it('reuses a committed, verified backup when a retried Job runs with the same id', async () => {
    const again = await runner(
      ['backup', '--storage-dir', storageDir, '--id', id],
      connEnv(src.name, nightlyJob),
    );
    expect(again.result).toMatchObject({ success: true, reused: true, sha256: readManifest(id).sha256 });
  });

  it('verifies a good backup', async () => {
    const r = await runner(['verify', '--storage-dir', storageDir, '--id', id], toolsOnly());
    expect(r.code, r.result.message).toBe(0);
    expect(r.result).toMatchObject({ operation: 'verify', success: true, valid: true });
  });

  it.each([
    {
      damage: 'one flipped byte',
      reason: 'ChecksumMismatch',
      apply: (path: string) => {
        const b = readFileSync(path);
        b[Math.floor(b.length / 2)]! ^= 0xff;
        writeFileSync(path, b);
      },
    },
    {
      damage: 'truncation',
      reason: 'ChecksumMismatch',
      apply: (path: string) => truncateSync(path, Math.floor(readFileSync(path).length / 3)),
    },
  ])('detects $damage as $reason', async ({ apply, reason }) => {
    const bad = `damaged-${runs}`;
    cloneBackup(id, bad);
    apply(join(storageDir, `${bad}.dump`));
    const r = await runner(['verify', '--storage-dir', storageDir, '--id', bad], toolsOnly());
    expect(r.code, 'expected verify to fail').toBe(1);
    expect(r.result).toMatchObject({ success: false, valid: false, reason });
  });

  it('detects a file that is not an archive even when its checksum matches the manifest', async () => {
    const bad = 'not-an-archive';
    cloneBackup(id, bad);
    const garbage = randomBytes(4096);
    writeFileSync(join(storageDir, `${bad}.dump`), garbage);
    const m = readManifest(bad);
    writeFileSync(
      join(storageDir, `${bad}.manifest.json`),
      JSON.stringify({
        ...m,
        bytes: garbage.length,
        sha256: createHash('sha256').update(garbage).digest('hex'),
      }),
    );
    const r = await runner(['verify', '--storage-dir', storageDir, '--id', bad], toolsOnly());
    expect(r.result, 'expected pg_restore --list to reject random bytes').toMatchObject({
      success: false,
      reason: 'ArchiveUnreadable',
    });
  });

  it('refuses to restore a damaged backup and leaves the target untouched', async () => {
    const bad = 'damaged-for-restore';
    cloneBackup(id, bad);
    truncateSync(join(storageDir, `${bad}.dump`), 1000);
    const r = await runner(
      ['restore', '--storage-dir', storageDir, '--id', bad, '--mode', 'inPlace'],
      connEnv(src.name),
    );
    expect(r.result).toMatchObject({ success: false, reason: 'ChecksumMismatch' });
    expect(r.result.message).toMatch(/refusing to restore/);
    expect(await checksums(src.url), 'expected the target database unchanged').toEqual(original);
  });

  it('reports an unreachable database as DatabaseUnreachable and leaves no dump or manifest', async () => {
    const down = 'down-20260301020000';
    const r = await runner(
      ['backup', '--storage-dir', storageDir, '--id', down],
      connEnv(src.name, { PGPORT: String(await closedPort()) }),
    );
    expect(r.code).toBe(1);
    expect(r.result).toMatchObject({ operation: 'backup', success: false, reason: 'DatabaseUnreachable' });
    expect(filesOf(down), 'expected no file of the failed backup').toEqual([]);
  });

  it('reports pg_dump failing mid-stream as DumpFailed with its stderr, password-free, and removes the partial', async () => {
    // A stand-in pg_dump that writes part of an archive, then fails and echoes the password it was given.
    const bin = join(root, 'failing-bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'pg_dump'),
      [
        '#!/bin/sh',
        'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 99.0"; exit 0; fi',
        'printf "PGDMP partial archive"',
        'echo "pg_dump: error: query failed: ERROR:  could not read block 7 (pw=$PGPASSWORD)" >&2',
        'exit 1',
      ].join('\n'),
      { mode: 0o755 },
    );
    const failed = 'dumpfail-20260301020000';
    const r = await runner(
      ['backup', '--storage-dir', storageDir, '--id', failed],
      connEnv(src.name, { PG_BIN_DIR: bin }),
    );
    expect(r.result).toMatchObject({ success: false, reason: 'DumpFailed' });
    expect(r.result.message).toMatch(/pg_dump exited with code 1: .*could not read block 7/);
    expect(r.output, 'expected the password redacted from pg_dump stderr').not.toContain(pgInfo().password);
    expect(filesOf(failed), 'expected no partial, dump or manifest left').toEqual([]);
  });

  it.each([
    ['PGPASSWORD', (pw: string) => ({ PGPASSWORD: pw })],
    [
      'DATABASE_URL',
      (pw: string) => {
        const i = pgInfo();
        return {
          PGPASSWORD: undefined,
          PGHOST: undefined,
          PGPORT: undefined,
          PGUSER: undefined,
          DATABASE_URL: `postgresql://${i.user}:${encodeURIComponent(pw)}@${i.host}:${i.port}/${src.name}?sslmode=disable`,
        };
      },
    ],
  ])('reports a wrong password in %s as AuthenticationFailed without ever printing it', async (_via, env) => {
    const password = `wrong-${randomBytes(8).toString('hex')}-pw`;
    const failed = `authfail-${runs}`;
    const r = await runner(
      ['backup', '--storage-dir', storageDir, '--id', failed],
      connEnv(src.name, env(password)),
    );
    expect(r.result).toMatchObject({ success: false, reason: 'AuthenticationFailed' });
    expect(r.output, 'expected the wrong password nowhere in result or logs').not.toContain(password);
    expect(r.output).not.toContain(encodeURIComponent(password));
    expect(filesOf(failed)).toEqual([]);
  });

  it('takes row counts from the snapshot pg_dump uses, so they hold while the application writes', async () => {
    const db = await createTestDatabase('runner_busy');
    await withClient(db.url, (c) =>
      c.query('create table events (id bigserial primary key, at timestamptz default now())'),
    );
    let writing = true;
    const writer = withClient(db.url, async (c) => {
      let n = 0;
      while (writing) {
        await c.query('insert into events default values');
        n++;
      }
      return n;
    });
    const busyId = 'busy-20260301020000';
    const b = await runner(['backup', '--storage-dir', storageDir, '--id', busyId], connEnv(db.name));
    writing = false;
    const inserted = await writer;
    expect(b.code, b.result.message).toBe(0);
    const counted = readManifest(busyId).tables['public.events']!;
    expect(counted, 'expected the application to keep writing after the snapshot').toBeLessThan(inserted);
    const t = await runner(['test-restore', '--storage-dir', storageDir, '--id', busyId], connEnv(db.name));
    expect(
      t.result,
      'expected the restored dump to hold exactly the rows the manifest counted',
    ).toMatchObject({
      success: true,
      mismatchCount: 0,
    });
  });

  it('restores inPlace over modified data and brings back every table checksum', async () => {
    await withClient(src.url, async (c) => {
      await c.query('delete from pgbench_accounts where aid % 3 = 0');
      await c.query('update shop.orders set total = 0 where id < 500');
      await c.query('drop table pgbench_tellers');
    });
    expect(await tableChecksum(src.url, 'shop.orders')).not.toEqual(original['shop.orders']);
    const r = await runner(
      ['restore', '--storage-dir', storageDir, '--id', id, '--mode', 'inPlace'],
      connEnv(src.name),
    );
    expect(r.code, r.result.message).toBe(0);
    expect(r.result).toMatchObject({
      operation: 'restore',
      mode: 'inPlace',
      success: true,
      mismatchCount: 0,
    });
    expect(r.result.operation === 'restore' && r.result.tablesVerified).toBe(
      Object.keys(readManifest(id).tables).length,
    );
    expect(await checksums(src.url), 'expected every table as it was at backup time').toEqual(original);
  });

  it('restores with newDatabaseSwap and keeps the old database under the returned name', async () => {
    const db = await createTestDatabase('runner_swap');
    await withClient(db.url, async (c) => {
      await c.query('create table items (id int primary key, v text)');
      await c.query(`insert into items select g, 'v' || g from generate_series(1, 1000) g`);
    });
    const before = await tableChecksum(db.url, 'items');
    const swapId = 'swap-20260301020000';
    const b = await runner(['backup', '--storage-dir', storageDir, '--id', swapId], connEnv(db.name));
    expect(b.code, b.result.message).toBe(0);
    await withClient(db.url, (c) => c.query(`insert into items values (1001, 'after the backup')`));
    // An application connection the swap has to end.
    const app = new pg.Client({ connectionString: db.url });
    app.on('error', () => {});
    await app.connect();

    // The same restore twice: a swap, then (with a plan) a second one whose short id is taken by now.
    const swapArgs = [
      'restore',
      '--storage-dir',
      storageDir,
      '--id',
      swapId,
      '--mode',
      'newDatabaseSwap',
      '--short-id',
      'a1b2c1',
    ];
    const r = await runner(swapArgs, connEnv(db.name));
    await app.end().catch(() => {});
    expect(r.code, r.result.message).toBe(0);
    const previous = `${db.name}_pre_a1b2c1`;
    expect(r.result).toMatchObject({ success: true, mode: 'newDatabaseSwap', previousDatabase: previous });
    expect(await tableChecksum(db.url, 'items'), 'expected the target to hold the backup').toEqual(before);
    const oldUrl = db.url.replace(/\/[^/]+$/, `/${previous}`);
    expect((await tableChecksum(oldUrl, 'items')).rows, 'expected the old database with its later row').toBe(
      1001,
    );
    expect(await databaseNames(`${db.name}_restore_%`), 'expected no leftover restore database').toEqual([]);

    // A plan's restore naming a short id already taken (the previous database above) is refused before it
    // claims the plan: the run changed nothing, so the plan may still restore with another id.
    const planUid = '0f4e2a6b-1c3d-4e5f-8a9b-0c1d2e3f4a5b';
    const again = await runner(swapArgs, { ...connEnv(db.name), NXT_PLAN_UID: planUid });
    expect(again.result, again.result.message).toMatchObject({ success: false, reason: 'InvalidArguments' });
    expect(again.result.message).toMatch(new RegExp(`database ${previous} already exists`));
    expect(
      existsSync(join(storageDir, '.restores', planUid)),
      'expected no restore claim for a run refused before it changed anything',
    ).toBe(false);
  });

  describe('newDatabaseSwap when its maintenance session is ended while pg_restore runs', () => {
    /**
     * A pg_restore that, for the restore itself (not --list), first ends the runner's maintenance session
     * (application_name `app`, database postgres) as idle_session_timeout, a pooler's idle limit or an
     * operator's pg_terminate_backend would, records how many it ended, then runs the real pg_restore or fails.
     */
    function terminatingPgRestore(name: string, app: string, fail: boolean): { bin: string; ended: string } {
      const bin = join(root, name);
      mkdirSync(bin);
      const real = pgInfo().binDir;
      const ended = join(bin, 'ended');
      const sql =
        'select count(pg_terminate_backend(pid)) from pg_stat_activity' +
        ` where application_name = '${app}' and datname = 'postgres'`;
      writeFileSync(
        join(bin, 'pg_restore'),
        [
          '#!/bin/sh',
          'case " $* " in *" -d "*)',
          `  PGAPPNAME=swap-killer "${real}/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d postgres -c "${sql}" >>"${ended}" || exit 99`,
          ...(fail
            ? ['  cat >/dev/null', '  echo "pg_restore: error: simulated failure" >&2', '  exit 1']
            : []),
          '  ;;',
          'esac',
          `exec "${real}/pg_restore" "$@"`,
        ].join('\n'),
        { mode: 0o755 },
      );
      return { bin, ended };
    }

    const swapRestore = (db: string, shortId: string, bin: string, app: string) =>
      runner(
        [
          'restore',
          '--storage-dir',
          storageDir,
          '--id',
          id,
          '--mode',
          'newDatabaseSwap',
          '--short-id',
          shortId,
        ],
        connEnv(db, { PG_BIN_DIR: bin, PGAPPNAME: app, NXT_RESTORE_JOBS: '1' }),
      );

    it('still swaps the good restore, on a new maintenance connection', async () => {
      const db = await createTestDatabase('runner_swapkill');
      const app = `swapkill-${randomBytes(3).toString('hex')}`;
      const { bin, ended } = terminatingPgRestore('swapkill-bin', app, false);
      const r = await swapRestore(db.name, 'a1b2d1', bin, app);
      expect(readFileSync(ended, 'utf8').trim(), 'expected the maintenance session ended').toBe('1');
      expect(r.code, r.result.message).toBe(0);
      expect(r.result).toMatchObject({ success: true, previousDatabase: `${db.name}_pre_a1b2d1` });
      expect(r.logs.map((l) => l.event)).toContain('restore.maintenance-reconnect');
      expect(await checksums(db.url), 'expected the target to hold the backup').toEqual(original);
      expect(await databaseNames(`${db.name}_restore_%`), 'expected no leftover restore database').toEqual(
        [],
      );
    });

    it('drops the replacement on a new connection when pg_restore then fails', async () => {
      const db = await createTestDatabase('runner_swapkill');
      const app = `swapkill-${randomBytes(3).toString('hex')}`;
      const { bin, ended } = terminatingPgRestore('swapkill-fail-bin', app, true);
      const r = await swapRestore(db.name, 'a1b2d2', bin, app);
      expect(readFileSync(ended, 'utf8').trim(), 'expected the maintenance session ended').toBe('1');
      expect(r.result).toMatchObject({ success: false, reason: 'RestoreFailed' });
      expect(r.result.message).toMatch(/simulated failure/);
      expect(r.result.message).not.toMatch(/drop it by hand/);
      expect(await databaseNames(`${db.name}_restore_%`), 'expected no leftover restore database').toEqual(
        [],
      );
      expect(await exactCounts(db.url), 'expected the target untouched (still empty)').toEqual({});
    });
  });

  it('test-restores into a scratch database, reports counts and time, and drops it', async () => {
    const r = await runner(
      ['test-restore', '--storage-dir', storageDir, '--id', id, '--short-id', 'a1b2c2'],
      connEnv(src.name),
    );
    expect(r.code, r.result.message).toBe(0);
    const tables = Object.keys(readManifest(id).tables).length;
    expect(r.result).toMatchObject({
      operation: 'test-restore',
      success: true,
      scratchDatabase: `${src.name}_verify_a1b2c2`,
      scratchDropped: true,
      tablesVerified: tables,
      mismatchCount: 0,
    });
    expect(r.result.operation === 'test-restore' && r.result.restoreSeconds).toBeGreaterThan(0);
    expect(await databaseNames(`${src.name}_verify_%`), 'expected the scratch database dropped').toEqual([]);
  });

  it('in a Job, names the scratch database after the Job and drops what an evicted pod of it left behind', async () => {
    const jobUid = '0b6f3c1e-7d4a-4c55-9a9e-1f2d3c4b5a69';
    const env = { ...connEnv(src.name), NXT_JOB_UID: jobUid };
    const first = await runner(['test-restore', '--storage-dir', storageDir, '--id', id], env);
    expect(first.code, first.result.message).toBe(0);
    const scratch = first.result.operation === 'test-restore' ? first.result.scratchDatabase : undefined;
    expect(scratch).toMatch(new RegExp(`^${src.name}_verify_[0-9a-f]{6}$`));
    // What an evicted pod of the same Job leaves: the scratch database, half restored.
    await withClient(pgInfo().url, (c) => c.query(`create database ${pg.escapeIdentifier(scratch!)}`));
    const replaced = await runner(['test-restore', '--storage-dir', storageDir, '--id', id], env);
    expect(replaced.code, replaced.result.message).toBe(0);
    expect(replaced.result).toMatchObject({ success: true, scratchDatabase: scratch, scratchDropped: true });
    expect(await databaseNames(`${src.name}_verify_%`), 'no leftover scratch database').toEqual([]);
  });

  it('reports failing SQL assertions by name and counts, never a value they read', async () => {
    const assertions = [
      { name: 'accounts', query: 'select count(*) from pgbench_accounts', expect: '100000' },
      { name: 'orders', query: 'select count(*) from shop.orders', expect: '1' },
      // A value read out through a mismatch, and through the text of an error.
      { name: 'customer', query: 'select customer from shop.orders where id = 42', expect: 'nobody' },
      { name: 'cast', query: 'select customer::int from shop.orders where id = 43', expect: '0' },
      { name: 'empty', query: 'select 1 where false', expect: '1' },
    ];
    const r = await runner(
      [
        'test-restore',
        '--storage-dir',
        storageDir,
        '--id',
        id,
        '--sql-assertions-json',
        JSON.stringify(assertions),
      ],
      // The harness connects as the superuser postgres: assertions run only because the operator allows it.
      connEnv(src.name, { [ALLOW_SUPERUSER_ASSERTIONS_ENV]: 'true' }),
    );
    expect(r.code).toBe(1);
    expect(r.result).toMatchObject({
      success: false,
      reason: 'AssertionFailed',
      assertions: [
        { name: 'accounts', passed: true, rows: 1 },
        { name: 'orders', passed: false, expect: '1', rows: 1, failure: 'mismatch' },
        { name: 'customer', passed: false, rows: 1, failure: 'mismatch' },
        { name: 'cast', passed: false, failure: 'error', sqlState: '22P02' },
        { name: 'empty', passed: false, rows: 0, failure: 'noRow' },
      ],
    });
    expect(r.result.message).toBe(
      '4 of 5 SQL assertion(s) failed, e.g. orders: the first column of the first row is not the expected value (1 row(s))',
    );
    // What the queries read (10000 orders, customer-42, customer-43 quoted by the cast error) is nowhere.
    for (const value of ['"10000"', 'customer-42', 'customer-43'])
      expect(r.output, `the value ${value} in the termination message or the logs`).not.toContain(value);
    expect(await databaseNames(`${src.name}_verify_%`), 'expected the scratch database dropped').toEqual([]);
  });

  it('refuses SQL assertions as a superuser: COPY ... TO PROGRAM never runs, nothing is restored', async () => {
    const marker = `/tmp/nxt-copy-to-program-${randomBytes(6).toString('hex')}`;
    const assertions = [
      { name: 'escape', query: `copy (select 1) to program 'touch ${marker}'`, expect: 'COPY 1' },
    ];
    const target = await createTestDatabase('runner_guard');
    for (const argv of [
      ['test-restore', '--storage-dir', storageDir, '--id', id],
      ['restore', '--storage-dir', storageDir, '--id', id, '--mode', 'inPlace'],
    ]) {
      const r = await runner(
        [...argv, '--sql-assertions-json', JSON.stringify(assertions)],
        connEnv(argv[0] === 'restore' ? target.name : src.name),
      );
      expect(r.code, `${argv[0]}: ${r.result.message}`).toBe(1);
      expect(r.result).toMatchObject({ success: false, reason: 'PermissionDenied' });
      expect(r.result.message).toMatch(
        /^refusing to run SQL assertions as role "postgres": it is \(or can become\) a superuser.*COPY \.\.\. TO PROGRAM.*ALLOW_SUPERUSER_ASSERTIONS=true/,
      );
      expect(existsSync(marker), `${argv[0]}: the assertion's program ran (${marker} exists)`).toBe(false);
    }
    // Refused before anything was restored: no scratch database, the in-place target still empty.
    expect(await databaseNames(`${src.name}_verify_%`)).toEqual([]);
    expect(Object.keys(await exactCounts(target.url))).toEqual([]);
  });

  it('checks role membership too: pg_execute_server_program is refused, an ordinary role runs', async () => {
    const suffix = randomBytes(4).toString('hex');
    const [plain, program] = [`nxt_assert_${suffix}`, `nxt_program_${suffix}`];
    const password = randomBytes(12).toString('hex');
    await withClient(src.url, async (c) => {
      for (const role of [plain, program]) {
        await c.query(`create role ${role} login password '${password}'`);
        await c.query(`grant usage on schema shop to ${role}`);
        await c.query(`grant select on shop.orders to ${role}`);
      }
      await c.query(`grant pg_execute_server_program to ${program}`);
    });
    const i = pgInfo();
    const connectAs = async (user: string) => {
      const c = new pg.Client({ host: i.host, port: i.port, user, password, database: src.name });
      await c.connect();
      return c;
    };
    const assertions = [{ name: 'orders', query: 'select count(*) > 0 from shop.orders', expect: 't' }];
    const ordinary = await connectAs(plain);
    try {
      expect(await runSqlAssertions(ordinary, assertions)).toEqual([
        { name: 'orders', passed: true, expect: 't', rows: 1 },
      ]);
    } finally {
      await ordinary.end();
    }
    const runsPrograms = await connectAs(program);
    try {
      await expect(runSqlAssertions(runsPrograms, assertions)).rejects.toThrow(
        /may run programs on the server \(pg_execute_server_program\)/,
      );
      expect(await runSqlAssertions(runsPrograms, assertions, { allowSuperuser: true })).toHaveLength(1);
    } finally {
      await runsPrograms.end();
    }
  });

  it('prunes by policy and never the newest verified backup', async () => {
    const dir = join(root, 'prune');
    mkdirSync(dir);
    const m = readManifest(id);
    const days = ['2026-03-01', '2026-03-02', '2026-03-03'];
    for (const d of days) {
      const pid = `p-${d}`;
      copyFileSync(join(storageDir, `${id}.dump`), join(dir, `${pid}.dump`));
      writeFileSync(
        join(dir, `${pid}.manifest.json`),
        JSON.stringify({ ...m, id: pid, finishedAt: `${d}T02:00:00.000Z` }),
      );
    }
    const r = await runner(['prune', '--storage-dir', dir, '--keep-last', '1'], toolsOnly());
    expect(r.result).toMatchObject({
      success: true,
      deleted: ['p-2026-03-01', 'p-2026-03-02'],
      keptCount: 1,
    });
    expect(readdirSync(dir).sort()).toEqual(['p-2026-03-03.dump', 'p-2026-03-03.manifest.json']);
  });

  describe('retention after backup and --id latest', () => {
    const retainDir = join(root, 'retain');
    // Ids in the order the backups run; each finishes after the one before.
    const retainIds = ['keep-20260301020000', 'keep-20260301060000', 'keep-20260301100000'];
    let retainDb: { name: string; url: string };
    let retainOriginal: { rows: number; md5: string };
    const filesIn = (dir: string) => readdirSync(dir).sort();
    const filesOfBackups = (ids: string[]) => ids.flatMap((i) => [`${i}.dump`, `${i}.manifest.json`]).sort();

    beforeAll(async () => {
      mkdirSync(retainDir);
      retainDb = await createTestDatabase('runner_retain');
      await withClient(retainDb.url, async (c) => {
        await c.query('create table items (id int primary key, v text)');
        await c.query(`insert into items select g, 'v' || g from generate_series(1, 500) g`);
      });
      retainOriginal = await tableChecksum(retainDb.url, 'items');
    });

    it('prunes nothing after a backup without --keep flags', () => {
      expect(backup.result, 'expected no pruning fields without --keep flags').not.toHaveProperty(
        'prunedCount',
      );
      expect(backup.result).not.toHaveProperty('pruned');
    });

    it('leaves exactly the 2 newest dumps and manifests after three backups with --keep-last 2', async () => {
      const results: Run[] = [];
      for (const rid of retainIds) {
        const r = await runner(
          ['backup', '--storage-dir', retainDir, '--id', rid, '--keep-last', '2'],
          connEnv(retainDb.name),
        );
        expect(r.code, `expected backup ${rid} to succeed: ${r.result.message}`).toBe(0);
        results.push(r);
      }
      expect(results[0]!.result).toMatchObject({ success: true, verified: true, prunedCount: 0, pruned: [] });
      expect(results[1]!.result).toMatchObject({ success: true, prunedCount: 0, pruned: [] });
      expect(results[2]!.result, 'expected the third backup to prune the first').toMatchObject({
        operation: 'backup',
        id: retainIds[2],
        success: true,
        verified: true,
        prunedCount: 1,
        pruned: [retainIds[0]],
      });
      expect(results[2]!.result).not.toHaveProperty('pruneError');
      expect(results[2]!.result.message).toMatch(/retention deleted 1 older backup/);
      expect(results[2]!.logs.map((l) => l.event)).toEqual(
        expect.arrayContaining(['prune.deleted', 'backup.pruned']),
      );
      expect(filesIn(retainDir), 'expected exactly the 2 newest dumps and manifests').toEqual(
        filesOfBackups(retainIds.slice(1)),
      );
    });

    it('test-restores --id latest: the newest verified backup, reported by its real id', async () => {
      const newest = retainIds[2]!;
      const m = JSON.parse(
        readFileSync(join(retainDir, `${newest}.manifest.json`), 'utf8'),
      ) as BackupManifest;
      // Decoys: a newer backup that failed verification, and a verified one whose id sorts last but that
      // finished long ago.
      for (const [decoy, patch] of [
        [
          'keep-20260301140000',
          { verified: false, finishedAt: new Date(Date.parse(m.finishedAt) + 1000).toISOString() },
        ],
        ['zz-older', { finishedAt: '2020-01-01T00:00:00.000Z' }],
      ] as const) {
        copyFileSync(join(retainDir, `${newest}.dump`), join(retainDir, `${decoy}.dump`));
        writeFileSync(
          join(retainDir, `${decoy}.manifest.json`),
          JSON.stringify({ ...m, ...patch, id: decoy }),
        );
      }
      const r = await runner(
        ['test-restore', '--storage-dir', retainDir, '--id', 'latest', '--short-id', 'a1b2c3'],
        connEnv(retainDb.name),
      );
      expect(r.code, r.result.message).toBe(0);
      expect(r.result).toMatchObject({
        operation: 'test-restore',
        id: newest,
        success: true,
        scratchDatabase: `${retainDb.name}_verify_a1b2c3`,
        scratchDropped: true,
        tablesVerified: 1,
        mismatchCount: 0,
      });
      expect(r.logs.find((l) => l.event === 'runner.latest-resolved')).toMatchObject({ id: newest });
      expect(r.result.message).toContain(newest);
      expect(await databaseNames(`${retainDb.name}_verify_%`)).toEqual([]);
    });

    it('restores --id latest in place and reports the real id', async () => {
      await withClient(retainDb.url, (c) => c.query('delete from items where id % 2 = 0'));
      const r = await runner(
        ['restore', '--storage-dir', retainDir, '--id', 'latest', '--mode', 'inPlace'],
        connEnv(retainDb.name),
      );
      expect(r.code, r.result.message).toBe(0);
      expect(r.result).toMatchObject({
        operation: 'restore',
        id: retainIds[2],
        success: true,
        mismatchCount: 0,
      });
      expect(await tableChecksum(retainDb.url, 'items')).toEqual(retainOriginal);
    });

    it.each([
      ['verify', [] as string[]],
      ['test-restore', [] as string[]],
      ['restore', ['--mode', 'inPlace']],
    ])('fails %s --id latest on an empty storage dir with BackupNotFound', async (command, extra) => {
      const empty = join(root, `empty-${runs}`);
      mkdirSync(empty);
      const r = await runner(
        [command, '--storage-dir', empty, '--id', 'latest', ...extra],
        connEnv(retainDb.name),
      );
      expect(r.code).toBe(1);
      expect(r.result).toMatchObject({ operation: command, success: false, reason: 'BackupNotFound' });
      expect(r.result.message).toMatch(/--id latest: no verified backup in filesystem:.*holds no backup/);
      expect(r.result).not.toHaveProperty('id');
    });

    it('rejects backup --id latest as a usage error', async () => {
      const r = await runner(
        ['backup', '--storage-dir', retainDir, '--id', 'latest'],
        connEnv(retainDb.name),
      );
      expect(r.code).toBe(2);
      expect(r.result).toMatchObject({ operation: 'backup', success: false, reason: 'InvalidArguments' });
      expect(r.result.message).toMatch(/"latest" is reserved/);
      expect(
        readdirSync(retainDir).some((f) => f.startsWith('latest.')),
        'expected no latest.* file',
      ).toBe(false);
    });

    it('writes the termination message to TERMINATION_LOG_PATH when --termination-log is absent', async () => {
      const r = await runner(['verify', '--storage-dir', retainDir, '--id', 'latest'], toolsOnly(), 'env');
      expect(r.code, r.result.message).toBe(0);
      expect(r.result).toMatchObject({ operation: 'verify', id: retainIds[2], success: true, valid: true });
    });
  });
});
