import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  absentPaths,
  acquireMachine,
  changedSysctls,
  readMachineRecord,
  releaseMachine,
  removeCreatedPaths,
  type MachineIo,
} from '../env/node-sweep.js';

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

describe('the machine record real nodes share (first node saves, last restores)', () => {
  /** A machine with kernel settings in memory and the record in a temp dir. */
  function fakeMachine() {
    const root = mkdtempSync(join(tmpdir(), 'nxt-unit-machine-'));
    const sysctls: Record<string, string> = { 'kernel.panic': '0', 'vm.overcommit_memory': '0' };
    const removed: string[][] = [];
    const io: MachineIo = {
      recordFile: join(root, 'state.json'),
      lockFile: join(root, 'lock'),
      readSysctls: () => ({ ...sysctls }),
      restoreSysctls: (saved) => {
        Object.assign(sysctls, saved);
        return [];
      },
      claimHostPaths: () => ['/var/lib/kubelet', '/var/lib/kubelet/.nxt-test-real-node'],
      removeHostPaths: (p) => {
        removed.push(p);
        return [];
      },
      userExists: (d) => existsSync(d),
    };
    const node = (name: string) => {
      const d = join(root, name);
      mkdirSync(d);
      return d;
    };
    /** What a node's kubelet does when it starts. */
    const kubeletStarts = () => Object.assign(sysctls, { 'kernel.panic': '10', 'vm.overcommit_memory': '1' });
    return { root, io, sysctls, removed, node, kubeletStarts };
  }

  it('overlapping runs in any order (A starts, B starts, A stops, B stops) end with the machine values', () => {
    const m = fakeMachine();
    try {
      const a = m.node('a');
      const b = m.node('b');
      expect(acquireMachine(a, m.io).sysctls).toEqual({ 'kernel.panic': '0', 'vm.overcommit_memory': '0' });
      m.kubeletStarts();
      // B finds A's kubelet values in the kernel, but records the machine's own
      expect(acquireMachine(b, m.io).sysctls).toEqual({ 'kernel.panic': '0', 'vm.overcommit_memory': '0' });
      m.kubeletStarts();
      expect(releaseMachine(a, m.io)).toEqual([]);
      // B's kubelet still runs: nothing is written back yet
      expect(m.sysctls['kernel.panic']).toBe('10');
      expect(m.removed).toEqual([]);
      expect(readMachineRecord(m.io)?.users).toEqual([b]);
      expect(releaseMachine(b, m.io)).toEqual([]);
      expect(m.sysctls).toEqual({ 'kernel.panic': '0', 'vm.overcommit_memory': '0' });
      expect(m.removed).toEqual([['/var/lib/kubelet', '/var/lib/kubelet/.nxt-test-real-node']]);
      expect(readMachineRecord(m.io)).toBeUndefined();
      expect(existsSync(m.io.lockFile)).toBe(false);
    } finally {
      rmSync(m.root, { recursive: true, force: true });
    }
  });

  it('a user whose work dir is gone no longer counts; a lock whose holder died is broken', () => {
    const m = fakeMachine();
    try {
      const crashed = m.node('crashed');
      acquireMachine(crashed, m.io);
      m.kubeletStarts();
      rmSync(crashed, { recursive: true });
      // a run's lock left by a process that no longer exists (pid 2^22 + 1 is above pid_max's default)
      writeFileSync(m.io.lockFile, String(4194305));
      const next = m.node('next');
      // the record of the crashed run keeps the machine values, not the kubelet's now in the kernel
      expect(acquireMachine(next, m.io).sysctls).toEqual({
        'kernel.panic': '0',
        'vm.overcommit_memory': '0',
      });
      expect(readMachineRecord(m.io)?.users).toEqual([next]);
      releaseMachine(next, m.io);
      expect(m.sysctls['kernel.panic']).toBe('0');
    } finally {
      rmSync(m.root, { recursive: true, force: true });
    }
  });
});
