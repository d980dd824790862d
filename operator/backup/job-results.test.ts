import { describe, expect, it } from 'vitest';
import { outcomeUnknown, readJobOutcome, resultOverdue } from './job-results.js';

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
    expect('result' in o && o.result?.operation).toBe('backup');
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

  it('a Complete Job whose pod still shows running in the cache is not a verdict (unread), until overdue', () => {
    const complete = job(
      [{ type: 'Complete', status: 'True', lastTransitionTime: '2026-01-01T00:01:00Z' }],
      '2026-01-01T00:01:00Z',
    );
    const running = {
      metadata: { name: 'p' },
      status: { containerStatuses: [{ name: 'runner', state: { running: {} } }] },
    } as any;
    const o = readJobOutcome(complete, [running]);
    expect(o).toMatchObject({ state: 'unread', jobSucceeded: true, finishedAt: '2026-01-01T00:01:00Z' });
    expect(readJobOutcome(complete, []).state).toBe('unread');
    if (o.state !== 'unread') throw new Error('unreachable');
    expect(resultOverdue(o, new Date('2026-01-01T00:01:59Z'))).toBe(false);
    expect(resultOverdue(o, new Date('2026-01-01T00:02:00Z'))).toBe(true);
    expect(outcomeUnknown(o)).toMatchObject({ state: 'failed', reason: 'OutcomeUnknown' });
    expect(outcomeUnknown(o).message).toMatch(/outcome is unknown/);
  });
});
