import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { PassThrough, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { validateBackupId } from './backup-id.js';
import { RunnerFailure } from './failure.js';
import { silentLog, type RunnerLog } from './log.js';
import type { ArchiveIdentity, BackupManifest } from './manifest.js';
import { isPinLive, PIN_HOLDER_PATTERN, type BackupPin, type StoredPin } from './pins.js';
import { reasonOfS3Error, s3Failure, s3Location, type S3Config } from './s3-config.js';
import {
  decideOwner,
  OWNER_OBJECT,
  type ForeignClusterAccess,
  type OwnerAccess,
  type OwnerIdentity,
} from './storage-owner.js';
import { parseOwnerText } from './storage-owner-schema.js';
import {
  BackupNotFoundError,
  parseManifestText,
  parsePinText,
  RESTORES_DIR,
  type BackupStorage,
  type BackupWriter,
  type Leftovers,
  type StoredBackup,
  type WriterOptions,
} from './storage.js';
import { planUpload, S3_MIN_PART_BYTES, S3_QUEUE_SIZE, tooManyPartsFailure } from './upload-parts.js';

/**
 * The smallest multipart part, and parts in flight. The part size grows with the database (planUpload in
 * upload-parts.ts: 10 000 parts of 5 MiB hold 48 GiB only), and the upload buffers at most PART_BUFFERS parts,
 * so the runner's memory stays flat whatever the dump's size.
 */
export const S3_PART_BYTES = S3_MIN_PART_BYTES;
export { S3_QUEUE_SIZE };
/** Attempts per request (the SDK's standard retry: throttling, 5xx, timeouts and resets only, with backoff). */
const MAX_ATTEMPTS = 5;
const CONNECT_TIMEOUT_MS = 10_000;
/** A socket idle this long fails the request (the SDK retries it); a stream being read is never idle that long. */
const SOCKET_TIMEOUT_MS = 120_000;
const MAX_LIST_PAGES = 1000;
/**
 * Total time of one non-streaming call, its retries included (the socket timeout only catches a socket idle
 * for 2 minutes, so a server trickling bytes could hold a call forever). Body streams keep the idle timeout.
 */
export const S3_CALL_TIMEOUT_MS = 30_000;
const MARKER_STALE_MS = 10 * 60_000;
const PIN_SETTLE_MS = 10_000;

const DUMP = '.dump';
const MANIFEST = '.manifest.json';
const REMOVING = '.manifest.json.removing';
const PINS_DIR = '.pins';

/** The object is missing (never the bucket: NoSuchBucket is StorageBucketNotFound, not BackupNotFound). */
const isMissing = (e: unknown) => {
  const err = e as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  if (err?.name === 'NoSuchBucket' || err?.Code === 'NoSuchBucket') return false;
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || err?.$metadata?.httpStatusCode === 404;
};
/** A server without conditional writes (501 NotImplemented to If-None-Match): the same on every retry. */
const conditionalWritesUnsupported = (e: unknown, doing: string) => {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (err?.name !== 'NotImplemented' && err?.$metadata?.httpStatusCode !== 501) return undefined;
  return new RunnerFailure(
    'StorageConditionalWritesUnsupported',
    `${doing}: the server does not implement conditional writes (If-None-Match: *, HTTP 501), which the ` +
      'prefix owner object and restore fences need; use a server that supports them (AWS S3, recent MinIO, SeaweedFS)',
  );
};
/** Answers to GetObjectLockConfiguration meaning "this bucket has no Object Lock" (or the server has none). */
const LOCK_CONFIG_ABSENT = new Set([
  'ObjectLockConfigurationNotFoundError',
  'NotImplemented',
  'MethodNotAllowed',
  'InvalidRequest',
  'InvalidArgument',
]);
/**
 * Reasons of a failed GetObjectLockConfiguration that every other call would fail with as well (unreachable,
 * untrusted certificate, bad or missing credentials, wrong region, no such bucket): the command fails with it.
 * Anything else (AccessDenied, a 500 after retries, a 409, an unparseable answer, throttling, a timeout of this
 * one call) is no reason to fail a backup: the lock state is unknown, and a put the server then refuses for
 * want of a checksum is sent again with one (withChecksum).
 */
const LOCK_CONFIG_FATAL = new Set<string>([
  'StorageCertificateUntrusted',
  'StorageBucketNotFound',
  'StorageRegionMismatch',
  'StorageCredentialsUnavailable',
  'StorageCredentialsInvalid',
]);
/** Transport failures (no answer at all), fatal unless the call was only cut off by its own timeout. */
const TRANSPORT_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** What a bucket's Object Lock configuration says: enabled, none, or unknown (the read failed harmlessly). */
export type BucketLock = 'enabled' | 'none' | 'unknown';

/**
 * Reads the bucket's Object Lock configuration (GetObjectLockConfiguration) with the rules of LOCK_CONFIG_FATAL:
 * a failure other commands would hit too throws (as a RunnerFailure with its reason); any other failure gives
 * 'unknown' and a warning to log. Shared by the runner's storage and the storage probe.
 */
export async function readBucketLock(
  client: Pick<S3Client, 'send'>,
  bucket: string,
  location: string,
  options?: { abortSignal?: AbortSignal },
): Promise<{ lock: BucketLock; warning?: string }> {
  try {
    const r = await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }), options);
    return { lock: r.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled' ? 'enabled' : 'none' };
  } catch (e) {
    const err = e as { name?: string; Code?: string; code?: string; $metadata?: { httpStatusCode?: number } };
    if (LOCK_CONFIG_ABSENT.has(err?.name ?? '') || LOCK_CONFIG_ABSENT.has(err?.Code ?? ''))
      return { lock: 'none' };
    const doing = `reading the Object Lock configuration of bucket ${bucket} in ${location}`;
    const reason = reasonOfS3Error(e);
    const status = err?.$metadata?.httpStatusCode;
    const transport =
      status === undefined &&
      [err?.name, err?.code, (err as { cause?: { code?: string } })?.cause?.code].some(
        (n) => n !== undefined && TRANSPORT_ERRORS.has(n),
      );
    if (LOCK_CONFIG_FATAL.has(reason) || transport) throw s3Failure(e, doing);
    if ([400, 404, 405, 501].includes(status ?? 0) && reason !== 'StorageAccessDenied')
      return { lock: 'none' };
    return {
      lock: 'unknown',
      warning:
        `${s3Failure(e, doing).message.slice(0, 600)}; going on as if the bucket had no Object Lock: a put ` +
        'refused for want of a checksum is sent again with one',
    };
  }
}

