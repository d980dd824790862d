import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import {
  CRON_PATTERN,
  quantityValue,
  Condition,
  Duration,
  Quantity,
  cronSchedule,
  formatPath,
  mapList,
  parseDuration,
  parseWith,
} from './common.js';

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
    ['1m30s500ms', 90_500],
    ['0s', 0],
  ])('%s is %i ms', (s, ms) => {
    expect(parseDuration(s)).toBe(ms);
  });

  it.each(['', '5', '5 m', '-5m', '1d', 'm', '1h 30m', '5M', '.5s'])(
    'rejects "%s" like the schema does',
    (s) => {
      expect(() => parseDuration(s)).toThrow(/invalid duration/);
      expect(Duration.safeParse(s).success, `Duration schema accepted "${s}"`).toBe(false);
    },
  );
});

describe('shared schemas', () => {
  it('cron schedules: five fields or a macro', () => {
    const cron = cronSchedule('spec.schedule');
    for (const ok of ['0 */4 * * *', '30 2 * * 1-5', '@daily', '0 0 1 JAN,JUL *']) {
      expect(cron.safeParse(ok).success, ok).toBe(true);
    }
    for (const bad of ['* * * *', '0 */4 * * * *', 'every 4 hours', '@often', 'CRON_TZ=UTC 0 * * * *']) {
      const r = cron.safeParse(bad);
      expect(r.success, bad).toBe(false);
      expect(r.error?.issues[0]?.message).toContain('spec.schedule must be a 5-field cron');
    }
  });

  it('quantities are integers or Kubernetes quantity strings', () => {
    for (const ok of [1, '20Gi', '500m', '1.5', '1e3'])
      expect(Quantity.safeParse(ok).success, String(ok)).toBe(true);
    for (const bad of ['20 Gi', 'lots', '1.5.2', 1.5])
      expect(Quantity.safeParse(bad).success, String(bad)).toBe(false);
  });

  it('conditions follow metav1.Condition', () => {
    const ok = {
      type: 'Ready',
      status: 'True',
      reason: 'Succeeded',
      message: '',
      lastTransitionTime: '2026-11-28T10:00:00Z',
    };
    expect(Condition.safeParse(ok).success).toBe(true);
    expect(Condition.safeParse({ ...ok, status: 'Yes' }).success).toBe(false);
    expect(Condition.safeParse({ ...ok, reason: 'has spaces' }).success).toBe(false);
    expect(Condition.safeParse({ ...ok, reason: '' }).success).toBe(false);
  });

  it('map lists report duplicate keys at the duplicate', () => {
    const list = mapList(z.object({ name: z.string() }), 'name', 5);
    const r = parseWith(z.object({ items: list }), { items: [{ name: 'a' }, { name: 'b' }, { name: 'a' }] });
    expect(r).toEqual({ ok: false, problems: [{ path: 'items[2].name', message: 'duplicate name "a"' }] });
  });

  it('formats paths like kubectl does', () => {
    expect(formatPath(['spec', 'targets', 'deployments', 1, 'name'])).toBe(
      'spec.targets.deployments[1].name',
    );
    expect(formatPath([])).toBe('(root)');
  });

  it.each([
    ['20Gi', 20 * 2 ** 30],
    ['500m', 0.5],
    ['1e3', 1000],
    ['1.5k', 1500],
    ['-1Gi', -(2 ** 30)],
    [0, 0],
    [7, 7],
    ['20 GB', NaN],
  ])('quantityValue(%j) is %d', (q, v) => {
    expect(quantityValue(q)).toBe(v);
  });

  it.each([
    ['0 */4 * * *', true],
    ['0,30 8-18/2 * JAN-mar Mon-Fri', true],
    ['? ? ? ? ?', true],
    ['@daily', true],
    ['@DAILY', false], // robfig/cron descriptors are case-sensitive
    ['60 * * * *', false],
    ['0 24 * * *', false],
    ['0 0 0 * *', false],
    ['0 0 * 13 *', false],
    ['0 0 * * 7', false],
    ['*/0 * * * *', false],
    ['0 0 L * *', false],
    ['0 0 * * 1#2', false],
    ['0 0 * * *  ', true], // robfig/cron splits a 5-field spec with strings.Fields
    [' 0 0 * * *', true],
    [' @daily', false], // a macro must match exactly
    ['@daily ', false],
  ])('CRON_PATTERN on %j is %s', (expr, ok) => {
    expect(CRON_PATTERN.test(expr)).toBe(ok);
  });
});
