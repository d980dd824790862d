import { describe, expect, it } from 'vitest';
import { readJobOutcome } from './job-results.js';

const job = (conds: object[], completionTime?: string) =>
  ({ metadata: { name: 'j' }, status: { conditions: conds, completionTime } }) as any;
const pod = (terminated: object) =>
  ({ metadata: { name: 'p' }, status: { containerStatuses: [{ state: { terminated } }] } }) as any;
const ok = {
  resultVersion: 1,
  operation: 'backup',
  success: true,
  message: 'backed up',
  id: 'db-1',
  startedAt: '2026-11-28T10:00:00Z',
  finishedAt: '2026-11-28T10:00:05Z',
  durationSeconds: 5,
  bytes: 1234,
  sha256: 'a'.repeat(64),
  verified: true,
};

describe('readJobOutcome', () => {
  it('is running until the Job has a Complete or Failed condition', () => {
    expect(readJobOutcome(job([]), [])).toEqual({ state: 'running' });
  });

  it('reads the runner result from the termination message', () => {
    const o = readJobOutcome(job([{ type: 'Complete', status: 'True' }], '2026-11-28T10:00:06Z'), [
      pod({ exitCode: 0, message: JSON.stringify(ok) }),
    ]);
    expect(o).toMatchObject({ state: 'succeeded', reason: 'Succeeded', finishedAt: '2026-11-28T10:00:05Z' });
    expect(o.state !== 'running' && o.result?.operation).toBe('backup');
  });

  it('reports the runner failure reason', () => {
    const bad = { ...ok, success: false, reason: 'DatabaseUnreachable', message: 'connection refused' };
    const o = readJobOutcome(job([{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }]), [
      pod({ exitCode: 1, message: JSON.stringify(bad) }),
    ]);
    expect(o).toMatchObject({
      state: 'failed',
      reason: 'DatabaseUnreachable',
      message: 'connection refused',
    });
  });

  it('falls back to the Job condition and the output tail without a result', () => {
    const o = readJobOutcome(
      job([{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'too slow' }]),
      [pod({ exitCode: 137, reason: 'OOMKilled', message: 'node: out of memory' })],
    );
    expect(o).toMatchObject({ state: 'failed', reason: 'DeadlineExceeded' });
    expect(o.state !== 'running' && o.message).toMatch(/too slow.*out of memory/);
  });
});
