import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { commaList, durationFlag, parseDurationFlag, repeatable, specDurationFlag } from './flags.js';

describe('cli flags', () => {
  it('splits comma lists and adds repeated flags', () => {
    expect(commaList('a, b,,c')).toEqual(['a', 'b', 'c']);
    expect(commaList('d', ['a'])).toEqual(['a', 'd']);
    expect(repeatable('b', repeatable('a'))).toEqual(['a', 'b']);
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
  it('reads --timeout the same way in every command', () => {
    expect(parseDurationFlag('--timeout', '1m30s')).toBe(90_000);
    expect(parseDurationFlag('--timeout', '5')).toBe(5_000);
    expect(() => parseDurationFlag('--timeout', 'soon')).toThrow(
      /--timeout must be a duration .*\(got "soon"\)/,
    );
    expect(() => parseDurationFlag('--timeout', '0')).toThrow(CliError);
  });
  it('accepts only what the schema accepts for a duration written into a spec', () => {
    expect(specDurationFlag('--validation-timeout', '5m')).toBe(300_000);
    for (const bad of ['30', '7d', 'soon', '0s'])
      expect(() => specDurationFlag('--validation-timeout', bad)).toThrow(
        /--validation-timeout ".*" is not a duration: use e.g. 30s, 5m or 1h30m/,
      );
  });
});