/**
 * A put refused because it carries no Content-MD5 or x-amz-checksum-* header: what AWS answers (400
 * InvalidRequest) to a PutObject or UploadPart into a bucket with Object Lock without one, and MinIO's
 * MissingContentMD5.
 */
export function isMissingChecksumRefusal(e: unknown): boolean {
  const err = e as {
    name?: string;
    Code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  if (err?.name === 'MissingContentMD5' || err?.Code === 'MissingContentMD5') return true;
  const status = err?.$metadata?.httpStatusCode;
  return (status === 400 || status === undefined) && /Content-MD5|x-amz-checksum/i.test(err?.message ?? '');
}

/**
 * The same put again with a checksum: a CRC32 (the SDK computes it) on a PutObject; Content-MD5 on an
 * UploadPart, whose multipart upload was created without a checksum algorithm (a part with a CRC32 would
 * not match it). Undefined for any other command.
 */
export function withChecksum(cmd: unknown): PutObjectCommand | UploadPartCommand | undefined {
  if (cmd instanceof PutObjectCommand)
    return new PutObjectCommand({ ...cmd.input, ChecksumAlgorithm: 'CRC32' });
  if (cmd instanceof UploadPartCommand) {
    const body = cmd.input.Body;
    const bytes =
      typeof body === 'string' ? Buffer.from(body) : body instanceof Uint8Array ? body : undefined;
    if (!bytes) return undefined;
    return new UploadPartCommand({
      ...cmd.input,
      ContentMD5: createHash('md5').update(bytes).digest('base64'),
    });
  }
  return undefined;
}
const isPreconditionFailed = (e: unknown) => {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'PreconditionFailed' || err?.$metadata?.httpStatusCode === 412;
};

/** An S3 client for the config, with bounded connects, idle sockets and retries; credentials from the SDK chain. */
export async function createS3Client(c: S3Config): Promise<S3Client> {
  const ca = c.caFile ? await readFile(c.caFile, 'utf8') : undefined;
  return new S3Client({
    region: c.region,
    ...(c.endpoint ? { endpoint: c.endpoint } : {}),
    forcePathStyle: c.forcePathStyle,
    // The runner's env, not process.env: the same whether it runs in a pod or in-process.
    ...(c.credentials ? { credentials: c.credentials } : {}),
    maxAttempts: MAX_ATTEMPTS,
    // S3-compatible servers (GCS interoperability, older MinIO) reject the SDK's default CRC checksums on
    // every request; the archive's sha256 is checked end to end by the runner instead. A bucket with Object
    // Lock gets a CRC32 on every put all the same (S3BackupStorage.checksumParams): AWS requires one there.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      socketTimeout: SOCKET_TIMEOUT_MS,
      ...(ca ? { httpsAgent: new Agent({ ca, keepAlive: true }) } : {}),
    },
  });
}

