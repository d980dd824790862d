import { describe, expect, it } from 'vitest';
import { armedWindow, windowPassed } from './watch-window.js';

const t = (s: number) => new Date(Date.UTC(2026, 10, 29, 10, 0, s));
const created = t(0);

describe('armedWindow (arming and the watch window)', () => {
  it('starts at the newest current ReplicaSet, else at the plan creation', () => {
    const a = armedWindow({
      prev: undefined,
      current: [
        { deployment: 'a', revision: 3, createdAt: t(-50) },
        { deployment: 'b', revision: 7, createdAt: t(2) },
      ],
      planCreated: created,
      watchWindowMs: 60_000,
      now: t(5),
    });
    expect(a).toEqual({
      since: t(2).toISOString(),
      until: t(62).toISOString(),
      revisions: [
        { deployment: 'a', revision: 3 },
        { deployment: 'b', revision: 7 },
      ],
    });
    const none = armedWindow({
      prev: undefined,
      current: [],
      planCreated: created,
      watchWindowMs: undefined,
      now: t(5),
    });
    expect(none).toEqual({ since: created.toISOString() });
    expect(windowPassed(none, t(1e6))).toBe(false);
  });

  // Regression (review): the first arm started at the current ReplicaSet's creation however old, so a plan
  // applied for a stable app (or after an undo to an old ReplicaSet) was Expired at once and never fired.
  it('first arm: never before the plan was created, and never a window that already passed', () => {
    const old = armedWindow({
      prev: undefined,
      current: [{ deployment: 'web', revision: 7, createdAt: t(-3 * 86400) }],
      planCreated: created,
      watchWindowMs: 2 * 3600_000,
      now: t(1),
    });
    expect(old.since).toBe(created.toISOString());
    expect(windowPassed(old, t(1))).toBe(false);
    // An operator that first sees the plan after its whole window (it was down): the window starts now.
    const late = armedWindow({
      prev: undefined,
      current: [{ deployment: 'web', revision: 7, createdAt: t(-3 * 86400) }],
      planCreated: created,
      watchWindowMs: 60_000,
      now: t(600),
    });
    expect(late).toMatchObject({ since: t(600).toISOString(), until: t(660).toISOString() });
    expect(windowPassed(late, t(600))).toBe(false);
  });

  it('keeps the window while the revisions stay (same object: no status write)', () => {
    const prev = armedWindow({
      prev: undefined,
      current: [{ deployment: 'a', revision: 3, createdAt: t(0) }],
      planCreated: created,
      watchWindowMs: 10_000,
      now: t(1),
    });
    expect(
      armedWindow({
        prev,
        current: [{ deployment: 'a', revision: 3 }],
        planCreated: created,
        watchWindowMs: 10_000,
        now: t(5),
      }),
    ).toBe(prev);
  });

  it('moves to a newer revision rolled out while armed', () => {
    const prev = {
      since: t(0).toISOString(),
      until: t(10).toISOString(),
      revisions: [{ deployment: 'a', revision: 3 }],
    };
    const moved = armedWindow({
      prev,
      current: [{ deployment: 'a', revision: 4, createdAt: t(8) }],
      planCreated: created,
      watchWindowMs: 10_000,
      now: t(9),
    });
    expect(moved).toMatchObject({ since: t(8).toISOString(), until: t(18).toISOString() });
    // An undo to an old ReplicaSet is a new revision too: the window moves to when it was seen.
    const undo = armedWindow({
      prev,
      current: [{ deployment: 'a', revision: 4, createdAt: t(-100) }],
      planCreated: created,
      watchWindowMs: 10_000,
      now: t(9),
    });
    expect(undo.since).toBe(t(9).toISOString());
  });

  it('a rearm starts the window at the rearm', () => {
    const a = armedWindow({
      prev: undefined,
      current: [{ deployment: 'a', revision: 3, createdAt: t(0) }],
      planCreated: created,
      watchWindowMs: 8000,
      now: t(100),
      rearm: true,
    });
    expect(a).toMatchObject({ since: t(100).toISOString(), until: t(108).toISOString() });
  });

  it('passes at until, not before', () => {
    const a = { since: t(0).toISOString(), until: t(10).toISOString() };
    expect(windowPassed(a, new Date(t(10).getTime() - 1))).toBe(false);
    expect(windowPassed(a, t(10))).toBe(true);
  });
});
