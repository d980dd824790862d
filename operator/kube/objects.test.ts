import { describe, expect, it } from 'vitest';
import { childName } from './objects.js';

describe('childName', () => {
  it('leaves a name that fits as <parent>-<suffix>', () => {
    expect(childName('app', 'backup', 52)).toBe('app-backup');
    const p = 'a'.repeat(43);
    expect(childName(p, 'backup-now-12345678', 63)).toBe(`${p}-backup-now-12345678`);
  });

  it('never gives two parents that differ only past the cut the same child name', () => {
    const a = `${'s'.repeat(42)}a`;
    const b = `${'s'.repeat(42)}b`;
    const na = childName(a, 'restore-now-12345678', 63);
    const nb = childName(b, 'restore-now-12345678', 63);
    expect(na).not.toBe(nb);
    for (const n of [na, nb]) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(n.endsWith('-restore-now-12345678')).toBe(true);
    }
  });
});
