import { z } from 'zod';

/**
 * The runner's outcome, written as the pod's termination message. The operator reads it from
 * `status.containerStatuses[].state.terminated.message` and parses it with ReceivedResultSchema.
 *
 * The contract between a runner and an operator of another version (an upgrade in progress, a pinned
 * spec.podTemplate.image): `resultVersion` changes only when a field an operator already reads changes its
 * meaning or type, or a new field becomes required, because an operator that knows only version 1 refuses
 * every result of another version. Additions keep version 1: a new optional field (an older operator drops
 * it) and a new failure reason (an operator reads any reason it does not know as a bounded name, see
 * ReceivedReasonSchema, and reports it as it is). Reasons added since version 1 was fixed, such as
 * StorageRegionMismatch, StorageCredentialsUnavailable, StorageRequestInvalid,
 * StorageConditionalWritesUnsupported, ArchiveReplaced and StorageTooLargeForMemory, are such additions.
 */
export const FAILURE_REASONS = [
  'InvalidArguments',
  'DatabaseUnreachable',
  'AuthenticationFailed',
  'DatabaseNotFound',
  'PermissionDenied',
  'DumpFailed',
  'StorageFailed',
  /** Object storage refused the request (bucket policy, IAM, KMS key policy). */
  'StorageAccessDenied',
  /** The bucket does not exist (or the endpoint serves another account). */
  'StorageBucketNotFound',
  /** The access key is unknown, the secret key wrong, or the session token expired. */
  'StorageCredentialsInvalid',
  /**
   * The SDK's default credential chain found no credentials or could not refresh them (a web identity token
   * not mounted yet, the metadata service down): a retry may help.
   */
  'StorageCredentialsUnavailable',
  /** The bucket is in another region than spec.storage.s3.region (AuthorizationHeaderMalformed, 301 PermanentRedirect). */
  'StorageRegionMismatch',
  /** The server refused the request's parameters (Object Lock on a bucket without it, an unsupported encryption). */
  'StorageRequestInvalid',
  /** The server does not implement conditional writes (If-None-Match: *) the owner object and restore fence need. */
  'StorageConditionalWritesUnsupported',
  /**
   * The dump outgrew its multipart upload (S3 allows 10 000 parts) whose parts were sized from the database
   * and the runner's memory limit: the message names the memory limit that gives larger parts.
   */
  'StorageTooLargeForMemory',
  /** Object storage kept asking to slow down (503 SlowDown) after the bounded retries. */
  'StorageThrottled',
  /** Object storage could not be reached or timed out after the bounded retries. */
  'StorageUnreachable',
  /** The endpoint's TLS certificate is not trusted (a private CA without spec.storage.s3.caBundleSecretRef). */
  'StorageCertificateUntrusted',
  /** The bucket prefix belongs to another schedule (namespace/name in its owner object): nothing was done. */
  'StorageOwnedByOther',
  /**
   * The bucket prefix belongs to a schedule of the same namespace/name in another cluster (the cluster id in its
   * owner object), and spec.storage.s3.foreignCluster does not allow this command: nothing was done.
   */
  'StorageOwnedByOtherCluster',
  /**
   * The runner has no cluster id (NXT_CLUSTER_ID unset: the operator has not learned it yet) and the prefix's
   * owner object records one: it cannot tell whether it is that cluster. A retry (after the operator learns its
   * id) may help: nothing was done.
   */
  'ClusterIdUnknown',
  'BackupNotFound',
  /** The backup's manifest says `verified: false` (its verification failed when it was taken): never restored. */
  'BackupUnverified',
  'ManifestInvalid',
  'ChecksumMismatch',
  /** The stored dump is not the object its manifest names (ETag/VersionId): it was replaced after the backup. */
  'ArchiveReplaced',
  'ArchiveUnreadable',
  'RestoreFailed',
  'RowCountMismatch',
  'AssertionFailed',
  'SwapFailed',
  /** Another backup already has this id: it was neither reused nor overwritten. */
  'BackupIdConflict',
  /** A restore of this plan already started (its marker exists in storage): never a second one. */
  'RestoreAlreadyStarted',
  'Internal',
] as const;
export const FailureReasonSchema = z.enum(FAILURE_REASONS);
export type FailureReason = z.infer<typeof FailureReasonSchema>;

/** Longest reason name an operator keeps from a runner (a Kubernetes condition reason allows 1024). */
export const RECEIVED_REASON_MAX = 64;

/**
 * A reason as the operator reads it: one it knows as it is; one a newer runner added as its name, kept to
 * letters and digits and RECEIVED_REASON_MAX characters (a valid condition reason), instead of refusing the
 * whole result and losing the runner's message.
 */
