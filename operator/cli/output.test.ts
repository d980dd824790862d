import { describe, expect, it } from 'vitest';
import { formatDuration, makeOut, paint, parseOutputFormat, printable, table } from './output.js';
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

describe('printing what the cluster wrote', () => {
  it('strips control characters and escape sequences, keeps newlines and our own colours', () => {
    const reason = 'bad\x1b[2J\x1b[H deploy\x1b]0;pwned\x07\r\x08 of \x9b31mweb\x00\ttoday\nline two';
    expect(printable(reason)).toBe('bad deploy of 31mweb today\nline two');
    expect(printable(paint({ color: true }, 'red', 'Failed'))).toBe('\x1b[31mFailed\x1b[0m');
    expect(printable('plan \u202edeliaF\u202c ok \u2067x\u2069 \u200fy')).toBe('plan deliaF ok x y');
  });
  it('prints every line through it (a plan reason in a table, a status message on stderr)', () => {
    let out = '';
    let err = '';
    const o = makeOut(
      'table',
      { write: (s: string) => ((out += s), true), isTTY: false } as any,
      { write: (s: string) => ((err += s), true) } as any,
    );
    o.line('reason: x\x1b[1A\x1b[2Ky');
    o.warn('msg\x1b]8;;http://evil\x07link');
    expect(out).toBe('reason: xy\n');
    expect(err).toBe('msglink\n');
  });
});

describe('TERM=dumb', () => {
  it('is no terminal for live redraws (no cursor movement), and gets no colour', () => {
    const saved = process.env.TERM;
    process.env.TERM = 'dumb';
    try {
      const o = makeOut('table', { write: () => true, isTTY: true } as any);
      expect(o.tty).toBe(false);
      expect(o.color).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.TERM;
      else process.env.TERM = saved;
    }
  });
});
