import { describe, expect, it } from 'vitest';
import { parseRollbackPlan } from '../api/v1alpha1/rollbackplan.js';
import { CliError } from './errors.js';
import { validationPlan, validationSpec } from './validation-plan.js';

const base = { deployments: [] as string[], http: [] as string[], disable: [] as string[] };

describe('validate: the plan it creates', () => {
  it.each([
    [{ ...base, deployments: ['web'] }, 'app'],
    [{ ...base, schedule: 'db' }, 'database'],
    [{ ...base, flags: 'flags', disable: ['a'] }, 'feature'],
    [{ ...base, deployments: ['web'], schedule: 'db' }, 'full'],
  ])('%j has scope %s and is a valid validateOnly plan', (input, scope) => {
    const spec = validationSpec(input);
    expect(spec.scope).toBe(scope);
    const plan = {
      ...validationPlan('validate-pre-x', 'pre', spec),
      metadata: { name: 'v', namespace: 'ns' },
    };
    const parsed = parseRollbackPlan(plan);
    expect(parsed.ok, JSON.stringify(!parsed.ok && parsed.problems)).toBe(true);
    expect(plan.spec.validateOnly).toBe('pre');
  });

  it('turns --http into checks for 200 and --validation-timeout into spec.validation.timeout', () => {
    expect(
      validationSpec({ ...base, deployments: ['web'], http: ['http://a/healthz'], validationTimeout: '30s' }),
    ).toEqual({
      scope: 'app',
      targets: { deployments: [{ name: 'web' }] },
      validation: { http: [{ url: 'http://a/healthz', expectStatus: 200 }], timeout: '30s' },
    });
  });

  it('--flags featureflag/<name> targets an OpenFeature FeatureFlag', () => {
    expect(validationSpec({ ...base, flags: 'featureflag/ff', disable: ['x'] }).targets.featureFlags).toEqual(
      {
        featureFlagRef: { name: 'ff' },
        disable: ['x'],
      },
    );
  });

  it("--plan copies the plan's scope, targets and validation, and the flags add to them", () => {
    const from = {
      scope: 'app' as const,
      targets: { deployments: [{ name: 'web', toRevision: 3 }] },
      validation: { timeout: '1m', http: [{ url: 'http://a/', expectStatus: 204 }] },
      trigger: { mode: 'auto' as const },
      severity: 'high' as const,
    };
    const spec = validationSpec({ ...base, deployments: ['web', 'api'], http: ['http://b/'], from });
    expect(spec).toEqual({
      scope: 'app',
      targets: { deployments: [{ name: 'web', toRevision: 3 }, { name: 'api' }] },
      validation: {
        timeout: '1m',
        http: [
          { url: 'http://a/', expectStatus: 204 },
          { url: 'http://b/', expectStatus: 200 },
        ],
      },
    });
  });

  it('computes the scope from the combined targets, not the copied plan', () => {
    const from = { scope: 'app' as const, targets: { deployments: [{ name: 'web' }] } };
    expect(validationSpec({ ...base, from, schedule: 'db' }).scope).toBe('full');
    expect(validationSpec({ ...base, from }).scope).toBe('app');
  });

  it('refuses a validation with nothing to check, and --flags without --disable, as usage errors', () => {
    expect(() => validationSpec({ ...base, http: ['http://a/'] })).toThrow(CliError);
    expect(() => validationSpec({ ...base, flags: 'f' })).toThrow(/go together/);
  });
});