export function boundReceivedReason(reason: string): string {
  if ((FAILURE_REASONS as readonly string[]).includes(reason)) return reason;
  const name = reason.replace(/[^A-Za-z0-9]/g, '');
  return (/^[A-Za-z]/.test(name) ? name : `Unrecognized${name}`).slice(0, RECEIVED_REASON_MAX);
}
export const ReceivedReasonSchema = z.string().transform(boundReceivedReason);

export const TableMismatchSchema = z.object({
  table: z.string(),
  expected: z.number().int(),
  /** Null when the table is missing from the restored database. */
  actual: z.number().int().nullable(),
});
export type TableMismatch = z.infer<typeof TableMismatchSchema>;

/**
 * One SQL assertion's outcome. Never a value the query returned nor the server's error text: plan authors
 * must not read table contents through status, Events or logs. (Runners before this change wrote `actual`
 * and `error`; they are accepted and ignored.)
 */
export const AssertionOutcomeSchema = z.object({
  name: z.string(),
  passed: z.boolean(),
  /** The assertion's own expected text, from the plan or schedule spec. */
  expect: z.string().optional(),
  /** How many rows the query returned. */
  rows: z.number().int().nonnegative().optional(),
  /** Why it failed: a different first value, no row at all, or an error (see sqlState). */
  failure: z.enum(['mismatch', 'noRow', 'error']).optional(),
  /** The SQLSTATE of the error, e.g. 42P01 (undefined table). */
  sqlState: z.string().optional(),
});
export type AssertionOutcome = z.infer<typeof AssertionOutcomeSchema>;

const TableCountsSchema = z.record(z.string(), z.number().int());

/**
 * The result schemas around a reason schema: the runner writes reasons it knows (FailureReasonSchema), the
 * operator reads any bounded reason (ReceivedReasonSchema).
 */
