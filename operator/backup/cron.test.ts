import { describe, expect, it } from 'vitest';
import { CronClock, cronProblem, isKnownTimeZone, longestInterval, nextRun, parseCron } from './cron.js';

// Kubernetes CronJob semantics (robfig/cron v3 ParseStandard, evaluated in spec.timeZone): the CronJob
// controller decides when backups run, so "next backup at" and the RPO gap must agree with it.

const at = (s: string) => new Date(s);
const H = 3_600_000;
const next = (expr: string, after: string, tz = 'Etc/UTC') =>
  nextRun(parseCron(expr), tz, at(after))?.toISOString();

describe('parseCron accepts what the API server accepts', () => {
  it.each([
    '0 */4 * * *',
    '*/15 * * * *',
    '0 9 * * mon-fri',
    '0 9 * * MON-FRI', // names are case-insensitive
    '0 0 1 jan *',
    '0 0 1 JAN-mar *',
    '0 0 ? * *',
    '? ? ? ? ?', // robfig accepts ? in every field
    '5/10 * * * *', // N/step is N-max/step
    '1-50/7 * * * *',
    '00 05 * * *', // leading zeros (strconv.Atoi)
    '0\t0  *   * *', // any whitespace between fields
    '0 0 * * 0,6',
    '0,30 8-18 * * 1-5',
    '@yearly',
    '@annually',
    '@monthly',
    '@weekly',
    '@daily',
    '@midnight',
    '@hourly',
  ])('%s', (expr) => {
    expect(cronProblem(expr)).toBeUndefined();
  });
});

describe('parseCron rejects what the API server rejects, naming the problem', () => {
  it.each([
    ['', /expected exactly 5 fields/],
    ['* * * *', /expected exactly 5 fields.*found 4/],
    ['0 0 2 * * *', /found 6/],
    ['61 * * * *', /minute: "61": 61 is above the maximum 59/],
    ['0 24 * * *', /hour: "24": 24 is above the maximum 23/],
    ['0 0 0 * *', /day of month: "0": 0 is below the minimum 1/],
    ['0 0 32 * *', /day of month.*above the maximum 31/],
    ['0 0 * 13 *', /month.*above the maximum 12/],
    ['0 0 * * 7', /day of week: "7": 7 is above the maximum 6/], // robfig: Sunday is 0 only
    ['*/0 * * * *', /step must be a positive number/],
    ['5-1 * * * *', /the range starts after it ends/],
    ['x * * * *', /minute: "x" is not a number/],
    ['0 0 * jab *', /month: "jab" is not a number/],
    ['-1 * * * *', /not a number/],
    ['1-2-3 * * * *', /too many hyphens/],
    ['1/2/3 * * * *', /too many slashes/],
    ['0 0 L * *', /not a number/],
    ['0 0 * * 1#2', /not a number/],
    ['@every 5m', /unknown macro/],
    ['@reboot', /unknown macro/],
    ['TZ=Europe/Berlin 0 0 * * *', /use spec.timeZone/],
    ['CRON_TZ=Europe/Berlin 0 0 * * *', /use spec.timeZone/],
  ])('%j', (expr, problem) => {
    expect(cronProblem(expr)).toMatch(problem);
  });

  it.each(['0 0 30 2 *', '0 0 31 4,6,9,11 *'])('%s parses but never runs', (expr) => {
    expect(cronProblem(expr)).toMatch(/never runs/);
  });
});

