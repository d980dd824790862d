import { describe, expect, it } from 'vitest';
import { archiveCheck, readObjectLock } from './backup.js';
import { createRedactor } from './redact.js';
import { OBJECT_LOCK_ERROR_MAX } from './result.js';

const readable = { code: 0, entries: 12, stderrTail: '' };

describe('archiveCheck (the backup verification from its one pass)', () => {
  it('is valid when the storage holds every streamed byte and pg_restore listed the TOC', () => {
    const c = archiveCheck('b1', 1000, 1000, readable);
    expect(c).toMatchObject({ valid: true });
    expect(c.message).toMatch(/1000 bytes.*12 archive entries/);
  });

  it('fails with ChecksumMismatch when the storage holds fewer or more bytes than were hashed', () => {
    expect(archiveCheck('b1', 1000, 999, readable)).toMatchObject({
      valid: false,
      reason: 'ChecksumMismatch',
    });
    expect(archiveCheck('b1', 1000, 1001, readable)).toMatchObject({
      valid: false,
      reason: 'ChecksumMismatch',
    });
  });

  it('fails with ArchiveUnreadable when pg_restore cannot list it or lists nothing', () => {
    expect(archiveCheck('b1', 10, 10, { code: 1, entries: 0, stderrTail: 'not an archive' })).toMatchObject({
      valid: false,
      reason: 'ArchiveUnreadable',
    });
    expect(archiveCheck('b1', 10, 10, { code: 0, entries: 0, stderrTail: '' })).toMatchObject({
      valid: false,
      reason: 'ArchiveUnreadable',
    });
  });

  it('fails with Internal when pg_restore could not be run', () => {
    const c = archiveCheck('b1', 10, 10, {
      code: null,
      entries: 0,
      stderrTail: '',
      error: new Error('ENOENT'),
    });
    expect(c).toMatchObject({ valid: false, reason: 'Internal' });
  });
});

describe('readObjectLock (the Object Lock reading of the result)', () => {
  const redact = createRedactor(['s3cr3t']);
  it('reports the lock, no lock, or that it could not be read (never "no lock" on an error)', async () => {
    const lock = { mode: 'GOVERNANCE', retainUntil: '2027-01-01T00:00:00.000Z' };
    expect(await readObjectLock({ retentionOf: async () => lock }, 'x', redact)).toEqual({
      objectLock: lock,
    });
    expect(await readObjectLock({ retentionOf: async () => undefined }, 'x', redact)).toEqual({});
    // The version the upload created, not whatever the key holds now.
    const ofVersion = {
      retentionOf: async (_id: string, v?: { versionId?: string }) =>
        v?.versionId === 'v1' ? lock : undefined,
    };
    expect(await readObjectLock(ofVersion, 'x', redact, { etag: '"e"', versionId: 'v1' })).toEqual({
      objectLock: lock,
    });
    expect(await readObjectLock({}, 'x', redact)).toEqual({});
    const failed = await readObjectLock(
      {
        retentionOf: async () => {
          throw new Error(`reading x.dump: 503 SlowDown (key s3cr3t) ${'z'.repeat(2000)}`);
        },
      },
      'x',
      redact,
    );
    expect(failed.objectLockUnknown).toContain('503 SlowDown');
    expect(failed.objectLockUnknown).not.toContain('s3cr3t');
    expect(failed.objectLockUnknown!.length).toBeLessThanOrEqual(OBJECT_LOCK_ERROR_MAX);
    expect(failed).not.toHaveProperty('objectLock');
  });
});
