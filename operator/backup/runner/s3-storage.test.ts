import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { BackupManifest } from './manifest.js';
import type { BackupPin } from './pins.js';
import { createS3Client, S3BackupStorage } from './s3-storage.js';
import type { S3Config } from './s3-config.js';
import { FilesystemBackupStorage, type BackupStorage } from './storage.js';

/**
 * A client that answers like an empty bucket holding one manifest and one removal marker, and records every
 * command the storage sends (its name and input): what each write path asks of the server, without one.
 */
function recordingClient(
  failPut?: (input: Record<string, unknown>) => Error | undefined,
  /** The bucket's Object Lock configuration: enabled, none (the default), or the error reading it gets. */
  lock: 'Enabled' | 'none' | Error = 'none',
) {
  const sent: { name: string; input: Record<string, unknown> }[] = [];
  const missing = () =>
    Object.assign(new Error('not found'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } });
  const client = {
    // What lib-storage's Upload reads from a client besides send().
    config: {
      endpoint: async () => ({ protocol: 'http:', hostname: '127.0.0.1', port: '9', path: '/' }),
      forcePathStyle: true,
      requestHandler: {},
      requestChecksumCalculation: async () => 'WHEN_REQUIRED',
    },
    send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = cmd.constructor.name.replace(/Command$/, '');
      sent.push({ name, input: cmd.input });
      const key = String(cmd.input.Key ?? '');
      switch (name) {
        case 'GetObjectLockConfiguration':
          if (lock instanceof Error) throw lock;
          if (lock === 'none')
            throw Object.assign(new Error('Object Lock configuration does not exist for this bucket'), {
              name: 'ObjectLockConfigurationNotFoundError',
              $metadata: { httpStatusCode: 404 },
            });
          return { ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } };
        case 'GetObject':
          if (key.endsWith('.manifest.json') || key.endsWith('.removing'))
            return { Body: { transformToString: async () => '{"id":"b-1"}\n' }, LastModified: new Date(0) };
          throw missing();
        case 'HeadObject':
          if (key.endsWith('.dump')) return { ContentLength: 1 };
          throw missing();
        case 'ListObjectsV2':
          return String(cmd.input.Prefix).endsWith('p/') && !cmd.input.Prefix?.toString().includes('.pins')
            ? { Contents: [{ Key: 'p/b-2.manifest.json.removing', LastModified: new Date(0) }] }
            : { Contents: [] };
        case 'ListMultipartUploads':
          return { Uploads: [] };
        case 'PutObject': {
          const e = failPut?.(cmd.input);
          if (e) throw e;
          return { ETag: '"e"' };
        }
        case 'CreateMultipartUpload':
          return { UploadId: 'u-1' };
        case 'UploadPart': {
          const e = failPut?.(cmd.input);
          if (e) throw e;
          return { ETag: `"p${String(cmd.input.PartNumber)}"` };
        }
        case 'CompleteMultipartUpload':
          return { ETag: '"e-2"' };
        default:
          return {};
      }
    },
  };
  return { client: client as unknown as S3Client, sent };
}

const config = (extra: Partial<S3Config> = {}): S3Config => ({
  bucket: 'b-1',
  prefix: 'p/',
  region: 'us-east-1',
  forcePathStyle: true,
  ...extra,
});

async function everyWrite(
  c: S3Config,
  lock: 'Enabled' | 'none' | Error = 'none',
  opts: { dumpBytes?: number; failPut?: (input: Record<string, unknown>) => Error | undefined } = {},
) {
  const { client, sent } = recordingClient(opts.failPut, lock);
  const s = new S3BackupStorage(client, c);
  await s.ensureOwner({ namespace: 'a', name: 'orders' });
  const w = await s.createWriter('b-1');
  w.stream.end(opts.dumpBytes ? Buffer.alloc(opts.dumpBytes, 1) : Buffer.from('PGDMP'));
  await new Promise((res) => w.stream.on('finish', res));
  await w.commit();
  await s.writeManifest({ id: 'b-1' } as BackupManifest);
  await s.pin({ id: 'b-1', holder: 'plan-uid-1' } as BackupPin);
  await s.markForRemoval('b-1');
  await s.unmarkForRemoval('b-1');
  await s.removeLeftovers(new Date(), 0, 0);
  await s.claimRestore('plan-uid-1', { plan: 'p' });
  return sent.filter((x) => x.name === 'PutObject').map((x) => x.input);
}

