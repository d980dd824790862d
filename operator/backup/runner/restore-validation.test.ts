import { describe, expect, it } from 'vitest';
import { compareRowCounts } from './restore-validation.js';

describe('compareRowCounts', () => {
  it('verifies equal tables and reports differing and missing ones', () => {
    const r = compareRowCounts(
      { 'public.a': 10, 'public.b': 5, 'app.c': 0 },
      { 'public.a': 10, 'public.b': 4, 'public.extra': 7 },
    );
    expect(r.tablesVerified, 'expected only public.a to verify').toBe(1);
    expect(r.mismatches).toEqual([
      { table: 'app.c', expected: 0, actual: null },
      { table: 'public.b', expected: 5, actual: 4 },
    ]);
  });

  it('does not count tables that are not in the manifest', () => {
    expect(compareRowCounts({}, { 'public.new': 1 })).toEqual({ tablesVerified: 0, mismatches: [] });
  });
});
