import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
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
import { planPinFromEnv } from './pins.js';
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

const PLAN = { NXT_PLAN_UID: '7d3c1a52-0000-4000-8000-000000000001', NXT_PLAN_NAME: 'undo' };

/** What a plan's verify Job does in its own pod: pin the backup it is about to read. */
const pinFor = (dir: string, id: string, at = now()) =>
  new FilesystemBackupStorage(dir).pin(planPinFromEnv(PLAN, id, at)!);

/**
 * A storage whose first removal marker lets a plan's pin land in another "pod" right after the prune
 * checked the pins: the race between a prune that is already running and a plan that starts.
 */
class PinRacingStorage extends FilesystemBackupStorage {
  constructor(
    private readonly volume: string,
    private readonly racedId: string,
  ) {
    super(volume);
  }
  override async markForRemoval(id: string): Promise<boolean> {
    // No marker exists yet, so the pinner's pin() returns as soon as the pin is written.
    if (id === this.racedId) await pinFor(this.volume, id);
    return super.markForRemoval(id);
  }
}

describe('runPrune and plan pins', () => {
  const three = () =>
    dirWith([
      ['a', '2026-03-10T00:00:00Z'],
      ['b', '2026-03-11T00:00:00Z'],
      ['c', '2026-03-12T00:00:00Z'],
    ]);

  it('keeps a backup a running plan pinned, and reports it', async () => {
    const dir = three();
    await pinFor(dir, 'a');
    const r = await runPrune({
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
    });
    expect(r).toMatchObject({ success: true, deleted: ['b'], pinned: ['a'] });
    expect(r.message).toMatch(/1 pinned by a running plan/);
    expect(idsIn(dir)).toEqual(['a', 'c']);
  });

  it('keeps a backup pinned after the prune checked the pins and before it deleted', async () => {
    const dir = three();
    const storage = new PinRacingStorage(dir, 'a');
    const r = await runPrune({ storage, policy: { keepLast: 1 }, log: silentLog, now });
    expect(r, 'expected the re-check after hiding the manifest to see the new pin').toMatchObject({
      success: true,
      deleted: ['b'],
      pinned: ['a'],
    });
    expect(existsSync(join(dir, 'a.manifest.json')), 'expected the manifest put back').toBe(true);
    expect(existsSync(join(dir, 'a.dump'))).toBe(true);
  });

  it('deletes a backup whose pin expired, and the expired pin with it', async () => {
    const dir = three();
    await pinFor(dir, 'a', new Date(now().getTime() - 4 * 3_600_000));
    const r = await runPrune({
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
    });
    expect(r).toMatchObject({ success: true, deleted: ['a', 'b'], pinned: [] });
    expect(readdirSync(dir).sort()).toEqual(['c.dump', 'c.manifest.json']);
  });
});

