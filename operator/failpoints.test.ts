import { describe, expect, it } from 'vitest';
import { failpointDue, parseFailpoints } from './failpoints.js';

describe('failpoints', () => {
  it('parses a bare name (first hit), name@N and name=sleep(ms)', () => {
    const { kills, sleeps } = parseFailpoints('after-a,after-b@2,slow=sleep(250),bad@0,');
    expect([...kills]).toEqual([
      ['after-a', 1],
      ['after-b', 2],
    ]);
    expect([...sleeps]).toEqual([['slow', 250]]);
  });

  it('fires at the N-th hit only', () => {
    const { kills } = parseFailpoints('after-deployment-patch@2,first');
    const counts = new Map<string, number>();
    const due = (name: string) => failpointDue(name, kills, counts);
    expect([1, 2, 3].map(() => due('after-deployment-patch'))).toEqual([false, true, false]);
    expect([1, 2].map(() => due('first'))).toEqual([true, false]);
    expect(due('unnamed')).toBe(false);
  });
});
