// The real S3 server of the test harness (SeaweedFS `weed server -s3`, test/env/seaweedfs.ts) exercised with
// the SDK the runner uses (@aws-sdk/client-s3 + @aws-sdk/lib-storage): what the S3 backup location relies on
// (streamed multipart uploads with bounded memory, listing and aborting interrupted uploads, the errors it
// turns into conditions, HTTPS with a private CA, Object Lock) must hold against this server, or the
// location's tests would pass for the wrong reason.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, describe, expect, it } from 'vitest';
import { S3BackupStorage } from '../../operator/backup/runner/s3-storage.js';
import {
  createBucket,
  emptyBucket,
  listMultipartUploads,
  listObjects,
  s3Client,
  useS3Server,
} from '../support/s3.js';

const server = useS3Server({ https: true });
v8.setFlagsFromString('--expose-gc');
/** A full garbage collection (V8's gc(), exposed at run time), so memory samples show live data only. */
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

/** The error an SDK call rejects with (fails the test when the call succeeds). */
async function s3Error(p: Promise<unknown>): Promise<S3ServiceException & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as S3ServiceException;
  }
  throw new Error('expected the S3 call to fail, but it succeeded');
}

/**
 * `total` bytes of incompressible data, produced a MiB at a time (never held whole), with the sha256 of what
 * was produced available once the stream ended.
 */
function generatedStream(total: number, failAfter?: number) {
  const block = randomBytes(MiB);
  const hash = createHash('sha256');
  let sent = 0;
  let i = 0;
  const stream = new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) {
        this.destroy(new Error('the producer died (simulated)'));
        return;
      }
      if (sent >= total) {
        this.push(null);
        return;
      }
      const chunk = Buffer.from(block.subarray(0, Math.min(MiB, total - sent)));
      chunk.writeUInt32BE(i++, 0); // every MiB differs
      hash.update(chunk);
      sent += chunk.length;
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

async function sha256OfBody(body: unknown): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    h.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: h.digest('hex'), bytes };
}

const clients: S3Client[] = [];
const client = (...args: Parameters<typeof s3Client>) => {
  const c = s3Client(...args);
  clients.push(c);
  return c;
};
afterAll(() => {
  for (const c of clients) c.destroy();
});

