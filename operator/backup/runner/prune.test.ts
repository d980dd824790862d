import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLog } from './log.js';
import type { BackupManifest } from './manifest.js';
import { pruneAfterBackup, runPrune } from './prune.js';
import {
  boundResult,
  RunnerResultSchema,
  TERMINATION_MESSAGE_MAX_BYTES,
  type BackupResult,
} from './result.js';
import { FilesystemBackupStorage } from './storage.js';
import { fakeManifest } from '../../../test/support/runner-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'runner-prune-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const now = () => new Date('2026-03-15T12:00:00Z');

function manifest(id: string, finishedAt: string, verified = true): BackupManifest {
  return fakeManifest(id, finishedAt, { verified });
}

function dirWith(backups: [id: string, finishedAt: string][]): string {
  const dir = mkdtempSync(join(root, `s${n++}-`));
  for (const [id, at] of backups) {
    writeFileSync(join(dir, `${id}.dump`), 'PGDMP');
    writeFileSync(join(dir, `${id}.manifest.json`), JSON.stringify(manifest(id, at)));
  }
  return dir;
}

const idsIn = (dir: string) => [...new Set(readdirSync(dir).map((f) => f.split('.')[0]))].sort();

function backupResult(id: string, patch: Partial<BackupResult> = {}): BackupResult {
  return {
    resultVersion: 1,
    operation: 'backup',
    id,
    startedAt: '2026-03-15T11:00:00.000Z',
    finishedAt: '2026-03-15T11:01:00.000Z',
    durationSeconds: 60,
    success: true,
    message: `backup ${id} committed and verified (5 bytes)`,
    verified: true,
    ...patch,
  };
}

/** Deletes the first backup it is asked to, then fails like a broken volume. */
class FlakyStorage extends FilesystemBackupStorage {
  removals = 0;
  override async remove(id: string): Promise<void> {
    if (this.removals++ > 0) throw new Error('EIO: i/o error');
    await super.remove(id);
  }
}

describe('runPrune', () => {
  it('never deletes a protected id, whatever the policy', async () => {
    const dir = dirWith([
      ['a', '2026-03-10T00:00:00Z'],
      ['b', '2026-03-11T00:00:00Z'],
      ['c', '2026-03-12T00:00:00Z'],
    ]);
    const r = await runPrune({
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
      protect: ['a'],
    });
    expect(r).toMatchObject({ success: true, deleted: ['b'], keptCount: 2 });
    expect(idsIn(dir)).toEqual(['a', 'c']);
  });
});

describe('pruneAfterBackup', () => {
  const threeAndNew = () =>
    dirWith([
      ['old-1', '2026-03-10T00:00:00Z'],
      ['old-2', '2026-03-11T00:00:00Z'],
      ['old-3', '2026-03-12T00:00:00Z'],
      ['new', '2026-03-15T11:01:00Z'],
    ]);

  it('returns the result untouched and deletes nothing without a policy', async () => {
    const dir = threeAndNew();
    const result = backupResult('new');
    expect(
      await pruneAfterBackup(result, { storage: new FilesystemBackupStorage(dir), log: silentLog, now }),
    ).toBe(result);
    expect(idsIn(dir)).toHaveLength(4);
  });

  it.each([
    ['a failed backup', backupResult('new', { success: false, reason: 'DumpFailed', verified: undefined })],
    [
      'an unverified backup',
      backupResult('new', { success: false, reason: 'ChecksumMismatch', verified: false }),
    ],
  ])('prunes nothing after %s', async (_what, result) => {
    const dir = threeAndNew();
    const storage = new FilesystemBackupStorage(dir);
    expect(await pruneAfterBackup(result, { storage, policy: { keepLast: 1 }, log: silentLog, now })).toBe(
      result,
    );
    expect(idsIn(dir)).toHaveLength(4);
  });

  it('applies the policy and reports the deleted ids, oldest first', async () => {
    const dir = threeAndNew();
    const events: string[] = [];
    const r = await pruneAfterBackup(backupResult('new'), {
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 2 },
      log: (_l, event) => events.push(event),
      now,
    });
    expect(r).toMatchObject({ success: true, prunedCount: 2, pruned: ['old-1', 'old-2'] });
    expect(r).not.toHaveProperty('pruneError');
    expect(r.message).toMatch(/committed and verified .*; retention deleted 2 older backup\(s\)$/);
    expect(idsIn(dir)).toEqual(['new', 'old-3']);
    expect(events).toEqual(expect.arrayContaining(['prune.deleted', 'backup.pruned']));
  });

  it('reports prunedCount 0 when the policy keeps everything', async () => {
    const dir = threeAndNew();
    const r = await pruneAfterBackup(backupResult('new'), {
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 10 },
      log: silentLog,
      now,
    });
    expect(r).toMatchObject({ success: true, prunedCount: 0, pruned: [] });
  });

  it('never deletes the backup it just made, even when a skewed clock makes it look the oldest', async () => {
    const dir = dirWith([
      ['skewed-new', '2026-03-01T00:00:00Z'],
      ['b', '2026-03-10T00:00:00Z'],
      ['c', '2026-03-11T00:00:00Z'],
    ]);
    const r = await pruneAfterBackup(backupResult('skewed-new'), {
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
    });
    expect(r).toMatchObject({ success: true, prunedCount: 1, pruned: ['b'] });
    expect(idsIn(dir), 'expected the new backup and the newest verified one kept').toEqual([
      'c',
      'skewed-new',
    ]);
  });

  it('keeps the backup a success when pruning fails, with pruneError and what it did delete', async () => {
    const dir = threeAndNew();
    const events: string[] = [];
    const r = await pruneAfterBackup(backupResult('new'), {
      storage: new FlakyStorage(dir),
      policy: { keepLast: 1 },
      log: (_l, event) => events.push(event),
      now,
      redact: (s) => s.replaceAll('i/o', '[REDACTED]'),
    });
    expect(r).toMatchObject({ success: true, verified: true, prunedCount: 1, pruned: ['old-1'] });
    expect(r).not.toHaveProperty('reason');
    expect(r.pruneError).toMatch(/pruning filesystem:.* failed after deleting 1: EIO: \[REDACTED\] error/);
    expect(r.message).toMatch(/the backup is good but pruning failed \(deleted 1\): .*EIO/);
    expect(events).toContain('backup.prune-failed');
    expect(RunnerResultSchema.safeParse(r).success).toBe(true);
  });

  it('keeps the backup a success when the storage cannot be listed', async () => {
    const r = await pruneAfterBackup(backupResult('new'), {
      storage: new FilesystemBackupStorage(join(root, 'gone')),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
    });
    expect(r).toMatchObject({
      success: true,
      prunedCount: 0,
      pruned: [],
      pruneError: expect.stringMatching(/ENOENT/),
    });
  });

  it('stays within the termination message bound however many backups it pruned', () => {
    const pruned = Array.from({ length: 2000 }, (_, i) => `nightly-${String(i).padStart(14, '0')}`);
    const r = boundResult(
      backupResult('new', { prunedCount: pruned.length, pruned, pruneError: 'x'.repeat(5000) }),
    );
    expect(Buffer.byteLength(JSON.stringify(r))).toBeLessThanOrEqual(TERMINATION_MESSAGE_MAX_BYTES);
    expect(r).toMatchObject({ truncated: true, prunedCount: 2000, success: true });
    expect(r.operation === 'backup' && r.pruned).toHaveLength(5);
    expect(r.operation === 'backup' && r.pruneError?.length).toBeLessThanOrEqual(500);
    expect(RunnerResultSchema.safeParse(r).success).toBe(true);
  });
});
