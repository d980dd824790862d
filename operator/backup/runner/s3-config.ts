import { readFileSync } from 'node:fs';
import { RunnerFailure } from './failure.js';
import type { FailureReason } from './result.js';

/**
 * How the runner reaches an S3-compatible bucket. The location comes from `--storage-url s3://bucket/prefix`;
 * everything else from the environment the operator sets (credentials only as Secret references, read by
 * the AWS SDK itself: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or its default chain).
 */
export interface S3Config {
  bucket: string;
  /** '' or a prefix ending in '/'. */
  prefix: string;
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  serverSideEncryption?: { algorithm: 'AES256' | 'aws:kms'; kmsKeyId?: string };
  /** A PEM file of CA certificates to trust (a private endpoint). */
  caFile?: string;
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; retentionDays: number };
  /**
   * Static keys from the runner's environment (the pod's, from the Secret); undefined: the SDK's default
   * chain (web identity / IRSA, Pod Identity, instance role). Never logged.
   */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * The runner container's memory limit in bytes: the downward API's limits.memory (NXT_RUNNER_MEMORY_LIMIT;
   * the operator sets it only when the pod template has a limit), else the cgroup's (a LimitRange's default
   * limit the template does not show; cgroupMemoryLimit); undefined: none, parts sized as for
   * DEFAULT_MEMORY_LIMIT_BYTES.
   */
  memoryLimitBytes?: number;
}

export const S3Env = {
  endpoint: 'NXT_S3_ENDPOINT',
  region: 'AWS_REGION',
  forcePathStyle: 'NXT_S3_FORCE_PATH_STYLE',
  sse: 'NXT_S3_SSE',
  kmsKeyId: 'NXT_S3_SSE_KMS_KEY_ID',
  caFile: 'NXT_S3_CA_FILE',
  objectLockMode: 'NXT_S3_OBJECT_LOCK_MODE',
  objectLockDays: 'NXT_S3_OBJECT_LOCK_DAYS',
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  secretAccessKey: 'AWS_SECRET_ACCESS_KEY',
  sessionToken: 'AWS_SESSION_TOKEN',
  memoryLimit: 'NXT_RUNNER_MEMORY_LIMIT',
} as const;

export const DEFAULT_S3_REGION = 'us-east-1';

/** `s3://bucket` or `s3://bucket/some/prefix[/]`: the bucket and a prefix that is '' or ends in '/'. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(\/.*)?$/.exec(url);
  if (!m) {
    throw new RunnerFailure(
      'InvalidArguments',
      `--storage-url must be s3://<bucket>[/<prefix>]; got ${JSON.stringify(url.slice(0, 300))}`,
    );
  }
  const rest = (m[2] ?? '').replace(/^\/+/, '');
  if (rest.split('/').some((seg, i, all) => (seg === '' && i < all.length - 1) || seg.startsWith('.'))) {
    throw new RunnerFailure(
      'InvalidArguments',
      `--storage-url prefix ${JSON.stringify(rest)} has an empty segment or one starting with . (such as .. or .pins)`,
    );
  }
  return { bucket: m[1]!, prefix: rest === '' || rest.endsWith('/') ? rest : `${rest}/` };
}

/** Reads a file as text, or undefined when it cannot (absent, unreadable). */
export type ReadTextFile = (path: string) => string | undefined;

const readTextFile: ReadTextFile = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** cgroup v2's memory limit, then cgroup v1's. */
export const CGROUP_MEMORY_LIMIT_FILES = [
  '/sys/fs/cgroup/memory.max',
  '/sys/fs/cgroup/memory/memory.limit_in_bytes',
] as const;

/** At or above this, a cgroup v1 limit means none (v1 writes "no limit" as about 2^63, rounded to a page). */
const CGROUP_NO_LIMIT_BYTES = 2 ** 60;

/**
 * The container's memory limit from its cgroup (v2 `memory.max`, `max` = none; else v1
 * `memory.limit_in_bytes`, a huge value = none), in bytes; undefined when there is none or it cannot be read.
 */
export function cgroupMemoryLimit(read: ReadTextFile = readTextFile): number | undefined {
  for (const path of CGROUP_MEMORY_LIMIT_FILES) {
    const text = read(path)?.trim();
    if (text === undefined || text === '') continue;
    if (text === 'max') return undefined;
    if (!/^\d{1,20}$/.test(text)) continue;
    const bytes = Number(text);
    return bytes > 0 && bytes < CGROUP_NO_LIMIT_BYTES ? bytes : undefined;
  }
  return undefined;
}

/**
 * The S3 settings of a `--storage-url` and the environment; throws InvalidArguments for bad values. Without
 * NXT_RUNNER_MEMORY_LIMIT the memory limit comes from the cgroup (`readFile`: tests inject it).
 */
