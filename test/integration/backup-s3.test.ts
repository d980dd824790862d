import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3_RUNNER_NODE_OPTIONS } from '../../operator/backup/storage-location.js';
import { runnerMain } from '../../operator/backup/runner/cli.js';
import { RunnerResultSchema, type RunnerResult } from '../../operator/backup/runner/result.js';
import {
  createBucket,
  listMultipartUploads,
  listObjects,
  s3Client,
  s3RunnerEnv,
  useS3Server,
  type S3Credentials,
} from '../support/s3.js';
import { eventually } from '../support/kube.js';
import { createTestDatabase, tableChecksum, withClient } from '../support/postgres.js';

// The runner's subcommands against a real S3 server (SeaweedFS) and the harness PostgreSQL, exactly as a
// Job pod runs them (argv + env, result in a termination-log file): backup, verify, test restore, restore,
// retention with pins, refusal of damaged objects, an interrupted upload, S3 errors as reasons, and a
// backup larger than 100 MiB streamed by a runner process whose memory is measured.

const s3 = useS3Server();
const root = mkdtempSync(join(tmpdir(), 'nxt-s3-it-'));
let runs = 0;
let bucket = '';

interface Run {
  code: number;
  result: RunnerResult;
  output: string;
}

const env = (database: string, credentials?: S3Credentials, extra: NodeJS.ProcessEnv = {}) =>
  s3RunnerEnv(s3(), database, { credentials, extra });

async function runner(argv: string[], e: NodeJS.ProcessEnv): Promise<Run> {
  const terminationLog = join(root, `termination-${runs++}`);
  const lines: string[] = [];
  const code = await runnerMain([...argv, '--termination-log', terminationLog], e, {
    writeLog: (l) => lines.push(l),
  });
  const message = readFileSync(terminationLog, 'utf8');
  const parsed = RunnerResultSchema.safeParse(JSON.parse(message));
  expect(parsed.success, `the termination message parses: ${message}`).toBe(true);
  return { code, result: parsed.data!, output: [message, ...lines].join('\n') };
}

const url = (prefix: string, b = bucket) => `s3://${b}/${prefix}`;

async function headObject(key: string, b = bucket) {
  const c = s3Client(s3());
  try {
    return await c.send(new HeadObjectCommand({ Bucket: b, Key: key }));
  } finally {
    c.destroy();
  }
}

/** The manifest of `id` as the runner wrote it, and a way to put back a version without `archive` (an old one). */
async function manifestOf(prefix: string, id: string, b = bucket) {
  const key = `${prefix}/${id}.manifest.json`;
  const m = JSON.parse((await getObject(key, b)).toString());
  return { m, key };
}

async function filledDatabase(prefix: string) {
  const db = await createTestDatabase(prefix);
  await withClient(db.url, async (c) => {
    await c.query('create table orders (id int primary key, note text)');
    await c.query("insert into orders select g, 'order ' || g from generate_series(1, 5000) g");
  });
  return db;
}

async function putObject(key: string, body: Buffer | string, b = bucket) {
  const c = s3Client(s3());
  try {
    await c.send(new PutObjectCommand({ Bucket: b, Key: key, Body: body }));
  } finally {
    c.destroy();
  }
}

