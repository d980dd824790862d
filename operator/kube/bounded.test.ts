import { describe, expect, it } from 'vitest';
import { boundIdentity, boundText } from './bounded.js';

describe('boundText', () => {
  it('keeps a value that fits', () => expect(boundText('abc', 3)).toBe('abc'));
  it('cuts with a marker', () => expect(boundText('abcdef', 5)).toBe('ab...'));
  it('never splits a surrogate pair', () => {
    const s = 'a' + '😀'.repeat(10);
    const out = boundText(s, 6); // 'a', then a pair at units 1-2, a pair at 3-4 (the 4 is cut)
    expect(out).toBe('a😀...');
    expect(out.length).toBeLessThanOrEqual(6);
  });
});

describe('boundIdentity', () => {
  it('keeps a value that fits', () => expect(boundIdentity('x'.repeat(253), 253)).toBe('x'.repeat(253)));
  it('bounds a long value and keeps distinct values distinct', () => {
    const a = boundIdentity('x'.repeat(300) + 'a', 253);
    const b = boundIdentity('x'.repeat(300) + 'b', 253);
    expect(a.length).toBeLessThanOrEqual(253);
    expect(a).toMatch(/^x+\.\.\.sha256:[0-9a-f]{32}$/);
    expect(a).not.toBe(b);
    expect(boundIdentity('x'.repeat(300) + 'a', 253)).toBe(a);
  });
});
