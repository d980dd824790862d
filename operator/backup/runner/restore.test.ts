import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { exitCodeOf, ExitCode } from './failure.js';
import { silentLog } from './log.js';
import { isConnectionError, runRestore } from './restore.js';
import { FilesystemBackupStorage } from './storage.js';
import { fakeManifest } from '../../../test/support/runner-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'runner-restore-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Like pg_restore --list on stdin: reads to the end, lists one entry (the archive passes verification). */
const listAll = join(dir, 'pg_restore');
writeFileSync(listAll, "#!/bin/sh\ncat >/dev/null\necho '1; 2 3 TABLE public t'\n");
chmodSync(listAll, 0o755);

/** A storage holding backup `b1` whose dump matches its manifest, the manifest saying `verified`. */
function storageWith(verified: boolean) {
  const root = mkdtempSync(join(dir, 's-'));
  const data = 'PGDMP-data';
  writeFileSync(join(root, 'b1.dump'), data);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const m = fakeManifest('b1', '2026-11-28T01:00:00.000Z', {
    bytes: data.length,
    sha256,
    verified,
    verifyMessage: verified ? 'ok' : 'pg_restore --list failed',
  });
  writeFileSync(join(root, 'b1.manifest.json'), JSON.stringify(m));
  return new FilesystemBackupStorage(root);
}

// Port 1 on loopback refuses at once: a restore that gets past the manifest checks fails on the connection.
const restore = (verified: boolean, allowUnverified?: boolean) =>
  runRestore({
    storage: storageWith(verified),
    id: 'b1',
    database: { host: '127.0.0.1', port: 1, database: 'app', user: 'app', password: 'pw' },
    mode: 'inPlace',
    pgRestorePath: listAll,
    log: silentLog,
    env: {},
    ...(allowUnverified ? { allowUnverified } : {}),
  });

describe('runRestore and a manifest that says verified: false', () => {
  it('refuses it (BackupUnverified, not retried) although its bytes match the manifest', async () => {
    const r = await restore(false);
    expect(r).toMatchObject({ success: false, reason: 'BackupUnverified' });
    expect(r.message).toMatch(/b1.*did not pass verification.*pg_restore --list failed/);
    expect(exitCodeOf(r)).toBe(ExitCode.NotRetryable);
  });

  it('goes past the check for a verified manifest, or with allowUnverified (to the database, refused here)', async () => {
    for (const r of [await restore(true), await restore(false, true)]) {
      expect(r.success).toBe(false);
      expect(r.reason).not.toBe('BackupUnverified');
    }
  });
});

describe('runRestore newDatabaseSwap and an unreachable server', () => {
  it('fails before claiming the plan, so a retry is refused for the server again, not as a second restore', async () => {
    const storage = storageWith(true);
    const swap = () =>
      runRestore({
        storage,
        id: 'b1',
        database: { host: '127.0.0.1', port: 1, database: 'app', user: 'app', password: 'pw' },
        mode: 'newDatabaseSwap',
        pgRestorePath: listAll,
        log: silentLog,
        env: {},
        planUid: 'plan-1',
      });
    for (const attempt of [1, 2]) {
      const r = await swap();
      expect(r, `attempt ${attempt}: expected the connection refusal, not a claim`).toMatchObject({
        success: false,
        reason: 'DatabaseUnreachable',
      });
    }
    // The claim is still free: the run that can reach the server will take it.
    expect(await storage.claimRestore('plan-1', { test: true })).toBe(true);
  });
});

