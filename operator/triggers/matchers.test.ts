import { describe, expect, it } from 'vitest';
import type { AlertMatcher } from '../api/v1alpha1/rollbackplan.js';
import { LabelMatcher, matcherProblem } from './matchers.js';

// Alertmanager semantics (pkg/labels): anchored RE2, a missing label is the empty string.
describe('alert label matchers', () => {
  const labels = { alertname: 'HighErrorRate', severity: 'critical', namespace: 'shop' };
  const cases: [AlertMatcher, Record<string, string>, boolean][] = [
    [{ name: 'alertname', value: 'HighErrorRate' }, labels, true],
    [{ name: 'alertname', op: '=', value: 'HighError' }, labels, false],
    [{ name: 'severity', op: '!=', value: 'warning' }, labels, true],
    [{ name: 'severity', op: '!=', value: 'critical' }, labels, false],
    [{ name: 'alertname', op: '=~', value: 'High.*' }, labels, true],
    // anchored at both ends: a substring is not a match
    [{ name: 'alertname', op: '=~', value: 'Error' }, labels, false],
    [{ name: 'alertname', op: '=~', value: 'High|Low' }, labels, false],
    [{ name: 'severity', op: '=~', value: 'critical|page' }, labels, true],
    [{ name: 'severity', op: '!~', value: 'warn.*' }, labels, true],
    [{ name: 'severity', op: '!~', value: 'crit.*' }, labels, false],
    // a missing label is ""
    [{ name: 'team', op: '=', value: '' }, labels, true],
    [{ name: 'team', op: '!=', value: 'payments' }, labels, true],
    [{ name: 'team', op: '=~', value: '.*' }, labels, true],
    [{ name: 'team', op: '=~', value: '.+' }, labels, false],
    [{ name: 'team', op: '!~', value: '.+' }, labels, true],
  ];
  it.each(cases)('%j on %j is %s', (m, l, want) => {
    expect(new LabelMatcher().matches(m, l)).toBe(want);
  });

  it('needs all matchers to match', () => {
    const lm = new LabelMatcher();
    const ms: AlertMatcher[] = [
      { name: 'alertname', value: 'HighErrorRate' },
      { name: 'namespace', op: '=~', value: 'shop|cart' },
    ];
    expect(lm.matchesAll(ms, labels)).toBe(true);
    expect(lm.matchesAll([...ms, { name: 'severity', value: 'warning' }], labels)).toBe(false);
  });

  it('an invalid or non-RE2 pattern matches nothing and is named by matcherProblem', () => {
    const lm = new LabelMatcher();
    for (const value of ['(unclosed', '(a)\\1', '(?=look)ahead']) {
      expect(lm.matches({ name: 'alertname', op: '=~', value }, labels)).toBe(false);
      expect(lm.matches({ name: 'alertname', op: '!~', value }, labels)).toBe(false);
      expect(matcherProblem({ name: 'alertname', op: '=~', value })).toMatch(/not a valid RE2 pattern/);
    }
    expect(matcherProblem({ name: 'alertname', op: '=~', value: 'a|b' })).toBeUndefined();
    expect(matcherProblem({ name: 'alertname', value: '(' })).toBeUndefined();
  });

  it("matcherProblem's text is bounded, however long the pattern RE2 quotes back", () => {
    const value = `(${'x'.repeat(255)}`; // within the CRD's 256 characters; RE2 quotes all of it back
    const p = matcherProblem({ name: 'l'.repeat(128), op: '!~', value });
    expect(p).toMatch(/not a valid RE2 pattern/);
    expect(p!.length).toBeLessThanOrEqual(300);
    expect(matcherProblem({ name: 'n', op: '=~', value: 'a{1001}' })).toMatch(/invalid repeat count/);
  });

  it('a pathological pattern runs in linear time', () => {
    const t0 = Date.now();
    expect(
      new LabelMatcher().matches({ name: 'x', op: '=~', value: '(a+)+$' }, { x: `${'a'.repeat(5000)}b` }),
    ).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  // Regression (review): labels[m.name] read Object.prototype for `constructor` or `toString`; re2js threw
  // on the function (every reconcile crashed) and != matched every alert.
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'a label named %s that the alert lacks is the empty string',
    (name) => {
      const m = new LabelMatcher();
      const labels = JSON.parse('{"alertname":"X"}') as Record<string, string>;
      expect(m.matches({ name, op: '=~', value: '.+' }, labels)).toBe(false);
      expect(m.matches({ name, op: '!~', value: '.+' }, labels)).toBe(true);
      expect(m.matches({ name, op: '!=', value: 'foo' }, labels)).toBe(true);
      expect(m.matches({ name, op: '=', value: '' }, labels)).toBe(true);
      expect(m.matches({ name, op: '=', value: 'x' }, { [name]: 'x' })).toBe(true);
    },
  );
});