function resultSchemas<R extends z.ZodType<string, string>>(reason: R) {
  const base = {
    resultVersion: z.literal(1),
    success: z.boolean(),
    /** Set exactly when success is false. */
    reason: reason.optional(),
    message: z.string(),
    id: z.string().optional(),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime(),
    durationSeconds: z.number().nonnegative(),
    /** True when maps or lists were cut to fit the 4096-byte termination message; counts stay exact. */
    truncated: z.boolean().optional(),
  };

  const BackupResultSchema = z.object({
    ...base,
    operation: z.literal('backup'),
    bytes: z.number().int().optional(),
    sha256: z.string().optional(),
    verified: z.boolean().optional(),
    tableCount: z.number().int().optional(),
    tables: TableCountsSchema.optional(),
    serverVersion: z.string().optional(),
    pgDumpVersion: z.string().optional(),
    /** A committed backup with this id already existed (a retried Job); nothing was dumped again. */
    reused: z.boolean().optional(),
    /** Set when the backup ran with --keep-* and succeeded: how many older backups retention deleted. */
    prunedCount: z.number().int().optional(),
    /** Their ids, oldest first; cut to a few when the result is bounded (prunedCount stays exact). */
    pruned: z.array(z.string()).optional(),
    /** Pruning after the backup failed; the backup itself is good and `success` stays true. */
    pruneError: z.string().optional(),
    /** Ids of partial dumps of interrupted backups that pruning removed. */
    stalePartialsRemoved: z.array(z.string()).optional(),
    /** Ids of complete dumps left without a manifest that pruning removed. */
    orphanDumpsRemoved: z.array(z.string()).optional(),
    /** The stored dump is under S3 Object Lock retention (as the server reports it after the upload). */
    objectLock: z.object({ mode: z.string(), retainUntil: z.string() }).optional(),
    /**
     * Reading the stored dump's Object Lock retention failed (the HEAD after the upload): whether the backup is
     * immutable is unknown, not "no lock". The error, redacted and cut to OBJECT_LOCK_ERROR_MAX characters.
     */
    objectLockUnknown: z.string().optional(),
  });

  const VerifyResultSchema = z.object({
    ...base,
    operation: z.literal('verify'),
    valid: z.boolean().optional(),
    bytes: z.number().int().optional(),
    sha256: z.string().optional(),
  });

  const validationFields = {
    restoreSeconds: z.number().nonnegative().optional(),
    validateSeconds: z.number().nonnegative().optional(),
    tablesVerified: z.number().int().optional(),
    mismatchCount: z.number().int().optional(),
    mismatches: z.array(TableMismatchSchema).optional(),
    assertions: z.array(AssertionOutcomeSchema).optional(),
  };

  const RestoreResultSchema = z.object({
    ...base,
    ...validationFields,
    operation: z.literal('restore'),
    mode: z.enum(['inPlace', 'newDatabaseSwap']).optional(),
    database: z.string().optional(),
    /** newDatabaseSwap: the database as it was before the restore, kept for undo (unless keep is 0). */
    previousDatabase: z.string().optional(),
    swapSeconds: z.number().nonnegative().optional(),
    /** newDatabaseSwap: the `<db>_pre_<id>` databases kept after the swap, newest first. */
    previousDatabasesKept: z.array(z.string()).optional(),
    /** newDatabaseSwap: older `<db>_pre_<id>` databases dropped beyond --keep-previous-databases. */
    previousDatabasesDropped: z.array(z.string()).optional(),
  });

  const TestRestoreResultSchema = z.object({
    ...base,
    ...validationFields,
    operation: z.literal('test-restore'),
    scratchDatabase: z.string().optional(),
    /** False only if dropping the scratch database failed; the operator should clean it up. */
    scratchDropped: z.boolean().optional(),
  });

  const PruneResultSchema = z.object({
    ...base,
    operation: z.literal('prune'),
    dryRun: z.boolean().optional(),
    deleted: z.array(z.string()).optional(),
    deletedCount: z.number().int().optional(),
    keptCount: z.number().int().optional(),
    /** Dumps without a manifest (a backup that crashed after its commit); left in place. */
    orphans: z.array(z.string()).optional(),
    /** Backups the policy would delete that a running plan pins; kept. */
    pinned: z.array(z.string()).optional(),
    /** Backups written by other schedules on the same storage; never candidates. */
    otherSchedulesCount: z.number().int().optional(),
    /** Ids of partial dumps of interrupted backups that were removed. */
    stalePartialsRemoved: z.array(z.string()).optional(),
    /** Ids of complete dumps left without a manifest (older than the leftover age) that were removed. */
    orphanDumpsRemoved: z.array(z.string()).optional(),
  });

  /**
   * `probe-storage`: whether an S3 location works for this schedule before any backup runs (the schedule's
   * StorageReady condition). On a failure `reason` is the S3 reason of the first check that failed.
   */
  const ProbeStorageResultSchema = z.object({
    ...base,
    operation: z.literal('probe-storage'),
    /** `s3://bucket/prefix`. */
    location: z.string().optional(),
    /** The checks that passed, in order (list, owner, write, delete, objectLock). */
    checks: z.array(z.string()).optional(),
    /** The prefix's owner object, when there is one: `namespace/name` (never written by the probe). */
    owner: z.string().optional(),
    /** With spec.storage.s3.objectLock: whether the bucket reports Object Lock enabled; absent when not asked or unreadable. */
    objectLockEnabled: z.boolean().optional(),
  });

  /** A subcommand this runner does not know (version skew between operator and image). */
  const UnknownOperationResultSchema = z.object({ ...base, operation: z.literal('unknown') });

  const Result = z.discriminatedUnion('operation', [
    BackupResultSchema,
    VerifyResultSchema,
    RestoreResultSchema,
    TestRestoreResultSchema,
    PruneResultSchema,
    ProbeStorageResultSchema,
    UnknownOperationResultSchema,
  ]);
  return {
    BackupResultSchema,
    VerifyResultSchema,
    RestoreResultSchema,
    TestRestoreResultSchema,
    PruneResultSchema,
    ProbeStorageResultSchema,
    UnknownOperationResultSchema,
    RunnerResultSchema: Result,
  };
}

/** What this runner writes: every reason one of FAILURE_REASONS. */
export const {
  BackupResultSchema,
  VerifyResultSchema,
  RestoreResultSchema,
  TestRestoreResultSchema,
  PruneResultSchema,
  ProbeStorageResultSchema,
  UnknownOperationResultSchema,
  RunnerResultSchema,
} = resultSchemas(FailureReasonSchema);
/** What the operator reads from a runner of any version 1 release, older or newer than itself. */
export const ReceivedResultSchema = resultSchemas(ReceivedReasonSchema).RunnerResultSchema;
export type ReceivedResult = z.infer<typeof ReceivedResultSchema>;
export type RunnerResult = z.infer<typeof RunnerResultSchema>;
export type BackupResult = z.infer<typeof BackupResultSchema>;
export type VerifyResult = z.infer<typeof VerifyResultSchema>;
export type RestoreResult = z.infer<typeof RestoreResultSchema>;
export type TestRestoreResult = z.infer<typeof TestRestoreResultSchema>;
export type PruneResult = z.infer<typeof PruneResultSchema>;
export type ProbeStorageResult = z.infer<typeof ProbeStorageResultSchema>;

// The runner writes results without loading zod (termination-message.ts); re-exported for the operator side.
export {
  boundResult,
  OBJECT_LOCK_ERROR_MAX,
  TERMINATION_MESSAGE_MAX_BYTES,
  timing,
  writeTerminationMessage,
} from './termination-message.js';
