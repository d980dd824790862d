import { describe, expect, it } from 'vitest';
import { conditionName, holdFor, nextConditionState, type ConditionRecord } from './condition-state.js';
import type { TriggerObservation } from './types.js';

const t0 = new Date('2026-11-29T10:00:00.000Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const obs = (kind: TriggerObservation['kind'], s: number, extra: Partial<TriggerObservation> = {}) =>
  ({ kind, at: at(s), observed: `${kind} at ${s}`, ...extra }) as TriggerObservation;
const step = (
  prev: ConditionRecord | undefined,
  o: TriggerObservation | undefined,
  s: number,
  forMs = 30_000,
) => nextConditionState(prev, 'c', 'DeploymentUnavailable', o, forMs, at(s));

describe('nextConditionState (the trigger condition state machine)', () => {
  it('holds from the first bad observation and fires exactly when `for` has passed', () => {
    const p = step(undefined, obs('bad', 0), 0);
    expect(p.record).toMatchObject({ state: 'Pending', since: '2026-11-29T10:00:00.000Z' });
    expect(p.firesAt).toEqual(at(30));
    expect(p.fired).toBeUndefined();
    const still = step(p.record, obs('bad', 29.999), 29.999);
    expect(still.record, 'unchanged record: no status write').toBe(p.record);
    expect(still.fired).toBeUndefined();
    const fired = step(p.record, obs('bad', 30), 30);
    expect(fired.record.state).toBe('Firing');
    expect(fired.fired).toEqual({ heldSince: at(0), observed: 'bad at 30' });
  });

  it('keeps the hold start across a restart: the clock comes from the recorded since', () => {
    const recorded: ConditionRecord = {
      name: 'c',
      type: 'DeploymentUnavailable',
      state: 'Pending',
      since: at(0).toISOString(),
    };
    // A restarted operator sees the Deployment as bad "for the first time" at 20 s.
    const s = step(recorded, obs('bad', 20), 20);
    expect(s.record).toBe(recorded);
    expect(s.firesAt).toEqual(at(30));
  });

  it('a blip shorter than `for` resets to Healthy and never fires', () => {
    const p = step(undefined, obs('bad', 0), 0);
    const h = step(p.record, obs('good', 10), 10);
    expect(h.record).toMatchObject({ state: 'Healthy', since: at(10).toISOString() });
    expect(h.firesAt).toBeUndefined();
    const again = step(h.record, obs('bad', 31), 31);
    expect(again.record).toMatchObject({ state: 'Pending', since: at(31).toISOString() });
    expect(again.fired).toBeUndefined();
  });

  it('noData resets like good; error leaves a running hold as it is and never fires', () => {
    const p = step(undefined, obs('bad', 0), 0);
    expect(step(p.record, obs('noData', 5), 5).record.state).toBe('Healthy');
    const e = step(p.record, obs('error', 40, { reason: 'PrometheusUnreachable' }), 40);
    expect(e.record).toBe(p.record);
    expect(e.fired).toBeUndefined();
    // Regression (review, 1 ms hot loop): it returned the hold's fire time (here 10 s in the past) as the
    // requeue time. No fire time now: the next observation moves it on.
    expect(e.firesAt).toBeUndefined();
    expect(step(p.record, undefined, 40).firesAt).toBeUndefined();
    // The next bad observation fires at once: it held since 0.
    expect(step(e.record, obs('bad', 41), 41).fired?.heldSince).toEqual(at(0));
  });

  it('an error without a hold is Unknown; no observation yet is Unknown too', () => {
    expect(step(undefined, obs('error', 1, { reason: 'X' }), 1).record).toMatchObject({
      state: 'Unknown',
      observed: 'error at 1',
    });
    expect(step(undefined, undefined, 1).record).toMatchObject({
      state: 'Unknown',
      observed: 'not observed yet',
    });
    const h = step(undefined, obs('good', 0), 0).record;
    expect(step(h, obs('error', 2), 2).record.state).toBe('Unknown');
  });

  it('uses the source time of a bad state (an alert startsAt) and fires at once with for 0', () => {
    const s = step(undefined, obs('bad', 10, { since: at(4) }), 10, 0);
    expect(s.fired?.heldSince).toEqual(at(4));
    expect(s.record.state).toBe('Firing');
  });

  it('Firing is final', () => {
    const f = step(undefined, obs('bad', 0), 0, 0).record;
    expect(step(f, obs('good', 1), 1)).toEqual({ record: f });
  });

  it('bounds what it copies into status', () => {
    const s = step(undefined, obs('bad', 0, { observed: 'x'.repeat(5000) }), 0);
    expect(s.record.observed!.length).toBeLessThanOrEqual(1024);
  });

  it('names and hold defaults', () => {
    expect(conditionName({ type: 'HTTPCheck', url: 'http://x' }, 2)).toBe('httpcheck-2');
    expect(conditionName({ type: 'HTTPCheck', url: 'http://x', name: 'api' }, 2)).toBe('api');
    expect(holdFor({ type: 'DeploymentUnavailable', deployment: 'a' })).toBe(30_000);
    expect(holdFor({ type: 'PrometheusQuery', address: 'http://p', query: 'up', above: 1 })).toBe(0);
    expect(holdFor({ type: 'Alert', matchers: [{ name: 'a', value: 'b' }], for: '1m' })).toBe(60_000);
  });

  it('no observation leaves any recorded state as it is (a status lagging its spec is no news)', () => {
    const healthy = step(undefined, obs('good', 0), 0).record;
    expect(step(healthy, undefined, 5).record).toBe(healthy);
  });
});
