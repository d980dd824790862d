import { describe, expect, it } from 'vitest';
import { exitCodeOf, reasonOfPgError, reasonOfToolStderr } from './failure.js';

describe('reasonOfPgError', () => {
  it.each([
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' }, 'DatabaseUnreachable'],
    [{ message: 'Connection terminated due to connection timeout' }, 'DatabaseUnreachable'],
    [{ code: '57P03', message: 'the database system is starting up' }, 'DatabaseUnreachable'],
    [{ code: '28P01', message: 'password authentication failed for user "app"' }, 'AuthenticationFailed'],
    [{ code: '28000', message: 'no pg_hba.conf entry' }, 'AuthenticationFailed'],
    [
      { message: 'SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string' },
      'AuthenticationFailed',
    ],
    [{ code: '3D000', message: 'database "x" does not exist' }, 'DatabaseNotFound'],
    [{ code: '42501', message: 'permission denied for table t' }, 'PermissionDenied'],
    [{ code: '42P01', message: 'relation does not exist' }, undefined],
  ])('%j → %s', (err, reason) => {
    expect(reasonOfPgError(err)).toBe(reason);
  });
});

describe('reasonOfToolStderr', () => {
  it.each([
    [
      'pg_dump: error: connection to server at "127.0.0.1", port 1 failed: Connection refused',
      'DatabaseUnreachable',
    ],
    ['pg_dump: error: connection to server failed: timeout expired', 'DatabaseUnreachable'],
    [
      'pg_dump: error: connection to server at "h" failed: FATAL:  password authentication failed for user "u"',
      'AuthenticationFailed',
    ],
    ['pg_dump: error: FATAL:  database "nope" does not exist', 'DatabaseNotFound'],
    ['pg_dump: error: query failed: ERROR:  permission denied for table secrets', 'PermissionDenied'],
    ['pg_dump: error: could not write to output file: No space left on device', 'DumpFailed'],
  ])('%s → %s', (stderr, reason) => {
    expect(reasonOfToolStderr(stderr, 'DumpFailed')).toBe(reason);
  });
});

describe('exitCodeOf', () => {
  it('0 on success, 2 on a usage error', () => {
    expect(exitCodeOf({ success: true })).toBe(0);
    expect(exitCodeOf({ success: false, reason: 'InvalidArguments' })).toBe(2);
  });

  it.each([
    'StorageAccessDenied',
    'StorageCredentialsInvalid',
    'StorageBucketNotFound',
    'StorageOwnedByOther',
    'StorageOwnedByOtherCluster',
    'StorageCertificateUntrusted',
    'StorageRegionMismatch',
    'StorageRequestInvalid',
    'StorageConditionalWritesUnsupported',
    'ArchiveReplaced',
  ] as const)('3 (not retryable) for %s', (reason) => {
    expect(exitCodeOf({ success: false, reason })).toBe(3);
  });

  it.each([
    'StorageUnreachable',
    'StorageThrottled',
    'StorageCredentialsUnavailable',
    'DatabaseUnreachable',
    'DumpFailed',
    'Internal',
  ] as const)('1 (a retry may help) for %s', (reason) => {
    expect(exitCodeOf({ success: false, reason })).toBe(1);
  });
});