async function getObject(key: string, b = bucket): Promise<Buffer> {
  const c = s3Client(s3());
  try {
    const r = await c.send(new GetObjectCommand({ Bucket: b, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  } finally {
    c.destroy();
  }
}

beforeAll(async () => {
  bucket = await createBucket(s3());
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the runner against a real S3 server', () => {
  it('backs up into the bucket (dump, then manifest), verifies, test-restores and restores from it', async () => {
    const db = await filledDatabase('s3a');
    const prefix = 'basic';
    const b = await runner(['backup', '--storage-url', url(prefix), '--id', 'basic-1'], env(db.name));
    expect(b.result, b.output).toMatchObject({ success: true, verified: true, tableCount: 1 });
    const keys = (await listObjects(s3(), bucket, `${prefix}/`)).map((o) => o.key);
    expect(keys).toEqual([`${prefix}/basic-1.dump`, `${prefix}/basic-1.manifest.json`]);
    const manifest = JSON.parse((await getObject(`${prefix}/basic-1.manifest.json`)).toString());
    expect(manifest).toMatchObject({ id: 'basic-1', verified: true, tables: { 'public.orders': 5000 } });
    expect((await listObjects(s3(), bucket, `${prefix}/basic-1.dump`))[0]!.size).toBe(manifest.bytes);

    const v = await runner(['verify', '--storage-url', url(prefix), '--id', 'latest'], env(db.name));
    expect(v.result, v.output).toMatchObject({ success: true, id: 'basic-1', valid: true });

    const t = await runner(['test-restore', '--storage-url', url(prefix), '--id', 'latest'], env(db.name));
    expect(t.result, t.output).toMatchObject({ success: true, tablesVerified: 1, scratchDropped: true });

    const before = await tableChecksum(db.url, 'orders');
    await withClient(db.url, (c) => c.query('delete from orders where id > 100'));
    const r = await runner(
      [
        'restore',
        '--storage-url',
        url(prefix),
        '--id',
        'basic-1',
        '--mode',
        'newDatabaseSwap',
        '--keep-previous-databases',
        '0',
      ],
      env(db.name),
    );
    expect(r.result, r.output).toMatchObject({ success: true, mode: 'newDatabaseSwap' });
    expect(await tableChecksum(db.url, 'orders')).toEqual(before);
    expect(b.output + v.output + r.output, 'no secret key in results or logs').not.toContain(
      s3().secretAccessKey,
    );
  });

  it('refuses a corrupted and a truncated object before the database is touched', async () => {
    const db = await filledDatabase('s3c');
    const prefix = 'damaged';
    const b = await runner(['backup', '--storage-url', url(prefix), '--id', 'dmg-1'], env(db.name));
    expect(b.result, b.output).toMatchObject({ success: true });
    // As a manifest written before the archive's ETag was recorded: the sha256 is what refuses the object
    // (a pinned manifest refuses it earlier, as ArchiveReplaced: see the next test).
    const { m, key: manifestKey } = await manifestOf(prefix, 'dmg-1');
    delete m.archive;
    await putObject(manifestKey, JSON.stringify(m));
    const key = `${prefix}/dmg-1.dump`;
    const good = await getObject(key);
    await withClient(db.url, (c) => c.query("update orders set note = 'after the backup' where id = 1"));
    const after = await tableChecksum(db.url, 'orders');

    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
    for (const [what, body] of [
      ['corrupted', flipped],
      ['truncated', good.subarray(0, Math.floor(good.length * 0.6))],
    ] as const) {
      await putObject(key, body);
      for (const mode of ['inPlace', 'newDatabaseSwap']) {
        const r = await runner(
          ['restore', '--storage-url', url(prefix), '--id', 'dmg-1', '--mode', mode],
          env(db.name),
        );
        expect(r.result, `${what} ${mode}: ${r.output}`).toMatchObject({
          success: false,
          reason: 'ChecksumMismatch',
        });
        expect(r.result.message).toMatch(/refusing to restore/);
      }
      const t = await runner(['test-restore', '--storage-url', url(prefix), '--id', 'dmg-1'], env(db.name));
      expect(t.result, t.output).toMatchObject({ success: false, reason: 'ChecksumMismatch' });
      expect(await tableChecksum(db.url, 'orders'), `${what}: the database is untouched`).toEqual(after);
    }
  });

  it('records the uploaded object in the manifest and refuses a dump replaced after it (ArchiveReplaced)', async () => {
    const db = await filledDatabase('s3r');
    const prefix = 'replaced';
    const b = await runner(['backup', '--storage-url', url(prefix), '--id', 'rep-1'], env(db.name));
    expect(b.result, b.output).toMatchObject({ success: true });
    const key = `${prefix}/rep-1.dump`;
    const { m } = await manifestOf(prefix, 'rep-1');
    expect(m.archive?.etag, JSON.stringify(m)).toBe((await headObject(key)).ETag);
    const good = await getObject(key);
    await withClient(db.url, (c) => c.query("update orders set note = 'after the backup' where id = 1"));
    const after = await tableChecksum(db.url, 'orders');
    // A dump of other data (two dumps of the same data within one second are byte-identical: same ETag).
    const other = await runner(
      ['backup', '--storage-url', url('replaced-other'), '--id', 'rep-x'],
      env(db.name),
    );
    expect(other.result, other.output).toMatchObject({ success: true });
    expect((other.result as { sha256?: string }).sha256).not.toBe((b.result as { sha256?: string }).sha256);

    // Another schedule's valid archive put in its place: a well-formed dump, just not the one the manifest describes.
    await putObject(key, await getObject('replaced-other/rep-x.dump'));
    const v = await runner(['verify', '--storage-url', url(prefix), '--id', 'rep-1'], env(db.name));
    expect(v.result, v.output).toMatchObject({ success: false, valid: false, reason: 'ArchiveReplaced' });
    expect(v.result.message).toContain('replaced after its manifest was written');
    for (const mode of ['inPlace', 'newDatabaseSwap']) {
      const r = await runner(
        ['restore', '--storage-url', url(prefix), '--id', 'rep-1', '--mode', mode],
        env(db.name),
      );
      expect(r.result, `${mode}: ${r.output}`).toMatchObject({ success: false, reason: 'ArchiveReplaced' });
      expect(r.code, 'not retryable: exit 3').toBe(3);
    }
    const t = await runner(['test-restore', '--storage-url', url(prefix), '--id', 'rep-1'], env(db.name));
    expect(t.result, t.output).toMatchObject({ success: false, reason: 'ArchiveReplaced' });
    expect(await tableChecksum(db.url, 'orders'), 'the database is untouched').toEqual(after);

    // The same bytes put back (single-part: the same ETag) are the archive the manifest describes again.
    await putObject(key, good);
    const ok = await runner(['verify', '--storage-url', url(prefix), '--id', 'rep-1'], env(db.name));
    expect(ok.result, ok.output).toMatchObject({ success: true, valid: true });
  });

  it('in a versioned bucket, reads the version its manifest names, whatever was put over it', async () => {
    const db = await filledDatabase('s3v');
    const locked = await createBucket(s3(), { objectLock: true });
    const lock = { NXT_S3_OBJECT_LOCK_MODE: 'GOVERNANCE', NXT_S3_OBJECT_LOCK_DAYS: '1' };
    const b = await runner(
      ['backup', '--storage-url', url('ver', locked), '--id', 'ver-1'],
      env(db.name, undefined, lock),
    );
    expect(b.result, b.output).toMatchObject({ success: true });
    const key = 'ver/ver-1.dump';
    const { m } = await manifestOf('ver', 'ver-1', locked);
    const head = await headObject(key, locked);
    expect(m.archive, JSON.stringify(m)).toEqual({ etag: head.ETag, versionId: head.VersionId });
    // A new current version over the locked one (a versioned bucket accepts it; the locked version stays).
    await putObject(key, Buffer.from('not a dump at all'), locked);
    expect((await headObject(key, locked)).VersionId).not.toBe(m.archive.versionId);
    const v = await runner(
      ['verify', '--storage-url', url('ver', locked), '--id', 'ver-1'],
      env(db.name, undefined, lock),
    );
    expect(v.result, v.output).toMatchObject({ success: true, valid: true });
    const t = await runner(
      ['test-restore', '--storage-url', url('ver', locked), '--id', 'ver-1'],
      env(db.name, undefined, lock),
    );
    expect(t.result, t.output).toMatchObject({ success: true, tablesVerified: 1 });
  });

  it('keeps pinned backups when pruning, picks latest like the claim, and removes expired pins', async () => {
    const db = await filledDatabase('s3p');
    const prefix = 'retention';
    const owner = { NXT_SCHEDULE_NAME: 'ret', NXT_SCHEDULE_UID: 'ret-uid', NXT_BACKUP_PURPOSE: 'scheduled' };
    for (const id of ['ret-1', 'ret-2', 'ret-3']) {
      const b = await runner(
        ['backup', '--storage-url', url(prefix), '--id', id],
        env(db.name, undefined, owner),
      );
      expect(b.result, b.output).toMatchObject({ success: true });
    }
    // A plan's verify Job pins ret-1 (NXT_PLAN_UID): kept by retention while the pin lives.
    const v = await runner(
      ['verify', '--storage-url', url(prefix), '--id', 'ret-1'],
      env(db.name, undefined, { ...owner, NXT_PLAN_UID: 'plan-uid-1', NXT_PLAN_NAME: 'p' }),
    );
    expect(v.result, v.output).toMatchObject({ success: true, valid: true });
    expect((await listObjects(s3(), bucket, `${prefix}/.pins/ret-1/plan-uid-1/`)).length).toBe(1);

    const p = await runner(
      ['prune', '--storage-url', url(prefix), '--keep-last', '1'],
      env(db.name, undefined, owner),
    );
    expect(p.result, p.output).toMatchObject({ success: true, deleted: ['ret-2'], pinned: ['ret-1'] });
    const keys = (await listObjects(s3(), bucket, `${prefix}/`))
      .map((o) => o.key)
      .filter((k) => !k.includes('/.pins/'));
    expect(keys).toEqual([
      `${prefix}/ret-1.dump`,
      `${prefix}/ret-1.manifest.json`,
      `${prefix}/ret-3.dump`,
      `${prefix}/ret-3.manifest.json`,
    ]);
    const latest = await runner(
      ['verify', '--storage-url', url(prefix), '--id', 'latest'],
      env(db.name, undefined, owner),
    );
    expect(latest.result).toMatchObject({ success: true, id: 'ret-3' });

    // An emergency backup of the same schedule is a candidate like a scheduled one; the restore releases the pin.
    const e = await runner(
      ['backup', '--storage-url', url(prefix), '--id', 'ret-now-1', '--keep-last', '1'],
      env(db.name, undefined, { ...owner, NXT_BACKUP_PURPOSE: 'emergency' }),
    );
    expect(e.result, e.output).toMatchObject({ success: true, pruned: ['ret-3'] });
    const r = await runner(
      [
        'restore',
        '--storage-url',
        url(prefix),
        '--id',
        'ret-1',
        '--mode',
        'newDatabaseSwap',
        '--keep-previous-databases',
        '0',
      ],
      env(db.name, undefined, { ...owner, NXT_PLAN_UID: 'plan-uid-1', NXT_PLAN_NAME: 'p' }),
    );
    expect(r.result, r.output).toMatchObject({ success: true });
    expect(await listObjects(s3(), bucket, `${prefix}/.pins/`)).toEqual([]);
    expect(
      (await listObjects(s3(), bucket, `${prefix}/.restores/plan-uid-1`)).length,
      'the restore fence',
    ).toBe(1);
    const again = await runner(
      ['restore', '--storage-url', url(prefix), '--id', 'ret-1', '--mode', 'newDatabaseSwap'],
      env(db.name, undefined, { ...owner, NXT_PLAN_UID: 'plan-uid-1', NXT_PLAN_NAME: 'p' }),
    );
    expect(again.result).toMatchObject({ success: false, reason: 'RestoreAlreadyStarted' });
    const p2 = await runner(
      ['prune', '--storage-url', url(prefix), '--keep-last', '1'],
      env(db.name, undefined, owner),
    );
    expect(p2.result, p2.output).toMatchObject({ success: true, deleted: ['ret-1'] });
  });

  it('pins the backup a running test restore reads: a prune meanwhile keeps it; the pin goes at the end', async () => {
    const db = await filledDatabase('s3tr');
    const prefix = 'trpin';
    const owner = { NXT_SCHEDULE_NAME: 'trp', NXT_SCHEDULE_UID: 'trp-uid', NXT_BACKUP_PURPOSE: 'scheduled' };
    for (const id of ['trp-1', 'trp-2']) {
      const b = await runner(
        ['backup', '--storage-url', url(prefix), '--id', id],
        env(db.name, undefined, owner),
      );
      expect(b.result, b.output).toMatchObject({ success: true });
    }
    // pg_restore held at a gate: the test restore is mid-read (its pin written) until the gate opens.
    const realBin = env(db.name).PG_BIN_DIR!;
    const gate = mkdtempSync(join(root, 'gate-'));
    const open = join(gate, 'open');
    for (const tool of readdirSync(realBin)) symlinkSync(join(realBin, tool), join(gate, tool));
    rmSync(join(gate, 'pg_restore'));
    writeFileSync(
      join(gate, 'pg_restore'),
      `#!/bin/sh\nwhile [ ! -e '${open}' ]; do sleep 0.1; done\nexec '${join(realBin, 'pg_restore')}' "$@"\n`,
      { mode: 0o755 },
    );
    const running = runner(
      ['test-restore', '--storage-url', url(prefix), '--id', 'trp-1'],
      env(db.name, undefined, { ...owner, NXT_JOB_UID: 'job-uid-tr', PG_BIN_DIR: gate }),
    );
    try {
      await eventually('the test restore pins trp-1', async () =>
        (await listObjects(s3(), bucket, `${prefix}/.pins/trp-1/job-uid-tr/`)).length === 1
          ? true
          : undefined,
      );
      const p = await runner(
        ['prune', '--storage-url', url(prefix), '--keep-last', '1'],
        env(db.name, undefined, owner),
      );
      expect(p.result, p.output).toMatchObject({ success: true, pinned: ['trp-1'] });
      expect((p.result as { deleted?: string[] }).deleted ?? []).toEqual([]);
    } finally {
      writeFileSync(open, '');
    }
    const t = await running;
    expect(t.result, t.output).toMatchObject({ success: true, id: 'trp-1' });
    expect(await listObjects(s3(), bucket, `${prefix}/.pins/`), 'the pin is removed').toEqual([]);
  });

  it('never selects a dump left without a manifest, and prune removes it once older than the leftover age', async () => {
    const db = await filledDatabase('s3o');
    const prefix = 'orphan';
    const b = await runner(['backup', '--storage-url', url(prefix), '--id', 'orph-1'], env(db.name));
    expect(b.result, b.output).toMatchObject({ success: true });
    // A runner killed after CompleteMultipartUpload, before its manifest: a complete, valid dump, no manifest.
    await putObject(`${prefix}/orph-2.dump`, await getObject(`${prefix}/orph-1.dump`));
    const latest = await runner(['verify', '--storage-url', url(prefix), '--id', 'latest'], env(db.name));
    expect(latest.result, latest.output).toMatchObject({ success: true, id: 'orph-1' });
    const direct = await runner(['verify', '--storage-url', url(prefix), '--id', 'orph-2'], env(db.name));
    expect(direct.result, direct.output).toMatchObject({ success: false });
    const dumps = async () =>
      (await listObjects(s3(), bucket, `${prefix}/`)).map((o) => o.key).filter((k) => k.endsWith('.dump'));
    // Younger than the leftover age: it could be a backup about to write its manifest.
    const young = await runner(['prune', '--storage-url', url(prefix), '--keep-last', '5'], env(db.name));
    expect(young.result, young.output).toMatchObject({ success: true, stalePartialsRemoved: [] });
    expect(await dumps()).toEqual([`${prefix}/orph-1.dump`, `${prefix}/orph-2.dump`]);
    await new Promise((res) => setTimeout(res, 1100));
    const p = await runner(
      ['prune', '--storage-url', url(prefix), '--keep-last', '5', '--leftovers-older-than-seconds', '0'],
      env(db.name),
    );
    expect(p.result, p.output).toMatchObject({
      success: true,
      stalePartialsRemoved: [],
      orphanDumpsRemoved: ['orph-2'],
    });
    expect(await dumps()).toEqual([`${prefix}/orph-1.dump`]);
  });

  it('writes backups under Object Lock retention when asked, and says so', async () => {
    const db = await filledDatabase('s3l');
    const locked = await createBucket(s3(), { objectLock: true });
    const lock = { NXT_S3_OBJECT_LOCK_MODE: 'GOVERNANCE', NXT_S3_OBJECT_LOCK_DAYS: '1' };
    const b = await runner(
      ['backup', '--storage-url', url('lock', locked), '--id', 'lock-1'],
      env(db.name, undefined, lock),
    );
    expect(b.result, b.output).toMatchObject({ success: true, objectLock: { mode: 'GOVERNANCE' } });
    const until = Date.parse((b.result as { objectLock: { retainUntil: string } }).objectLock.retainUntil);
    expect(until - Date.now()).toBeGreaterThan(23 * 3_600_000);
    const plain = await runner(['backup', '--storage-url', url('plain'), '--id', 'plain-1'], env(db.name));
    expect(plain.result).not.toHaveProperty('objectLock');
  });

  it('backs up into a bucket whose default retention locks every object (no objectLock asked), with a checksum on every put', async () => {
    const db = await filledDatabase('s3d');
    const locked = await createBucket(s3(), { objectLock: true });
    const c = s3Client(s3());
    try {
      await c.send(
        new PutObjectLockConfigurationCommand({
          Bucket: locked,
          ObjectLockConfiguration: {
            ObjectLockEnabled: 'Enabled',
            Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } },
          },
        }),
      );
    } finally {
      c.destroy();
    }
    const owner = {
      NXT_NAMESPACE: 'ns-dr',
      NXT_SCHEDULE_NAME: 'dr',
      NXT_SCHEDULE_UID: 'dr-uid',
      NXT_BACKUP_PURPOSE: 'scheduled',
    };
    const b = await runner(
      ['backup', '--storage-url', url('default', locked), '--id', 'def-1'],
      env(db.name, undefined, owner),
    );
    expect(b.result, b.output).toMatchObject({
      success: true,
      verified: true,
      objectLock: { mode: 'GOVERNANCE' },
    });
    const v = await runner(
      ['test-restore', '--storage-url', url('default', locked), '--id', 'def-1'],
      env(db.name, undefined, owner),
    );
    expect(v.result, v.output).toMatchObject({ success: true, tablesVerified: 1 });
    // AWS refuses a put without Content-MD5 or an x-amz-checksum-* header into such a bucket; SeaweedFS does
    // not, but keeps the checksum it was sent and reports it: every object the runner put carries one.
    const checksum = async (key: string, b2: string) => {
      const h = s3Client(s3());
      try {
        return (await h.send(new HeadObjectCommand({ Bucket: b2, Key: key, ChecksumMode: 'ENABLED' })))
          .ChecksumCRC32;
      } finally {
        h.destroy();
      }
    };
    const keys = (await listObjects(s3(), locked, 'default/')).map((o) => o.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'default/.nxt-owner.json',
        'default/def-1.dump',
        'default/def-1.manifest.json',
      ]),
    );
    for (const key of keys) expect(await checksum(key, locked), `the CRC32 of ${key}`).toBeTruthy();
    // A bucket without Object Lock gets none (GCS interoperability refuses the SDK's checksums).
    const plain = await runner(
      ['backup', '--storage-url', url('nocrc'), '--id', 'nocrc-1'],
      env(db.name, undefined, owner),
    );
    expect(plain.result, plain.output).toMatchObject({ success: true });
    for (const key of ['nocrc/nocrc-1.dump', 'nocrc/nocrc-1.manifest.json'])
      expect(await checksum(key, bucket), key).toBeUndefined();
  });

  it('maps AccessDenied, NoSuchBucket and bad credentials to reasons', async () => {
    const db = await filledDatabase('s3e');
    const denied = await runner(
      ['backup', '--storage-url', url('denied'), '--id', 'denied-1'],
      env(db.name, s3().readOnly),
    );
    expect(denied.result, denied.output).toMatchObject({ success: false, reason: 'StorageAccessDenied' });
    expect(await listMultipartUploads(s3(), bucket, 'denied/')).toEqual([]);
    const missing = await runner(
      ['backup', '--storage-url', url('x', 'no-such-bucket-here'), '--id', 'nb-1'],
      env(db.name),
    );
    expect(missing.result, missing.output).toMatchObject({ success: false, reason: 'StorageBucketNotFound' });
    const wrong = await runner(
      ['verify', '--storage-url', url('x'), '--id', 'latest'],
      env(db.name, { accessKeyId: s3().accessKeyId, secretAccessKey: 'wrong'.repeat(8) }),
    );
    expect(wrong.result, wrong.output).toMatchObject({ success: false, reason: 'StorageCredentialsInvalid' });
    const down = await runner(
      ['verify', '--storage-url', url('x'), '--id', 'latest'],
      env(db.name, undefined, { NXT_S3_ENDPOINT: 'http://127.0.0.1:9' }),
    );
    expect(down.result, down.output).toMatchObject({ success: false, reason: 'StorageUnreachable' });
  });
});

