import { describe, expect, it } from 'vitest';
import { formatBytes, uniqueRequestValue } from './requests.js';

describe('cli requests', () => {
  it('makes unique lower-case request values that also fit an object name', () => {
    const a = uniqueRequestValue('cli', new Date('2026-11-29T11:53:00.123Z'));
    expect(a).toMatch(/^cli-20261129t115300z-[0-9a-f]{6}$/);
    expect(uniqueRequestValue()).not.toBe(uniqueRequestValue());
  });
  it('formats sizes like the tables show them', () => {
    expect(formatBytes(512)).toBe('512B');
    expect(formatBytes(1536)).toBe('1.5KiB');
    expect(formatBytes(25 * 1024 * 1024)).toBe('25MiB');
    expect(formatBytes(undefined)).toBe('');
  });
});