/**
 * Backups in a bucket under a prefix: `<id>.dump` (written by one multipart upload, visible only once it is
 * complete), `<id>.manifest.json` (written after the dump: a backup counts only when its manifest exists),
 * `<id>.manifest.json.removing` (a prune's removal marker), pins under `.pins/<id>/<holder>/` and restore
 * fences under `.restores/`. The same contract as the filesystem, built from whole-object puts (atomic in
 * S3) instead of renames.
 */
export class S3BackupStorage implements BackupStorage {
  readonly location: string;
  /** Multipart parts are sized from the database (upload-parts.ts). */
  readonly usesDatabaseSize = true;
  private readonly bucket: string;
  private readonly prefix: string;
  /** ETag of the dump as first read: a later read of the same id must get the same object (If-Match). */
  private readonly readEtags = new Map<string, string>();
  /** The bucket's Object Lock configuration, read once (GetObjectLockConfiguration) at the first put. */
  private bucketLock?: Promise<BucketLock>;
  /** A put was refused for want of a checksum: every later one carries one. */
  private checksumRequired = false;

  constructor(
    private readonly client: S3Client,
    private readonly config: S3Config,
    private readonly now: () => Date = () => new Date(),
    private readonly callTimeoutMs = S3_CALL_TIMEOUT_MS,
    private readonly log: RunnerLog = silentLog,
  ) {
    this.bucket = config.bucket;
    this.prefix = config.prefix;
    this.location = s3Location(config);
  }

  private key(id: string, suffix: string): string {
    return this.prefix + validateBackupId(id) + suffix;
  }

  private pinDir(id: string, holder?: string): string {
    if (holder !== undefined && !PIN_HOLDER_PATTERN.test(holder))
      throw new Error(`invalid pin holder ${JSON.stringify(holder)}`);
    return `${this.prefix}${PINS_DIR}/${validateBackupId(id)}/${holder === undefined ? '' : `${holder}/`}`;
  }

  /**
   * The schedule's server-side encryption: on EVERY object the runner writes (dump, manifests, removal
   * markers, pins, the owner object, restore fences), so a bucket policy that requires it never refuses one.
   */
  private encryptionParams(): Partial<PutObjectCommandInput> {
    const sse = this.config.serverSideEncryption;
    return sse
      ? { ServerSideEncryption: sse.algorithm, ...(sse.kmsKeyId ? { SSEKMSKeyId: sse.kmsKeyId } : {}) }
      : {};
  }

  /** Encryption and Object Lock of every object that makes a backup (dump and manifest), and its checksum. */
  private async backupObjectParams(): Promise<Partial<PutObjectCommandInput>> {
    const lock = this.config.objectLock;
    return {
      ...this.encryptionParams(),
      ...(await this.checksumParams()),
      ...(lock
        ? {
            ObjectLockMode: lock.mode,
            ObjectLockRetainUntilDate: new Date(this.now().getTime() + lock.retentionDays * 86_400_000),
          }
        : {}),
    };
  }

  /**
   * A CRC32 checksum on EVERY put (and Content-MD5 on each part of the dump's upload) into a bucket with
   * Object Lock: AWS refuses a PutObject or UploadPart without Content-MD5 or an x-amz-checksum-* header there,
   * whether the retention comes from spec.storage.s3.objectLock or from the bucket's default retention rule.
   * None elsewhere, nor when the configuration could not be read (readBucketLock: 'unknown'): S3-compatible
   * servers such as GCS interoperability refuse the SDK's checksums. A put refused for want of one is sent
   * again with one all the same (checksumClient), and every later put carries one.
   */
  private async checksumParams(): Promise<Partial<PutObjectCommandInput>> {
    return (await this.needsChecksum()) ? { ChecksumAlgorithm: 'CRC32' } : {};
  }

  private async needsChecksum(): Promise<boolean> {
    if (this.config.objectLock || this.checksumRequired) return true;
    this.bucketLock ??= this.readBucketLock();
    return (await this.bucketLock) === 'enabled';
  }

