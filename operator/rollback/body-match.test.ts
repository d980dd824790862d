import { describe, expect, it } from 'vitest';
import { BodyMatcher, bodyMatchProblem } from './body-match.js';

describe('bodyMatchProblem', () => {
  it.each(['ok', '"status":\\s*"UP"', '(a+)+$', '^HTTP/1\\.[01] 200', '(?i)healthy'])('accepts %s', (p) =>
    expect(bodyMatchProblem(p)).toBeUndefined(),
  );
  it.each([
    ['(', /missing closing \)/],
    ['(?=lookahead)', /invalid or unsupported Perl syntax/],
    ['(a)\\1', /invalid escape/],
    ['x{2000}', /invalid repeat count/],
  ])('rejects %s with the reason', (p, why) =>
    expect(bodyMatchProblem(p)).toMatch(
      new RegExp(`^bodyMatch /.*/ is not a valid RE2 pattern: .*${why.source}`),
    ),
  );
});

describe('BodyMatcher', () => {
  const matcher = new BodyMatcher({ timeoutMs: 2000, maxConcurrent: 2 });

  it('matches like a regular expression', async () => {
    expect(await matcher.match('status: o[k]', 'x status: ok y')).toEqual({ matched: true });
    expect(await matcher.match('^ok$', 'not ok')).toEqual({ matched: false });
  });

  // A backtracking engine needs about 2^40 steps here; the event loop would be blocked for days.
  it('answers (a+)+$ against 40 a and a ! in well under a second, off the event loop', async () => {
    const t0 = performance.now();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    try {
      expect(await matcher.match('(a+)+$', `${'a'.repeat(40)}!`)).toEqual({ matched: false });
      expect(await matcher.match('(a+)+$', `${'a'.repeat(65_536)}!`)).toEqual({ matched: false });
    } finally {
      clearInterval(ticker);
    }
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(ticks, 'the event loop kept running').toBeGreaterThan(0);
  });

  it('cuts a costly match off at the time limit and reports it', async () => {
    const quick = new BodyMatcher({ timeoutMs: 300, maxConcurrent: 1 });
    const t0 = performance.now();
    const r = await quick.match('(.*a){1000}', 'a'.repeat(65_536));
    expect(r).toMatchObject({ error: expect.stringMatching(/did not finish within 300 ms/) });
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('reports an invalid pattern without starting a worker', async () => {
    expect(await matcher.match('(', 'x')).toMatchObject({ error: expect.stringMatching(/not a valid RE2/) });
  });
});
