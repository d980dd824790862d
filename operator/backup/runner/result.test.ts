import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  boundResult,
  RunnerResultSchema,
  TERMINATION_MESSAGE_MAX_BYTES,
  writeTerminationMessage,
  type RunnerResult,
} from './result.js';

const times = {
  startedAt: '2026-03-01T02:00:00.000Z',
  finishedAt: '2026-03-01T02:01:00.000Z',
  durationSeconds: 60,
};
const bytesOf = (r: unknown) => Buffer.byteLength(JSON.stringify(r), 'utf8');

function backupWithTables(n: number): RunnerResult {
  const tables: Record<string, number> = {};
  for (let i = 0; i < n; i++) tables[`schema_${i}.a_rather_long_table_name_${i}`] = i * 1000;
  return {
    resultVersion: 1,
    operation: 'backup',
    success: true,
    message: 'backup committed and verified',
    id: 'nightly-20260301020000',
    ...times,
    bytes: 123456,
    sha256: 'a'.repeat(64),
    verified: true,
    tableCount: n,
    tables,
  };
}

describe('boundResult', () => {
  it('leaves a small result untouched', () => {
    const r = backupWithTables(3);
    expect(boundResult(r)).toBe(r);
  });

  it('drops the per-table map of a big backup but keeps the table count', () => {
    const r = boundResult(backupWithTables(500));
    expect(bytesOf(r), 'expected the bounded result to fit the termination message').toBeLessThanOrEqual(
      TERMINATION_MESSAGE_MAX_BYTES,
    );
    expect(r).toMatchObject({
      operation: 'backup',
      tableCount: 500,
      truncated: true,
      sha256: 'a'.repeat(64),
    });
    expect(r).not.toHaveProperty('tables');
    expect(RunnerResultSchema.safeParse(r).success, 'expected the bounded result to still parse').toBe(true);
  });

  it('keeps failing assertions first when it has to cut the list', () => {
    const assertions = Array.from({ length: 100 }, (_, i) => ({
      name: `check-${i}`,
      passed: i !== 77,
      expect: 'x'.repeat(300),
      actual: 'y'.repeat(300),
    }));
    const r = boundResult({
      resultVersion: 1,
      operation: 'restore',
      success: false,
      reason: 'AssertionFailed',
      message: 'assertion check-77 failed',
      ...times,
      assertions,
    });
    expect(bytesOf(r)).toBeLessThanOrEqual(TERMINATION_MESSAGE_MAX_BYTES);
    expect(
      r.operation === 'restore' && r.assertions?.[0]?.name,
      'expected the failing assertion kept first',
    ).toBe('check-77');
  });

  it('falls back to the essential fields for any size, even multi-byte and control characters', () => {
    const r = boundResult({
      resultVersion: 1,
      operation: 'unknown',
      success: false,
      reason: 'InvalidArguments',
      message: '\u0001é😀'.repeat(50_000),
      id: 'z'.repeat(10_000),
      ...times,
    });
    expect(bytesOf(r)).toBeLessThanOrEqual(TERMINATION_MESSAGE_MAX_BYTES);
    expect(r).toMatchObject({ operation: 'unknown', reason: 'InvalidArguments', truncated: true });
    expect(RunnerResultSchema.safeParse(r).success).toBe(true);
  });
});

describe('writeTerminationMessage', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runner-result-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes compact JSON that RunnerResultSchema parses back', async () => {
    const path = join(dir, 'termination-log');
    await writeTerminationMessage(backupWithTables(2000), path);
    const text = readFileSync(path, 'utf8');
    expect(text, 'expected compact JSON without newlines').not.toContain('\n');
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(TERMINATION_MESSAGE_MAX_BYTES);
    const parsed = RunnerResultSchema.parse(JSON.parse(text));
    expect(parsed).toMatchObject({ resultVersion: 1, operation: 'backup', tableCount: 2000 });
  });
});
