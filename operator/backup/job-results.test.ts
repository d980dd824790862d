import { describe, expect, it } from 'vitest';
import { outcomeUnknown, readJobOutcome, resultOverdue } from './job-results.js';
import { runnerPodFailurePolicy } from './pod-builders.js';

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

  it("reads a newer runner's result with a reason this operator does not know, reporting the reason as it is (bounded)", () => {
    const complete = job([{ type: 'Failed', status: 'True' }], '2026-11-28T10:00:06Z');
    const newer = (reason: string) =>
      readJobOutcome(complete, [
        pod({
          exitCode: 1,
          message: JSON.stringify({ ...ok, success: false, reason, message: 'the newer runner says why' }),
        }),
      ]) as { reason?: string };
    expect(newer('StorageQuantumFluxUnstable')).toMatchObject({
      state: 'failed',
      reason: 'StorageQuantumFluxUnstable',
      message: 'the newer runner says why',
      result: { reason: 'StorageQuantumFluxUnstable' },
    });
    // Kept to a valid condition reason: letters and digits, starting with a letter, at most 64 characters.
    expect(newer('Storage Flux: <b>bad</b>').reason).toBe('StorageFluxbbadb');
    expect(newer('42-things').reason).toBe('Unrecognized42things');
    expect(newer('X'.repeat(5000).slice(0, 3000)).reason).toBe('X'.repeat(64));
    // A reason this operator knows stays exactly as it is.
    expect(newer('StorageRegionMismatch').reason).toBe('StorageRegionMismatch');
  });

  describe('before the Job condition: the pod result, where it is final', () => {
    const uid = 'job-uid';
    const running = (spec: object = { backoffLimit: 0 }) =>
      ({ metadata: { name: 'j', uid }, spec, status: { active: 1 } }) as any;
    const runnerPod = (
      terminated: object,
      opts: {
        owner?: string;
        controller?: boolean;
        container?: string;
        restartPolicy?: string;
        conditions?: object[];
      } = {},
    ) =>
      ({
        metadata: {
          name: 'p',
          ownerReferences: [
            { kind: 'Job', name: 'j', uid: opts.owner ?? uid, controller: opts.controller ?? true },
          ],
        },
        spec: { restartPolicy: opts.restartPolicy ?? 'Never' },
        status: {
          ...(opts.conditions ? { conditions: opts.conditions } : {}),
          containerStatuses: [{ name: opts.container ?? 'runner', state: { terminated } }],
        },
      }) as any;
    const bad = { ...ok, success: false, reason: 'DatabaseUnreachable', message: 'connection refused' };

    it('a runner that succeeded (exit 0) finishes the Job at once', () => {
      const o = readJobOutcome(running(), [runnerPod({ exitCode: 0, message: JSON.stringify(ok) })]);
      expect(o).toMatchObject({ state: 'succeeded', reason: 'Succeeded', finishedAt: ok.finishedAt });
      expect('result' in o && o.result?.id).toBe('db-1');
      // A schedule's Job (backoffLimit 1) too: one succeeded pod completes it.
      expect(
        readJobOutcome(running({ backoffLimit: 1 }), [
          runnerPod({ exitCode: 0, message: JSON.stringify(ok) }),
        ]).state,
      ).toBe('succeeded');
    });

    it('a failed runner finishes the Job only when no retry follows (backoffLimit 0)', () => {
      const failedPod = runnerPod({ exitCode: 1, message: JSON.stringify(bad) });
      expect(readJobOutcome(running({ backoffLimit: 0 }), [failedPod])).toMatchObject({
        state: 'failed',
        reason: 'DatabaseUnreachable',
      });
      expect(readJobOutcome(running({ backoffLimit: 1 }), [failedPod])).toEqual({ state: 'running' });
      expect(readJobOutcome(running({}), [failedPod]), 'backoffLimit defaults to 6').toEqual({
        state: 'running',
      });
    });

    it.each([
      [
        'a pod of another Job (owner UID)',
        runnerPod({ exitCode: 0, message: JSON.stringify(ok) }, { owner: 'x' }),
      ],
      [
        'a pod the Job does not control',
        runnerPod({ exitCode: 0, message: JSON.stringify(ok) }, { controller: false }),
      ],
      [
        'another container',
        runnerPod({ exitCode: 0, message: JSON.stringify(ok) }, { container: 'sidecar' }),
      ],
      [
        'a pod that restarts',
        runnerPod({ exitCode: 0, message: JSON.stringify(ok) }, { restartPolicy: 'OnFailure' }),
      ],
      ['a success with a non-zero exit code', runnerPod({ exitCode: 1, message: JSON.stringify(ok) })],
      ['a failure result with exit code 0', runnerPod({ exitCode: 0, message: JSON.stringify(bad) })],
      ['no JSON result (crash output)', runnerPod({ exitCode: 1, message: 'Error: boom' })],
      [
        'a message longer than the kubelet keeps',
        runnerPod({ exitCode: 0, message: JSON.stringify({ ...ok, message: 'x'.repeat(5000) }) }),
      ],
    ])('is still running with %s', (_what, pod) => {
      expect(readJobOutcome(running(), [pod])).toEqual({ state: 'running' });
    });

    it('one verdict whichever event comes first: a success (exit 0) that the Job controller counted after the deadline', () => {
      const success = runnerPod({ exitCode: 0, message: JSON.stringify(ok) });
      const podFirst = readJobOutcome(running(), [success]);
      const deadline = {
        ...running(),
        status: {
          conditions: [
            {
              type: 'Failed',
              status: 'True',
              reason: 'DeadlineExceeded',
              lastTransitionTime: '2026-11-28T10:00:07Z',
            },
          ],
        },
      };
      // The Job event first: its pod still shows running in the cache, so no verdict yet; then the pod.
      const stillRunning = {
        ...success,
        status: { containerStatuses: [{ name: 'runner', state: { running: {} } }] },
      };
      expect(readJobOutcome(deadline, [stillRunning]).state).toBe('unread');
      const jobFirst = readJobOutcome(deadline, [success]);
      expect(podFirst).toMatchObject({ state: 'succeeded', reason: 'Succeeded' });
      expect(jobFirst).toEqual(podFirst);
      // Not for a success with a non-zero exit code, nor from a pod this Job does not control.
      const untrusted = [
        runnerPod({ exitCode: 1, message: JSON.stringify(ok) }),
        runnerPod({ exitCode: 0, message: JSON.stringify(ok) }, { controller: false }),
        runnerPod({ exitCode: 0, message: JSON.stringify(ok) }, { restartPolicy: 'OnFailure' }),
      ];
      for (const p of untrusted) expect(readJobOutcome(deadline, [p]).state).toBe('failed');
    });

    it("a runner Job's podFailurePolicy (FailJob on exit 2/3) keeps the early verdict; an Ignore rule never makes a success less final", () => {
      const failJob = {
        rules: [
          { action: 'FailJob', onExitCodes: { containerName: 'runner', operator: 'In', values: [2, 3] } },
        ],
      };
      const okPod = runnerPod({ exitCode: 0, message: JSON.stringify(ok) });
      const failedPod = runnerPod({ exitCode: 3, message: JSON.stringify(bad) });
      expect(readJobOutcome(running({ backoffLimit: 0, podFailurePolicy: failJob }), [okPod]).state).toBe(
        'succeeded',
      );
      expect(readJobOutcome(running({ backoffLimit: 1, podFailurePolicy: failJob }), [okPod]).state).toBe(
        'succeeded',
      );
      expect(readJobOutcome(running({ backoffLimit: 0, podFailurePolicy: failJob }), [failedPod]).state).toBe(
        'failed',
      );
      const ignore = { rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] }] };
      expect(readJobOutcome(running({ backoffLimit: 0, podFailurePolicy: ignore }), [okPod]).state).toBe(
        'succeeded',
      );
    });

    it('applies the podFailurePolicy to the failed pod itself: only a disrupted pod an Ignore rule matches is replaced', () => {
      const disrupted = [
        { type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI' },
        { type: 'Ready', status: 'False' },
      ];
      const failed = (exitCode: number, conditions?: object[]) =>
        runnerPod({ exitCode, message: JSON.stringify(bad) }, conditions ? { conditions } : {});
      const state = (spec: object, pod: ReturnType<typeof runnerPod>) =>
        readJobOutcome(running(spec), [pod]).state;
      const schedule = runnerPodFailurePolicy('retry-disrupted');
      // backoffLimit 0 with the Ignore rule: a plain failure is counted, so final; a drained pod is replaced.
      expect(state({ backoffLimit: 0, podFailurePolicy: schedule }, failed(1)), 'exit 1, not disrupted').toBe(
        'failed',
      );
      expect(
        state({ backoffLimit: 0, podFailurePolicy: schedule }, failed(137, disrupted)),
        'evicted by a drain',
      ).toBe('running');
      expect(
        state(
          { backoffLimit: 0, podFailurePolicy: schedule },
          failed(1, [{ type: 'DisruptionTarget', status: 'False' }]),
        ),
        'a DisruptionTarget condition that is not True',
      ).toBe('failed');
      // The rules in order: the runner's own "not retryable" (exit 3) fails the Job first, disrupted or not.
      expect(state({ backoffLimit: 0, podFailurePolicy: schedule }, failed(3, disrupted))).toBe('failed');
      // A schedule's Job (backoffLimit 1): FailJob is final at once, a counted failure is retried.
      expect(state({ backoffLimit: 1, podFailurePolicy: schedule }, failed(3))).toBe('failed');
      expect(state({ backoffLimit: 1, podFailurePolicy: schedule }, failed(1))).toBe('running');
      expect(state({ backoffLimit: 1, podFailurePolicy: schedule }, failed(137, disrupted))).toBe('running');
      // A plan's Job (a restore runs once): a disrupted pod fails the Job, no second pod.
      const plan = runnerPodFailurePolicy('once');
      expect(state({ backoffLimit: 0, podFailurePolicy: plan }, failed(137, disrupted))).toBe('failed');
      expect(state({ backoffLimit: 0, podFailurePolicy: plan }, failed(1))).toBe('failed');
      // NotIn, and an action this operator does not know: no early verdict from an unknown action.
      const notIn = {
        rules: [
          { action: 'Ignore', onExitCodes: { containerName: 'runner', operator: 'NotIn', values: [1] } },
        ],
      };
      expect(state({ backoffLimit: 0, podFailurePolicy: notIn }, failed(1))).toBe('failed');
      expect(state({ backoffLimit: 0, podFailurePolicy: notIn }, failed(4))).toBe('running');
      const future = { rules: [{ action: 'Retry', onExitCodes: { operator: 'In', values: [1] } }] };
      expect(state({ backoffLimit: 0, podFailurePolicy: future }, failed(1))).toBe('running');
    });

    it('is still running for a Job of more than one pod', () => {
      const pod = runnerPod({ exitCode: 0, message: JSON.stringify(ok) });
      expect(readJobOutcome(running({ backoffLimit: 0, completions: 2 }), [pod])).toEqual({
        state: 'running',
      });
      expect(readJobOutcome(running({ backoffLimit: 0, parallelism: 2 }), [pod])).toEqual({
        state: 'running',
      });
    });
  });
});