  /** readBucketLock, its warning logged; a failure is not remembered: the next put asks again. */
  private readBucketLock(): Promise<BucketLock> {
    const p = readBucketLock(this.client, this.bucket, this.location, this.bounded()).then((r) => {
      if (r.warning) this.log('warn', 'storage.object-lock-unknown', { message: r.warning });
      return r.lock;
    });
    p.catch(() => {
      if (this.bucketLock === p) this.bucketLock = undefined;
    });
    return p;
  }

  /**
   * The client for puts: a PutObject or UploadPart the server refuses for want of a checksum is sent once
   * more with one (withChecksum), and from then on every put of this storage carries one.
   */
  private checksumClient(): S3Client {
    const send = async (cmd: unknown, ...rest: unknown[]): Promise<unknown> => {
      const sendRaw = (c: unknown) =>
        (this.client.send as (c: unknown, ...r: unknown[]) => Promise<unknown>).call(this.client, c, ...rest);
      const first =
        this.checksumRequired && cmd instanceof UploadPartCommand && !cmd.input.ChecksumAlgorithm
          ? (withChecksum(cmd) ?? cmd)
          : cmd;
      try {
        return await sendRaw(first);
      } catch (e) {
        const again = first === cmd && isMissingChecksumRefusal(e) ? withChecksum(cmd) : undefined;
        if (!again) throw e;
        if (!this.checksumRequired)
          this.log('warn', 'storage.checksum-required', {
            message: `${this.location} refused a put without a checksum (Object Lock): sending every put with one`,
          });
        this.checksumRequired = true;
        return sendRaw(again);
      }
    };
    return new Proxy(this.client, {
      get: (target, prop, receiver) => (prop === 'send' ? send : Reflect.get(target, prop, receiver)),
    });
  }

  /** Send options bounding a non-streaming call's total time (never used for a body stream read). */
  private bounded() {
    return { abortSignal: AbortSignal.timeout(this.callTimeoutMs) };
  }