describe('the SeaweedFS S3 server', () => {
  it('starts as one weed process on loopback and answers ListBuckets for the admin', async () => {
    const s = server();
    expect(s.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.tlsEndpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    console.log(`[s3] ${s.version}; started in ${s.startMs} ms`);
    const r = await client(s).send(new ListBucketsCommand({}));
    expect(r.Buckets).toBeDefined();
  });

  it('stores and returns an object, and lists it', async () => {
    const s = server();
    const bucket = await createBucket(s);
    const c = client(s);
    const body = `hello ${randomBytes(8).toString('hex')}`;
    await c.send(new PutObjectCommand({ Bucket: bucket, Key: 'dir/a.txt', Body: body }));
    const got = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/a.txt' }));
    expect(await got.Body!.transformToString()).toBe(body);
    expect(got.ETag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    expect(await listObjects(s, bucket, 'dir/')).toEqual([{ key: 'dir/a.txt', size: body.length }]);
    expect(await listObjects(s, bucket, 'other/')).toEqual([]);
  });

  it('takes a streamed multipart upload of > 100 MiB with bounded memory and returns the same bytes', async () => {
    const s = server();
    const bucket = await createBucket(s);
    const c = client(s, { maxAttempts: 3 });
    const total = 110 * MiB + 12345;
    const src = generatedStream(total);
    const partSize = 8 * MiB;
    const queueSize = 2;
    // Live Buffer memory (process.memoryUsage().arrayBuffers after a full GC, every 200 ms) is what a buffered
    // object would show in; RSS is logged only (it grows to a plateau and is never given back).
    gc();
    const m0 = process.memoryUsage();
    let peakBuffers = m0.arrayBuffers;
    let peakRss = m0.rss;
    const sampler = setInterval(() => {
      gc();
      const m = process.memoryUsage();
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
      peakRss = Math.max(peakRss, m.rss);
    }, 200);
    let parts = 0;
    try {
      const up = new Upload({
        client: c,
        params: { Bucket: bucket, Key: 'big/dump.bin', Body: src.stream },
        partSize,
        queueSize,
      });
      up.on('httpUploadProgress', (p) => {
        if (p.part) parts = Math.max(parts, p.part);
      });
      await up.done();
    } finally {
      clearInterval(sampler);
    }
    const buffersMiB = (peakBuffers - m0.arrayBuffers) / MiB;
    console.log(
      `[s3] 110 MiB upload: ${parts} parts, buffers grew ${buffersMiB.toFixed(0)} MiB, ` +
        `RSS ${((peakRss - m0.rss) / MiB).toFixed(0)} MiB`,
    );
    // queueSize * partSize = 16 MiB in flight, plus the part being filled and the SDK's copies of parts in
    // flight: 40-45 MiB live here; the whole object is > 110 MiB (buffered whole, this measured 219 MiB)
    expect(buffersMiB).toBeLessThan(80);
    expect(parts).toBe(Math.ceil(total / partSize));
    const head = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/dump.bin' }));
    expect(head.ContentLength).toBe(total);
    expect(head.ETag).toMatch(new RegExp(`-${Math.ceil(total / partSize)}"$`)); // a multipart ETag
    const got = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/dump.bin' }));
    expect(await sha256OfBody(got.Body)).toEqual({ sha256: src.sha256(), bytes: total });
    expect(await listMultipartUploads(s, bucket)).toEqual([]);
  });

  it('lists an interrupted multipart upload (no object) until it is aborted', async () => {
    const s = server();
    const bucket = await createBucket(s);
    const c = client(s);
    const src = generatedStream(40 * MiB, 12 * MiB);
    const up = new Upload({
      client: c,
      params: { Bucket: bucket, Key: 'run/interrupted.dump', Body: src.stream },
      partSize: 5 * MiB,
      queueSize: 1,
      leavePartsOnError: true, // what a killed process leaves behind: nobody aborts
    });
    await expect(up.done()).rejects.toThrow(/producer died/);
    const open = await listMultipartUploads(s, bucket, 'run/');
    expect(open.map((u) => u.key)).toEqual(['run/interrupted.dump']);
    expect(await listObjects(s, bucket)).toEqual([]);
    expect(
      (await s3Error(c.send(new HeadObjectCommand({ Bucket: bucket, Key: 'run/interrupted.dump' })))).name,
    ).toBe('NotFound');
    // a second, hand-made one (CreateMultipartUpload + one part) under another prefix is listed apart
    const made = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'other/x' }));
    await c.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: 'other/x',
        UploadId: made.UploadId,
        PartNumber: 1,
        Body: Buffer.alloc(5 * MiB, 1),
      }),
    );
    expect((await listMultipartUploads(s, bucket)).map((u) => u.key).sort()).toEqual([
      'other/x',
      'run/interrupted.dump',
    ]);
    const r = await emptyBucket(s, bucket, { removeBucket: true });
    expect(r).toMatchObject({ aborted: 2, kept: [] });
    expect((await s3Error(listMultipartUploads(s, bucket))).name).toBe('NoSuchBucket');
  });

  it('refuses writes and deletes with the read-only key (AccessDenied) and allows its reads', async () => {
    const s = server();
    const bucket = await createBucket(s);
    await client(s).send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v' }));
    const ro = client(s, { credentials: s.readOnly });
    expect(
      await (await ro.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))).Body!.transformToString(),
    ).toBe('v');
    expect((await ro.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount).toBe(1);
    const put = await s3Error(ro.send(new PutObjectCommand({ Bucket: bucket, Key: 'k2', Body: 'x' })));
    expect(put.name).toBe('AccessDenied');
    expect(put.$metadata.httpStatusCode).toBe(403);
    const del = await s3Error(ro.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k' })));
    expect(del.name).toBe('AccessDenied');
    expect(await listObjects(s, bucket)).toEqual([{ key: 'k', size: 1 }]);
    // a key the server does not know at all
    const stranger = client(s, {
      credentials: { accessKeyId: 'NOSUCHKEY0000', secretAccessKey: 'x'.repeat(40) },
    });
    const unknown = await s3Error(stranger.send(new ListObjectsV2Command({ Bucket: bucket })));
    expect(unknown.name).toBe('InvalidAccessKeyId');
    expect(unknown.$metadata.httpStatusCode).toBe(403);
  });

  it('answers NoSuchBucket for a bucket that does not exist', async () => {
    const s = server();
    const c = client(s);
    const Bucket = `missing-${randomBytes(4).toString('hex')}`;
    const calls = [
      () => c.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v' })),
      () => c.send(new ListObjectsV2Command({ Bucket })),
      () => c.send(new CreateMultipartUploadCommand({ Bucket, Key: 'k' })),
    ];
    for (const call of calls) {
      const e = await s3Error(call());
      expect(e.name).toBe('NoSuchBucket');
      expect(e.$metadata.httpStatusCode).toBe(404);
    }
  });

  it('serves HTTPS with a certificate only the harness CA vouches for', async () => {
    const s = server();
    const bucket = await createBucket(s);
    const tls = client(s, { https: true });
    await tls.send(new PutObjectCommand({ Bucket: bucket, Key: 'over-tls', Body: 'secret' }));
    const got = await tls.send(new GetObjectCommand({ Bucket: bucket, Key: 'over-tls' }));
    expect(await got.Body!.transformToString()).toBe('secret');
    // the same endpoint without the CA: the system trust store does not know it
    const untrusted = new S3Client({
      endpoint: s.tlsEndpoint,
      region: s.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      maxAttempts: 1,
    });
    clients.push(untrusted);
    const e = (await s3Error(untrusted.send(new ListBucketsCommand({})))) as unknown as { code?: string };
    expect(e.code).toMatch(
      /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED/,
    );
  });
});