describe('nextRun', () => {
  it.each([
    ['0 */4 * * *', '2026-11-28T10:17:00Z', '2026-11-28T12:00:00.000Z'],
    ['0 */4 * * *', '2026-11-28T23:59:00Z', '2026-11-29T00:00:00.000Z'],
    ['30 2 * * *', '2026-11-28T02:30:00Z', '2026-11-29T02:30:00.000Z'], // strictly after
    ['*/15 * * * *', '2026-11-28T10:00:00Z', '2026-11-28T10:15:00.000Z'],
    ['5/10 * * * *', '2026-11-28T10:00:00Z', '2026-11-28T10:05:00.000Z'],
    ['0 9 * * mon-fri', '2026-11-28T10:00:00Z', '2026-11-30T09:00:00.000Z'], // Saturday -> Monday
    ['0 0 1 jan *', '2026-11-28T10:00:00Z', '2027-01-01T00:00:00.000Z'],
    ['@hourly', '2026-11-28T10:00:30Z', '2026-11-28T11:00:00.000Z'],
    ['@weekly', '2026-11-28T10:00:00Z', '2026-11-29T00:00:00.000Z'], // Sunday
    ['0 0 29 2 *', '2026-11-28T10:00:00Z', '2028-02-29T00:00:00.000Z'],
  ])('%s after %s is %s (UTC)', (expr, after, want) => {
    expect(next(expr, after)).toBe(want);
  });

  // 2026-11-28 is a Saturday. Both day fields restricted: either matches (OR); one of them a star (`*`,
  // `?`, or a star with step 1): both must match (AND). A step > 1 makes a star restricted.
  it.each([
    ['0 0 13 * 5', '2026-12-04T00:00:00.000Z', 'dom 13 or Friday: Friday Dec 4'],
    ['0 0 * * 5', '2026-12-04T00:00:00.000Z', 'any day and Friday'],
    ['0 0 ? * 5', '2026-12-04T00:00:00.000Z', '? is a star'],
    ['0 0 */1 * 5', '2026-12-04T00:00:00.000Z', '*/1 is still a star (robfig)'],
    ['0 0 *,3 * 5', '2026-12-04T00:00:00.000Z', 'a list with a star is a star'],
    ['0 0 */2 * 5', '2026-11-29T00:00:00.000Z', '*/2 is restricted: odd days or Friday'],
    ['0 0 1-31 * 5', '2026-11-29T00:00:00.000Z', '1-31 is restricted: every day'],
    ['0 0 13 * *', '2026-12-13T00:00:00.000Z', 'dom 13 and any weekday'],
    ['0 0 13 * ?', '2026-12-13T00:00:00.000Z', 'dom 13 and ? weekday'],
  ])('%s: %s (%s)', (expr, want) => {
    expect(next(expr, '2026-11-28T10:00:00Z')).toBe(want);
  });

  it.each([
    ['0 2 * * *', 'Europe/Berlin', '2026-11-28T10:00:00Z', '2026-11-29T01:00:00.000Z'], // CET = UTC+1
    ['0 2 * * *', 'Europe/Berlin', '2026-06-28T10:00:00Z', '2026-06-29T00:00:00.000Z'], // CEST = UTC+2
    ['0 9 * * 1', 'Asia/Tokyo', '2026-11-28T10:00:00Z', '2026-11-30T00:00:00.000Z'],
    ['0 0 * * *', 'America/Los_Angeles', '2026-11-28T10:00:00Z', '2026-11-29T08:00:00.000Z'],
    // Spring forward (New York, 2026-03-08 02:00 -> 03:00): 02:30 does not exist that day. robfig/cron,
    // and so the CronJob controller, skips the run; it does not move it to 03:30.
    ['30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', '2026-03-09T06:30:00.000Z'],
    ['30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z', '2026-03-30T00:30:00.000Z'],
    // Fall back (New York, 2026-11-01 02:00 -> 01:00): 01:30 happens twice, and runs twice.
    ['30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', '2026-11-01T05:30:00.000Z'],
    ['30 1 * * *', 'America/New_York', '2026-11-01T05:30:00Z', '2026-11-01T06:30:00.000Z'],
    ['30 1 * * *', 'America/New_York', '2026-11-01T06:30:00Z', '2026-11-02T06:30:00.000Z'],
    // An hourly run is not doubled: each absolute hour runs once.
    ['@hourly', 'America/New_York', '2026-11-01T05:00:00Z', '2026-11-01T06:00:00.000Z'],
    ['@hourly', 'America/New_York', '2026-11-01T06:00:00Z', '2026-11-01T07:00:00.000Z'],
  ])('%s in %s after %s is %s', (expr, tz, after, want) => {
    expect(next(expr, after, tz)).toBe(want);
  });

  it('is undefined for a schedule that never runs', () => {
    expect(nextRun(parseCron('0 0 30 2 *'), 'Etc/UTC', at('2026-11-28T00:00:00Z'))).toBeUndefined();
  });
});

