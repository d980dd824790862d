import { describe, expect, it } from 'vitest';
import { formatDuration, parseOutputFormat, table } from './output.js';
import { CliError } from './errors.js';

describe('cli output', () => {
  it('aligns columns like kubectl and keeps the last column unpadded', () => {
    expect(
      table(
        ['name', 'phase'],
        [
          ['a', 'Succeeded'],
          ['longer-name', undefined],
        ],
      ),
    ).toBe('NAME          PHASE\na             Succeeded\nlonger-name');
  });
  it('ignores colour codes when measuring width', () => {
    const t = table(
      ['a', 'b'],
      [
        ['\x1b[32mok\x1b[0m', 'x'],
        ['fine', 'y'],
      ],
    );
    expect(t.split('\n')[1]).toBe('\x1b[32mok\x1b[0m     x');
  });
  it('formats durations the way the tables show them', () => {
    expect(formatDuration(1.234)).toBe('1.2s');
    expect(formatDuration(42)).toBe('42s');
    expect(formatDuration(192)).toBe('3m12s');
    expect(formatDuration(3600)).toBe('1h');
    expect(formatDuration(90000)).toBe('25h');
    expect(formatDuration(undefined)).toBe('');
  });
  it('refuses an unknown output format with a usage error', () => {
    expect(parseOutputFormat('json')).toBe('json');
    expect(() => parseOutputFormat('xml')).toThrow(CliError);
  });
});
