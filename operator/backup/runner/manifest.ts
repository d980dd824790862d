import { z } from 'zod';

export const ArchiveIdentitySchema = z.object({
  etag: z.string().min(1).max(256).optional(),
  versionId: z.string().min(1).max(1024).optional(),
});
export type ArchiveIdentity = z.infer<typeof ArchiveIdentitySchema>;

/**
 * What a committed backup claims about itself. Written after the dump is committed, so a manifest's
 * presence means "this dump finished"; `verified` says whether the archive also passed verification.
 */
export const BackupManifestSchema = z.object({
  manifestVersion: z.literal(1),
  id: z.string(),
  database: z.string(),
  /** Host and port only: a manifest never carries credentials. */
  host: z.string(),
  port: z.number().int(),
  user: z.string(),
  serverVersion: z.string(),
  pgDumpVersion: z.string(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  durationSeconds: z.number().nonnegative(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Exact row counts per `schema.table`. */
  tables: z.record(z.string(), z.number().int().nonnegative()),
  /** True when the counts were read in the snapshot pg_dump used, so they describe the dump exactly. */
  rowCountsFromDumpSnapshot: z.boolean(),
  format: z.literal('custom'),
  verified: z.boolean(),
  verifyMessage: z.string(),
  /**
   * Object storage: the stored dump this manifest describes, as the upload's completion returned it. Reads
   * of the dump are pinned to it (If-Match on the ETag, the VersionId in a versioned bucket), so a dump
   * replaced after the manifest was written is refused (ArchiveReplaced) instead of read. Absent on a
   * claim and in manifests written before it was recorded: those reads are not pinned.
   */
  archive: ArchiveIdentitySchema.optional(),
  /** Who wrote it (absent in manifests written before provenance was recorded). */
  origin: z
    .object({
      purpose: z.enum(['scheduled', 'emergency', 'safety']),
      /** The namespace of the schedule (and plan) the runner worked for. */
      namespace: z.string().optional(),
      schedule: z.object({ name: z.string(), uid: z.string() }).optional(),
      plan: z.object({ name: z.string(), uid: z.string() }).optional(),
      job: z.object({ name: z.string(), uid: z.string().optional() }).optional(),
    })
    .optional(),
});
export type BackupManifest = z.infer<typeof BackupManifestSchema>;
