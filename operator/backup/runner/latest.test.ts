import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunnerFailure } from './failure.js';
import { findLatestVerifiedBackup } from './latest.js';
import { silentLog } from './log.js';
import type { BackupManifest } from './manifest.js';
import { selectBackupsToDelete } from './retention.js';
import { FilesystemBackupStorage } from './storage.js';
import { fakeManifest } from '../../../test/support/runner-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'runner-latest-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function manifest(id: string, finishedAt: string, verified = true): BackupManifest {
  return fakeManifest(id, finishedAt, { verified, verifyMessage: verified ? 'ok' : 'bad' });
}

/** A storage directory holding the given backups; `dump: false` leaves a manifest without its dump. */
function storageWith(backups: { m: BackupManifest; dump?: boolean; rawManifest?: string }[]) {
  const dir = mkdtempSync(join(root, `s${n++}-`));
  for (const { m, dump = true, rawManifest } of backups) {
    if (dump) writeFileSync(join(dir, `${m.id}.dump`), 'PGDMP');
    writeFileSync(join(dir, `${m.id}.manifest.json`), rawManifest ?? JSON.stringify(m));
  }
  return new FilesystemBackupStorage(dir);
}

describe('findLatestVerifiedBackup', () => {
  it('picks the verified backup that finished last, not the greatest id', async () => {
    const storage = storageWith([
      { m: manifest('zz-old', '2026-03-01T02:00:00Z') },
      { m: manifest('aa-new', '2026-03-03T02:00:00.000Z') },
      { m: manifest('mm-mid', '2026-03-02T02:00:00Z') },
    ]);
    expect((await findLatestVerifiedBackup(storage, silentLog)).id).toBe('aa-new');
  });

  it('breaks a tie on finishedAt by the greater id, whatever the precision of the timestamps', async () => {
    const storage = storageWith([
      { m: manifest('b-1', '2026-03-03T02:00:00Z') },
      { m: manifest('b-2', '2026-03-03T02:00:00.000Z') },
    ]);
    expect((await findLatestVerifiedBackup(storage, silentLog)).id).toBe('b-2');
  });

  it('skips unverified backups, manifests without a dump and unreadable manifests', async () => {
    const logged: string[] = [];
    const storage = storageWith([
      { m: manifest('good', '2026-03-01T02:00:00Z') },
      { m: manifest('unverified', '2026-03-05T02:00:00Z', false) },
      { m: manifest('no-dump', '2026-03-06T02:00:00Z'), dump: false },
      { m: manifest('broken', '2026-03-07T02:00:00Z'), rawManifest: '{not json' },
    ]);
    const latest = await findLatestVerifiedBackup(storage, (_level, event) => logged.push(event));
    expect(latest.id).toBe('good');
    expect(logged).toContain('latest.manifest-unreadable');
  });

  // The verify CronJob runs `test-restore --id latest`: it must test the backup retention keeps as the one a
  // restore would use, never a plan's pre-restore safety dump.
  it('never picks a plan safety backup, and agrees with what retention keeps', async () => {
    const scheduled = fakeManifest('shop-backup-1000', '2026-03-10T02:00:00Z', {
      verified: true,
      origin: { purpose: 'scheduled', schedule: { name: 'shop', uid: 's-1' } },
    });
    const safety = fakeManifest('undo-7d3c1a52-safety', '2026-03-10T09:00:00Z', {
      verified: true,
      origin: {
        purpose: 'safety',
        schedule: { name: 'shop', uid: 's-1' },
        plan: { name: 'undo', uid: '7d' },
      },
    });
    const kept = selectBackupsToDelete(
      [
        { id: scheduled.id, finishedAt: scheduled.finishedAt, verified: true, purpose: 'scheduled' },
        { id: safety.id, finishedAt: safety.finishedAt, verified: true, purpose: 'safety' },
      ],
      { keepLast: 0, keepDaily: 0 },
      new Date('2026-03-11T00:00:00Z'),
    );
    expect(kept, 'retention keeps the scheduled backup').not.toContain(scheduled.id);
    const storage = storageWith([{ m: scheduled }, { m: safety }]);
    expect((await findLatestVerifiedBackup(storage, silentLog)).id).toBe(scheduled.id);
    expect((await findLatestVerifiedBackup(storage, silentLog, { name: 'shop', uid: 's-1' })).id).toBe(
      scheduled.id,
    );
  });

  it("never picks another schedule's backup on a shared claim, but its own earlier incarnation's", async () => {
    const mine = fakeManifest('shop-backup-1000', '2026-03-10T02:00:00Z', {
      verified: true,
      origin: { purpose: 'scheduled', schedule: { name: 'shop', uid: 's-old' } },
    });
    const theirs = fakeManifest('audit-backup-2000', '2026-03-10T05:00:00Z', {
      verified: true,
      origin: { purpose: 'scheduled', schedule: { name: 'audit', uid: 'a-1' } },
    });
    const storage = storageWith([{ m: mine }, { m: theirs }]);
    const self = { name: 'shop', uid: 's-new' };
    expect((await findLatestVerifiedBackup(storage, silentLog, self)).id).toBe(mine.id);
    await expect(
      findLatestVerifiedBackup(storageWith([{ m: theirs }]), silentLog, self),
    ).rejects.toMatchObject({
      reason: 'BackupNotFound',
      message: expect.stringMatching(/1 safety or other schedules' backup\(s\) not considered/),
    });
  });

  it('fails BackupNotFound with a clear message when the storage is empty', async () => {
    const storage = storageWith([]);
    const e = await findLatestVerifiedBackup(storage, silentLog).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RunnerFailure);
    expect(e).toMatchObject({ reason: 'BackupNotFound' });
    expect((e as Error).message).toMatch(/--id latest: no verified backup in filesystem:.*holds no backup/);
  });

  it('fails BackupNotFound when no backup is verified', async () => {
    const storage = storageWith([{ m: manifest('unverified', '2026-03-05T02:00:00Z', false) }]);
    await expect(findLatestVerifiedBackup(storage, silentLog)).rejects.toMatchObject({
      reason: 'BackupNotFound',
      message: expect.stringMatching(/1 backup\(s\) with a manifest, none verified/),
    });
  });

  it('fails StorageFailed when the storage cannot be listed', async () => {
    const storage = new FilesystemBackupStorage(join(root, 'does-not-exist'));
    await expect(findLatestVerifiedBackup(storage, silentLog)).rejects.toMatchObject({
      reason: 'StorageFailed',
    });
  });
});