/** An Object Lock bucket's answer to a put without Content-MD5 or a checksum (AWS: 400 InvalidRequest). */
const refuseUnchecksummed = (input: Record<string, unknown>) =>
  input.ChecksumAlgorithm || input.ContentMD5
    ? undefined
    : Object.assign(
        new Error(
          'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters',
        ),
        { name: 'InvalidRequest', $metadata: { httpStatusCode: 400 } },
      );
const s3Error = (name: string, status?: number, message = name) =>
  Object.assign(new Error(message), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}) });

describe('S3BackupStorage writes', () => {
  it('puts every object (owner, manifest, pin, markers, restored manifest, restore fence) with the schedule encryption', async () => {
    const sse = { algorithm: 'aws:kms' as const, kmsKeyId: 'arn:aws:kms:eu-west-1:1:key/k' };
    const puts = await everyWrite(config({ serverSideEncryption: sse }));
    const keys = puts.map((p) => String(p.Key));
    expect(keys).toEqual([
      'p/.nxt-owner.json',
      'p/b-1.dump',
      'p/b-1.manifest.json',
      expect.stringMatching(/^p\/\.pins\/b-1\/plan-uid-1\/\d+-[0-9a-f]+\.json$/),
      'p/b-1.manifest.json.removing',
      'p/b-1.manifest.json',
      'p/b-2.manifest.json',
      'p/.restores/plan-uid-1',
    ]);
    for (const p of puts)
      expect(p, String(p.Key)).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: sse.kmsKeyId });
  });

  it('adds Object Lock only to what makes a backup (dump, manifests), never to pins, markers, owner or fences', async () => {
    const puts = await everyWrite(
      config({
        serverSideEncryption: { algorithm: 'AES256' },
        objectLock: { mode: 'GOVERNANCE', retentionDays: 1 },
      }),
    );
    for (const p of puts) {
      expect(p, String(p.Key)).toMatchObject({ ServerSideEncryption: 'AES256' });
      expect(p).not.toHaveProperty('SSEKMSKeyId');
      if (/\.(manifest\.json|dump)$/.test(String(p.Key)))
        expect(p).toHaveProperty('ObjectLockMode', 'GOVERNANCE');
      else expect(p, String(p.Key)).not.toHaveProperty('ObjectLockMode');
      expect(p, String(p.Key)).toMatchObject({ ChecksumAlgorithm: 'CRC32' });
    }
  });

  it('sends no encryption header without the setting', async () => {
    for (const p of await everyWrite(config())) expect(p).not.toHaveProperty('ServerSideEncryption');
  });
});

