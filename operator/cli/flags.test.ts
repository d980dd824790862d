import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { commaList, durationFlag } from './flags.js';

describe('cli flags', () => {
  it('splits comma lists and adds repeated flags', () => {
    expect(commaList('a, b,,c')).toEqual(['a', 'b', 'c']);
    expect(commaList('d', ['a'])).toEqual(['a', 'd']);
  });
  it('reads durations as Go durations, days or seconds', () => {
    const p = durationFlag('--timeout');
    expect(p('90s')).toBe(90_000);
    expect(p('1h30m')).toBe(5_400_000);
    expect(p('7d')).toBe(7 * 86_400_000);
    expect(p('30')).toBe(30_000);
    expect(p('0.5')).toBe(500);
  });
  it('refuses a bad or zero duration with a usage error naming the flag', () => {
    const p = durationFlag('--max-backup-age');
    expect(() => p('soon')).toThrow(/--max-backup-age must be a duration/);
    expect(() => p('0s')).toThrow(CliError);
    expect(() => p('-5m')).toThrow(CliError);
  });
});
