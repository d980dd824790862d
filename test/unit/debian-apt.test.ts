import { describe, expect, it } from 'vitest';
import { aptGet, isAptLockError } from '../env/debian.js';

const lockErr = (msg: string) => Object.assign(new Error('Command failed'), { stderr: msg });

describe('apt-get waits for a concurrent apt/dpkg', () => {
  it('recognises the lists lock of apt-get update and the dpkg lock of an install', () => {
    expect(
      isAptLockError('E: Could not get lock /var/lib/apt/lists/lock. It is held by process 123 (apt-get)'),
    ).toBe(true);
    expect(isAptLockError('E: Unable to lock directory /var/lib/apt/lists/')).toBe(true);
    expect(isAptLockError('E: Could not get lock /var/lib/dpkg/lock-frontend')).toBe(true);
    expect(isAptLockError('E: Unable to locate package nosuch')).toBe(false);
  });

  it('retries apt-get update while the lists lock is held, then succeeds', () => {
    let calls = 0;
    const slept: number[] = [];
    aptGet(['update', '-qq'], {
      run: () => {
        if (++calls < 3) throw lockErr('E: Unable to lock directory /var/lib/apt/lists/');
      },
      sleep: (ms) => slept.push(ms),
    });
    expect(calls).toBe(3);
    expect(slept).toEqual([2000, 2000]);
  });

  it('fails at once on another error and after the wait on a lock held for good', () => {
    let calls = 0;
    expect(() =>
      aptGet(['install', 'nosuch'], {
        run: () => {
          calls++;
          throw lockErr('E: Unable to locate package nosuch');
        },
        sleep: () => {},
      }),
    ).toThrow(/Unable to locate package/);
    expect(calls).toBe(1);
    expect(() =>
      aptGet(['update'], {
        waitS: 0,
        run: () => {
          throw lockErr('E: Could not get lock /var/lib/apt/lists/lock');
        },
        sleep: () => {},
      }),
    ).toThrow(/Could not get lock/);
  });
});
