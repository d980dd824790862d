import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { RunnerFailure } from './failure.js';
import type { RunnerLog } from './log.js';
import type { ProbeStorageResult } from './result.js';
import { reasonOfS3Error, s3Failure, s3Location, type S3Config } from './s3-config.js';
import { isMissingChecksumRefusal, readBucketLock } from './s3-storage.js';
import { decideOwner, OWNER_OBJECT, type ForeignClusterAccess, type OwnerIdentity } from './storage-owner.js';
import { parseOwnerText } from './storage-owner-schema.js';
import { timing } from './termination-message.js';

/**
 * The object a probe writes and deletes under the prefix. Fixed (one key per prefix, never a backup: a
 * segment starting with `.` is no backup id), so probes never pile up objects. In a versioned bucket the plain
 * DELETE leaves a delete marker and one noncurrent version of this small object per probe, which the
 * NoncurrentVersionExpiration lifecycle rule of docs/backupschedule.md reclaims; under a default Object Lock
 * retention that version stays until its date like any other. The probe never writes with Object Lock headers
 * itself, so it never creates a version nobody may delete.
 */
export const PROBE_OBJECT = '.nxt-probe.json';

/** Each probe call's total time, its SDK retries included: a probe answers well within a minute. */
export const PROBE_CALL_TIMEOUT_MS = 15_000;

export interface ProbeOptions {
  client: Pick<S3Client, 'send'>;
  config: S3Config;
  /** Who the probe runs for (NXT_NAMESPACE, NXT_SCHEDULE_NAME): the owner object must name it. */
  self?: OwnerIdentity;
  /** spec.storage.s3.foreignCluster (NXT_FOREIGN_*): decided on as a backup would, never acted on. */
  foreign?: ForeignClusterAccess;
  log: RunnerLog;
  now?: () => Date;
  callTimeoutMs?: number;
}

const isMissing = (e: unknown) => {
  const err = e as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  if (err?.name === 'NoSuchBucket' || err?.Code === 'NoSuchBucket') return false;
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || err?.$metadata?.httpStatusCode === 404;
};
const isPreconditionFailed = (e: unknown) => {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    err?.name === 'PreconditionFailed' ||
    err?.name === 'ConditionalRequestConflict' ||
    err?.$metadata?.httpStatusCode === 412 ||
    err?.$metadata?.httpStatusCode === 409
  );
};
const isNotImplemented = (e: unknown) => {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NotImplemented' || err?.$metadata?.httpStatusCode === 501;
};

/**
 * Whether an S3 location works for a schedule, without a database and without writing anything a backup
 * uses: a listing of the prefix (bucket, endpoint, TLS, credentials, s3:ListBucket), the owner object read
 * only (another schedule's prefix is StorageOwnedByOther; a missing one is claimed by the first backup, never
 * here), a conditional PUT of PROBE_OBJECT with the schedule's encryption (s3:PutObject, KMS, If-None-Match
 * support) and its DELETE (s3:DeleteObject), and with objectLock the bucket's Object Lock configuration.
 * Throws a RunnerFailure with the S3 reason of the first check that fails.
 */
