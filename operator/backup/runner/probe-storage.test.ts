import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { RunnerFailure } from './failure.js';
import { probeStorage, PROBE_OBJECT } from './probe-storage.js';
import type { S3Config } from './s3-config.js';

const s3Error = (name: string, status: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

interface Answers {
  list?: () => unknown;
  owner?: string;
  put?: (n: number) => unknown;
  lock?: () => unknown;
}

/** A client answering each command as `answers` says (an Error is thrown), recording what was sent. */
function fakeClient(answers: Answers = {}) {
  const sent: { name: string; input: Record<string, unknown> }[] = [];
  let puts = 0;
  const client = {
    send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = cmd.constructor.name.replace(/Command$/, '');
      sent.push({ name, input: cmd.input });
      const answer = (() => {
        switch (name) {
          case 'ListObjectsV2':
            return answers.list?.() ?? { Contents: [] };
          case 'GetObject':
            if (answers.owner === undefined) return s3Error('NoSuchKey', 404);
            return { Body: { transformToString: async () => answers.owner } };
          case 'PutObject':
            return answers.put?.(puts++) ?? {};
          case 'GetObjectLockConfiguration':
            return answers.lock?.() ?? { ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } };
          default:
            return {};
        }
      })();
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return { client: client as unknown as S3Client, sent };
}

const config = (extra: Partial<S3Config> = {}): S3Config => ({
  bucket: 'backups',
  prefix: 'shop/',
  region: 'us-east-1',
  forcePathStyle: true,
  ...extra,
});
const log = () => {};
const self = { namespace: 'team-a', name: 'shop' };

async function failure(p: Promise<unknown>): Promise<RunnerFailure> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RunnerFailure);
  return e as RunnerFailure;
}