describe('S3BackupStorage checksums (Object Lock buckets need one on every put)', () => {
  it('puts every object, the dump included, with a CRC32 checksum into a bucket whose Object Lock is enabled (a default retention rule, no spec.objectLock)', async () => {
    const puts = await everyWrite(config(), 'Enabled');
    expect(puts.map((p) => String(p.Key))).toContain('p/b-1.dump');
    for (const p of puts) {
      expect(p, String(p.Key)).toMatchObject({ ChecksumAlgorithm: 'CRC32' });
      expect(p, 'no retention of our own without spec.objectLock').not.toHaveProperty('ObjectLockMode');
    }
  });

  it('sends none into a bucket without Object Lock, nor to a server without the call (GCS interoperability refuses them)', async () => {
    const notImplemented = Object.assign(new Error('not implemented'), {
      name: 'NotImplemented',
      $metadata: { httpStatusCode: 501 },
    });
    const unknownQuery = Object.assign(new Error('bad request'), {
      name: 'UnknownError',
      $metadata: { httpStatusCode: 400 },
    });
    for (const lock of ['none' as const, notImplemented, unknownQuery])
      for (const p of await everyWrite(config(), lock))
        expect(p, `${String(p.Key)} (${lock instanceof Error ? lock.name : lock})`).not.toHaveProperty(
          'ChecksumAlgorithm',
        );
  });

  it('sends them with spec.objectLock without asking the bucket', async () => {
    const lock = { mode: 'GOVERNANCE' as const, retentionDays: 1 };
    const { client, sent } = recordingClient();
    const s = new S3BackupStorage(client, config({ objectLock: lock }));
    await s.writeManifest({ id: 'b-1' } as BackupManifest);
    expect(sent.map((x) => x.name)).not.toContain('GetObjectLockConfiguration');
    expect(sent.find((x) => x.name === 'PutObject')?.input).toMatchObject({ ChecksumAlgorithm: 'CRC32' });
  });

  it('sends a multipart dump (over 5 MiB) into an Object Lock bucket with CRC32 on its upload and every part', async () => {
    const { client, sent } = recordingClient(refuseUnchecksummed, 'Enabled');
    const s = new S3BackupStorage(client, config());
    // A small database: 5 MiB parts.
    const w = await s.createWriter('b-1', { databaseBytes: 1 });
    w.stream.end(Buffer.alloc(12 * 1024 * 1024, 1));
    await new Promise((res) => w.stream.on('finish', res));
    await w.commit();
    expect(sent.find((x) => x.name === 'CreateMultipartUpload')?.input).toMatchObject({
      ChecksumAlgorithm: 'CRC32',
    });
    const parts = sent.filter((x) => x.name === 'UploadPart');
    expect(parts.length, 'three 5 MiB parts').toBe(3);
    for (const p of parts) expect(p.input).toMatchObject({ ChecksumAlgorithm: 'CRC32' });
  });

  it('goes on without checksums when the configuration cannot be read for a reason only this call has (AccessDenied, 500, 409, garbage, throttling, its timeout), and logs why', async () => {
    const errors = [
      s3Error('AccessDenied', 403),
      s3Error('InternalError', 500),
      s3Error('OperationAborted', 409),
      s3Error('SyntaxError', 200, 'Unexpected end of XML'),
      s3Error('SlowDown', 503),
      s3Error('AbortError', undefined, 'This operation was aborted'),
    ];
    for (const lock of errors) {
      const { client, sent } = recordingClient(undefined, lock);
      const logged: string[] = [];
      const s = new S3BackupStorage(
        client,
        config(),
        () => new Date(),
        30_000,
        (_l, event) => logged.push(event),
      );
      await s.writeManifest({ id: 'b-1' } as BackupManifest);
      expect(sent.find((x) => x.name === 'PutObject')?.input, lock.name).not.toHaveProperty(
        'ChecksumAlgorithm',
      );
      expect(logged, lock.name).toContain('storage.object-lock-unknown');
    }
  });

  it('fails with the reason on errors every call would hit (no such bucket, bad credentials, untrusted TLS, connection refused)', async () => {
    const cases: [Error, string][] = [
      [s3Error('NoSuchBucket', 404), 'StorageBucketNotFound'],
      [s3Error('InvalidAccessKeyId', 403), 'StorageCredentialsInvalid'],
      [
        Object.assign(new Error('self-signed certificate'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }),
        'StorageCertificateUntrusted',
      ],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'StorageUnreachable'],
    ];
    for (const [lock, reason] of cases) {
      const s = new S3BackupStorage(recordingClient(undefined, lock).client, config());
      await expect(s.writeManifest({ id: 'b-1' } as BackupManifest), reason).rejects.toMatchObject({
        reason,
      });
    }
  });

  it('sends a put refused for want of a checksum once more with one (the configuration unreadable), then every later put with one', async () => {
    const denied = s3Error('AccessDenied', 403);
    const minio = (input: Record<string, unknown>) =>
      input.ChecksumAlgorithm || input.ContentMD5
        ? undefined
        : s3Error('MissingContentMD5', 400, 'Missing required header for this request: Content-Md5.');
    for (const refuse of [refuseUnchecksummed, minio]) {
      const { client, sent } = recordingClient(refuse, denied);
      const s = new S3BackupStorage(client, config());
      await s.writeManifest({ id: 'b-1' } as BackupManifest);
      const puts = sent.filter((x) => x.name === 'PutObject').map((x) => x.input);
      expect(puts).toHaveLength(2);
      expect(puts[0]).not.toHaveProperty('ChecksumAlgorithm');
      expect(puts[1]).toMatchObject({ ChecksumAlgorithm: 'CRC32' });
      await s.pin({ id: 'b-1', holder: 'plan-uid-1' } as BackupPin);
      expect(sent.filter((x) => x.name === 'PutObject').at(-1)?.input).toMatchObject({
        ChecksumAlgorithm: 'CRC32',
      });
    }
    // The dump's parts: the upload was created without a checksum, so a refused part gets Content-MD5.
    const { client, sent } = recordingClient(refuseUnchecksummed, denied);
    const s = new S3BackupStorage(client, config());
    // A small database: 5 MiB parts.
    const w = await s.createWriter('b-1', { databaseBytes: 1 });
    w.stream.end(Buffer.alloc(12 * 1024 * 1024, 1));
    await new Promise((res) => w.stream.on('finish', res));
    await w.commit();
    const parts = sent.filter((x) => x.name === 'UploadPart').map((x) => x.input);
    expect(parts.filter((p) => p.ContentMD5).length, 'each of 3 parts sent with Content-MD5').toBe(3);
    expect(parts.filter((p) => !p.ContentMD5).length, 'only the first refused').toBeLessThanOrEqual(2);
    // A put that keeps failing for another reason is not retried.
    const other = recordingClient(() => s3Error('InternalError', 500), 'none');
    await expect(
      new S3BackupStorage(other.client, config()).writeManifest({ id: 'b-1' } as BackupManifest),
    ).rejects.toMatchObject({ reason: 'StorageFailed' });
    expect(other.sent.filter((x) => x.name === 'PutObject')).toHaveLength(1);
  });

  it('reads the configuration once per run, and fails with the reason when the server cannot be reached', async () => {
    const { client, sent } = recordingClient(undefined, 'Enabled');
    const s = new S3BackupStorage(client, config());
    await s.writeManifest({ id: 'b-1' } as BackupManifest);
    await s.pin({ id: 'b-1', holder: 'plan-uid-1' } as BackupPin);
    expect(sent.filter((x) => x.name === 'GetObjectLockConfiguration')).toHaveLength(1);
    const reset = Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' });
    const failing = new S3BackupStorage(recordingClient(undefined, reset).client, config());
    await expect(failing.writeManifest({ id: 'b-1' } as BackupManifest)).rejects.toMatchObject({
      reason: 'StorageUnreachable',
      message: expect.stringContaining('Object Lock configuration'),
    });
  });
});

