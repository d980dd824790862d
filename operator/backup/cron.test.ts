import { describe, expect, it } from 'vitest';
import { longestInterval, nextRun, parseCron } from './cron.js';

const at = (s: string) => new Date(s);

describe('cron', () => {
  it.each([
    ['0 */4 * * *', '2026-11-28T10:17:00Z', '2026-11-28T12:00:00.000Z'],
    ['0 */4 * * *', '2026-11-28T23:59:00Z', '2026-11-29T00:00:00.000Z'],
    ['30 2 * * *', '2026-11-28T02:30:00Z', '2026-11-29T02:30:00.000Z'],
    ['*/15 * * * *', '2026-11-28T10:00:00Z', '2026-11-28T10:15:00.000Z'],
    ['0 9 * * mon-fri', '2026-11-28T10:00:00Z', '2026-11-30T09:00:00.000Z'], // Saturday -> Monday
    ['0 0 1 jan *', '2026-11-28T10:00:00Z', '2027-01-01T00:00:00.000Z'],
    ['@hourly', '2026-11-28T10:00:30Z', '2026-11-28T11:00:00.000Z'],
    ['0 0 13 * 5', '2026-11-28T10:00:00Z', '2026-12-04T00:00:00.000Z'], // dom or dow (Friday Dec 4)
  ])('%s after %s is %s', (expr, after, want) => {
    expect(nextRun(parseCron(expr), at(after))?.toISOString()).toBe(want);
  });

  it.each([
    ['0 */4 * * *', 4 * 3600_000],
    ['*/30 * * * *', 30 * 60_000],
    ['0 8-18/2 * * *', 14 * 3600_000], // business hours only: nights are the longest gap
  ])('longest interval of %s', (expr, ms) => {
    expect(longestInterval(parseCron(expr), at('2026-11-28T00:00:00Z'))).toBe(ms);
  });

  it.each(['* * * *', '61 * * * *', '0 25 * * *', '*/0 * * * *', '5-1 * * * *'])('rejects %s', (expr) => {
    expect(() => parseCron(expr)).toThrow();
  });
});