describe('runPrune on a claim shared by schedules', () => {
  const own = (name: string, uid: string) => ({
    origin: { purpose: 'scheduled' as const, schedule: { name, uid } },
  });

  it("prunes only the schedule's own backups and counts the others", async () => {
    const dir = mkdtempSync(join(root, `shared-`));
    const put = (id: string, at: string, extra: Partial<BackupManifest> = {}) => {
      writeFileSync(join(dir, `${id}.dump`), 'PGDMP');
      writeFileSync(join(dir, `${id}.manifest.json`), JSON.stringify(fakeManifest(id, at, extra)));
    };
    put('a-backup-1', '2026-03-10T00:00:00Z', own('a', 'uid-a'));
    put('b-backup-1', '2026-03-11T00:00:00Z', own('b', 'uid-b'));
    put('a-backup-2', '2026-03-12T00:00:00Z', own('a', 'uid-a'));
    put('b-backup-2', '2026-03-13T00:00:00Z', own('b', 'uid-b'));
    put('a-backup-3', '2026-03-09T00:00:00Z'); // written before provenance: its id says schedule a
    put('b-backup-3', '2026-03-09T00:00:00Z'); // ... and schedule b
    const r = await runPrune({
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
      owner: { uid: 'uid-a', name: 'a' },
    });
    expect(r).toMatchObject({
      success: true,
      deleted: ['a-backup-3', 'a-backup-1'],
      keptCount: 1,
      otherSchedulesCount: 3,
    });
    expect(idsIn(dir)).toEqual(['a-backup-2', 'b-backup-1', 'b-backup-2', 'b-backup-3']);
  });

  // Deleted and applied again (GitOps, helm reinstall): same name and claim, new UID.
  it('prunes what a re-created schedule of the same name wrote before', async () => {
    const dir = mkdtempSync(join(root, `recreated-`));
    const put = (id: string, at: string, extra: Partial<BackupManifest>) => {
      writeFileSync(join(dir, `${id}.dump`), 'PGDMP');
      writeFileSync(join(dir, `${id}.manifest.json`), JSON.stringify(fakeManifest(id, at, extra)));
    };
    put('a-backup-1', '2026-03-10T00:00:00Z', own('a', 'uid-before'));
    put('a-backup-2', '2026-03-11T00:00:00Z', own('a', 'uid-before'));
    put('a-backup-3', '2026-03-12T00:00:00Z', own('a', 'uid-now'));
    const r = await runPrune({
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
      owner: { uid: 'uid-now', name: 'a' },
    });
    expect(r).toMatchObject({ success: true, deleted: ['a-backup-1', 'a-backup-2'], otherSchedulesCount: 0 });
    expect(idsIn(dir)).toEqual(['a-backup-3']);
  });
});

/**
 * A plan's restore Job renews the expired pin of backup `id` in its own "pod" at one point of the prune's
 * removal of expired pins: `after-list` (the prune has listed the pins and judged this one expired) or
 * `after-move` (the prune has moved the pin file aside to judge it).
 */
class PinRenewingStorage extends FilesystemBackupStorage {
  renewed = false;
  constructor(
    private readonly volume: string,
    private readonly renewedId: string,
    private readonly when: 'after-list' | 'after-move',
  ) {
    super(volume);
  }
  private async renew(): Promise<void> {
    if (this.renewed) return;
    this.renewed = true;
    await pinFor(this.volume, this.renewedId);
  }
  override async listPins(id?: string) {
    const pins = await super.listPins(id);
    if (id === undefined && this.when === 'after-list') await this.renew();
    return pins;
  }
  protected override async movePinAside(final: string) {
    const aside = await super.movePinAside(final);
    if (this.when === 'after-move') await this.renew();
    return aside;
  }
}

describe('runPrune and a pin renewed while expired pins are removed', () => {
  it.each(['after-list', 'after-move'] as const)(
    'keeps a pin renewed %s and removes nothing a plan holds',
    async (when) => {
      const dir = dirWith([['c', '2026-03-12T00:00:00Z']]);
      await pinFor(dir, 'c', new Date(now().getTime() - 4 * 3_600_000)); // expired an hour ago
      const storage = new PinRenewingStorage(dir, 'c', when);
      const r = await runPrune({ storage, policy: { keepLast: 1 }, log: silentLog, now });
      expect(r.success, r.message).toBe(true);
      expect(storage.renewed, 'expected the renewal to interleave with the prune').toBe(true);
      const pins = await new FilesystemBackupStorage(dir).listPins('c');
      expect(
        pins.map((p) => p.pin?.createdAt),
        'expected the renewed pin in place',
      ).toEqual([now().toISOString()]);
      expect(
        readdirSync(dir).filter((f) => f.includes('.tmp-')),
        'expected no pin left aside',
      ).toEqual([]);
    },
  );

  it('removes a pin that stayed expired', async () => {
    const dir = dirWith([['c', '2026-03-12T00:00:00Z']]);
    await pinFor(dir, 'c', new Date(now().getTime() - 4 * 3_600_000));
    const r = await runPrune({
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
    });
    expect(r.success, r.message).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['c.dump', 'c.manifest.json']);
  });
});