  private async call<T>(doing: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw s3Failure(e, `${doing} in ${this.location}`);
    }
  }

  private async head(key: string, versionId?: string) {
    try {
      return await this.client.send(
        new HeadObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(versionId ? { VersionId: versionId } : {}),
        }),
        this.bounded(),
      );
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw s3Failure(e, `reading ${key} in ${this.location}`);
    }
  }

  /** An object's text, time and ETag (the condition of a rewrite); undefined when there is none. */
  private async getText(
    key: string,
  ): Promise<{ text: string; lastModified: Date; etag?: string } | undefined> {
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key }),
        this.bounded(),
      );
      return {
        text: (await r.Body?.transformToString('utf8')) ?? '',
        lastModified: r.LastModified ?? this.now(),
        ...(r.ETag ? { etag: r.ETag } : {}),
      };
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw s3Failure(e, `reading ${key} in ${this.location}`);
    }
  }

  private async putText(key: string, text: string, extra: Partial<PutObjectCommandInput> = {}) {
    const checksum = await this.checksumParams();
    return this.call(`writing ${key}`, () =>
      this.checksumClient().send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: text,
          ContentType: 'application/json',
          ...this.encryptionParams(),
          ...checksum,
          ...extra,
        }),
        this.bounded(),
      ),
    );
  }

  private async deleteKey(key: string): Promise<void> {
    await this.call(`deleting ${key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), this.bounded()),
    );
  }

  /** Every key under `prefix` (one level when `delimited`), with its modification time; bounded pages. */
  private async listKeys(prefix: string, delimited: boolean): Promise<{ key: string; lastModified: Date }[]> {
    const out: { key: string; lastModified: Date }[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const r = await this.call(`listing ${prefix || '/'}`, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(delimited ? { Delimiter: '/' } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
          this.bounded(),
        ),
      );
      for (const o of r.Contents ?? [])
        if (o.Key) out.push({ key: o.Key, lastModified: o.LastModified ?? this.now() });
      if (!r.IsTruncated || !r.NextContinuationToken) return out;
      token = r.NextContinuationToken;
    }
    throw new RunnerFailure(
      'StorageFailed',
      `listing ${this.location}: more than ${MAX_LIST_PAGES} pages of keys`,
    );
  }

  /** Multipart uploads in progress for `<id>.dump` keys directly under the prefix (one id, or all). */
  private async listUploads(
    id?: string,
  ): Promise<{ id: string; key: string; uploadId: string; initiated: Date }[]> {
    const out: { id: string; key: string; uploadId: string; initiated: Date }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const r = await this.call('listing multipart uploads', () =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: id === undefined ? this.prefix : this.key(id, DUMP),
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
          this.bounded(),
        ),
      );
      for (const u of r.Uploads ?? []) {
        const upId = this.idOf(u.Key ?? '', DUMP);
        if (upId && u.UploadId && (id === undefined || upId === id))
          out.push({ id: upId, key: u.Key!, uploadId: u.UploadId, initiated: u.Initiated ?? this.now() });
      }
      if (!r.IsTruncated) return out;
      keyMarker = r.NextKeyMarker;
      uploadIdMarker = r.NextUploadIdMarker;
      if (!keyMarker && !uploadIdMarker) return out;
    }
    throw new RunnerFailure(
      'StorageFailed',
      `listing multipart uploads in ${this.location}: more than ${MAX_LIST_PAGES} pages`,
    );
  }

  /** The backup id of a key `<prefix><id><suffix>`; undefined for anything we did not write. */
  private idOf(key: string, suffix: string): string | undefined {
    if (!key.startsWith(this.prefix) || !key.endsWith(suffix)) return undefined;
    const id = key.slice(this.prefix.length, key.length - suffix.length);
    try {
      return validateBackupId(id);
    } catch {
      return undefined;
    }
  }

  private async abortUpload(u: { key: string; uploadId: string }): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.key, UploadId: u.uploadId }),
        this.bounded(),
      );
    } catch (e) {
      if (isMissing(e) || (e as { name?: string }).name === 'NoSuchUpload') return; // aborted meanwhile
      throw s3Failure(e, `aborting the multipart upload of ${u.key} in ${this.location}`);
    }
  }

  async createWriter(id: string, opts: WriterOptions = {}): Promise<BackupWriter> {
    const key = this.key(id, DUMP);
    const plan = planUpload(opts.databaseBytes, this.config.memoryLimitBytes);
    if (plan.warning) this.log('warn', 'storage.parts-may-not-fit', { id, message: plan.warning });
    // A crashed attempt with the same id (a retried Job) left its upload: it will never be completed.
    for (const u of await this.listUploads(id)) await this.abortUpload(u);
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    const upload = new Upload({
      client: this.checksumClient(),
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: 'application/octet-stream',
        ...(await this.backupObjectParams()),
      },
      partSize: plan.partBytes,
      queueSize: S3_QUEUE_SIZE,
      leavePartsOnError: false,
    });
    // Started now: it consumes the stream as pg_dump writes it. A failed upload destroys the stream, so the
    // pipeline feeding it fails instead of waiting on backpressure forever.
    const done = upload.done().then(
      (out) => ({ out: out as { ETag?: string; VersionId?: string } }),
      (e: unknown) => {
        const failure = tooManyPartsFailure(e, plan) ?? s3Failure(e, `uploading ${key} to ${this.location}`);
        body.destroy(failure);
        return { failure };
      },
    );
    let aborted = false;
    return {
      stream: body,
      commit: async () => {
        if (!body.writableFinished || body.errored)
          throw new Error(`commit of backup ${id} before its stream finished`);
        const r = await done;
        if ('failure' in r) throw r.failure;
        // The object this upload created (its version, in a versioned bucket), not whatever the key holds now.
        const versionId = r.out.VersionId && r.out.VersionId !== 'null' ? r.out.VersionId : undefined;
        const h = await this.head(key, versionId);
        if (!h)
          throw new RunnerFailure(
            'StorageFailed',
            `${key} is missing in ${this.location} right after its upload`,
          );
        const etag = r.out.ETag ?? h.ETag;
        if (r.out.ETag && h.ETag && r.out.ETag !== h.ETag)
          throw new RunnerFailure(
            'ArchiveReplaced',
            `${key} in ${this.location} was replaced right after its upload (ETag ${h.ETag}, uploaded ${r.out.ETag})`,
          );
        const archive = {
          ...(etag ? { etag: etag.slice(0, 256) } : {}),
          ...(versionId && versionId.length <= 1024 ? { versionId } : {}),
        };
        return { bytes: h.ContentLength ?? 0, ...(etag || versionId ? { archive } : {}) };
      },
      abort: async () => {
        if (aborted) return;
        aborted = true;
        body.destroy();
        await upload.abort().catch(() => {});
        await done;
        // Uploads another attempt left under this key. An upload that already completed is not among them
        // (listUploads sees only unfinished ones): its object stays, without a manifest, until prune removes
        // it as a leftover (removeLeftovers).
        for (const u of await this.listUploads(id).catch(() => [])) await this.abortUpload(u).catch(() => {});
      },
    };
  }

  /**
   * Reads the dump. With the manifest's `archive`: exactly that object (its VersionId in a versioned bucket,
   * If-Match on its ETag), refusing one that replaced it (ArchiveReplaced). Without (a manifest from before
   * it was recorded): the ETag of the first read in this process pins later ones, as before.
   */
  async read(id: string, archive?: ArchiveIdentity): Promise<Readable> {
    const key = this.key(id, DUMP);
    const etag = archive?.etag ?? this.readEtags.get(id);
    const versionId = archive?.versionId;
    try {
      const r = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(etag ? { IfMatch: etag } : {}),
          ...(versionId ? { VersionId: versionId } : {}),
        }),
      );
      if (r.ETag && !etag) this.readEtags.set(id, r.ETag);
      return r.Body as Readable;
    } catch (e) {
      if (versionId && (e as { name?: string }).name === 'NoSuchVersion')
        throw new RunnerFailure(
          'ArchiveReplaced',
          `backup ${id} in ${this.location}: the version its manifest names (${versionId.slice(0, 128)}) is gone`,
        );
      if (isMissing(e)) throw new BackupNotFoundError(id, this.location);
      if (isPreconditionFailed(e))
        throw new RunnerFailure(
          'ArchiveReplaced',
          archive?.etag
            ? `backup ${id} in ${this.location} was replaced after its manifest was written (the manifest names ETag ${archive.etag.slice(0, 80)})`
            : `backup ${id} in ${this.location} was replaced after it was verified`,
        );
      throw s3Failure(e, `reading ${key} in ${this.location}`);
    }
  }

  /** No seekable file: restores stream the object into one pg_restore. */
  async localFile(id: string): Promise<string | undefined> {
    if (!(await this.hasDump(id))) throw new BackupNotFoundError(id, this.location);
    return undefined;
  }

  async hasDump(id: string): Promise<boolean> {
    return (await this.head(this.key(id, DUMP))) !== undefined;
  }

  async list(): Promise<StoredBackup[]> {
    const byId = new Map<string, StoredBackup>();
    for (const { key } of await this.listKeys(this.prefix, true)) {
      const [id, field] = this.idOf(key, DUMP)
        ? [this.idOf(key, DUMP), 'hasDump' as const]
        : [this.idOf(key, MANIFEST), 'hasManifest' as const];
      if (!id) continue;
      const b = byId.get(id) ?? { id, hasDump: false, hasManifest: false };
      b[field] = true;
      byId.set(id, b);
    }
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  async remove(id: string): Promise<void> {
    await this.deleteKey(this.key(id, MANIFEST));
    await this.deleteKey(this.key(id, REMOVING));
    await this.deleteKey(this.key(id, DUMP));
    for (const u of await this.listUploads(id)) await this.abortUpload(u);
    for (const { key } of await this.listKeys(this.pinDir(id), false)) await this.deleteKey(key);
  }

  /** Copies the manifest to the marker, then deletes it: from then on nobody can start using the backup. */
  async markForRemoval(id: string): Promise<boolean> {
    const m = await this.getText(this.key(id, MANIFEST));
    if (!m) return false;
    await this.putText(this.key(id, REMOVING), m.text);
    await this.deleteKey(this.key(id, MANIFEST));
    return true;
  }

  async unmarkForRemoval(id: string): Promise<void> {
    const m = await this.getText(this.key(id, REMOVING));
    if (!m) throw new Error(`backup ${id} has no removal marker in ${this.location}`);
    await this.putText(this.key(id, MANIFEST), m.text, await this.backupObjectParams());
    await this.deleteKey(this.key(id, REMOVING));
  }

  /**
   * A pin is an object of its own per write (`.pins/<id>/<holder>/<ms>-<hex>.json`): a renewal adds a new one
   * and then removes the holder's older ones, so unpinIfExpired, which deletes only objects it judged
   * expired, can never delete a renewal.
   */
  async pin(pin: BackupPin): Promise<void> {
    const dir = this.pinDir(pin.id, pin.holder);
    const key = `${dir}${String(this.now().getTime()).padStart(14, '0')}-${randomBytes(4).toString('hex')}.json`;
    await this.putText(key, JSON.stringify(pin, null, 2) + '\n');
    for (const o of await this.listKeys(dir, false)) if (o.key !== key) await this.deleteKey(o.key);
    // As on a volume: a prune that hid the manifest before the pin landed re-checks pins next and either
    // backs off or removes the backup; both take milliseconds.
    const deadline = Date.now() + PIN_SETTLE_MS;
    while ((await this.head(this.key(pin.id, REMOVING))) && Date.now() < deadline) await sleep(50);
  }

  async unpin(id: string, holder: string): Promise<void> {
    for (const o of await this.listKeys(this.pinDir(id, holder), false)) await this.deleteKey(o.key);
  }

  async unpinIfExpired(id: string, holder: string, now: Date): Promise<boolean> {
    let removed = false;
    for (const p of await this.pinsIn(this.pinDir(id, holder))) {
      if (isPinLive(p.pin, now)) continue;
      await this.deleteKey(p.key);
      removed = true;
    }
    return removed;
  }

  private async pinsIn(dir: string): Promise<{ key: string; pin: StoredPin }[]> {
    const out: { key: string; pin: StoredPin }[] = [];
    for (const o of await this.listKeys(dir, false)) {
      const rest = o.key.slice(this.prefix.length + PINS_DIR.length + 1).split('/');
      if (rest.length !== 3 || !rest[2]!.endsWith('.json')) continue;
      const [id, holder] = rest as [string, string];
      if (!PIN_HOLDER_PATTERN.test(holder)) continue;
      try {
        validateBackupId(id);
      } catch {
        continue;
      }
      const got = await this.getText(o.key);
      if (!got) continue; // unpinned meanwhile
      const pin = await parsePinText(got.text, id, holder);
      out.push({ key: o.key, pin: { id, holder, modifiedAt: got.lastModified, ...(pin ? { pin } : {}) } });
    }
    return out;
  }

  async listPins(id?: string): Promise<StoredPin[]> {
    const dir = id === undefined ? `${this.prefix}${PINS_DIR}/` : this.pinDir(id);
    return (await this.pinsIn(dir))
      .map((p) => p.pin)
      .sort((a, b) => a.id.localeCompare(b.id) || a.holder.localeCompare(b.holder));
  }

  /**
   * Aborts multipart uploads (dumps of interrupted runs, invisible to every listing) started more than
   * `staleAfterMs` ago, deletes dumps older than that with neither a manifest nor a removal marker nor an open
   * upload (a runner killed between CompleteMultipartUpload and its manifest, or a crashed remove: no
   * selection ever picks them), and puts back manifests a crashed prune hid more than `markerStaleAfterMs` ago.
   */
  async removeLeftovers(
    now: Date,
    staleAfterMs: number,
    markerStaleAfterMs = MARKER_STALE_MS,
  ): Promise<Leftovers> {
    const out: Leftovers = { partials: [], orphanDumps: [], tempFiles: 0, restoredManifests: [] };
    const uploads = await this.listUploads();
    for (const u of uploads) {
      if (now.getTime() - u.initiated.getTime() <= staleAfterMs) continue;
      await this.abortUpload(u);
      out.partials.push(u.id);
    }
    const keys = await this.listKeys(this.prefix, true);
    const names = new Set(keys.map((o) => o.key));
    const uploading = new Set(uploads.map((u) => u.id));
    for (const o of keys) {
      const id = this.idOf(o.key, DUMP);
      if (!id || now.getTime() - o.lastModified.getTime() <= staleAfterMs || uploading.has(id)) continue;
      if (names.has(this.key(id, MANIFEST)) || names.has(this.key(id, REMOVING))) continue;
      if ((await this.listPins(id)).some((p) => isPinLive(p, now))) continue;
      // Judged again as it is removed: a manifest written since the listing keeps the dump.
      if (await this.head(this.key(id, MANIFEST))) continue;
      await this.deleteKey(o.key);
      out.orphanDumps.push(id);
    }
    for (const o of keys) {
      const id = this.idOf(o.key, REMOVING);
      if (!id || now.getTime() - o.lastModified.getTime() <= markerStaleAfterMs) continue;
      if (!(await this.head(this.key(id, MANIFEST)))) {
        const m = await this.getText(o.key);
        if (m) await this.putText(this.key(id, MANIFEST), m.text, await this.backupObjectParams());
        out.restoredManifests.push(id);
      }
      await this.deleteKey(o.key);
    }
    out.partials = [...new Set(out.partials)].sort();
    out.orphanDumps.sort();
    out.restoredManifests.sort();
    return out;
  }

  async readManifest(id: string): Promise<BackupManifest | undefined> {
    const got = await this.getText(this.key(id, MANIFEST));
    return got ? parseManifestText(id, got.text) : undefined;
  }

  async writeManifest(manifest: BackupManifest): Promise<void> {
    const { id } = manifest;
    if (!(await this.hasDump(id))) throw new BackupNotFoundError(id, this.location);
    await this.putText(
      this.key(id, MANIFEST),
      JSON.stringify(manifest, null, 2) + '\n',
      await this.backupObjectParams(),
    );
  }

  /**
   * The restore fence: a HEAD catches a retried Job on any server, and the put's If-None-Match: * makes two
   * concurrent claims exclusive where the server supports conditional writes (AWS S3, recent MinIO).
   */
  async claimRestore(planUid: string, record: object): Promise<boolean> {
    if (!/^[A-Za-z0-9-]{1,128}$/.test(planUid))
      throw new Error(`invalid plan UID ${JSON.stringify(planUid)}`);
    const key = `${this.prefix}${RESTORES_DIR}/${planUid}`;
    if (await this.head(key)) return false;
    const checksum = await this.checksumParams();
    try {
      await this.checksumClient().send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: JSON.stringify(record) + '\n',
          ContentType: 'application/json',
          IfNoneMatch: '*',
          ...this.encryptionParams(),
          ...checksum,
        }),
        this.bounded(),
      );
    } catch (e) {
      if (isPreconditionFailed(e) || (e as { name?: string }).name === 'ConditionalRequestConflict')
        return false;
      throw (
        conditionalWritesUnsupported(e, `writing ${key} in ${this.location}`) ??
        s3Failure(e, `writing ${key} in ${this.location}`)
      );
    }
    return true;
  }

  /**
   * Reads the prefix's owner object and decides with decideOwner: refuses (StorageOwnedByOther,
   * StorageOwnedByOtherCluster) a prefix of another schedule or cluster, claims one without owner object
   * (If-None-Match: *), and rewrites the object read (If-Match its ETag) to add this cluster's id to an old one
   * or to take the prefix over. Runs before every command; returns what was noted (an upgrade, a take-over, a
   * foreign read) for the log.
   */
  async ensureOwner(
    self: OwnerIdentity,
    access: OwnerAccess = 'write',
    foreign?: ForeignClusterAccess,
  ): Promise<string | undefined> {
    const key = this.prefix + OWNER_OBJECT;
    for (let attempt = 0; attempt < 3; attempt++) {
      const stored = await this.getText(key);
      const decision = decideOwner(
        stored && parseOwnerText(stored.text, this.location),
        self,
        access,
        foreign,
        this.location,
        this.now(),
      );
      if (decision.action === 'use') return decision.note;
      // A rewrite without the ETag it read would be unconditional: it could replace what another runner
      // (another cluster's take-over) wrote in between. Refuse rather than overwrite blind.
      if (decision.action === 'rewrite' && !stored?.etag)
        throw new RunnerFailure(
          'StorageConditionalWritesUnsupported',
          `rewriting ${key} in ${this.location}: the server sent no ETag for it, so it cannot be replaced ` +
            'conditionally (If-Match); use a server that returns ETags and honours conditional writes',
        );
      const checksum = await this.checksumParams();
      try {
        await this.checksumClient().send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: JSON.stringify(decision.owner) + '\n',
            ContentType: 'application/json',
            ...(decision.action === 'claim' ? { IfNoneMatch: '*' } : { IfMatch: stored!.etag! }),
            ...this.encryptionParams(),
            ...checksum,
          }),
          this.bounded(),
        );
        return decision.note;
      } catch (e) {
        // Another runner wrote it first: read what it wrote and decide again. A rewrite's If-Match of an
        // object deleted since it was read is answered 404 (AWS): decide again too (it is now a claim).
        if (
          isPreconditionFailed(e) ||
          (e as { name?: string }).name === 'ConditionalRequestConflict' ||
          (decision.action === 'rewrite' && isMissing(e))
        )
          continue;
        throw (
          conditionalWritesUnsupported(e, `writing ${key} in ${this.location}`) ??
          s3Failure(e, `writing ${key} in ${this.location}`)
        );
      }
    }
    throw new RunnerFailure('StorageFailed', `claiming ${this.location}: ${key} changed while it was read`);
  }

  /** Whether a stored dump (the version `archive` names) is under Object Lock retention, and until when (HEAD). */
  async retentionOf(
    id: string,
    archive?: ArchiveIdentity,
  ): Promise<{ mode: string; retainUntil: string } | undefined> {
    const h = await this.head(this.key(id, DUMP), archive?.versionId);
    if (!h?.ObjectLockMode || !h.ObjectLockRetainUntilDate) return undefined;
    return { mode: h.ObjectLockMode, retainUntil: h.ObjectLockRetainUntilDate.toISOString() };
  }
}
