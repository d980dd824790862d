import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FilesystemBackupStorage } from './storage.js';
import { verifyArchive } from './verify.js';

const dir = mkdtempSync(join(tmpdir(), 'runner-verify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Like pg_restore --list on stdin: reads to the end (a TOC that never comes keeps it waiting), lists one entry. */
const listAll = join(dir, 'pg_restore');
writeFileSync(listAll, "#!/bin/sh\ncat >/dev/null\necho '1; 2 3 TABLE public t'\n");
chmodSync(listAll, 0o755);

describe('verifyArchive (one read: hash and TOC check)', () => {
  it('passes a dump whose bytes match the checksum', async () => {
    const storage = new FilesystemBackupStorage(mkdtempSync(join(dir, 's-')));
    writeFileSync(join(storage.location.slice('filesystem:'.length), 'b1.dump'), 'PGDMP-data');
    const sha256 = createHash('sha256').update('PGDMP-data').digest('hex');
    const v = await verifyArchive(storage, 'b1', { sha256, bytes: 10 }, listAll);
    expect(v).toMatchObject({ valid: true, bytes: 10, sha256 });
  });

  it('fails a flipped byte with ChecksumMismatch', async () => {
    const storage = new FilesystemBackupStorage(mkdtempSync(join(dir, 's-')));
    writeFileSync(join(storage.location.slice('filesystem:'.length), 'b1.dump'), 'PGDMP-dat4');
    const sha256 = createHash('sha256').update('PGDMP-data').digest('hex');
    const v = await verifyArchive(storage, 'b1', { sha256, bytes: 10 }, listAll);
    expect(v).toMatchObject({ valid: false, reason: 'ChecksumMismatch' });
  });

  it('reports a missing dump at once instead of leaving pg_restore waiting for its stdin', async () => {
    const storage = new FilesystemBackupStorage(mkdtempSync(join(dir, 's-')));
    const v = await verifyArchive(storage, 'gone', { sha256: '0'.repeat(64) }, listAll);
    expect(v).toMatchObject({ valid: false, reason: 'BackupNotFound' });
  }, 5000);
});