export function s3ConfigFromEnv(
  url: string,
  env: NodeJS.ProcessEnv,
  readFile: ReadTextFile = readTextFile,
): S3Config {
  const { bucket, prefix } = parseS3Url(url);
  const bad = (name: string, want: string) =>
    new RunnerFailure(
      'InvalidArguments',
      `${name} must be ${want}; got ${JSON.stringify(env[name]?.slice(0, 100))}`,
    );
  const endpoint = env[S3Env.endpoint] || undefined;
  if (endpoint !== undefined && !/^https?:\/\/\S+$/.test(endpoint))
    throw bad(S3Env.endpoint, 'an http(s) URL');
  const pathStyle = env[S3Env.forcePathStyle];
  if (pathStyle && pathStyle !== 'true' && pathStyle !== 'false')
    throw bad(S3Env.forcePathStyle, 'true or false');
  const sse = env[S3Env.sse] || undefined;
  if (sse !== undefined && sse !== 'AES256' && sse !== 'aws:kms') throw bad(S3Env.sse, 'AES256 or aws:kms');
  const kmsKeyId = env[S3Env.kmsKeyId] || undefined;
  const lockMode = env[S3Env.objectLockMode] || undefined;
  if (lockMode !== undefined && lockMode !== 'GOVERNANCE' && lockMode !== 'COMPLIANCE')
    throw bad(S3Env.objectLockMode, 'GOVERNANCE or COMPLIANCE');
  const lockDays = env[S3Env.objectLockDays];
  if (lockMode && !(lockDays && /^[1-9]\d{0,4}$/.test(lockDays)))
    throw bad(S3Env.objectLockDays, 'a whole number of days from 1 (with NXT_S3_OBJECT_LOCK_MODE)');
  const memoryLimit = env[S3Env.memoryLimit] || undefined;
  if (memoryLimit !== undefined && !/^[1-9]\d{0,17}$/.test(memoryLimit))
    throw bad(S3Env.memoryLimit, 'a number of bytes');
  const memoryLimitBytes = memoryLimit ? Number(memoryLimit) : cgroupMemoryLimit(readFile);
  const accessKeyId = env[S3Env.accessKeyId];
  const secretAccessKey = env[S3Env.secretAccessKey];
  if (!accessKeyId !== !secretAccessKey)
    throw new RunnerFailure(
      'StorageCredentialsInvalid',
      `${S3Env.accessKeyId} and ${S3Env.secretAccessKey} must be set together (or neither, for the SDK's default chain)`,
    );
  const sessionToken = env[S3Env.sessionToken];
  const credentials =
    accessKeyId && secretAccessKey
      ? { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }
      : undefined;
  return {
    bucket,
    prefix,
    ...(endpoint ? { endpoint } : {}),
    region: env[S3Env.region] || env.AWS_DEFAULT_REGION || DEFAULT_S3_REGION,
    forcePathStyle: pathStyle === 'true',
    ...(sse ? { serverSideEncryption: { algorithm: sse, ...(kmsKeyId ? { kmsKeyId } : {}) } } : {}),
    ...(env[S3Env.caFile] ? { caFile: env[S3Env.caFile] } : {}),
    ...(lockMode ? { objectLock: { mode: lockMode, retentionDays: Number(lockDays) } } : {}),
    ...(credentials ? { credentials } : {}),
    ...(memoryLimitBytes !== undefined ? { memoryLimitBytes } : {}),
  };
}

/** `s3://bucket/prefix`, for logs, status and results (never credentials). */
export const s3Location = (c: Pick<S3Config, 'bucket' | 'prefix'>) =>
  `s3://${c.bucket}/${c.prefix}`.replace(/\/$/, '');

