import { describe, expect, it } from 'vitest';
import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { setCondition } from '../kube/conditions.js';
import { finishStep, noteStep, startStep } from './journal.js';
import { canonical, PROGRESS_WRITE_INTERVAL_MS, progressWrite } from './progress-writes.js';

const t0 = new Date('2026-11-30T01:00:00Z');
const at = (ms: number) => t0.getTime() + ms;

/** A plan waiting in PostValidation, as the API server holds it (keys sorted, as it returns them). */
function waiting(note: string): RollbackPlanStatus {
  let steps = finishStep([], 'AppRollback', 'Succeeded', 'rolled back web 3 -> 2', t0);
  steps = noteStep(startStep(steps, 'PostValidation', t0), 'PostValidation', note);
  const conditions = setCondition(
    setCondition(
      [],
      { type: 'Ready', status: 'False', reason: 'Running', message: 'rolling back', observedGeneration: 1 },
      t0,
    ),
    { type: 'Reconciling', status: 'True', reason: 'PostValidation', message: note, observedGeneration: 1 },
    t0,
  );
  return { phase: 'Running', observedGeneration: 1, startedAt: t0.toISOString(), steps, conditions };
}

/** What the API server returns: the same status with every object's keys sorted. */
const fromServer = (s: RollbackPlanStatus) => JSON.parse(canonical(s)) as RollbackPlanStatus;

describe('progressWrite: when a waiting plan writes its status', () => {
  const before = fromServer(waiting('0 of 1 updated replicas of "web" are ready'));
  const progressed = waiting('1 old replicas of "web" are pending termination');

  it('holds back a progress-only change within the interval, and asks for a retry when it is due', () => {
    expect(progressWrite(before, progressed, at(0), at(1_000))).toEqual({
      write: false,
      retryInMs: PROGRESS_WRITE_INTERVAL_MS - 1_000,
    });
    expect(progressWrite(before, progressed, at(0), at(PROGRESS_WRITE_INTERVAL_MS - 1))).toEqual({
      write: false,
      retryInMs: 1,
    });
  });

  it('writes a progress-only change once the interval has passed, or when this process never wrote the plan', () => {
    expect(progressWrite(before, progressed, at(0), at(PROGRESS_WRITE_INTERVAL_MS))).toEqual({
      write: true,
      why: 'interval',
    });
    expect(progressWrite(before, progressed, undefined, at(0))).toEqual({ write: true, why: 'first' });
    // A clock that went backwards never holds a note back for longer than the interval.
    expect(progressWrite(before, progressed, at(10_000), at(0))).toEqual({ write: true, why: 'interval' });
  });

  it('writes at once what a user or kubectl wait acts on', () => {
    const recent = (next: RollbackPlanStatus) => progressWrite(before, next, at(0), at(100));
    const decision = { write: true, why: 'decision' };
    // the final result
    const done = waiting('x');
    done.phase = 'Succeeded';
    done.steps = finishStep(done.steps, 'PostValidation', 'Succeeded', 'rolled out', t0);
    done.conditions = setCondition(
      done.conditions,
      { type: 'Succeeded', status: 'True', reason: 'Succeeded', message: 'ok', observedGeneration: 1 },
      t0,
    );
    expect(recent(done)).toEqual(decision);
    // a condition's reason (HTTPCheckFailing on Ready) or status
    const failing = waiting('1 of 1 HTTP check(s) running: attempt 2 failed');
    failing.conditions = setCondition(
      failing.conditions,
      { type: 'Ready', status: 'False', reason: 'HTTPCheckFailing', message: 'x', observedGeneration: 1 },
      t0,
    );
    expect(recent(failing)).toEqual(decision);
    const flipped = waiting('x');
    flipped.conditions = setCondition(
      flipped.conditions,
      { type: 'Reconciling', status: 'False', reason: 'PostValidation', message: 'x', observedGeneration: 1 },
      new Date(at(100)),
    );
    expect(recent(flipped)).toEqual(decision);
    // a step's start or result
    const next = waiting('x');
    next.steps = startStep(next.steps, 'Later', t0);
    expect(recent(next)).toEqual(decision);
    // the plan's records
    const records = waiting('x');
    records.deployments = [{ name: 'web', result: 'RolledBack', generation: 4 }];
    expect(recent(records)).toEqual(decision);
    // a new generation of the spec
    expect(recent({ ...waiting('x'), observedGeneration: 2 })).toEqual(decision);
  });

  it('never holds back a write that carries Events (they are recorded after it)', () => {
    expect(progressWrite(before, progressed, at(0), at(100), true)).toEqual({ write: true, why: 'events' });
  });

  it('writes nothing, and asks for no retry, when only the key order differs from the stored status', () => {
    const same = waiting('0 of 1 updated replicas of "web" are ready');
    expect(JSON.stringify(same)).not.toBe(JSON.stringify(before));
    expect(progressWrite(before, same, at(0), at(100))).toEqual({ write: false });
    expect(progressWrite(before, same, undefined, at(100))).toEqual({ write: false });
  });

  it('a note held back is written by the next reconcile after the interval (level-based)', () => {
    // Deployment events wake the plan at 1 s, 2 s and 3 s, the retry at 5 s: one write, with the latest note.
    const notes = ['a', 'b', 'c', 'd'].map((n) => waiting(`note ${n}`));
    const decisions = [1_000, 2_000, 3_000].map((ms, i) => progressWrite(before, notes[i]!, at(0), at(ms)));
    expect(decisions.every((d) => !d.write)).toBe(true);
    expect(progressWrite(before, notes[3]!, at(0), at(5_000))).toMatchObject({ write: true });
  });
});