describe('runPrune and leftovers of interrupted backups', () => {
  it('removes partial dumps nobody wrote to for two hours, never a fresh one', async () => {
    const dir = dirWith([['c', '2026-03-12T00:00:00Z']]);
    writeFileSync(join(dir, 'crashed.dump.partial'), 'PGDMP half');
    writeFileSync(join(dir, 'running.dump.partial'), 'PGDMP still writing');
    writeFileSync(join(dir, 'c.manifest.json.tmp-0a1b2c3d'), '{');
    const old = new Date(now().getTime() - 2 * 3_600_000 - 1000);
    utimesSync(join(dir, 'crashed.dump.partial'), old, old);
    utimesSync(join(dir, 'c.manifest.json.tmp-0a1b2c3d'), old, old);
    const running = new Date(now().getTime() - 60_000);
    utimesSync(join(dir, 'running.dump.partial'), running, running);
    const r = await runPrune({
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
    });
    expect(r).toMatchObject({ success: true, deleted: [], stalePartialsRemoved: ['crashed'] });
    expect(r.message).toMatch(/removed 1 stale partial dump/);
    expect(readdirSync(dir).sort()).toEqual(['c.dump', 'c.manifest.json', 'running.dump.partial']);
  });

  it('removes a dump left without a manifest once older than the leftover age, and no longer reports it as left in place', async () => {
    const dir = dirWith([['c', '2026-03-12T00:00:00Z']]);
    writeFileSync(join(dir, 'crashed.dump'), 'PGDMP complete, no manifest');
    writeFileSync(join(dir, 'young.dump'), 'PGDMP manifest on its way');
    const old = new Date(now().getTime() - 2 * 3_600_000 - 1000);
    utimesSync(join(dir, 'crashed.dump'), old, old);
    const young = new Date(now().getTime() - 60_000);
    utimesSync(join(dir, 'young.dump'), young, young);
    utimesSync(join(dir, 'c.dump'), old, old);
    const r = await runPrune({
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      log: silentLog,
      now,
    });
    expect(r).toMatchObject({
      success: true,
      deleted: [],
      stalePartialsRemoved: [],
      orphanDumpsRemoved: ['crashed'],
      orphans: ['young'],
    });
    expect(r.message).toMatch(
      /1 dump\(s\) without a manifest left in place; removed 1 stale dump\(s\) without a manifest/,
    );
    expect(readdirSync(dir).sort()).toEqual(['c.dump', 'c.manifest.json', 'young.dump']);
  });

  it('leaves partial dumps alone in a dry run', async () => {
    const dir = dirWith([]);
    writeFileSync(join(dir, 'crashed.dump.partial'), 'PGDMP half');
    const old = new Date(now().getTime() - 3 * 3_600_000);
    utimesSync(join(dir, 'crashed.dump.partial'), old, old);
    const r = await runPrune({
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 1 },
      dryRun: true,
      log: silentLog,
      now,
    });
    expect(r).toMatchObject({ success: true, stalePartialsRemoved: [] });
    expect(readdirSync(dir)).toEqual(['crashed.dump.partial']);
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

  it('checks the prefix owner again before deleting: a prefix taken over meanwhile loses nothing', async () => {
    const dir = threeAndNew();
    let checks = 0;
    const r = await pruneAfterBackup(backupResult('new'), {
      storage: new FilesystemBackupStorage(dir),
      policy: { keepLast: 2 },
      log: silentLog,
      now,
      recheckOwner: async () => {
        checks++;
        throw new Error('p/ belongs to BackupSchedule shop/orders of cluster uid-b');
      },
    });
    expect(checks).toBe(1);
    expect(r).toMatchObject({ success: true, prunedCount: 0, pruneError: expect.stringContaining('uid-b') });
    expect(idsIn(dir)).toEqual(['new', 'old-1', 'old-2', 'old-3']);
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