const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'AccountProblem',
  'KMS.AccessDeniedException',
  'Forbidden',
]);
const BAD_CREDENTIALS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
]);
/** The default chain had nothing to sign with (yet): a retry may help. */
const CREDENTIALS_UNAVAILABLE = new Set(['CredentialsProviderError', 'TokenRefreshRequired']);
/** A request signed for one region sent to a bucket in another. */
const WRONG_REGION = new Set([
  'AuthorizationHeaderMalformed',
  'PermanentRedirect',
  'IllegalLocationConstraintException',
]);
/** Parameters the server refuses whatever the retry (Object Lock on a bucket without it, unsupported SSE). */
const INVALID_REQUEST = new Set(['InvalidRequest', 'InvalidArgument', 'InvalidBucketState']);
const THROTTLED = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequests',
  'TooManyRequestsException',
  'RequestThrottled',
  'ServiceUnavailable',
]);
const UNREACHABLE = new Set([
  'TimeoutError',
  /** A call cut off by its total timeout (S3_CALL_TIMEOUT_MS). */
  'AbortError',
  'RequestTimeout',
  'RequestTimeoutException',
  'NetworkingError',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
]);
/** Node's codes for a certificate chain it does not trust (or that does not fit the endpoint). */
const TLS_UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What to check, per reason: said in the message so the condition tells the user what to do. */
const HINTS: Partial<Record<FailureReason, string>> = {
  StorageAccessDenied:
    'the credentials lack a permission: the runner needs s3:ListBucket, s3:GetObject, s3:GetObjectVersion, s3:PutObject, ' +
    's3:DeleteObject, s3:ListBucketMultipartUploads and s3:AbortMultipartUpload on the bucket and prefix ' +
    '(with objectLock also s3:PutObjectRetention and s3:GetObjectRetention; with aws:kms kms:GenerateDataKey and kms:Decrypt; ' +
    's3:GetBucketObjectLockConfiguration is optional: without it every put carries a checksum)',
  StorageBucketNotFound: 'create the bucket or fix spec.storage.s3.bucket / endpoint / region',
  StorageCredentialsInvalid: 'check the access key id and secret in spec.storage.s3.credentialsSecretRef',
  StorageCredentialsUnavailable:
    "the SDK's default credential chain (web identity / IRSA, Pod Identity, instance role) gave no credentials; " +
    'check the service account annotation or set spec.storage.s3.credentialsSecretRef; the next attempt tries again',
  StorageRegionMismatch: "the bucket is in another region: set spec.storage.s3.region to the bucket's region",
  StorageRequestInvalid:
    'the server refused the request: check spec.storage.s3.objectLock (the bucket must have Object Lock enabled) ' +
    'and serverSideEncryption (the server must support the algorithm and key)',
  StorageThrottled: 'the server kept answering SlowDown after the retries; the next run tries again',
  StorageUnreachable: 'check spec.storage.s3.endpoint and that the Job pod can reach it',
  StorageCertificateUntrusted:
    "the endpoint's TLS certificate is not trusted: for a private CA put its PEM bundle in a Secret and name it in " +
    'spec.storage.s3.caBundleSecretRef (key ca.crt by default); check that the certificate names the endpoint host',
};

/**
 * The reason of an error from the AWS SDK (its `name`/`Code`, the HTTP status, a Node network code). The
 * SDK has already retried what retrying helps (throttling, 5xx, timeouts, resets) a bounded number of times.
 */
export function reasonOfS3Error(e: unknown): FailureReason {
  const err = e as
    { name?: string; Code?: string; code?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const names = [err?.name, err?.Code, err?.code].filter((x): x is string => typeof x === 'string');
  const status = err?.$metadata?.httpStatusCode;
  if (names.some((n) => TLS_UNTRUSTED.has(n))) return 'StorageCertificateUntrusted';
  if (names.some((n) => n === 'NoSuchBucket')) return 'StorageBucketNotFound';
  if (names.some((n) => WRONG_REGION.has(n)) || status === 301) return 'StorageRegionMismatch';
  if (names.some((n) => CREDENTIALS_UNAVAILABLE.has(n))) return 'StorageCredentialsUnavailable';
  if (names.some((n) => BAD_CREDENTIALS.has(n))) return 'StorageCredentialsInvalid';
  if (names.some((n) => ACCESS_DENIED.has(n)) || status === 403) return 'StorageAccessDenied';
  if (names.some((n) => THROTTLED.has(n)) || status === 503 || status === 429) return 'StorageThrottled';
  if (names.some((n) => UNREACHABLE.has(n)) || status === 504) return 'StorageUnreachable';
  if (names.some((n) => INVALID_REQUEST.has(n))) return 'StorageRequestInvalid';
  const cause = (e as { cause?: unknown } | undefined)?.cause;
  if (cause && cause !== e) {
    const r = reasonOfS3Error(cause);
    if (r !== 'StorageFailed') return r;
  }
  return 'StorageFailed';
}

/** An SDK error as a RunnerFailure with its reason and a hint; `doing` says what was being done. */
export function s3Failure(e: unknown, doing: string): RunnerFailure {
  if (e instanceof RunnerFailure) return e;
  const reason = reasonOfS3Error(e);
  const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const code = err.name && err.name !== 'Error' ? `${err.name}: ` : '';
  const status = err.$metadata?.httpStatusCode ? ` (HTTP ${err.$metadata.httpStatusCode})` : '';
  const hint = HINTS[reason];
  return new RunnerFailure(
    reason,
    `${doing}: ${code}${err.message ?? String(e)}${status}${hint ? `; ${hint}` : ''}`,
  );
}
