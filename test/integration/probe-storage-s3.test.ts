import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerMain } from '../../operator/backup/runner/cli.js';
import { RunnerResultSchema, type RunnerResult } from '../../operator/backup/runner/result.js';
import { createBucket, listObjects, s3Client, useS3Server, type S3Credentials } from '../support/s3.js';

// The runner's `probe-storage` against a real S3 server (SeaweedFS), as the schedule's probe Job runs it (argv
// + env, the result in a termination-log file): each S3 problem a schedule can have is named by its reason,
// and a probe leaves nothing behind (no probe object, no owner object).

const s3 = useS3Server();
const root = mkdtempSync(join(tmpdir(), 'nxt-s3-probe-'));
let runs = 0;
let bucket = '';

function env(credentials?: S3Credentials, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const c = credentials ?? s3();
  return {
    PATH: process.env.PATH,
    AWS_REGION: s3().region,
    NXT_S3_ENDPOINT: s3().endpoint,
    NXT_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    NXT_NAMESPACE: 'team-a',
    NXT_SCHEDULE_NAME: 'shop',
    ...extra,
  };
}

async function probe(url: string, e: NodeJS.ProcessEnv) {
  const terminationLog = join(root, `termination-${runs++}`);
  const lines: string[] = [];
  const code = await runnerMain(
    ['probe-storage', '--storage-url', url, '--termination-log', terminationLog],
    e,
    {
      writeLog: (l) => lines.push(l),
    },
  );
  const message = readFileSync(terminationLog, 'utf8');
  const parsed = RunnerResultSchema.safeParse(JSON.parse(message));
  expect(parsed.success, `the termination message parses: ${message}`).toBe(true);
  return { code, result: parsed.data! as RunnerResult, output: [message, ...lines].join('\n') };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

beforeAll(async () => {
  bucket = await createBucket(s3());
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('probe-storage against SeaweedFS', () => {
  it('passes on a working location and leaves nothing behind (no probe object, no owner object)', async () => {
    const r = await probe(`s3://${bucket}/shop`, env());
    expect(r.result, r.output).toMatchObject({
      operation: 'probe-storage',
      success: true,
      location: `s3://${bucket}/shop`,
      checks: ['list', 'owner', 'write', 'delete'],
    });
    expect(r.code).toBe(0);
    expect(await listObjects(s3(), bucket, 'shop/')).toEqual([]);
    // Twice in a row: the second probe is not refused by the first one's object.
    expect((await probe(`s3://${bucket}/shop`, env())).result.success).toBe(true);
  });

  it('names a missing bucket, wrong keys, a read-only identity and an unreachable endpoint', async () => {
    const missing = await probe(`s3://no-such-bucket-${runs}x/shop`, env());
    expect(missing.result, missing.output).toMatchObject({ success: false, reason: 'StorageBucketNotFound' });
    expect(missing.code, 'not retried by the Job').toBe(3);

    const wrong = await probe(
      `s3://${bucket}/shop`,
      env({ ...s3(), secretAccessKey: 'not-the-secret-key-0123456789' }),
    );
    expect(wrong.result, wrong.output).toMatchObject({ success: false, reason: 'StorageCredentialsInvalid' });
    expect(wrong.output, 'the secret key is redacted').not.toContain('not-the-secret-key-0123456789');

    const unknownKey = await probe(
      `s3://${bucket}/shop`,
      env({ accessKeyId: 'NOSUCHKEY000', secretAccessKey: 'x'.repeat(20) }),
    );
    expect(unknownKey.result, unknownKey.output).toMatchObject({
      success: false,
      reason: 'StorageCredentialsInvalid',
    });

    const readOnly = await probe(`s3://${bucket}/shop`, env(s3().readOnly));
    expect(readOnly.result, readOnly.output).toMatchObject({ success: false, reason: 'StorageAccessDenied' });
    expect(readOnly.result.message).toContain('s3:PutObject');

    const port = await closedPort();
    const started = Date.now();
    const down = await probe(
      `s3://${bucket}/shop`,
      env(undefined, { NXT_S3_ENDPOINT: `http://127.0.0.1:${port}` }),
    );
    expect(down.result, down.output).toMatchObject({ success: false, reason: 'StorageUnreachable' });
    expect(down.code, 'retryable').toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("refuses another schedule's prefix read-only, and never claims a free one", async () => {
    const c = s3Client(s3());
    try {
      await c.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: 'taken/.nxt-owner.json',
          Body: JSON.stringify({ namespace: 'team-b', name: 'shop' }),
        }),
      );
    } finally {
      c.destroy();
    }
    const r = await probe(`s3://${bucket}/taken`, env());
    expect(r.result, r.output).toMatchObject({ success: false, reason: 'StorageOwnedByOther' });
    expect(r.result.message).toContain('team-b/shop');
    expect((await listObjects(s3(), bucket, 'taken/')).map((o) => o.key)).toEqual(['taken/.nxt-owner.json']);

    const mine = await probe(`s3://${bucket}/free`, env());
    expect(mine.result.success, mine.output).toBe(true);
    expect(await listObjects(s3(), bucket, 'free/'), 'no owner object written by a probe').toEqual([]);
  });

  it('checks Object Lock when the schedule asks for it', async () => {
    const lockEnv = env(undefined, { NXT_S3_OBJECT_LOCK_MODE: 'GOVERNANCE', NXT_S3_OBJECT_LOCK_DAYS: '1' });
    const plain = await probe(`s3://${bucket}/lock`, lockEnv);
    expect(plain.result, plain.output).toMatchObject({ success: false, reason: 'StorageRequestInvalid' });
    expect(plain.result.message).toContain('does not have Object Lock enabled');

    const locked = await createBucket(s3(), { objectLock: true });
    const r = await probe(`s3://${locked}/lock`, lockEnv);
    expect(r.result, r.output).toMatchObject({ success: true, objectLockEnabled: true });
    expect(await listObjects(s3(), locked, 'lock/'), 'no current object left').toEqual([]);
    // The probe object was written without Object Lock headers: its version stays deletable (by the
    // lifecycle rule the docs recommend), and a second probe is not refused by it.
    const c = s3Client(s3());
    try {
      const v = await c.send(new ListObjectVersionsCommand({ Bucket: locked, Prefix: 'lock/' }));
      expect((v.Versions ?? []).every((x) => x.Key === 'lock/.nxt-probe.json')).toBe(true);
    } finally {
      c.destroy();
    }
    expect((await probe(`s3://${locked}/lock`, lockEnv)).result.success).toBe(true);
  });
});