describe('S3BackupStorage on a server without conditional writes', () => {
  const notImplemented = (input: Record<string, unknown>) =>
    input.IfNoneMatch
      ? Object.assign(new Error('A header you provided implies functionality that is not implemented'), {
          name: 'NotImplemented',
          $metadata: { httpStatusCode: 501 },
        })
      : undefined;

  it('fails the owner claim and the restore fence with StorageConditionalWritesUnsupported (not retried)', async () => {
    const { client } = recordingClient(notImplemented);
    const s = new S3BackupStorage(client, config());
    await expect(s.ensureOwner({ namespace: 'a', name: 'orders' })).rejects.toMatchObject({
      reason: 'StorageConditionalWritesUnsupported',
      message: expect.stringContaining('.nxt-owner.json'),
    });
    await expect(s.claimRestore('plan-uid-1', {})).rejects.toMatchObject({
      reason: 'StorageConditionalWritesUnsupported',
      message: expect.stringContaining('conditional writes'),
    });
  });
});

describe('S3BackupStorage failures', () => {
  const noSuchBucket = () =>
    Object.assign(new Error('The specified bucket does not exist'), {
      name: 'NoSuchBucket',
      $metadata: { httpStatusCode: 404 },
    });

  it('reports a missing bucket as StorageBucketNotFound, never as a missing backup', async () => {
    const client = {
      send: async () => {
        throw noSuchBucket();
      },
    } as unknown as S3Client;
    const s = new S3BackupStorage(client, config());
    await expect(s.read('b-1')).rejects.toMatchObject({ reason: 'StorageBucketNotFound' });
    await expect(s.readManifest('b-1')).rejects.toMatchObject({ reason: 'StorageBucketNotFound' });
    await expect(s.ensureOwner({ namespace: 'a', name: 'orders' })).rejects.toMatchObject({
      reason: 'StorageBucketNotFound',
    });
  });

  it('fails, rather than returning part of them, when multipart uploads span more pages than it reads', async () => {
    let pages = 0;
    const client = {
      send: async (cmd: { constructor: { name: string } }) => {
        if (cmd.constructor.name !== 'ListMultipartUploadsCommand') return { Contents: [] };
        pages++;
        return { Uploads: [], IsTruncated: true, NextKeyMarker: `p/k-${pages}`, NextUploadIdMarker: 'u' };
      },
    } as unknown as S3Client;
    const s = new S3BackupStorage(client, config());
    await expect(s.removeLeftovers(new Date(), 0)).rejects.toMatchObject({
      reason: 'StorageFailed',
      message: expect.stringContaining('multipart uploads'),
    });
    expect(pages).toBe(1000);
  });
});

