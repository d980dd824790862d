import { describe, expect, it } from 'vitest';
import { unifiedDiff } from './unified-diff.js';

const text = (...lines: string[]) => lines.map((l) => `${l}\n`).join('');
const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

describe('unifiedDiff', () => {
  it.each([
    { case: 'equal texts', before: text('a', 'b'), after: text('a', 'b'), expected: '' },
    { case: 'both empty', before: '', after: '', expected: '' },
    {
      case: 'one changed line with context',
      before: text('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'),
      after: text('a', 'b', 'c', 'd', 'E', 'f', 'g', 'h'),
      expected: text('--- old', '+++ new', '@@ -2,7 +2,7 @@', ' b', ' c', ' d', '-e', '+E', ' f', ' g', ' h'),
    },
    {
      case: 'insertion at the start',
      before: text('a', 'b'),
      after: text('new', 'a', 'b'),
      expected: text('--- old', '+++ new', '@@ -1,2 +1,3 @@', '+new', ' a', ' b'),
    },
    {
      case: 'deletion at the end',
      before: text('a', 'b', 'c'),
      after: text('a', 'b'),
      expected: text('--- old', '+++ new', '@@ -1,3 +1,2 @@', ' a', ' b', '-c'),
    },
    {
      case: 'from an empty file (empty range printed as 0,0)',
      before: '',
      after: text('x', 'y'),
      expected: text('--- old', '+++ new', '@@ -0,0 +1,2 @@', '+x', '+y'),
    },
    {
      case: 'single-line ranges omit the count, like GNU diff',
      before: text('a'),
      after: text('b'),
      expected: text('--- old', '+++ new', '@@ -1 +1 @@', '-a', '+b'),
    },
  ])('$case', ({ before, after, expected }) => {
    expect(unifiedDiff(before, after, 'old', 'new')).toBe(expected);
  });

  it('splits changes more than 6 lines apart into separate hunks', () => {
    const before = numbered(20);
    const after = before.map((l, i) => (i === 2 || i === 16 ? `${l}!` : l));
    const headers = unifiedDiff(text(...before), text(...after), 'a', 'b')
      .split('\n')
      .filter((l) => l.startsWith('@@'));
    expect(headers, 'two hunks, each with 3 lines of context').toEqual([
      '@@ -1,6 +1,6 @@',
      '@@ -14,7 +14,7 @@',
    ]);
  });

  it('merges changes at most 6 lines apart into one hunk', () => {
    const before = numbered(20);
    const after = before.map((l, i) => (i === 5 || i === 12 ? `${l}!` : l));
    const headers = unifiedDiff(text(...before), text(...after), 'a', 'b')
      .split('\n')
      .filter((l) => l.startsWith('@@'));
    expect(headers, 'contexts touch, so one hunk').toEqual(['@@ -3,14 +3,14 @@']);
  });

  // Random edits: the diff must rebuild the new text from the old one and be a shortest edit script.
  it('is correct and minimal on random inputs', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const before = Array.from({ length: rand(12) }, () => 'abcd'[rand(4)]!);
      const after = Array.from({ length: rand(12) }, () => 'abcd'[rand(4)]!);
      const diff = unifiedDiff(text(...before), text(...after), 'a', 'b', 1000);
      const body = diff.split('\n').filter((l) => /^[ +-]/.test(l) && !/^(---|\+\+\+) /.test(l));
      const rebuiltOld = body.filter((l) => !l.startsWith('+')).map((l) => l.slice(1));
      const rebuiltNew = body.filter((l) => !l.startsWith('-')).map((l) => l.slice(1));
      const label = `${JSON.stringify(before)} -> ${JSON.stringify(after)}`;
      if (diff === '') {
        expect(after, `empty diff only for equal inputs: ${label}`).toEqual(before);
        continue;
      }
      expect(rebuiltOld, `old side of ${label}`).toEqual(before);
      expect(rebuiltNew, `new side of ${label}`).toEqual(after);
      const edits = body.filter((l) => !l.startsWith(' ')).length;
      expect(edits, `shortest edit script for ${label}`).toBe(
        before.length + after.length - 2 * lcs(before, after),
      );
    }
  });
});

function lcs(a: string[], b: string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = x === b[j - 1] ? diag + 1 : Math.max(row[j]!, row[j - 1]!);
      diag = up;
    }
  }
  return row[b.length]!;
}
