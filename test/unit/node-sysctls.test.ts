import { describe, expect, it } from 'vitest';
import { changedSysctls } from '../env/node-sweep.js';

describe('kernel settings a real node records before its kubelet starts', () => {
  it('reports each setting that is not back to its recorded value, and nothing when none was recorded', () => {
    const saved = { 'kernel.panic': '0', 'vm.overcommit_memory': '0', 'kernel.keys.root_maxkeys': '200' };
    expect(changedSysctls(saved, { ...saved })).toEqual([]);
    expect(
      changedSysctls(saved, {
        'kernel.panic': '10',
        'vm.overcommit_memory': '0',
        'kernel.keys.root_maxkeys': '1000000',
      }),
    ).toEqual(['kernel.panic = 10 (was 0)', 'kernel.keys.root_maxkeys = 1000000 (was 200)']);
    // a setting this kernel does not have is not a leftover
    expect(changedSysctls(saved, { 'kernel.panic': '0' })).toEqual([]);
    expect(changedSysctls(undefined, { 'kernel.panic': '10' })).toEqual([]);
  });
});