describe('longestInterval', () => {
  const from = '2026-11-28T00:00:00Z';
  it.each([
    ['0 */4 * * *', 'Etc/UTC', from, 4 * H],
    ['*/30 * * * *', 'Etc/UTC', from, 0.5 * H],
    ['* * * * *', 'Europe/Berlin', from, 60_000],
    ['0 8-18/2 * * *', 'Etc/UTC', from, 14 * H], // business hours only: nights are the longest gap
    ['*/20 9-17 * * *', 'Etc/UTC', from, 15 * H + 20 * 60_000], // 17:40 -> 09:00
    ['* * 1 * *', 'Etc/UTC', from, 30 * 24 * H + 60_000], // dense on the 1st, then Dec 1 23:59 -> Jan 1
    ['@yearly', 'Etc/UTC', from, 365 * 24 * H],
    ['0 3 * * *', 'Europe/Berlin', '2026-03-20T00:00:00Z', 24 * H],
    ['0 3 * * *', 'Europe/Berlin', '2026-10-20T00:00:00Z', 25 * H], // the fall-back day is 25 h long
    ['30 2 * * *', 'America/New_York', '2026-03-01T00:00:00Z', 47 * H], // Mar 8 skipped: 7 (EST) -> 9 (EDT)
    ['0 0 30 2 *', 'Etc/UTC', from, Infinity],
  ])('of %s in %s from %s', async (expr, tz, start, ms) => {
    expect(await longestInterval(parseCron(expr), tz, at(start))).toBe(ms);
  });

  it('pauses for the event loop while it walks a dense schedule', async () => {
    let pauses = 0;
    const gap = await longestInterval(parseCron('* * * * *'), 'America/New_York', at(from), {
      pause: async () => void pauses++,
    });
    expect(gap).toBe(60_000);
    expect(pauses).toBeGreaterThan(10);
  });
});

describe('CronClock', () => {
  it('remembers the next run until it has passed', () => {
    const clock = new CronClock();
    const first = clock.next('0 */4 * * *', 'Etc/UTC', at('2026-11-28T10:17:00Z'));
    expect(first?.toISOString()).toBe('2026-11-28T12:00:00.000Z');
    expect(clock.next('0 */4 * * *', 'Etc/UTC', at('2026-11-28T11:00:00Z'))).toBe(first);
    expect(clock.next('0 */4 * * *', 'Etc/UTC', at('2026-11-28T12:00:00Z'))?.toISOString()).toBe(
      '2026-11-28T16:00:00.000Z',
    );
    expect(clock.next('0 */4 * * *', 'Asia/Tokyo', at('2026-11-28T10:17:00Z'))?.toISOString()).toBe(
      '2026-11-28T11:00:00.000Z', // 20:00 JST
    );
  });

  it('remembers the longest gap per schedule and time zone', async () => {
    const clock = new CronClock();
    const from = at('2026-11-28T00:00:00Z');
    const a = clock.longestGap('0 */4 * * *', 'Etc/UTC', from);
    expect(clock.longestGap('0 */4 * * *', 'Etc/UTC', from)).toBe(a);
    expect(await a).toBe(4 * H);
  });
});

describe('isKnownTimeZone', () => {
  it.each(['Etc/UTC', 'UTC', 'Europe/Berlin', 'America/Argentina/Buenos_Aires'])('knows %s', (tz) => {
    expect(isKnownTimeZone(tz)).toBe(true);
  });
  it.each(['Mars/Olympus_Mons', 'Local', 'local', 'Europe/Berlim'])('does not know %s', (tz) => {
    expect(isKnownTimeZone(tz)).toBe(false);
  });
});