describe('conditional writes (If-None-Match: *) on SeaweedFS: the restore fence', () => {
  it('lets exactly one of several concurrent creates of a key win, and refuses a later one', async () => {
    const s = server();
    const bucket = await createBucket(s);
    const c = client(s);
    const create = (key: string, body: string) =>
      c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, IfNoneMatch: '*' })).then(
        () => 'created',
        (e: S3ServiceException) => `${e.name} ${e.$metadata?.httpStatusCode}`,
      );
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all([0, 1, 2, 3].map((w) => create(`race-${round}`, `writer ${w}`)));
      expect(
        results.filter((r) => r === 'created'),
        results.join(),
      ).toHaveLength(1);
      expect(results.filter((r) => r !== 'created')).toEqual(Array(3).fill('PreconditionFailed 412'));
    }
    expect(await create('race-0', 'late')).toBe('PreconditionFailed 412');
  });

  it("the runner's claimRestore: of concurrent claims for one plan exactly one gets it", async () => {
    const s = server();
    const bucket = await createBucket(s);
    const config = { bucket, prefix: 'fence/', endpoint: s.endpoint, region: s.region, forcePathStyle: true };
    for (let round = 0; round < 5; round++) {
      // Separate storages (separate clients): like two Jobs, none sees the other's HEAD result.
      const claims = await Promise.all(
        [0, 1, 2, 3].map((w) =>
          new S3BackupStorage(client(s), config).claimRestore(`plan-${round}`, { writer: w }),
        ),
      );
      expect(claims.filter(Boolean), claims.join()).toHaveLength(1);
    }
    expect(await listObjects(s, bucket, 'fence/')).toHaveLength(5);
  });
});