describe('probeStorage', () => {
  it('lists, reads the owner object, writes (If-None-Match) and deletes the probe object; never writes the owner', async () => {
    const { client, sent } = fakeClient();
    const r = await probeStorage({ client, config: config(), self, log });
    expect(r).toMatchObject({
      operation: 'probe-storage',
      success: true,
      location: 's3://backups/shop',
      checks: ['list', 'owner', 'write', 'delete'],
    });
    expect(r.message).toContain('no owner object yet');
    expect(sent.map((s) => s.name)).toEqual([
      'ListObjectsV2',
      'GetObject',
      'GetObjectLockConfiguration',
      'PutObject',
      'DeleteObject',
    ]);
    const put = sent.find((s) => s.name === 'PutObject')!.input;
    expect(put).toMatchObject({ Key: `shop/${PROBE_OBJECT}`, IfNoneMatch: '*' });
    expect(put).not.toHaveProperty('ObjectLockMode');
    expect(sent.find((s) => s.name === 'DeleteObject')!.input).toEqual({
      Bucket: 'backups',
      Key: `shop/${PROBE_OBJECT}`,
    });
    expect(sent.filter((s) => String(s.input.Key).endsWith('.nxt-owner.json')).map((s) => s.name)).toEqual([
      'GetObject',
    ]);
  });

  it('says which: a missing bucket, wrong keys, a denied listing, an unreachable endpoint', async () => {
    const cases: [Error, string][] = [
      [s3Error('NoSuchBucket', 404), 'StorageBucketNotFound'],
      [s3Error('SignatureDoesNotMatch', 403), 'StorageCredentialsInvalid'],
      [s3Error('InvalidAccessKeyId', 403), 'StorageCredentialsInvalid'],
      [s3Error('AccessDenied', 403), 'StorageAccessDenied'],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'StorageUnreachable'],
      [s3Error('SlowDown', 503), 'StorageThrottled'],
    ];
    for (const [err, reason] of cases) {
      const { client, sent } = fakeClient({ list: () => err });
      const f = await failure(probeStorage({ client, config: config(), self, log }));
      expect(f.reason, err.name).toBe(reason);
      expect(
        sent.map((s) => s.name),
        'nothing written after a failed listing',
      ).toEqual(['ListObjectsV2']);
    }
  });

  it("refuses another schedule's prefix without writing anything", async () => {
    const { client, sent } = fakeClient({ owner: JSON.stringify({ namespace: 'team-b', name: 'shop' }) });
    const f = await failure(probeStorage({ client, config: config(), self, log }));
    expect(f.reason).toBe('StorageOwnedByOther');
    expect(f.message).toContain('team-b/shop');
    expect(sent.map((s) => s.name)).toEqual(['ListObjectsV2', 'GetObject']);
  });

  it('decides on the owner as a backup would (cluster id, foreignCluster), never writing the owner object', async () => {
    const owned = JSON.stringify({ namespace: 'team-a', name: 'shop', clusterId: 'cluster-old' });
    const here = { ...self, clusterId: 'cluster-new' };
    // The same namespace/name in another cluster: refused as a backup is.
    const a = fakeClient({ owner: owned });
    const f = await failure(probeStorage({ client: a.client, config: config(), self: here, log }));
    expect(f.reason).toBe('StorageOwnedByOtherCluster');
    expect(a.sent.map((s) => s.name)).toEqual(['ListObjectsV2', 'GetObject']);
    // foreignCluster Restore does not let a backup write there: refused too.
    const b = fakeClient({ owner: owned });
    const restore = { clusterId: 'cluster-old', allow: 'Restore' as const };
    const g = await failure(
      probeStorage({ client: b.client, config: config(), self: here, foreign: restore, log }),
    );
    expect(g.reason).toBe('StorageOwnedByOtherCluster');
    // TakeOver: the probe passes and says what the first backup will do; the owner object is never written.
    const c = fakeClient({ owner: owned });
    const takeOver = { clusterId: 'cluster-old', allow: 'TakeOver' as const };
    const r = await probeStorage({ client: c.client, config: config(), self: here, foreign: takeOver, log });
    expect(r.message).toContain('took the prefix over');
    const keys = c.sent.filter((s) => s.name === 'PutObject').map((s) => s.input.Key);
    expect(keys).toEqual([`shop/${PROBE_OBJECT}`]);
    // The owner's own cluster: fine.
    const d = fakeClient({ owner: owned });
    const ok = await probeStorage({
      client: d.client,
      config: config(),
      self: { ...self, clusterId: 'cluster-old' },
      log,
    });
    expect(ok.owner).toBe('team-a/shop');
  });

  it('L1: decides on an empty prefix as a backup would: a standby (foreignCluster Restore) is refused there too', async () => {
    const here = { ...self, clusterId: 'cluster-new' };
    const restore = { clusterId: 'cluster-old', allow: 'Restore' as const };
    const a = fakeClient();
    const f = await failure(
      probeStorage({ client: a.client, config: config(), self: here, foreign: restore, log }),
    );
    expect(f.reason).toBe('StorageOwnedByOtherCluster');
    expect(a.sent.map((s) => s.name)).toEqual(['ListObjectsV2', 'GetObject']);
    // Without foreignCluster an empty prefix is fine: the first backup claims it.
    const b = fakeClient();
    const r = await probeStorage({ client: b.client, config: config(), self: here, log });
    expect(r.success).toBe(true);
    expect(r.message).toContain('no owner object yet');
  });

  it('names the owner when it is this schedule', async () => {
    const { client } = fakeClient({ owner: JSON.stringify({ namespace: 'team-a', name: 'shop' }) });
    const r = await probeStorage({ client, config: config(), self, log });
    expect(r.owner).toBe('team-a/shop');
  });

  it('a denied write is StorageAccessDenied; a probe object left behind is removed and written again', async () => {
    const denied = fakeClient({ put: () => s3Error('AccessDenied', 403) });
    expect((await failure(probeStorage({ client: denied.client, config: config(), self, log }))).reason).toBe(
      'StorageAccessDenied',
    );
    const left = fakeClient({ put: (n) => (n === 0 ? s3Error('PreconditionFailed', 412) : {}) });
    await probeStorage({ client: left.client, config: config(), self, log });
    expect(left.sent.map((s) => s.name)).toEqual([
      'ListObjectsV2',
      'GetObject',
      'GetObjectLockConfiguration',
      'PutObject',
      'DeleteObject',
      'PutObject',
      'DeleteObject',
    ]);
  });

  it('L4: removes a leftover probe object on the first 412 even when a put was refused for its checksum before', async () => {
    const checksumRefusal = Object.assign(
      new Error(
        'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters',
      ),
      { name: 'InvalidRequest', $metadata: { httpStatusCode: 400 } },
    );
    const c = fakeClient({
      lock: () => s3Error('AccessDenied', 403),
      put: (n) => (n === 0 ? checksumRefusal : n === 1 ? s3Error('PreconditionFailed', 412) : {}),
    });
    const r = await probeStorage({ client: c.client, config: config(), self, log });
    expect(r.success).toBe(true);
    expect(c.sent.map((s) => s.name).slice(3)).toEqual([
      'PutObject',
      'PutObject',
      'DeleteObject',
      'PutObject',
      'DeleteObject',
    ]);
    // A second 412 after the delete is a failure, not a loop.
    const again = fakeClient({ put: () => s3Error('PreconditionFailed', 412) });
    await failure(probeStorage({ client: again.client, config: config(), self, log }));
    expect(again.sent.filter((s) => s.name === 'PutObject')).toHaveLength(2);
  });

  it('a server without conditional writes is StorageConditionalWritesUnsupported', async () => {
    const { client } = fakeClient({ put: () => s3Error('NotImplemented', 501) });
    expect((await failure(probeStorage({ client, config: config(), self, log }))).reason).toBe(
      'StorageConditionalWritesUnsupported',
    );
  });

  it('writes with the schedule encryption', async () => {
    const { client, sent } = fakeClient();
    await probeStorage({
      client,
      config: config({ serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId: 'k-1' } }),
      self,
      log,
    });
    expect(sent.find((s) => s.name === 'PutObject')!.input).toMatchObject({
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'k-1',
    });
  });

  describe('with objectLock', () => {
    const locked = config({ objectLock: { mode: 'GOVERNANCE', retentionDays: 1 } });
    it('checks the bucket has Object Lock enabled', async () => {
      const { client } = fakeClient();
      const r = await probeStorage({ client, config: locked, self, log });
      expect(r).toMatchObject({
        objectLockEnabled: true,
        checks: ['list', 'owner', 'objectLock', 'write', 'delete'],
      });
    });
    it('fails for a bucket without it (every backup would be refused), before writing anything', async () => {
      const { client, sent } = fakeClient({
        lock: () => s3Error('ObjectLockConfigurationNotFoundError', 404),
      });
      const f = await failure(probeStorage({ client, config: locked, self, log }));
      expect(f.reason).toBe('StorageRequestInvalid');
      expect(f.message).toContain('does not have Object Lock enabled');
      expect(sent.map((s) => s.name)).toEqual(['ListObjectsV2', 'GetObject', 'GetObjectLockConfiguration']);
    });
    it('passes with a note when the configuration may not be read', async () => {
      const { client } = fakeClient({ lock: () => s3Error('AccessDenied', 403) });
      const r = await probeStorage({ client, config: locked, self, log });
      expect(r.success).toBe(true);
      expect(r.objectLockEnabled).toBeUndefined();
      expect(r.message).toContain('not readable');
    });
  });

  describe('checksums (H1: a bucket with default Object Lock retention refuses a put without one)', () => {
    const refuse = (input: Record<string, unknown>) =>
      input.ChecksumAlgorithm
        ? {}
        : Object.assign(
            new Error(
              'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters',
            ),
            {
              name: 'InvalidRequest',
              $metadata: { httpStatusCode: 400 },
            },
          );
    /** fakeClient, whose put refuses an un-checksummed write when `locked`. */
    const lockClient = (lock: () => unknown, locked: boolean) => {
      const f = fakeClient({ lock });
      const send = f.client.send.bind(f.client);
      const client = {
        send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
          if (locked && cmd.constructor.name === 'PutObjectCommand') {
            const r = refuse(cmd.input);
            if (r instanceof Error) {
              f.sent.push({ name: 'PutObject', input: cmd.input });
              throw r;
            }
          }
          return send(cmd as never);
        },
      } as unknown as S3Client;
      return { client, sent: f.sent };
    };

    it('sends CRC32 on its put into a bucket whose Object Lock is enabled without spec.objectLock', async () => {
      const { client, sent } = lockClient(
        () => ({ ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } }),
        true,
      );
      const r = await probeStorage({ client, config: config(), self, log });
      expect(r.success).toBe(true);
      expect(sent.filter((s) => s.name === 'PutObject').map((s) => s.input.ChecksumAlgorithm)).toEqual([
        'CRC32',
      ]);
    });

    it('when the configuration may not be read: no checksum first, then once more with one when refused for want of it', async () => {
      const { client, sent } = lockClient(() => s3Error('AccessDenied', 403), true);
      const r = await probeStorage({ client, config: config(), self, log });
      expect(r.success).toBe(true);
      expect(sent.filter((s) => s.name === 'PutObject').map((s) => s.input.ChecksumAlgorithm)).toEqual([
        undefined,
        'CRC32',
      ]);
    });

    it('sends none into a bucket without Object Lock', async () => {
      const { client, sent } = lockClient(() => s3Error('ObjectLockConfigurationNotFoundError', 404), false);
      await probeStorage({ client, config: config(), self, log });
      expect(sent.find((s) => s.name === 'PutObject')!.input).not.toHaveProperty('ChecksumAlgorithm');
    });
  });
});
