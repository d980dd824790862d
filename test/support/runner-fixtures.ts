import type { BackupManifest } from '../../operator/backup/runner/manifest.js';

/** A plausible backup manifest for runner unit tests; override what the test is about. */
export function fakeManifest(
  id: string,
  finishedAt: string,
  overrides: Partial<BackupManifest> = {},
): BackupManifest {
  return {
    manifestVersion: 1,
    id,
    database: 'app',
    host: 'db',
    port: 5432,
    user: 'app',
    serverVersion: '17.2',
    pgDumpVersion: 'pg_dump (PostgreSQL) 17.2',
    startedAt: finishedAt,
    finishedAt,
    durationSeconds: 0,
    bytes: 5,
    sha256: '0'.repeat(64),
    tables: {},
    rowCountsFromDumpSnapshot: true,
    format: 'custom',
    verified: true,
    verifyMessage: 'ok',
    ...overrides,
  };
}
