import { constants } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MEMORY_LIMIT_BYTES,
  MAX_PART_BYTES,
  tooManyPartsFailure,
  UNKNOWN_SIZE_PART_BYTES,
  PART_BUFFERS,
  planUpload,
  S3_MAX_PARTS,
  S3_MIN_PART_BYTES,
} from './upload-parts.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('planUpload: multipart part size from the database size and the memory limit', () => {
  it('keeps 5 MiB parts for a database whose dump fits 10 000 of them', () => {
    for (const size of [0, 110 * MiB, 30 * GiB])
      expect(planUpload(size), `${size} bytes`).toEqual({
        partBytes: S3_MIN_PART_BYTES,
        maxDumpBytes: S3_MIN_PART_BYTES * S3_MAX_PARTS,
        bufferBytes: S3_MIN_PART_BYTES * PART_BUFFERS,
      });
  });

  it('grows the parts past 48 GiB so that 1.5 x the database fits, in whole MiB, within the memory share', () => {
    for (const size of [40 * GiB, 100 * GiB, 500 * GiB, 800 * GiB]) {
      const p = planUpload(size);
      expect(p.partBytes % MiB, 'whole MiB').toBe(0);
      expect(p.maxDumpBytes, `${size / GiB} GiB: room for 1.5 x the database`).toBeGreaterThanOrEqual(
        size * 1.5,
      );
      expect(p.partBytes - MiB, 'the smallest such part').toBeLessThan(
        Math.max(S3_MIN_PART_BYTES, (size * 1.5) / S3_MAX_PARTS),
      );
      expect(p.bufferBytes, 'at most half the 1 GiB default limit').toBeLessThanOrEqual(
        DEFAULT_MEMORY_LIMIT_BYTES / 2,
      );
    }
    // 100 GiB: 15.36 MiB per part -> 16 MiB parts, 64 MiB of buffers.
    expect(planUpload(100 * GiB)).toMatchObject({ partBytes: 16 * MiB, bufferBytes: 64 * MiB });
  });

  it('never refuses on memory: the largest parts the memory allows, and a warning naming the limit that would guarantee a fit', () => {
    const p = planUpload(1000 * GiB);
    expect(p).toMatchObject({ partBytes: 128 * MiB, bufferBytes: 512 * MiB });
    expect(p.warning).toMatch(
      /1000\.0 GiB.*parts of 128 MiB.*limits\.memory of at least 2\.0 GiB.*now unset/,
    );
    expect(planUpload(1000 * GiB, GiB).warning).toContain('now 1024 MiB');
    // The same database with a larger limit: parts that hold 1.5 x it, no warning.
    expect(planUpload(1000 * GiB, 2 * GiB)).toMatchObject({ partBytes: 154 * MiB });
    expect(planUpload(1000 * GiB, 2 * GiB).warning).toBeUndefined();
    // Beyond what parts of MAX_PART_BYTES hold, whatever the memory: a warning, not a refusal.
    const huge = planUpload(40_000 * GiB, 1024 * GiB);
    expect(huge.partBytes).toBe(MAX_PART_BYTES);
    expect(huge.warning).toContain('cannot grow past 512 MiB');
  });

  it("caps parts below Node's Buffer limit and 512 MiB, whatever the memory limit (a node's allocatable memory)", () => {
    expect(MAX_PART_BYTES).toBe(512 * MiB);
    expect(MAX_PART_BYTES).toBeLessThanOrEqual(constants.MAX_LENGTH);
    expect(planUpload(60_000 * GiB, 64 * GiB).partBytes).toBe(512 * MiB);
    expect(planUpload(undefined, 64 * GiB).partBytes).toBe(UNKNOWN_SIZE_PART_BYTES);
  });

  it('reports a dump that outgrew 10 000 parts as StorageTooLargeForMemory, naming a limit for larger parts', () => {
    const plan = planUpload(100 * GiB);
    for (const e of [
      new Error('Exceeded 10000 parts in multipart upload to Bucket: b Key: p/b-1.dump.'),
      Object.assign(new Error('Part number must be an integer between 1 and 10000, inclusive'), {
        name: 'InvalidArgument',
      }),
    ])
      expect(tooManyPartsFailure(e, plan)).toMatchObject({
        reason: 'StorageTooLargeForMemory',
        message: expect.stringMatching(
          /10000 multipart parts of 16 MiB.*limits\.memory to at least 1\.0 GiB for parts of 32 MiB/,
        ),
      });
    expect(tooManyPartsFailure(new Error('socket hang up'), plan)).toBeUndefined();
  });

  it('gives an unknown size fixed 64 MiB parts (fewer when the memory is small), and never less than 5 MiB', () => {
    expect(planUpload(undefined).partBytes).toBe(64 * MiB);
    expect(planUpload(undefined).warning).toBeUndefined();
    expect(planUpload(undefined, 4 * GiB).partBytes).toBe(64 * MiB);
    expect(planUpload(undefined, 256 * MiB).partBytes).toBe(32 * MiB);
    expect(planUpload(undefined, 16 * MiB).partBytes).toBe(S3_MIN_PART_BYTES);
    expect(planUpload(10 * GiB, 16 * MiB).partBytes).toBe(S3_MIN_PART_BYTES);
  });
});
