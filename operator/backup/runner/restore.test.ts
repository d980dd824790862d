import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exitCodeOf, ExitCode } from './failure.js';
import { silentLog } from './log.js';
import { runRestore } from './restore.js';
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
