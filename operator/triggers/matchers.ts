import { RE2JS } from 're2js';
import type { AlertMatcher } from '../api/v1alpha1/rollbackplan.js';
import { boundText } from '../kube/bounded.js';

/** Compiled patterns kept at most; plans are few, so this only bounds a churn of edited patterns. */
const MAX_CACHED = 1000;

/** Alertmanager anchors =~ and !~ at both ends (labels.NewMatcher: "^(?:" + value + ")$"). */
const anchored = (value: string) => `^(?:${value})$`;

/** Bound of matcherProblem's text: RE2's message quotes the (anchored) pattern, up to 256 characters. */
const MAX_PROBLEM = 300;

/** Why a matcher can never be evaluated (its =~ / !~ value is not RE2), or undefined. For TriggerHealthy. */
export function matcherProblem(m: AlertMatcher): string | undefined {
  if (m.op !== '=~' && m.op !== '!~') return undefined;
  try {
    RE2JS.compile(anchored(m.value));
    return undefined;
  } catch (e) {
    return boundText(
      `matcher ${m.name.slice(0, 64)}${m.op}"${m.value.slice(0, 64)}": not a valid RE2 pattern: ${(e as Error).message}`,
      MAX_PROBLEM,
    );
  }
}

/**
 * Alertmanager's label matchers: = and != compare strings, =~ and !~ are RE2 (re2js: linear time, so a
 * plan author's pattern cannot stall the event loop), fully anchored. A label the alert lacks is the empty
 * string, so `team!="payments"` matches an alert without `team` and `team=~".*"` matches any alert.
 * Patterns are compiled once and cached here; an invalid pattern matches nothing (matcherProblem names it).
 */
export class LabelMatcher {
  private readonly compiled = new Map<string, RE2JS | undefined>();

  matches(m: AlertMatcher, labels: Readonly<Record<string, string>>): boolean {
    // Own labels only: `constructor` or `toString` must not read Object.prototype (a function, not a string).
    const value = Object.hasOwn(labels, m.name) ? (labels[m.name] ?? '') : '';
    switch (m.op ?? '=') {
      case '=':
        return value === m.value;
      case '!=':
        return value !== m.value;
      case '=~': {
        const re = this.pattern(m.value);
        return re !== undefined && re.matches(value);
      }
      case '!~': {
        const re = this.pattern(m.value);
        return re !== undefined && !re.matches(value);
      }
    }
    return false;
  }

  matchesAll(matchers: readonly AlertMatcher[], labels: Readonly<Record<string, string>>): boolean {
    return matchers.every((m) => this.matches(m, labels));
  }

  private pattern(value: string): RE2JS | undefined {
    if (this.compiled.has(value)) return this.compiled.get(value);
    let re: RE2JS | undefined;
    try {
      re = RE2JS.compile(anchored(value));
    } catch {
      re = undefined;
    }
    if (this.compiled.size >= MAX_CACHED) this.compiled.delete(this.compiled.keys().next().value!);
    this.compiled.set(value, re);
    return re;
  }
}