describe('S3BackupStorage call bounds', () => {
  it('fails a call the server never answers after its total timeout (StorageUnreachable), not after the idle socket timeout', async () => {
    // Accepts the connection and reads the request, never answers: only a total timeout ends the call.
    const sockets: Socket[] = [];
    const server = createServer((sock) => {
      sockets.push(sock);
      sock.resume();
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const { port } = server.address() as { port: number };
    const c = config({
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
    });
    const client = await createS3Client(c);
    try {
      const s = new S3BackupStorage(client, c, () => new Date(), 300);
      const started = Date.now();
      await expect(s.readManifest('b-1')).rejects.toMatchObject({ reason: 'StorageUnreachable' });
      await expect(s.hasDump('b-1')).rejects.toMatchObject({ reason: 'StorageUnreachable' });
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      client.destroy();
      for (const sock of sockets) sock.destroy();
      await new Promise((res) => server.close(res));
    }
  });
});

/**
 * A bucket that holds only the owner object and honours If-None-Match / If-Match like AWS (412 on a mismatch,
 * 404 to an If-Match of a missing object). `beforePut` may change the stored object between the GET and the
 * PUT (another runner writing meanwhile); `noEtag` answers GETs without an ETag.
 */
function ownerBucket(initial?: object, o: { beforePut?: (b: OwnerBucket) => void; noEtag?: boolean } = {}) {
  const b: OwnerBucket = { object: undefined, version: 0, puts: [] };
  const store = (body: object) => {
    b.version++;
    b.object = { text: JSON.stringify(body), etag: `"v${b.version}"` };
  };
  if (initial) store(initial);
  const fail = (name: string, status: number) =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  const client = {
    send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = cmd.constructor.name.replace(/Command$/, '');
      if (name === 'GetObjectLockConfiguration') throw fail('ObjectLockConfigurationNotFoundError', 404);
      if (name === 'GetObject') {
        if (!b.object) throw fail('NoSuchKey', 404);
        const { text, etag } = b.object;
        return { Body: { transformToString: async () => text }, ...(o.noEtag ? {} : { ETag: etag }) };
      }
      if (name === 'PutObject') {
        b.puts.push(cmd.input);
        o.beforePut?.(b);
        const { IfNoneMatch, IfMatch } = cmd.input;
        if (IfNoneMatch === '*' && b.object) throw fail('PreconditionFailed', 412);
        if (IfMatch !== undefined && !b.object) throw fail('NoSuchKey', 404);
        if (IfMatch !== undefined && IfMatch !== b.object!.etag) throw fail('PreconditionFailed', 412);
        store(JSON.parse(String(cmd.input.Body)));
        return { ETag: b.object!.etag };
      }
      return {};
    },
  };
  return { client: client as unknown as S3Client, bucket: b };
}
interface OwnerBucket {
  object: { text: string; etag: string } | undefined;
  version: number;
  puts: Record<string, unknown>[];
}

describe('S3BackupStorage owner object rewrites', () => {
  const old = { namespace: 'a', name: 'orders', created: '2026-01-01T00:00:00.000Z' };
  const self = { namespace: 'a', name: 'orders', clusterId: 'uid-a' };

  it('adds the cluster id to an old owner object with If-Match of the ETag it read', async () => {
    const { client, bucket } = ownerBucket(old);
    const s = new S3BackupStorage(client, config());
    await expect(s.ensureOwner(self)).resolves.toContain('recorded this cluster');
    expect(bucket.puts).toHaveLength(1);
    expect(bucket.puts[0]).toMatchObject({ IfMatch: '"v1"' });
    expect(JSON.parse(bucket.object!.text)).toMatchObject({ clusterId: 'uid-a' });
  });

  it('decides again on 412: another cluster adopted the prefix between the read and the write', async () => {
    let raced = false;
    const { client, bucket } = ownerBucket(old, {
      beforePut: (b) => {
        if (raced) return;
        raced = true;
        b.version++;
        b.object = { text: JSON.stringify({ ...old, clusterId: 'uid-b' }), etag: `"v${b.version}"` };
      },
    });
    const s = new S3BackupStorage(client, config());
    await expect(s.ensureOwner(self)).rejects.toMatchObject({ reason: 'StorageOwnedByOtherCluster' });
    expect(JSON.parse(bucket.object!.text)).toMatchObject({ clusterId: 'uid-b' });
  });

  it('decides again when the object was deleted between the read and the If-Match write (404): it claims', async () => {
    let deleted = false;
    const { client, bucket } = ownerBucket(old, {
      beforePut: (b) => {
        if (deleted) return;
        deleted = true;
        b.object = undefined;
      },
    });
    const s = new S3BackupStorage(client, config());
    await s.ensureOwner(self);
    expect(
      bucket.puts.map((p) => ('IfMatch' in p ? 'rewrite' : p.IfNoneMatch === '*' ? 'claim' : 'blind')),
    ).toEqual(['rewrite', 'claim']);
    expect(JSON.parse(bucket.object!.text)).toMatchObject({ clusterId: 'uid-a' });
  });

  it('never rewrites unconditionally: no ETag from the server is a refusal', async () => {
    const { client, bucket } = ownerBucket(old, { noEtag: true });
    const s = new S3BackupStorage(client, config());
    await expect(s.ensureOwner(self)).rejects.toMatchObject({
      reason: 'StorageConditionalWritesUnsupported',
      message: expect.stringContaining('no ETag'),
    });
    expect(bucket.puts).toHaveLength(0);
  });

  it('a read claims nothing: verify on a prefix without owner object writes nothing', async () => {
    const { client, bucket } = ownerBucket();
    const s = new S3BackupStorage(client, config());
    await s.ensureOwner(self, 'read');
    expect(bucket.puts).toHaveLength(0);
  });
});

describe('S3BackupStorage sizing', () => {
  it('asks the backup for the database size (its upload parts are sized from it); a volume does not', () => {
    expect(new S3BackupStorage(recordingClient().client, config()).usesDatabaseSize).toBe(true);
    const volume: BackupStorage = new FilesystemBackupStorage(tmpdir());
    expect(volume.usesDatabaseSize).toBeFalsy();
  });
});
