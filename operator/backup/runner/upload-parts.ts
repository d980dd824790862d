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

export interface UploadPlan {
  /** Bytes per multipart part: S3_MIN_PART_BYTES or more, a whole number of MiB. */
  partBytes: number;
  /** The largest dump these parts can hold (S3_MAX_PARTS of them). */
  maxDumpBytes: number;
  /** Memory the part buffers may take at most (PART_BUFFERS parts). */
  bufferBytes: number;
}

const mib = (n: number) => `${Math.ceil(n / MiB)} MiB`;
const gib = (n: number) => `${(n / GiB).toFixed(1)} GiB`;

/**
 * The multipart part size for a dump of a database of `databaseBytes` (pg_database_size), in a container
 * whose memory limit is `memoryLimitBytes`: parts large enough that DUMP_SIZE_FACTOR x the database fits in
 * S3's 10 000 parts (5 MiB parts hold 48 GiB only), yet whose PART_BUFFERS buffers stay within
 * UPLOAD_MEMORY_SHARE of the memory limit. A database whose parts would not fit is refused before anything is
 * dumped (StorageTooLargeForMemory, saying which memory limit would do) instead of failing at part 10 001
 * hours later. An unknown size gets the largest parts the memory allows.
 */
export function planUpload(
  databaseBytes: number | undefined,
  memoryLimitBytes = DEFAULT_MEMORY_LIMIT_BYTES,
): UploadPlan {
  const budgetPart = Math.min(
    S3_MAX_PART_BYTES,
    Math.floor((memoryLimitBytes * UPLOAD_MEMORY_SHARE) / PART_BUFFERS / MiB) * MiB,
  );
  const wanted =
    databaseBytes === undefined
      ? budgetPart
      : Math.ceil((databaseBytes * DUMP_SIZE_FACTOR) / S3_MAX_PARTS / MiB) * MiB;
  const partBytes = Math.max(S3_MIN_PART_BYTES, wanted);
  if (databaseBytes !== undefined && partBytes > S3_MAX_PART_BYTES)
    throw new RunnerFailure(
      'StorageTooLargeForMemory',
      `the database is ${gib(databaseBytes)} (pg_database_size): a dump of up to ${DUMP_SIZE_FACTOR} times that ` +
        `exceeds what one S3 object can hold in ${S3_MAX_PARTS} parts of at most 5 GiB`,
    );
  if (partBytes > Math.max(budgetPart, S3_MIN_PART_BYTES)) {
    const needLimit = Math.ceil((partBytes * PART_BUFFERS) / UPLOAD_MEMORY_SHARE / GiB) * GiB;
    throw new RunnerFailure(
      'StorageTooLargeForMemory',
      `the database is ${gib(databaseBytes!)} (pg_database_size): a dump of up to ${DUMP_SIZE_FACTOR} times that ` +
        `needs multipart parts of ${mib(partBytes)} (S3 allows ${S3_MAX_PARTS} parts), and ${PART_BUFFERS} of them ` +
        `in memory need ${mib(partBytes * PART_BUFFERS)}, more than ${UPLOAD_MEMORY_SHARE * 100}% of the runner's ` +
        `memory limit of ${mib(memoryLimitBytes)}; set spec.podTemplate.resources.limits.memory to at least ` +
        `${gib(needLimit)}`,
    );
  }
  return {
    partBytes,
    maxDumpBytes: partBytes * S3_MAX_PARTS,
    bufferBytes: partBytes * PART_BUFFERS,
  };
}
