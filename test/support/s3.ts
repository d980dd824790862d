import { randomBytes } from 'node:crypto';
import { Agent } from 'node:https';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  S3Client,
  type ObjectIdentifier,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { startS3Server, type S3Credentials, type S3Server, type S3ServerOptions } from '../env/seaweedfs.js';
import { runnerPgEnv } from './postgres.js';

export type { S3Credentials, S3Server } from '../env/seaweedfs.js';

const log = (m: string) => console.log(`[s3] ${m}`);

/**
 * Starts one real SeaweedFS S3 server for the calling test file (beforeAll) and stops it (afterAll), so only
 * files that use S3 pay for it (~2-5 s warm; the first use on a machine builds SeaweedFS, ~10+ min on 2
 * cores, so the beforeAll gets a generous timeout). Returns a getter: call it inside tests/hooks.
 */
export function useS3Server(opts: Omit<S3ServerOptions, 'log'> = {}): () => S3Server {
  let server: S3Server | undefined;
  beforeAll(async () => {
    server = await startS3Server({ ...opts, log });
  }, 1_800_000);
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('the S3 server is not running (useS3Server() must be called at file level)');
    return server;
  };
}

export interface S3ClientOptions {
  /** Sign as this identity instead of the admin (e.g. `server.readOnly`). */
  credentials?: S3Credentials;
  /** Talk to the HTTPS listener, trusting the server's CA (the server must have been started with https). */
  https?: boolean;
  /** Default 1 (no SDK retries: a test sees the server's first answer). */
  maxAttempts?: number;
}

/** An SDK client for the server: path-style, the admin identity unless told otherwise. */
export function s3Client(server: S3Server, opts: S3ClientOptions = {}): S3Client {
  const creds = opts.credentials ?? server;
  let endpoint = server.endpoint;
  let requestHandler: ReturnType<typeof httpsHandler> | undefined;
  if (opts.https) {
    if (!server.tlsEndpoint || !server.caPem) throw new Error('the S3 server was started without https');
    endpoint = server.tlsEndpoint;
    requestHandler = httpsHandler(server.caPem);
  }
  return new S3Client({
    endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    maxAttempts: opts.maxAttempts ?? 1,
    ...(requestHandler ? { requestHandler } : {}),
  });
}

/**
 * The environment a runner Job pod gets for an S3 location, for running the runner's subcommands as the pod
 * does: the harness PostgreSQL (runnerPgEnv), the server's endpoint path-style, and the admin identity unless
 * `credentials` names another; `extra` is added last (and wins).
 */
export function s3RunnerEnv(
  server: S3Server,
  database: string,
  opts: { credentials?: S3Credentials; extra?: NodeJS.ProcessEnv } = {},
): NodeJS.ProcessEnv {
  const c = opts.credentials ?? server;
  return runnerPgEnv(database, {
    AWS_REGION: server.region,
    NXT_S3_ENDPOINT: server.endpoint,
    NXT_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    // no ~/.aws files or instance metadata in tests
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...opts.extra,
  });
}

/** Options for the SDK's Node HTTP handler: an HTTPS agent that trusts only `caPem`. */
export function httpsHandler(caPem: string) {
  return { httpsAgent: new Agent({ ca: caPem }) };
}

/** A bucket name unique to this run. */
export function bucketName(prefix = 'test'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`.toLowerCase();
}

/** Creates a bucket (optionally with S3 Object Lock enabled, which also turns on versioning) and returns its name. */
export async function createBucket(
  server: S3Server,
  opts: { name?: string; objectLock?: boolean } = {},
): Promise<string> {
  const Bucket = opts.name ?? bucketName(opts.objectLock ? 'locked' : 'test');
  const c = s3Client(server);
  try {
    await c.send(
      new CreateBucketCommand({ Bucket, ...(opts.objectLock ? { ObjectLockEnabledForBucket: true } : {}) }),
    );
  } finally {
    c.destroy();
  }
  return Bucket;
}

export interface ListedObject {
  key: string;
  size: number;
}

/** Every object under `prefix` (all pages), sorted by key. */
export async function listObjects(server: S3Server, bucket: string, prefix = ''): Promise<ListedObject[]> {
  const c = s3Client(server);
  const out: ListedObject[] = [];
  try {
    let ContinuationToken: string | undefined;
    do {
      const r = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken }));
      for (const o of r.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
      ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (ContinuationToken);
  } finally {
    c.destroy();
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

export interface ListedUpload {
  key: string;
  uploadId: string;
}

/** Multipart uploads started and neither completed nor aborted, under `prefix` (all pages). */
export async function listMultipartUploads(
  server: S3Server,
  bucket: string,
  prefix = '',
): Promise<ListedUpload[]> {
  const c = s3Client(server);
  const out: ListedUpload[] = [];
  try {
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      const r = await c.send(
        new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, UploadIdMarker }),
      );
      for (const u of r.Uploads ?? []) out.push({ key: u.Key!, uploadId: u.UploadId! });
      if (!r.IsTruncated) break;
      KeyMarker = r.NextKeyMarker;
      UploadIdMarker = r.NextUploadIdMarker;
    }
  } finally {
    c.destroy();
  }
  return out;
}

/**
 * Deletes everything in a bucket: aborts open multipart uploads, deletes every object version and delete
 * marker (or every object, unversioned), then (with `removeBucket`) the bucket. Objects under an active
 * COMPLIANCE retention cannot be deleted by anyone: those are reported in the returned `kept` list instead
 * of failing; GOVERNANCE retention is bypassed.
 */
export async function emptyBucket(
  server: S3Server,
  bucket: string,
  opts: { removeBucket?: boolean } = {},
): Promise<{ deleted: number; aborted: number; kept: string[] }> {
  const c = s3Client(server);
  let deleted = 0;
  const kept: string[] = [];
  try {
    const uploads = await listMultipartUploads(server, bucket);
    for (const u of uploads) {
      await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
    }
    const ids: ObjectIdentifier[] = [];
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    for (;;) {
      const r = await c.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker, VersionIdMarker }));
      for (const v of [...(r.Versions ?? []), ...(r.DeleteMarkers ?? [])]) {
        ids.push({
          Key: v.Key!,
          ...(v.VersionId && v.VersionId !== 'null' ? { VersionId: v.VersionId } : {}),
        });
      }
      if (!r.IsTruncated) break;
      KeyMarker = r.NextKeyMarker;
      VersionIdMarker = r.NextVersionIdMarker;
    }
    for (let i = 0; i < ids.length; i += 1000) {
      const r = await c.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: ids.slice(i, i + 1000), Quiet: true },
          BypassGovernanceRetention: true,
        }),
      );
      const errors = r.Errors ?? [];
      for (const e of errors) kept.push(`${e.Key}${e.VersionId ? `@${e.VersionId}` : ''}: ${e.Code}`);
      deleted += Math.min(1000, ids.length - i) - errors.length;
    }
    if (opts.removeBucket && kept.length === 0) await c.send(new DeleteBucketCommand({ Bucket: bucket }));
    return { deleted, aborted: uploads.length, kept };
  } finally {
    c.destroy();
  }
}
