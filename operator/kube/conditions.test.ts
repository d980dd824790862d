import { describe, expect, it } from 'vitest';
import { setCondition } from './conditions.js';

const t1 = new Date('2026-11-28T10:00:00.123Z');
const t2 = new Date('2026-11-28T10:05:00Z');

describe('setCondition', () => {
  it('adds a condition with a second-precision transition time', () => {
    const c = setCondition(
      [],
      { type: 'Ready', status: 'False', reason: 'Pending', message: 'm', observedGeneration: 1 },
      t1,
    );
    expect(c).toEqual([
      {
        type: 'Ready',
        status: 'False',
        reason: 'Pending',
        message: 'm',
        observedGeneration: 1,
        lastTransitionTime: '2026-11-28T10:00:00Z',
      },
    ]);
  });

  it('keeps lastTransitionTime when only reason/message/generation change', () => {
    const a = setCondition(
      [],
      { type: 'Ready', status: 'False', reason: 'A', message: 'a', observedGeneration: 1 },
      t1,
    );
    const b = setCondition(
      a,
      { type: 'Ready', status: 'False', reason: 'B', message: 'b', observedGeneration: 2 },
      t2,
    );
    expect(b[0]).toMatchObject({
      reason: 'B',
      message: 'b',
      observedGeneration: 2,
      lastTransitionTime: '2026-11-28T10:00:00Z',
    });
  });

  it('moves lastTransitionTime when the status changes and leaves other types alone', () => {
    let c = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: '' }, t1);
    c = setCondition(c, { type: 'Stalled', status: 'False', reason: 'Ok', message: '' }, t1);
    c = setCondition(c, { type: 'Ready', status: 'True', reason: 'Done', message: '' }, t2);
    expect(c.map((x) => [x.type, x.status, x.lastTransitionTime])).toEqual([
      ['Ready', 'True', '2026-11-28T10:05:00Z'],
      ['Stalled', 'False', '2026-11-28T10:00:00Z'],
    ]);
  });

  it('bounds messages to the API limit', () => {
    const c = setCondition([], { type: 'X', status: 'True', reason: 'R', message: 'x'.repeat(40000) }, t1);
    expect(c[0]!.message.length).toBe(32768);
  });
});
