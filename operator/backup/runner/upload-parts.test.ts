import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MEMORY_LIMIT_BYTES,
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

  it('refuses, before dumping, a database whose parts would not fit the memory limit, saying which limit would', () => {
    expect(() => planUpload(1000 * GiB)).toThrow(
      expect.objectContaining({
        reason: 'StorageTooLargeForMemory',
        message: expect.stringMatching(
          /1000\.0 GiB.*parts of 154 MiB.*616 MiB.*limits\.memory to at least 2\.0 GiB/,
        ),
      }),
    );
    // The same database with a larger limit goes through.
    expect(planUpload(1000 * GiB, 2 * GiB).partBytes).toBe(154 * MiB);
    // Beyond what 10 000 parts of 5 GiB hold, whatever the memory.
    expect(() => planUpload(40_000 * GiB, 1024 * GiB)).toThrow(
      expect.objectContaining({
        reason: 'StorageTooLargeForMemory',
        message: expect.stringContaining('5 GiB'),
      }),
    );
  });

  it('gives an unknown size the largest parts the memory allows, and never less than 5 MiB', () => {
    expect(planUpload(undefined).partBytes).toBe(128 * MiB);
    expect(planUpload(undefined).bufferBytes).toBeLessThanOrEqual(DEFAULT_MEMORY_LIMIT_BYTES / 2);
    expect(planUpload(undefined, 4 * GiB).partBytes).toBe(512 * MiB);
    expect(planUpload(undefined, 16 * MiB).partBytes).toBe(S3_MIN_PART_BYTES);
    expect(planUpload(10 * GiB, 16 * MiB).partBytes).toBe(S3_MIN_PART_BYTES);
  });
});
