import type { FailureReason } from './result.js';

/** A failure with the reason the operator will put on a condition. Messages must be free of secrets. */
export class RunnerFailure extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'RunnerFailure';
  }
}

/** Exit codes of the runner: 0 success, 1 failed (a retry may help), 2 usage error, 3 failed for good. */
export const ExitCode = { Succeeded: 0, Failed: 1, Usage: 2, NotRetryable: 3 } as const;

/**
 * Failures a second pod would only repeat: storage that refuses us or is not ours, a certificate we do not
 * trust. The schedule's Job fails at once on their exit code (podFailurePolicy) instead of retrying.
 */
export const NOT_RETRYABLE_REASONS: ReadonlySet<FailureReason> = new Set<FailureReason>([
  'StorageAccessDenied',
  'StorageCredentialsInvalid',
  'StorageBucketNotFound',
  'StorageOwnedByOther',
  'StorageOwnedByOtherCluster',
  'StorageCertificateUntrusted',
  'StorageRegionMismatch',
  'StorageRequestInvalid',
  'StorageConditionalWritesUnsupported',
  'StorageTooLargeForMemory',
  'ArchiveReplaced',
  'BackupUnverified',
]);

/** The process exit code for a result. */
export function exitCodeOf(result: { success: boolean; reason?: FailureReason }): number {
  if (result.success) return ExitCode.Succeeded;
  if (result.reason === 'InvalidArguments') return ExitCode.Usage;
  return result.reason !== undefined && NOT_RETRYABLE_REASONS.has(result.reason)
    ? ExitCode.NotRetryable
    : ExitCode.Failed;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  // SQLSTATEs a server sends while it cannot take us: starting up, shutting down, too many connections.
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/** Maps a node-postgres error (network or SQLSTATE) to a reason; undefined when it is none of these. */
export function reasonOfPgError(e: unknown): FailureReason | undefined {
  const err = e as { code?: string; message?: string } | undefined;
  const code = err?.code ?? '';
  const message = err?.message ?? '';
  if (
    UNREACHABLE_CODES.has(code) ||
    /Connection terminated|connection timeout|timeout expired|terminated unexpectedly/i.test(message)
  ) {
    return 'DatabaseUnreachable';
  }
  // 28P01 invalid_password, 28000 rejected by pg_hba.conf; node-postgres reports a missing password itself.
  if (code === '28P01' || code === '28000' || /client password must be a string/i.test(message)) {
    return 'AuthenticationFailed';
  }
  if (code === '3D000') return 'DatabaseNotFound';
  if (code === '42501') return 'PermissionDenied';
  return undefined;
}

/** Maps the last lines of a libpq tool's stderr to a reason, falling back to `fallback`. */
export function reasonOfToolStderr(stderr: string, fallback: FailureReason): FailureReason {
  if (
    /password authentication failed|no password supplied|authentication failed|no pg_hba\.conf entry/i.test(
      stderr,
    )
  ) {
    return 'AuthenticationFailed';
  }
  if (/database ".*" does not exist/i.test(stderr)) return 'DatabaseNotFound';
  if (
    /could not connect|connection refused|timeout expired|could not translate host name|server closed the connection|No route to host|Network is unreachable/i.test(
      stderr,
    )
  ) {
    return 'DatabaseUnreachable';
  }
  if (/permission denied/i.test(stderr)) return 'PermissionDenied';
  return fallback;
}

/** What to check, for the reasons a user can fix. */
const HINTS: Partial<Record<FailureReason, string>> = {
  DatabaseUnreachable: 'check PGHOST/PGPORT and that the server accepts connections from the Job pod',
  AuthenticationFailed: 'check the user and password in the database Secret',
  DatabaseNotFound: 'check PGDATABASE (or the database in DATABASE_URL)',
  PermissionDenied: "grant the runner's role read access to every table (backup) or ownership (restore)",
};

/** Wraps an unexpected error from a database call into a RunnerFailure with the best reason we know. */
export function pgFailure(e: unknown, doing: string, fallback: FailureReason): RunnerFailure {
  if (e instanceof RunnerFailure) return e;
  const reason = reasonOfPgError(e) ?? fallback;
  const code = (e as { code?: string }).code;
  const hint = HINTS[reason];
  return new RunnerFailure(
    reason,
    `${doing}: ${(e as Error).message}${code ? ` (${code})` : ''}${hint ? `; ${hint}` : ''}`,
  );
}

/**
 * A storage error as a RunnerFailure: one that already has a reason (an object store maps its own errors,
 * see s3-errors.ts) keeps it, anything else is StorageFailed. `doing` says what was being done.
 */
export function storageFailure(e: unknown, doing: string): RunnerFailure {
  const message = `${doing}: ${(e as Error).message}`;
  if (e instanceof RunnerFailure) return new RunnerFailure(e.reason, message);
  return new RunnerFailure('StorageFailed', message);
}
