import { describe, expect, it } from 'vitest';
import { RunnerFailure } from './failure.js';
import {
  cgroupMemoryLimit,
  parseS3Url,
  reasonOfS3Error,
  s3ConfigFromEnv,
  s3Failure,
  s3Location,
} from './s3-config.js';
import { planUpload } from './upload-parts.js';

/** No cgroup files: the tests do not depend on the machine's limits. */
const noCgroup = () => undefined;

describe('parseS3Url', () => {
  it.each([
    ['s3://backups', { bucket: 'backups', prefix: '' }],
    ['s3://backups/', { bucket: 'backups', prefix: '' }],
    ['s3://backups/prod/orders', { bucket: 'backups', prefix: 'prod/orders/' }],
    ['s3://backups/prod/orders/', { bucket: 'backups', prefix: 'prod/orders/' }],
  ])('%s', (url, want) => {
    expect(parseS3Url(url)).toEqual(want);
    expect(s3Location(want)).toBe(url.replace(/\/$/, ''));
  });

  it.each(['backups', 's3://', 's3://B', 's3://b-1/a//b', 's3://b-1/a/../b', 'https://b-1/x'])(
    'refuses %s as InvalidArguments',
    (url) => {
      expect(() => parseS3Url(url)).toThrow(expect.objectContaining({ reason: 'InvalidArguments' }));
    },
  );
});

describe('s3ConfigFromEnv', () => {
  it('reads every setting, defaulting the region', () => {
    expect(s3ConfigFromEnv('s3://b-1/p', {}, noCgroup)).toEqual({
      bucket: 'b-1',
      prefix: 'p/',
      region: 'us-east-1',
      forcePathStyle: false,
    });
    expect(
      s3ConfigFromEnv(
        's3://b-1',
        {
          NXT_S3_ENDPOINT: 'https://minio:9000',
          AWS_REGION: 'eu-west-1',
          NXT_S3_FORCE_PATH_STYLE: 'true',
          NXT_S3_SSE: 'aws:kms',
          NXT_S3_SSE_KMS_KEY_ID: 'alias/k',
          NXT_S3_CA_FILE: '/etc/s3-ca/ca.crt',
          NXT_S3_OBJECT_LOCK_MODE: 'COMPLIANCE',
          NXT_S3_OBJECT_LOCK_DAYS: '30',
          NXT_RUNNER_MEMORY_LIMIT: '1073741824',
        },
        () => '268435456',
      ),
    ).toEqual({
      bucket: 'b-1',
      prefix: '',
      endpoint: 'https://minio:9000',
      region: 'eu-west-1',
      forcePathStyle: true,
      serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId: 'alias/k' },
      caFile: '/etc/s3-ca/ca.crt',
      objectLock: { mode: 'COMPLIANCE', retentionDays: 30 },
      memoryLimitBytes: 1073741824,
    });
  });

  it.each([
    [{ NXT_S3_ENDPOINT: 'minio:9000' }, 'NXT_S3_ENDPOINT'],
    [{ NXT_S3_FORCE_PATH_STYLE: 'yes' }, 'NXT_S3_FORCE_PATH_STYLE'],
    [{ NXT_S3_SSE: 'kms' }, 'NXT_S3_SSE'],
    [{ NXT_S3_OBJECT_LOCK_MODE: 'LEGAL' }, 'NXT_S3_OBJECT_LOCK_MODE'],
    [{ NXT_S3_OBJECT_LOCK_MODE: 'GOVERNANCE' }, 'NXT_S3_OBJECT_LOCK_DAYS'],
    [{ NXT_RUNNER_MEMORY_LIMIT: '1Gi' }, 'NXT_RUNNER_MEMORY_LIMIT'],
  ])('refuses %j naming %s', (env, name) => {
    expect(() => s3ConfigFromEnv('s3://b-1', env)).toThrow(name);
  });
});

