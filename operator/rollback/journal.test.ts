import { describe, expect, it } from 'vitest';
import { findStep, finishStep, noteStep, startStep } from './journal.js';

const t0 = new Date('2026-11-28T10:00:00.500Z');
const t1 = new Date('2026-11-28T10:00:07Z');

describe('step journal', () => {
  it('starts once and keeps the original start time on resume', () => {
    let s = startStep([], 'AppRollback', t0);
    s = startStep(s, 'AppRollback', t1);
    expect(s).toEqual([{ name: 'AppRollback', startedAt: '2026-11-28T10:00:00.500Z', result: 'Running' }]);
  });

  it('finishes with a result, time and bounded message', () => {
    const s = finishStep(startStep([], 'PreValidation', t0), 'PreValidation', 'Failed', 'x'.repeat(2000), t1);
    expect(findStep(s, 'PreValidation')).toMatchObject({
      result: 'Failed',
      finishedAt: '2026-11-28T10:00:07.000Z',
    });
    expect(findStep(s, 'PreValidation')!.message!.length).toBe(1024);
  });

  it('notes progress only on running steps', () => {
    let s = startStep([], 'A', t0);
    s = finishStep(s, 'B', 'Succeeded', 'done', t1);
    s = noteStep(noteStep(s, 'A', 'halfway'), 'B', 'changed?');
    expect(s.map((x) => x.message)).toEqual(['halfway', 'done']);
  });
});