/** Rows of incompressible bytes: pg_dump -Fc cannot shrink them, so the dump is about `mib` MiB or more. */
async function bigDatabase(prefix: string, mib: number) {
  const db = await createTestDatabase(prefix);
  await withClient(db.url, async (c) => {
    await c.query('create table blobs (id int primary key, data bytea)');
    for (let i = 0; i < mib; i++)
      await c.query('insert into blobs values ($1, $2)', [i, randomBytes(1024 * 1024)]);
  });
  return db;
}

/** The runner as its own process (as in a pod), sampling its resident set size while it runs. */
function spawnRunner(args: string[], e: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'operator/main.ts', ...args], {
    env: e,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
  let peakKiB = 0;
  const sample = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
    } catch {
      // exited
    }
  }, 100);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      clearInterval(sample);
      resolve(code);
    }),
  );
  return { child, exited, peakMiB: () => peakKiB / 1024, stderr: () => stderr };
}

describe('large and interrupted uploads', () => {
  it(
    'streams a backup larger than 100 MiB with the runner under 150 MiB of memory',
    { timeout: 600_000 },
    async () => {
      const db = await bigDatabase('s3big', 110);
      const log = join(root, 'big-termination');
      const r = spawnRunner(
        ['backup', '--storage-url', url('big'), '--id', 'big-1', '--termination-log', log],
        // as the operator sets it on S3 runner pods (s3Env)
        env(db.name, undefined, { NODE_OPTIONS: S3_RUNNER_NODE_OPTIONS }),
      );
      expect(await r.exited, r.stderr()).toBe(0);
      const result = JSON.parse(readFileSync(log, 'utf8'));
      expect(result).toMatchObject({ success: true, verified: true });
      expect(result.bytes).toBeGreaterThan(100 * 1024 * 1024);
      const [dump] = await listObjects(s3(), bucket, 'big/big-1.dump');
      expect(dump!.size).toBe(result.bytes);
      expect(r.peakMiB(), `runner peak RSS ${r.peakMiB().toFixed(0)} MiB`).toBeLessThan(150);
      console.log(
        `[s3] 110 MiB backup: ${result.bytes} bytes in ${result.durationSeconds}s, runner peak RSS ${r.peakMiB().toFixed(0)} MiB`,
      );
    },
  );

  it(
    'leaves nothing a selection picks when killed mid-upload, and prune aborts the upload',
    { timeout: 600_000 },
    async () => {
      const db = await bigDatabase('s3kill', 60);
      const e = env(db.name, undefined, { NXT_SCHEDULE_NAME: 'k', NXT_SCHEDULE_UID: 'k-uid' });
      const r = spawnRunner(
        [
          'backup',
          '--storage-url',
          url('killed'),
          '--id',
          'killed-1',
          '--termination-log',
          join(root, 'kill'),
        ],
        e,
      );
      const deadline = Date.now() + 120_000;
      while ((await listMultipartUploads(s3(), bucket, 'killed/')).length === 0) {
        if (Date.now() > deadline) throw new Error(`no multipart upload started: ${r.stderr()}`);
        await new Promise((res) => setTimeout(res, 100));
      }
      r.child.kill('SIGKILL');
      await r.exited;
      expect((await listObjects(s3(), bucket, 'killed/')).map((o) => o.key)).toEqual([]);
      const latest = await runner(['verify', '--storage-url', url('killed'), '--id', 'latest'], e);
      expect(latest.result).toMatchObject({ success: false, reason: 'BackupNotFound' });
      const restore = await runner(
        ['restore', '--storage-url', url('killed'), '--id', 'killed-1', '--mode', 'inPlace'],
        e,
      );
      expect(restore.result).toMatchObject({ success: false, reason: 'BackupNotFound' });
      expect((await listMultipartUploads(s3(), bucket, 'killed/')).length).toBeGreaterThan(0);
      // A default prune keeps an upload younger than the leftover age (it could be a running backup) ...
      const young = await runner(['prune', '--storage-url', url('killed'), '--keep-last', '1'], e);
      expect(young.result, young.output).toMatchObject({ success: true, stalePartialsRemoved: [] });
      expect((await listMultipartUploads(s3(), bucket, 'killed/')).length).toBeGreaterThan(0);
      // ... and aborts it once it is older.
      const p = await runner(
        ['prune', '--storage-url', url('killed'), '--keep-last', '1', '--leftovers-older-than-seconds', '0'],
        e,
      );
      expect(p.result, p.output).toMatchObject({ success: true, stalePartialsRemoved: ['killed-1'] });
      expect(await listMultipartUploads(s3(), bucket, 'killed/')).toEqual([]);
    },
  );
});