describe('the memory limit without NXT_RUNNER_MEMORY_LIMIT (M6: a LimitRange default the template does not show)', () => {
  const files = (f: Record<string, string>) => (path: string) => f[path];
  const V2 = '/sys/fs/cgroup/memory.max';
  const V1 = '/sys/fs/cgroup/memory/memory.limit_in_bytes';

  it('reads cgroup v2 memory.max, then v1 memory.limit_in_bytes; max or a huge v1 value is none', () => {
    expect(cgroupMemoryLimit(files({ [V2]: '268435456\n' }))).toBe(268435456);
    expect(cgroupMemoryLimit(files({ [V2]: 'max\n', [V1]: '268435456' }))).toBeUndefined();
    expect(cgroupMemoryLimit(files({ [V1]: '536870912\n' }))).toBe(536870912);
    expect(cgroupMemoryLimit(files({ [V1]: '9223372036854771712\n' }))).toBeUndefined();
    expect(cgroupMemoryLimit(files({ [V2]: 'garbage' }))).toBeUndefined();
    expect(cgroupMemoryLimit(files({}))).toBeUndefined();
  });

  it('sizes the upload parts from the cgroup limit when the env is absent, and the env wins', () => {
    const c = s3ConfigFromEnv('s3://b-1', {}, files({ [V2]: '268435456\n' }));
    expect(c.memoryLimitBytes).toBe(268435456);
    expect(planUpload(2 ** 40, c.memoryLimitBytes).bufferBytes).toBeLessThanOrEqual(268435456 / 2);
    expect(planUpload(2 ** 40, c.memoryLimitBytes).partBytes).toBeLessThan(
      planUpload(2 ** 40, undefined).partBytes,
    );
    expect(
      s3ConfigFromEnv('s3://b-1', { NXT_RUNNER_MEMORY_LIMIT: '2147483648' }, files({ [V2]: '268435456' }))
        .memoryLimitBytes,
    ).toBe(2147483648);
    expect(s3ConfigFromEnv('s3://b-1', {}, files({ [V2]: 'max' })).memoryLimitBytes).toBeUndefined();
  });
});

describe('reasonOfS3Error', () => {
  const sdk = (name: string, status?: number) =>
    Object.assign(new Error(`${name} happened`), {
      name,
      ...(status ? { $metadata: { httpStatusCode: status } } : {}),
    });
  it.each([
    [sdk('AccessDenied', 403), 'StorageAccessDenied'],
    [sdk('Unknown', 403), 'StorageAccessDenied'],
    [sdk('NoSuchBucket', 404), 'StorageBucketNotFound'],
    [sdk('InvalidAccessKeyId', 403), 'StorageCredentialsInvalid'],
    [sdk('SignatureDoesNotMatch', 403), 'StorageCredentialsInvalid'],
    [sdk('CredentialsProviderError'), 'StorageCredentialsUnavailable'],
    [sdk('TokenRefreshRequired', 400), 'StorageCredentialsUnavailable'],
    [sdk('ExpiredToken', 400), 'StorageCredentialsInvalid'],
    [sdk('AuthorizationHeaderMalformed', 400), 'StorageRegionMismatch'],
    [sdk('PermanentRedirect', 301), 'StorageRegionMismatch'],
    [sdk('Unknown', 301), 'StorageRegionMismatch'],
    [sdk('InvalidRequest', 400), 'StorageRequestInvalid'],
    [sdk('InvalidArgument', 400), 'StorageRequestInvalid'],
    [sdk('SlowDown', 503), 'StorageThrottled'],
    [sdk('TimeoutError'), 'StorageUnreachable'],
    [sdk('AbortError'), 'StorageUnreachable'],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      'StorageUnreachable',
    ],
    [new Error('wrapped', { cause: sdk('NoSuchBucket') }), 'StorageBucketNotFound'],
    [sdk('InternalError', 500), 'StorageFailed'],
    [
      Object.assign(new Error('self-signed certificate in certificate chain'), {
        code: 'SELF_SIGNED_CERT_IN_CHAIN',
      }),
      'StorageCertificateUntrusted',
    ],
    [
      new Error('wrapped', {
        cause: Object.assign(new Error('unable to verify the first certificate'), {
          code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        }),
      }),
      'StorageCertificateUntrusted',
    ],
  ])('%s -> %s', (e, reason) => {
    expect(reasonOfS3Error(e)).toBe(reason);
  });

  it('says what was being done and what to check, and keeps a RunnerFailure as it is', () => {
    const f = s3Failure(sdk('AccessDenied', 403), 'writing x.dump in s3://b-1');
    expect(f.reason).toBe('StorageAccessDenied');
    expect(f.message).toMatch(
      /^writing x\.dump in s3:\/\/b-1: AccessDenied: AccessDenied happened \(HTTP 403\); .*s3:PutObject/,
    );
    const tls = s3Failure(
      Object.assign(new Error('self-signed certificate in certificate chain'), {
        code: 'SELF_SIGNED_CERT_IN_CHAIN',
      }),
      'listing s3://b-1/p',
    );
    expect(tls.reason).toBe('StorageCertificateUntrusted');
    expect(tls.message).toContain('spec.storage.s3.caBundleSecretRef');
    const region = s3Failure(sdk('AuthorizationHeaderMalformed', 400), 'listing s3://b-1/p');
    expect(region.reason).toBe('StorageRegionMismatch');
    expect(region.message).toContain('spec.storage.s3.region');
    const own = new RunnerFailure('ChecksumMismatch', 'x');
    expect(s3Failure(own, 'y')).toBe(own);
  });
});
