import { createServer, type Socket } from 'node:net';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { BackupManifest } from './manifest.js';
import type { BackupPin } from './pins.js';
import { createS3Client, S3BackupStorage } from './s3-storage.js';
import type { S3Config } from './s3-config.js';

/**
 * A client that answers like an empty bucket holding one manifest and one removal marker, and records every
 * command the storage sends (its name and input): what each write path asks of the server, without one.
 */
function recordingClient(failPut?: (input: Record<string, unknown>) => Error | undefined) {
  const sent: { name: string; input: Record<string, unknown> }[] = [];
  const missing = () =>
    Object.assign(new Error('not found'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } });
  const client = {
    send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = cmd.constructor.name.replace(/Command$/, '');
      sent.push({ name, input: cmd.input });
      const key = String(cmd.input.Key ?? '');
      switch (name) {
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
          return {};
        }
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

async function everyWrite(c: S3Config) {
  const { client, sent } = recordingClient();
  const s = new S3BackupStorage(client, c);
  await s.ensureOwner({ namespace: 'a', name: 'orders' });
  await s.writeManifest({ id: 'b-1' } as BackupManifest);
  await s.pin({ id: 'b-1', holder: 'plan-uid-1' } as BackupPin);
  await s.markForRemoval('b-1');
  await s.unmarkForRemoval('b-1');
  await s.removeLeftovers(new Date(), 0, 0);
  await s.claimRestore('plan-uid-1', { plan: 'p' });
  return sent.filter((x) => x.name === 'PutObject').map((x) => x.input);
}

describe('S3BackupStorage writes', () => {
  it('puts every object (owner, manifest, pin, markers, restored manifest, restore fence) with the schedule encryption', async () => {
    const sse = { algorithm: 'aws:kms' as const, kmsKeyId: 'arn:aws:kms:eu-west-1:1:key/k' };
    const puts = await everyWrite(config({ serverSideEncryption: sse }));
    const keys = puts.map((p) => String(p.Key));
    expect(keys).toEqual([
      'p/.nxt-owner.json',
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

  it('adds Object Lock only to what makes a backup (manifests), never to pins, markers, owner or fences', async () => {
    const puts = await everyWrite(
      config({
        serverSideEncryption: { algorithm: 'AES256' },
        objectLock: { mode: 'GOVERNANCE', retentionDays: 1 },
      }),
    );
    for (const p of puts) {
      expect(p, String(p.Key)).toMatchObject({ ServerSideEncryption: 'AES256' });
      expect(p).not.toHaveProperty('SSEKMSKeyId');
      if (String(p.Key).endsWith('.manifest.json')) expect(p).toHaveProperty('ObjectLockMode', 'GOVERNANCE');
      else expect(p, String(p.Key)).not.toHaveProperty('ObjectLockMode');
    }
  });

  it('sends no encryption header without the setting', async () => {
    for (const p of await everyWrite(config())) expect(p).not.toHaveProperty('ServerSideEncryption');
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
