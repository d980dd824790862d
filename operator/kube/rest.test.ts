import { describe, expect, it } from 'vitest';
import { resourcePath } from './rest.js';

const plans = { group: 'rollback.nxtnewday.io', version: 'v1alpha1', plural: 'rollbackplans' };

describe('resourcePath', () => {
  it('builds the path of a namespaced object', () => {
    expect(resourcePath({ ...plans, namespace: 'shop', name: 'p1' })).toBe(
      '/apis/rollback.nxtnewday.io/v1alpha1/namespaces/shop/rollbackplans/p1',
    );
  });
  it.each([
    [{ ...plans, namespace: 'shop', name: '..' }],
    [{ ...plans, namespace: 'shop', name: '.' }],
    [{ ...plans, namespace: '..', name: 'p1' }],
  ])('refuses "." and ".." (the URL would resolve them to another path): %j', (ref) => {
    expect(() => resourcePath(ref)).toThrow(/is not a valid object/);
  });
});