describe('runRestore newDatabaseSwap with SQL assertions', () => {
  it('connects for the assertion role check and for maintenance one after the other, never at once', async () => {
    // A server that takes each connection, holds it 100 ms without answering, then closes it: the connects
    // fail, and it sees how many of ours were open at the same time (a role with CONNECTION LIMIT 1 would
    // refuse the second).
    let open = 0;
    let most = 0;
    const sockets = new Set<Socket>();
    const server = createServer((sock) => {
      sockets.add(sock);
      most = Math.max(most, ++open);
      sock.on('error', () => {});
      sock.on('close', () => (open--, sockets.delete(sock)));
      setTimeout(() => sock.destroy(), 100);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const { port } = server.address() as { port: number };
    try {
      const r = await runRestore({
        storage: storageWith(true),
        id: 'b1',
        database: {
          host: '127.0.0.1',
          port,
          database: 'app',
          user: 'app',
          password: 'pw',
          sslmode: 'disable',
        },
        mode: 'newDatabaseSwap',
        pgRestorePath: listAll,
        sqlAssertions: [{ name: 'one', query: 'select 1', expect: '1' }],
        log: silentLog,
        env: {},
      });
      expect(r.success).toBe(false);
      expect(most, 'expected at most one of our connections open at a time').toBe(1);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((ok) => server.close(ok));
    }
  });
});

/** One client connection as the fake server saw it: the database it asked for and the SQL it sent. */
interface FakeSession {
  database: string;
  queries: string[];
  closed: boolean;
}

/**
 * A loopback server speaking just enough of the PostgreSQL protocol for runRestore: trust authentication,
 * every statement succeeds with no rows, `show server_version_num` says 15. `onQuery` sees each statement
 * and may have the server end the session after answering it (`end`: FATAL 57P01, then close, as
 * pg_terminate_backend or idle_session_timeout do), end it instead of answering (`lose-reply`), or fail the
 * statement with an SQLSTATE; `refuse` turns a new session away (FATAL 57P03) instead of admitting it.
 */
/** Waits until every session the fake server saw has been closed by the runner. */
const allClosed = (pg: { sessions: { closed: boolean }[] }) =>
  vi.waitFor(() =>
    expect(
      pg.sessions.filter((s) => !s.closed),
      'expected all closed',
    ).toEqual([]),
  );

async function fakePostgres(hooks: {
  onQuery?: (s: FakeSession, sql: string) => 'end' | 'lose-reply' | { error: string } | undefined;
  refuse?: (database: string, earlier: FakeSession[]) => boolean;
}) {
  const sessions: FakeSession[] = [];
  const sockets = new Set<Socket>();
  const msg = (type: string, body: Buffer = Buffer.alloc(0)) => {
    const head = Buffer.alloc(5);
    head.write(type, 0, 'latin1');
    head.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([head, body]);
  };
  const cstr = (s: string) => Buffer.from(`${s}\0`);
  const int32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  const int16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeInt16BE(n);
    return b;
  };
  const ready = msg('Z', Buffer.from('I'));
  const fatal = (code: string, text: string) =>
    msg('E', Buffer.concat([cstr(`SFATAL`), cstr(`VFATAL`), cstr(`C${code}`), cstr(`M${text}`), cstr('')]));
  const versionRows = Buffer.concat([
    msg(
      'T',
      Buffer.concat([
        int16(1),
        cstr('server_version_num'),
        int32(0),
        int16(0),
        int32(25),
        int16(-1),
        int32(-1),
        int16(0),
      ]),
    ),
    msg('D', Buffer.concat([int16(1), int32(6), Buffer.from('150000')])),
    msg('C', cstr('SHOW')),
  ]);
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
    let session: FakeSession | undefined;
    let buf = Buffer.alloc(0);
    const terminate = () => {
      sock.end(fatal('57P01', 'terminating connection due to administrator command'));
      if (session) session.closed = true;
    };
    sock.on('close', () => session && (session.closed = true));
    sock.on('data', (chunk) => {
      if (sock.writableEnded || sock.destroyed) return;
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!session) {
          if (buf.length < 8) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const params = buf.subarray(8, len).toString('utf8').split('\0');
          buf = buf.subarray(len);
          const database = params[params.indexOf('database') + 1] ?? '';
          if (hooks.refuse?.(database, sessions)) {
            sock.end(fatal('57P03', 'the database system is not accepting connections'));
            return;
          }
          session = { database, queries: [], closed: false };
          sessions.push(session);
          sock.write(Buffer.concat([msg('R', int32(0)), ready]));
          continue;
        }
        if (buf.length < 5) return;
        const type = String.fromCharCode(buf[0]!);
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) return;
        const body = buf.subarray(5, 1 + len);
        buf = buf.subarray(1 + len);
        const s = session;
        if (type === 'X') return void sock.end();
        if (type === 'Q' || type === 'P') {
          const sql =
            type === 'Q' ? body.toString('utf8', 0, body.length - 1) : body.toString('utf8').split('\0')[1]!;
          s.queries.push(sql);
          const action = hooks.onQuery?.(s, sql);
          if (action === 'lose-reply') return void sock.destroy();
          if (typeof action === 'object') {
            const error = [cstr('SERROR'), cstr('VERROR'), cstr(`C${action.error}`), cstr('Mrefused')];
            sock.write(Buffer.concat([msg('E', Buffer.concat([...error, cstr('')])), ready]));
          } else if (type === 'P') sock.write(msg('1'));
          else {
            const rows = /server_version_num/.test(sql) ? versionRows : msg('C', cstr('SELECT 0'));
            sock.write(Buffer.concat([rows, ready]));
          }
          if (action === 'end') return terminate();
        } else if (type === 'B') sock.write(msg('2'));
        else if (type === 'D') sock.write(msg('n'));
        else if (type === 'E') sock.write(msg('C', cstr('SELECT 0')));
        else if (type === 'S') sock.write(ready);
        if (sock.writableEnded) return;
      }
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  return {
    port,
    sessions,
    maintenance: () => sessions.filter((s) => s.database === 'postgres'),
    close: async () => {
      for (const sock of sockets) sock.destroy();
      await new Promise((ok) => server.close(ok));
    },
  };
}

/** pg_restore --list passes (listAll); the restore itself (-d) fails. */
const failingRestore = join(dir, 'pg_restore-fails');
writeFileSync(
  failingRestore,
  '#!/bin/sh\ncase " $* " in *" -d "*) cat >/dev/null; echo "pg_restore: error: out of disk" >&2; exit 1;; esac\n' +
    "cat >/dev/null\necho '1; 2 3 TABLE public t'\n",
);
chmodSync(failingRestore, 0o755);