describe('S3 Object Lock on SeaweedFS', () => {
  const until = () => new Date(Date.now() + 24 * 3600_000);

  it('creates a bucket with Object Lock enabled and reports its configuration', async () => {
    const s = server();
    const c = client(s);
    const locked = await createBucket(s, { objectLock: true });
    const cfg = await c.send(new GetObjectLockConfigurationCommand({ Bucket: locked }));
    expect(cfg.ObjectLockConfiguration?.ObjectLockEnabled).toBe('Enabled');
    const plain = await createBucket(s);
    const e = await s3Error(c.send(new GetObjectLockConfigurationCommand({ Bucket: plain })));
    expect(e.name).toBe('ObjectLockConfigurationNotFoundError');
  });

  it('refuses to delete an object version under COMPLIANCE retention, even for the admin', async () => {
    const s = server();
    const c = client(s);
    const bucket = await createBucket(s, { objectLock: true });
    const put = await c.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'backup.dump',
        Body: 'immutable',
        ObjectLockMode: 'COMPLIANCE',
        ObjectLockRetainUntilDate: until(),
      }),
    );
    expect(put.VersionId).toBeTruthy();
    const ret = await c.send(
      new GetObjectRetentionCommand({ Bucket: bucket, Key: 'backup.dump', VersionId: put.VersionId }),
    );
    expect(ret.Retention?.Mode).toBe('COMPLIANCE');
    const del = await s3Error(
      c.send(
        new DeleteObjectCommand({
          Bucket: bucket,
          Key: 'backup.dump',
          VersionId: put.VersionId,
          BypassGovernanceRetention: true,
        }),
      ),
    );
    expect(del.name).toBe('AccessDenied');
    const got = await c.send(
      new GetObjectCommand({ Bucket: bucket, Key: 'backup.dump', VersionId: put.VersionId }),
    );
    expect(await got.Body!.transformToString()).toBe('immutable');
    // shortening COMPLIANCE retention is refused too
    const shorten = await s3Error(
      c.send(
        new PutObjectRetentionCommand({
          Bucket: bucket,
          Key: 'backup.dump',
          VersionId: put.VersionId,
          Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(Date.now() + 60_000) },
        }),
      ),
    );
    expect(shorten.$metadata.httpStatusCode).toBe(403);
  });

  it('refuses to delete under GOVERNANCE retention unless the caller bypasses it', async () => {
    const s = server();
    const c = client(s);
    const bucket = await createBucket(s, { objectLock: true });
    const put = await c.send(new PutObjectCommand({ Bucket: bucket, Key: 'g.dump', Body: 'gov' }));
    await c.send(
      new PutObjectRetentionCommand({
        Bucket: bucket,
        Key: 'g.dump',
        VersionId: put.VersionId,
        Retention: { Mode: 'GOVERNANCE', RetainUntilDate: until() },
      }),
    );
    const refused = await s3Error(
      c.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'g.dump', VersionId: put.VersionId })),
    );
    expect(refused.name).toBe('AccessDenied');
    await c.send(
      new DeleteObjectCommand({
        Bucket: bucket,
        Key: 'g.dump',
        VersionId: put.VersionId,
        BypassGovernanceRetention: true,
      }),
    );
    expect(await emptyBucket(s, bucket)).toMatchObject({ kept: [] });
  });

  it('refuses retention on an object in a bucket without Object Lock', async () => {
    const s = server();
    const c = client(s);
    const bucket = await createBucket(s);
    await c.send(new PutObjectCommand({ Bucket: bucket, Key: 'p', Body: 'plain' }));
    const e = await s3Error(
      c.send(
        new PutObjectRetentionCommand({
          Bucket: bucket,
          Key: 'p',
          Retention: { Mode: 'COMPLIANCE', RetainUntilDate: until() },
        }),
      ),
    );
    expect(e.$metadata.httpStatusCode).toBe(400);
    await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'p' }));
    expect(await listObjects(s, bucket)).toEqual([]);
  });
});
