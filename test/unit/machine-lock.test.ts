import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { breakStaleLock, type MachineIo, procStartTime, withMachineLock } from '../env/node-sweep.js';

describe('the real-node machine lock (node-sweep.ts withMachineLock)', () => {
  let root: string;
  let io: MachineIo;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'machine-lock-test-'));
    io = { lockFile: join(root, 'lock'), recordFile: join(root, 'state.json') } as MachineIo;
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const old = (file: string) =>
    utimesSync(file, new Date(Date.now() - 30_000), new Date(Date.now() - 30_000));

  it('records "pid starttime" while held and removes only its own lock', () => {
    expect(withMachineLock(io, () => readFileSync(io.lockFile, 'utf8'))).toBe(
      `${process.pid} ${procStartTime(process.pid)}`,
    );
    expect(existsSync(io.lockFile)).toBe(false);
    // a waiter that broke this lock by mistake created its own: releasing leaves that one
    withMachineLock(io, () => writeFileSync(io.lockFile, '1 1'));
    expect(readFileSync(io.lockFile, 'utf8')).toBe('1 1');
  });

  it('breaks an empty lock (holder died between creating and writing it)', () => {
    writeFileSync(io.lockFile, '');
    old(io.lockFile);
    const t = Date.now();
    expect(withMachineLock(io, () => 1, 5_000)).toBe(1);
    expect(Date.now() - t).toBeLessThan(2_000);
    expect(readdirSync(root)).toEqual([]);
  });

  it('breaks a lock whose pid now belongs to another process (start time differs)', () => {
    writeFileSync(io.lockFile, `${process.pid} 1`); // a live pid, but not the process that took the lock
    expect(withMachineLock(io, () => 2, 5_000)).toBe(2);
  });

  it('waits for a live holder', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.on('spawn', r));
      writeFileSync(io.lockFile, `${child.pid} ${procStartTime(child.pid!)}`);
      old(io.lockFile);
      expect(() => withMachineLock(io, () => 3, 300)).toThrow(`held by pid ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("two waiters that judged the same lock stale: the second does not remove the first one's new lock", () => {
    writeFileSync(io.lockFile, '4194305 1'); // a dead holder
    const st = statSync(io.lockFile);
    const judged = { ino: st.ino, mtimeMs: st.mtimeMs, content: '4194305 1' };
    // waiter A breaks it and takes the lock (a new file)
    expect(breakStaleLock(io.lockFile, judged)).toBe(true);
    writeFileSync(join(root, 'fresh'), 'A');
    // (a new inode, as openSync('wx') would make)
    renameSync(join(root, 'fresh'), io.lockFile);
    // waiter B acts on what it judged before: nothing is broken, A's lock stays
    expect(breakStaleLock(io.lockFile, judged)).toBe(false);
    expect(readFileSync(io.lockFile, 'utf8')).toBe('A');
    expect(readdirSync(root)).toEqual(['lock']);
  });
});