describe('runRestore newDatabaseSwap when the maintenance session ends during pg_restore', () => {
  const REPLACEMENT = '"app_restore_c0ffee"';
  const DROP = `drop database if exists ${REPLACEMENT}`;
  const swap = (port: number, pgRestorePath = listAll) =>
    runRestore({
      storage: storageWith(true),
      id: 'b1',
      database: { host: '127.0.0.1', port, database: 'app', user: 'app', password: 'pw', sslmode: 'disable' },
      mode: 'newDatabaseSwap',
      pgRestorePath,
      shortId: 'c0ffee',
      log: silentLog,
      env: {},
    });
  // The server ends the maintenance session right after it created the replacement, as an
  // idle_session_timeout, a pooler's idle limit or pg_terminate_backend would while pg_restore runs.
  const isCreate = (s: FakeSession, sql: string) =>
    s.database === 'postgres' && sql.startsWith(`create database ${REPLACEMENT}`);
  const endAfterCreate = (s: FakeSession, sql: string) => (isCreate(s, sql) ? ('end' as const) : undefined);
  const drops = (pg: { sessions: FakeSession[] }) =>
    pg.sessions.flatMap((s) => s.queries).filter((q) => q.startsWith('drop database'));

  it('swaps on a new maintenance connection and closes both', async () => {
    const pg = await fakePostgres({ onQuery: endAfterCreate });
    try {
      const r = await swap(pg.port);
      expect(r, r.message).toMatchObject({ success: true });
      const [first, second, ...more] = pg.maintenance();
      expect(more, 'expected one reconnect').toEqual([]);
      expect(first!.queries.some((q) => q.includes('rename to'))).toBe(false);
      expect(second!.queries.filter((q) => q.includes('rename to'))).toEqual([
        'alter database "app" rename to "app_pre_c0ffee"',
        `alter database ${REPLACEMENT} rename to "app"`,
      ]);
      await allClosed(pg);
    } finally {
      await pg.close();
    }
  });

  it('drops the replacement on a new connection when pg_restore fails', async () => {
    const pg = await fakePostgres({ onQuery: endAfterCreate });
    try {
      const r = await swap(pg.port, failingRestore);
      expect(r).toMatchObject({ success: false, reason: 'RestoreFailed' });
      expect(r.message).not.toContain('drop it by hand');
      expect(drops(pg)).toEqual([DROP]);
      expect(pg.maintenance()).toHaveLength(2);
      expect(pg.maintenance()[1]!.queries).toContain(DROP);
      await allClosed(pg);
    } finally {
      await pg.close();
    }
  });

  it('names the replacement left behind when no new connection can drop it', async () => {
    const pg = await fakePostgres({
      onQuery: endAfterCreate,
      refuse: (database, earlier) =>
        database === 'postgres' && earlier.some((s) => s.database === 'postgres'),
    });
    try {
      const r = await swap(pg.port, failingRestore);
      expect(r).toMatchObject({ success: false, reason: 'RestoreFailed' });
      expect(r.message).toMatch(/pg_restore.*out of disk/);
      expect(r.message).toMatch(/replacement database app_restore_c0ffee .*left behind, drop it by hand/);
    } finally {
      await pg.close();
    }
  });

  it('drops the replacement when the reply to its CREATE DATABASE is lost (it may have committed)', async () => {
    const pg = await fakePostgres({ onQuery: (s, sql) => (isCreate(s, sql) ? 'lose-reply' : undefined) });
    try {
      const r = await swap(pg.port);
      expect(r).toMatchObject({ success: false, reason: 'DatabaseUnreachable' });
      expect(pg.maintenance()[1]?.queries ?? []).toContain(DROP);
      await allClosed(pg);
    } finally {
      await pg.close();
    }
  });

  // A guard, not a regression test (the code before the fix passed it too): the create moved into the try that
  // drops the replacement, and a create the server refused must still drop nothing.
  it('drops nothing when the server refuses the CREATE DATABASE (a name taken meanwhile is not ours)', async () => {
    const pg = await fakePostgres({
      onQuery: (s, sql) => (isCreate(s, sql) ? { error: '42P04' } : undefined),
    });
    try {
      const r = await swap(pg.port);
      expect(r).toMatchObject({ success: false, reason: 'RestoreFailed' });
      expect(r.message).toMatch(/creating database app_restore_c0ffee.*42P04/);
      expect(drops(pg)).toEqual([]);
    } finally {
      await pg.close();
    }
  });
});

describe('isConnectionError', () => {
  it('tells a lost session from a failed statement', () => {
    expect(isConnectionError(new Error('Client was closed and is not queryable'))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe(true);
    for (const code of ['57P01', '57P05', '08006', '08003'])
      expect(isConnectionError(Object.assign(new Error('x'), { code })), code).toBe(true);
    for (const code of ['42P04', '55006', '42501', '25P02'])
      expect(isConnectionError(Object.assign(new Error('x'), { code })), code).toBe(false);
  });
});
