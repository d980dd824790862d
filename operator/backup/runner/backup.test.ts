import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { archiveCheck, countRowsInSnapshot, prepareDump, readObjectLock } from './backup.js';
import { DATABASE_SIZE_TIMEOUT_MS } from './database.js';
import { silentLog } from './log.js';
import { createRedactor } from './redact.js';
import { OBJECT_LOCK_ERROR_MAX } from './termination-message.js';

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

/** A client that records its queries; `answer` gives the rows of a query (or throws for it). */
const recordingClient = (
  answer: (text: string) => Record<string, unknown>[] | Record<string, unknown>[][],
) => {
  const queries: string[] = [];
  const client = {
    query: async (text: string) => {
      queries.push(text);
      const rows = answer(text);
      // node-postgres answers a simple query of several statements with one result per statement.
      return Array.isArray(rows[0]) ? (rows as unknown[][]).map((r) => ({ rows: r })) : { rows };
    },
  };
  return { client: client as unknown as pg.Client, queries };
};

const EXPORT =
  "begin isolation level repeatable read, read only; set local idle_in_transaction_session_timeout = 0; set local statement_timeout = 0; select pg_export_snapshot() as s, current_setting('server_version') as v, current_setting('server_version_num') as n";
const exported = [[], [], [], [{ s: '00000003-0000001B-1', v: '15.18', n: '150018' }]];

describe('prepareDump (the round trips before pg_dump starts)', () => {
  const redact = createRedactor([]);
  it('on a volume: one round trip that opens the snapshot transaction, exports it and reads the version', async () => {
    const { client, queries } = recordingClient((t) => (t === EXPORT ? exported : []));
    const p = await prepareDump(client, {}, 'b1', silentLog, redact);
    expect(queries).toEqual([EXPORT]);
    expect(p).toEqual({
      snapshot: { name: '00000003-0000001B-1', serverVersion: '15.18', serverVersionNum: 150018 },
    });
  });

  it('for object storage: the bounded database size first (its own transaction), then the snapshot', async () => {
    const { client, queries } = recordingClient((t) =>
      t === EXPORT ? exported : t.includes('pg_database_size') ? [{ b: '4096' }] : [],
    );
    const p = await prepareDump(client, { usesDatabaseSize: true }, 'b1', silentLog, redact);
    expect(queries).toEqual([
      'begin',
      `set local statement_timeout = ${DATABASE_SIZE_TIMEOUT_MS}`,
      'select pg_database_size(current_database())::text as b',
      'commit',
      EXPORT,
    ]);
    expect(p.databaseBytes).toBe(4096);
  });

  it('without an exportable snapshot: rolls back and opens the transaction again, logging why', async () => {
    const events: string[] = [];
    const { client, queries } = recordingClient((t) => {
      if (t === EXPORT) throw new Error('cannot export a snapshot from a subtransaction');
      return t.startsWith('begin') ? [[], [], [], [{ v: '15.18', n: '150018' }]] : [];
    });
    const p = await prepareDump(client, {}, 'b1', (_l, e) => events.push(e), redact);
    expect(queries).toEqual([
      EXPORT,
      'rollback',
      "begin isolation level repeatable read, read only; set local idle_in_transaction_session_timeout = 0; set local statement_timeout = 0; select current_setting('server_version') as v, current_setting('server_version_num') as n",
    ]);
    expect(p.snapshot).toEqual({ name: undefined, serverVersion: '15.18', serverVersionNum: 150018 });
    expect(events).toEqual(['backup.snapshot-unavailable']);
  });
});

describe('countRowsInSnapshot', () => {
  it('counts without parallel workers (they would compete with pg_dump for the cores)', async () => {
    const { client, queries } = recordingClient((t) =>
      t.includes('pg_class') ? [{ schema: 'public', name: 't' }] : t.includes('count(*)') ? [{ n: '7' }] : [],
    );
    expect(await countRowsInSnapshot(client, 150018)).toEqual({ 'public.t': 7 });
    expect(queries[0]).toBe('set local max_parallel_workers_per_gather = 0');
    expect(queries.at(-1)).toBe('select count(*) as n from "public"."t"');
  });

  it('leaves the setting alone on a server before 9.6, which does not know it', async () => {
    const { client, queries } = recordingClient(() => []);
    expect(await countRowsInSnapshot(client, 90500)).toEqual({});
    expect(queries.some((q) => q.includes('max_parallel'))).toBe(false);
  });
});
