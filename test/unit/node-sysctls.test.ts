import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { absentPaths, changedSysctls, removeCreatedPaths } from '../env/node-sweep.js';

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

describe('paths the kubelet makes outside its root dir', () => {
  it('removes only what did not exist before, deepest first, and keeps a directory someone else uses', () => {
    const root = mkdtempSync(join(tmpdir(), 'nxt-unit-kubelet-paths-'));
    try {
      const paths = [
        join(root, 'kubelet'),
        join(root, 'kubelet', 'device-plugins'),
        join(root, 'kubelet', 'device-plugins', 'kubelet.sock'),
      ];
      mkdirSync(paths[0]!); // there before
      const created = absentPaths(paths);
      expect(created).toEqual(paths.slice(1));
      mkdirSync(paths[1]!);
      writeFileSync(paths[2]!, '');
      writeFileSync(join(paths[0]!, 'other'), ''); // not ours
      expect(removeCreatedPaths(created)).toEqual([]);
      expect(existsSync(paths[1]!)).toBe(false);
      expect(existsSync(paths[0]!)).toBe(true);
      expect(existsSync(join(paths[0]!, 'other'))).toBe(true);
      // a directory another node still has a socket in stays
      mkdirSync(paths[1]!);
      writeFileSync(join(paths[1]!, 'another.sock'), '');
      expect(removeCreatedPaths(created)).toEqual([paths[1]]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