export async function probeStorage(o: ProbeOptions): Promise<ProbeStorageResult> {
  const now = o.now ?? (() => new Date());
  const started = now();
  const { client, config } = o;
  const location = s3Location(config);
  const Bucket = config.bucket;
  const timeoutMs = o.callTimeoutMs ?? PROBE_CALL_TIMEOUT_MS;
  const bounded = () => ({ abortSignal: AbortSignal.timeout(timeoutMs) });
  const checks: string[] = [];
  const notes: string[] = [];
  const call = async <T>(doing: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw s3Failure(e, `${doing} in ${location}`);
    }
  };

  // 1. The bucket exists, is reachable and the credentials may list the prefix (the error body tells a
  // missing bucket, a wrong key and a denied listing apart, which a HEAD of the bucket does not).
  await call('listing the prefix', () =>
    client.send(new ListObjectsV2Command({ Bucket, Prefix: config.prefix, MaxKeys: 1 }), bounded()),
  );
  checks.push('list');

  // 2. The prefix's owner object, read only: the first backup claims the prefix, the probe never does.
  let owner: string | undefined;
  const ownerKey = config.prefix + OWNER_OBJECT;
  let ownerText: string | undefined;
  try {
    const r = await client.send(new GetObjectCommand({ Bucket, Key: ownerKey }), bounded());
    ownerText = (await r.Body?.transformToString('utf8')) ?? '';
  } catch (e) {
    if (!isMissing(e)) throw s3Failure(e, `reading ${ownerKey} in ${location}`);
  }
  const stored = ownerText !== undefined ? parseOwnerText(ownerText, location) : undefined;
  if (stored) {
    owner = `${stored.namespace}/${stored.name}`;
    notes.push(`owned by ${owner}${stored.clusterId ? ` of cluster ${stored.clusterId}` : ''}`);
  }
  if (o.self) {
    // What a backup would decide, with or without an owner object (StorageOwnedByOther, StorageOwnedByOtherCluster
    // thrown alike: a standby's backup refuses an empty prefix too); a write it would make (a claim, this
    // cluster's id added, a take-over) is only noted: the probe never writes the owner object.
    const decision = decideOwner(stored, o.self, 'write', o.foreign, location, now());
    if (stored && decision.action !== 'use')
      notes.push(`the first backup will update the owner object (${decision.action})`);
    if ('note' in decision && decision.note) notes.push(decision.note);
  }
  if (!stored) notes.push('no owner object yet (the first backup claims the prefix)');
  checks.push('owner');

  // 3. Object Lock, when the schedule asks for it: the bucket must have it enabled, or every backup fails. Read
  // before the probe writes anything, so a bucket that would refuse every backup gets no probe object either.
  let objectLockEnabled: boolean | undefined;
  if (config.objectLock) {
    try {
      const r = await client.send(new GetObjectLockConfigurationCommand({ Bucket }), bounded());
      objectLockEnabled = r.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === 'ObjectLockConfigurationNotFoundError') objectLockEnabled = false;
      else if (reasonOfS3Error(e) === 'StorageAccessDenied') {
        // s3:GetBucketObjectLockConfiguration is not among the runner's permissions: not a failure.
        o.log('warn', 'probe.object-lock-unreadable', { error: (e as Error).message });
        notes.push('Object Lock configuration not readable (s3:GetBucketObjectLockConfiguration denied)');
      } else throw s3Failure(e, `reading the Object Lock configuration of ${location}`);
    }
    if (objectLockEnabled === false)
      throw new RunnerFailure(
        'StorageRequestInvalid',
        `${location}: spec.storage.s3.objectLock is set, but bucket ${Bucket} does not have Object Lock enabled, ` +
          'so every backup would be refused; create the bucket with Object Lock (it cannot be added to most existing buckets) or remove objectLock',
      );
    if (objectLockEnabled) {
      checks.push('objectLock');
      notes.push('Object Lock enabled');
    }
  }

  // 4. A conditional write and a delete of the probe object, with the schedule's encryption.
  const probeKey = config.prefix + PROBE_OBJECT;
  const sse = config.serverSideEncryption;
  // A bucket with Object Lock refuses a put without a checksum: the runner's storage decides the same way.
  const lock = config.objectLock ? undefined : await readBucketLock(client, Bucket, location, bounded());
  if (lock?.warning) o.log('warn', 'probe.object-lock-unknown', { message: lock.warning });
  let checksum = Boolean(config.objectLock) || lock?.lock === 'enabled';
  const put = () =>
    client.send(
      new PutObjectCommand({
        Bucket,
        Key: probeKey,
        Body: JSON.stringify({ probe: true, at: now().toISOString() }) + '\n',
        ContentType: 'application/json',
        IfNoneMatch: '*',
        ...(checksum ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
        ...(sse
          ? { ServerSideEncryption: sse.algorithm, ...(sse.kmsKeyId ? { SSEKMSKeyId: sse.kmsKeyId } : {}) }
          : {}),
      }),
      bounded(),
    );
  const del = () =>
    call(`deleting ${probeKey}`, () =>
      client.send(new DeleteObjectCommand({ Bucket, Key: probeKey }), bounded()),
    );
  let leftoverDeleted = false;
  for (;;) {
    try {
      await put();
      break;
    } catch (e) {
      if (isNotImplemented(e))
        throw new RunnerFailure(
          'StorageConditionalWritesUnsupported',
          `writing ${probeKey} in ${location}: the server does not implement conditional writes (If-None-Match: *, HTTP 501), which the ` +
            'prefix owner object and restore fences need; use a server that supports them (AWS S3, recent MinIO, SeaweedFS)',
        );
      if (!checksum && isMissingChecksumRefusal(e)) {
        checksum = true;
        continue;
      }
      // Left by an earlier probe whose delete did not happen: remove it and write again, once (also when the
      // first put was refused for a missing checksum).
      if (isPreconditionFailed(e) && !leftoverDeleted) {
        leftoverDeleted = true;
        await del();
        continue;
      }
      throw s3Failure(e, `writing ${probeKey} in ${location}`);
    }
  }
  checks.push('write');
  await del();
  checks.push('delete');

  const message = `${location}: listed, wrote and deleted ${PROBE_OBJECT}; ${notes.join('; ')}`;
  o.log('info', 'probe.done', { location, checks });
  return {
    resultVersion: 1,
    operation: 'probe-storage',
    ...timing(started, now()),
    success: true,
    message,
    location,
    checks,
    ...(owner ? { owner } : {}),
    ...(objectLockEnabled !== undefined ? { objectLockEnabled } : {}),
  };
}
