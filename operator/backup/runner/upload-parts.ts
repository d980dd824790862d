import { constants } from 'node:buffer';
import { RunnerFailure } from './failure.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** S3's multipart limits: parts of 5 MiB to 5 GiB (the last may be smaller), at most 10 000 of them. */
export const S3_MIN_PART_BYTES = 5 * MiB;
export const S3_MAX_PART_BYTES = 5 * GiB;
export const S3_MAX_PARTS = 10_000;
/** Parts uploaded at once. */
export const S3_QUEUE_SIZE = 2;
/**
 * Part buffers the upload holds at most: one per part in flight, the part being filled, and its copy while
 * lib-storage joins the chunks it read into one buffer.
 */
export const PART_BUFFERS = S3_QUEUE_SIZE + 2;
/**
 * How much larger than the database (pg_database_size before the dump) its `pg_dump -Fc` archive is assumed
 * to be at most. The archive is compressed and leaves out indexes, so it is usually far smaller; the margin
 * covers incompressible data and a database that grows while it is dumped.
 */
export const DUMP_SIZE_FACTOR = 1.5;
/**
 * The share of the container's memory limit the part buffers may take. The rest is for Node and the SDK
 * (about 80 MiB), and for pg_dump and `pg_restore --list`, which run in the same container.
 */
export const UPLOAD_MEMORY_SHARE = 0.5;
/** The runner Job's memory limit when the pod template sets none (pod-builders.ts). */
export const DEFAULT_MEMORY_LIMIT_BYTES = GiB;

/**
 * The largest part the runner uses: S3 allows 5 GiB, but a part is one Buffer (Node's limit,
 * buffer.constants.MAX_LENGTH, is 4 GiB on Node 20) and PART_BUFFERS of them are held at once.
 */
export const MAX_PART_BYTES = Math.min(S3_MAX_PART_BYTES, constants.MAX_LENGTH, 512 * MiB);
/** Parts when the database's size is unknown (pg_database_size failed): 10 000 of them hold 625 GiB. */
export const UNKNOWN_SIZE_PART_BYTES = 64 * MiB;

export interface UploadPlan {
  /** Bytes per multipart part: S3_MIN_PART_BYTES to MAX_PART_BYTES, a whole number of MiB. */
  partBytes: number;
  /** The largest dump these parts can hold (S3_MAX_PARTS of them). */
  maxDumpBytes: number;
  /** Memory the part buffers may take at most (PART_BUFFERS parts). */
  bufferBytes: number;
  /** Set when a dump of DUMP_SIZE_FACTOR x the database may not fit these parts: for the log. */
  warning?: string;
}

const mib = (n: number) => `${Math.ceil(n / MiB)} MiB`;
const gib = (n: number) => `${(n / GiB).toFixed(1)} GiB`;

/**
 * The multipart part size for a dump of a database of `databaseBytes` (pg_database_size), in a container
 * whose memory limit is `memoryLimitBytes` (undefined: none set, sized as for DEFAULT_MEMORY_LIMIT_BYTES):
 * parts large enough that DUMP_SIZE_FACTOR x the database fits in S3's 10 000 parts (5 MiB parts hold 48 GiB
 * only), yet whose PART_BUFFERS buffers stay within UPLOAD_MEMORY_SHARE of the memory limit, and never above
 * MAX_PART_BYTES. Nothing is refused here: pg_database_size says little about a compressed dump's size, so a
 * database whose parts would want more memory gets the largest parts the memory allows and a warning naming
 * the limit that would guarantee a fit; only a dump that really needs part 10 001 fails
 * (StorageTooLargeForMemory, tooManyPartsFailure). An unknown size gets UNKNOWN_SIZE_PART_BYTES parts.
 */
export function planUpload(databaseBytes: number | undefined, memoryLimitBytes?: number): UploadPlan {
  const limit = memoryLimitBytes ?? DEFAULT_MEMORY_LIMIT_BYTES;
  const budgetPart = Math.max(
    S3_MIN_PART_BYTES,
    Math.min(MAX_PART_BYTES, Math.floor((limit * UPLOAD_MEMORY_SHARE) / PART_BUFFERS / MiB) * MiB),
  );
  const wanted =
    databaseBytes === undefined
      ? UNKNOWN_SIZE_PART_BYTES
      : Math.max(S3_MIN_PART_BYTES, Math.ceil((databaseBytes * DUMP_SIZE_FACTOR) / S3_MAX_PARTS / MiB) * MiB);
  const partBytes = Math.min(wanted, budgetPart);
  const plan = { partBytes, maxDumpBytes: partBytes * S3_MAX_PARTS, bufferBytes: partBytes * PART_BUFFERS };
  if (databaseBytes === undefined || partBytes >= wanted) return plan;
  const head =
    `the database is ${gib(databaseBytes)} (pg_database_size); parts of ${mib(partBytes)} hold a dump of ` +
    `${gib(plan.maxDumpBytes)} at most (${S3_MAX_PARTS} parts), less than ${DUMP_SIZE_FACTOR} times that`;
  if (wanted > MAX_PART_BYTES)
    return {
      ...plan,
      warning: `${head}; parts cannot grow past ${mib(MAX_PART_BYTES)}: a dump larger than that fails`,
    };
  return {
    ...plan,
    warning:
      `${head}; a compressed dump usually fits, but spec.podTemplate.resources.limits.memory of at least ` +
      `${gib(memoryLimitFor(wanted))} would guarantee it (now ${memoryLimitBytes === undefined ? 'unset' : mib(limit)})`,
  };
}

/** The memory limit whose UPLOAD_MEMORY_SHARE holds PART_BUFFERS parts of `partBytes`, in whole GiB. */
const memoryLimitFor = (partBytes: number) =>
  Math.ceil((partBytes * PART_BUFFERS) / UPLOAD_MEMORY_SHARE / GiB) * GiB;

/**
 * An upload that ran out of parts: lib-storage's "Exceeded 10000 parts" or the server refusing part 10 001.
 * Undefined for any other error.
 */
export function tooManyPartsFailure(e: unknown, plan: UploadPlan): RunnerFailure | undefined {
  const message = (e as { message?: string })?.message ?? '';
  if (!/Exceeded \d+ parts|[Pp]art ?[Nn]umber must be an integer between 1 and 10000/.test(message))
    return undefined;
  const bigger = Math.min(MAX_PART_BYTES, plan.partBytes * 2);
  return new RunnerFailure(
    'StorageTooLargeForMemory',
    `the dump outgrew ${S3_MAX_PARTS} multipart parts of ${mib(plan.partBytes)} (${gib(plan.maxDumpBytes)}); ` +
      (plan.partBytes >= MAX_PART_BYTES
        ? `parts cannot grow past ${mib(MAX_PART_BYTES)}: split the database or use a volume`
        : `set spec.podTemplate.resources.limits.memory to at least ${gib(memoryLimitFor(bigger))} for parts of ${mib(bigger)}`),
  );
}
