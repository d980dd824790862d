import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Annotation, GROUP } from '../../operator/api/v1alpha1/common.js';
import { ROLLBACK_PLAN_INFO, Severities } from '../../operator/api/v1alpha1/rollbackplan.js';

// The approvals policy and roles are hand-written YAML (manifests/approvals); these checks tie them to the API
// they judge, so renaming an annotation or adding a severity cannot leave them behind silently. How the API
// server applies them is test/integration/approvals.test.ts.

const DIR = join(resolve(import.meta.dirname, '..', '..'), 'manifests', 'approvals');
const load = (file: string) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => d.toJS() as any);

describe('manifests/approvals', () => {
  const [policy] = load('validating-admission-policy.yaml');
  const [binding] = load('validating-admission-policy-binding.yaml');
  const roles = load('approver-clusterroles.yaml');
  const expressions = JSON.stringify(policy.spec);

  it('judges CREATE and UPDATE of the main rollbackplans resource only, refusing when it cannot decide', () => {
    expect(policy.spec.failurePolicy).toBe('Fail');
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      {
        apiGroups: [GROUP],
        apiVersions: ['*'],
        operations: ['CREATE', 'UPDATE'],
        resources: [ROLLBACK_PLAN_INFO.plural], // a subresource (status) would be rollbackplans/status
      },
    ]);
    expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ['Deny'] });
  });

  it('reads the annotations the operator acts on, and asks about severities in the API group', () => {
    for (const key of [
      Annotation.ApprovedBy,
      Annotation.VetoedBy,
      Annotation.ApprovalReason,
      Annotation.VetoReason,
    ])
      expect(expressions, `the policy reads ${key}`).toContain(`'${key}'`);
    expect(expressions).toContain(`authorizer.group('${GROUP}').resource('severities')`);
    expect(expressions).toContain("check('approve')");
    expect(expressions).toContain("check('veto')");
    expect(expressions).toContain("orValue('critical')"); // no severity: judged as critical
    // Every validation says why it refused.
    for (const v of policy.spec.validations) expect(v.messageExpression, v.expression).toBeTruthy();
  });

  it('every severity has a role that may approve and veto it, and only real severities are named', () => {
    const covered = new Map<string, Set<string>>();
    for (const role of roles)
      for (const rule of role.rules.filter((r: any) => r.resources.includes('severities'))) {
        expect(rule.apiGroups).toEqual([GROUP]);
        for (const name of rule.resourceNames) {
          expect(Severities, `${role.metadata.name} names severity ${name}`).toContain(name);
          for (const verb of rule.verbs)
            (covered.get(name) ?? covered.set(name, new Set()).get(name)!).add(verb);
        }
      }
    for (const s of Severities)
      expect([...(covered.get(s) ?? [])].sort(), `severity ${s}`).toEqual(['approve', 'veto']);
  });
});
