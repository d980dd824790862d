import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Annotation } from '../../operator/api/v1alpha1/common.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { APPROVALS_POLICY as POLICY, ShippedApprovals } from '../support/approvals.js';
import { kubectlWith, OPERATOR_SUBJECT } from '../support/rbac.js';

// The approvals ValidatingAdmissionPolicy as users install it (`kubectl apply -k manifests/approvals`, the
// files manifests/base and the chart ship), judged by the real API server's admission and RBAC authorizer.
// Every request below is made by an impersonated person (`kubectl --as`), the way `kubectl annotate` would be.

const PLANS = { group: 'rollback.nxtnewday.io', version: 'v1alpha1', plural: 'rollbackplans' } as const;
type Severity = 'critical' | 'high' | 'medium' | 'low';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe('approvals: the ValidatingAdmissionPolicy of manifests/approvals on the real API server', () => {
  const admin = () => inject('kubeconfigPath');
  const suffix = randomBytes(3).toString('hex');
  // People; every one of them may get, create and patch plans in `ns` (the Role plan-editor), so a refusal
  // below comes from the policy, not from RBAC on rollbackplans.
  const user = {
    patcher: `patcher-${suffix}`, // no approve/veto verb at all
    oncall: `oncall-${suffix}`, // nxt-rollback-oncall: critical
    lead: `lead-${suffix}`, // nxt-rollback-team-lead: critical, high, medium
    owner: `owner-${suffix}`, // nxt-rollback-product-owner: low
    elsewhere: `elsewhere-${suffix}`, // team lead, but bound in another namespace only
    approveOnly: `approve-only-${suffix}`, // approve (not veto) on medium
    root: `root-${suffix}`, // cluster-admin (verbs *) bound in ns
  };
  let ns = '';
  let otherNs = '';
  const shipped = new ShippedApprovals();
  const tmp = mkdtempSync(join(tmpdir(), 'nxt-approvals-'));

  const as = (who: string, ...args: string[]): Promise<Result> =>
    kubectlWith(admin(), `--as=${who}`, '-n', ns, ...args);
  const annotate = (who: string, plan: string, key: string, value: string | null, ...extra: string[]) =>
    as(
      who,
      'annotate',
      'rollbackplan',
      plan,
      '--overwrite',
      value === null ? `${key}-` : `${key}=${value}`,
      ...extra,
    );
  const approve = (who: string, plan: string, name = who, ...extra: string[]) =>
    annotate(who, plan, Annotation.ApprovedBy, name, ...extra);
  const veto = (who: string, plan: string, name = who, ...extra: string[]) =>
    annotate(who, plan, Annotation.VetoedBy, name, ...extra);

  const planBody = (name: string, severity?: Severity, annotations?: Record<string, string>) => ({
    apiVersion: 'rollback.nxtnewday.io/v1alpha1',
    kind: 'RollbackPlan',
    metadata: { name, ...(annotations ? { annotations } : {}) },
    // No operator runs in this file: the plan only has to be valid.
    spec: { scope: 'app', ...(severity ? { severity } : {}), targets: { deployments: [{ name: 'web' }] } },
  });
  /** A plan created by the admin (no approval annotation). */
  async function plan(name: string, severity?: Severity) {
    const { custom } = testClients();
    await custom.createNamespacedCustomObject({ ...PLANS, namespace: ns, body: planBody(name, severity) });
    return name;
  }
  async function annotations(name: string): Promise<Record<string, string>> {
    const { custom } = testClients();
    const p: any = await custom.getNamespacedCustomObject({ ...PLANS, namespace: ns, name });
    return p.metadata.annotations ?? {};
  }
  /** Writes a manifest for `kubectl create -f` (kubectl --as reads no stdin from here). */
  function manifestFile(obj: unknown): string {
    const file = join(tmp, `${randomBytes(4).toString('hex')}.json`);
    writeFileSync(file, JSON.stringify(obj));
    return file;
  }

  /**
   * A SubjectAccessReview for the verb on severities/<severity>: `kubectl auth can-i` cannot ask about it, as
   * it reads `severities.rollback.nxtnewday.io` as a core resource when discovery does not list it.
   */
  async function mayAct(who: string, verb: string, severity: Severity, namespace: string) {
    const review = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: who,
        resourceAttributes: {
          group: 'rollback.nxtnewday.io',
          resource: 'severities',
          name: severity,
          namespace,
          verb,
        },
      },
    };
    const out = await kubectl('create', '-f', manifestFile(review), '-o', 'json');
    return JSON.parse(out).status?.allowed === true;
  }

  const refusedByPolicy = (r: Result, what: string) => {
    expect(r.code, `${what} should be refused; kubectl said:\n${r.stdout}${r.stderr}`).not.toBe(0);
    expect(r.stderr, `${what}: refused by the policy`).toContain(
      `ValidatingAdmissionPolicy '${POLICY}' with binding '${POLICY}' denied request`,
    );
    return r.stderr;
  };
  const admitted = (r: Result, what: string) =>
    expect(r.code, `${what} should be admitted; kubectl said:\n${r.stderr}`).toBe(0);
  const missingVerb = (
    verb: 'approve' | 'veto',
    severity: Severity,
    annotation: string = verb === 'approve' ? Annotation.ApprovedBy : Annotation.VetoedBy,
  ) =>
    `the annotation ${annotation} needs the verb '${verb}' on severities.rollback.nxtnewday.io/${severity}`;
  const mustNameSelf = (verb: 'approve' | 'veto') =>
    `the annotation rollback.nxtnewday.io/${verb === 'approve' ? 'approved-by' : 'vetoed-by'} must name the requesting user`;

  beforeAll(async () => {
    await shipped.install('approvals-test');

    ns = await createTestNamespace('approvals');
    otherNs = await createTestNamespace('approvals-other');
    await kubectl(
      'create',
      'role',
      'plan-editor',
      '-n',
      ns,
      '--verb=get,create,patch',
      '--resource=rollbackplans.rollback.nxtnewday.io',
    );
    await kubectl(
      'create',
      'rolebinding',
      'plan-editors',
      '-n',
      ns,
      '--role=plan-editor',
      ...Object.values(user).map((u) => `--user=${u}`),
    );
    const bind = (name: string, clusterRole: string, who: string, namespace = ns) =>
      kubectl(
        'create',
        'rolebinding',
        name,
        '-n',
        namespace,
        `--clusterrole=${clusterRole}`,
        `--user=${who}`,
      );
    await bind('oncall', 'nxt-rollback-oncall', user.oncall);
    await bind('lead', 'nxt-rollback-team-lead', user.lead);
    await bind('owner', 'nxt-rollback-product-owner', user.owner);
    await bind('lead-elsewhere', 'nxt-rollback-team-lead', user.elsewhere, otherNs);
    await bind('root', 'cluster-admin', user.root);
    // `kubectl create role --resource=severities...` refuses a resource the server does not serve (it is
    // virtual), so this Role is written out, like the ClusterRoles in manifests/approvals.
    const approveMedium = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'approve-medium', namespace: ns },
      rules: [
        {
          apiGroups: ['rollback.nxtnewday.io'],
          resources: ['severities'],
          resourceNames: ['medium'],
          verbs: ['approve'],
        },
      ],
    };
    await kubectl('apply', '-f', manifestFile(approveMedium));
    await kubectl(
      'create',
      'rolebinding',
      'approve-only',
      '-n',
      ns,
      '--role=approve-medium',
      `--user=${user.approveOnly}`,
    );
    // The operator's identity may write plan status here, as its ClusterRole grants (plus get: kubectl patch
    // reads the object first).
    await kubectl(
      'create',
      'role',
      'plan-status',
      '-n',
      ns,
      '--verb=get,patch',
      '--resource=rollbackplans.rollback.nxtnewday.io/status',
    );
    await kubectl(
      'create',
      'rolebinding',
      'operator-status',
      '-n',
      ns,
      '--role=plan-status',
      `--user=${OPERATOR_SUBJECT}`,
    );
    // The RBAC authorizer's cache lags the writes a little.
    await eventually(
      'RBAC to give the test users their verbs',
      async () => {
        for (const [who, verb, severity] of [
          [user.lead, 'approve', 'medium'],
          [user.owner, 'veto', 'low'],
          [user.oncall, 'approve', 'critical'],
          [user.elsewhere, 'approve', 'high'],
          [user.root, 'approve', 'low'],
          [user.approveOnly, 'approve', 'medium'],
        ] as const) {
          if (!(await mayAct(who, verb, severity, who === user.elsewhere ? otherNs : ns))) return false;
        }
        const s = await as(
          OPERATOR_SUBJECT,
          'auth',
          'can-i',
          'patch',
          'rollbackplans',
          '--subresource=status',
        );
        return s.stdout.trim() === 'yes';
      },
      30_000,
      250,
    );
    const probe = await plan('enforcement-probe', 'medium');
    await shipped.waitEnforced(() => approve(user.patcher, probe, user.patcher, '--dry-run=server'));
  });

  afterAll(async () => {
    // Later files may write approved-by as the admin with any name.
    await shipped.remove(
      ns ? () => approve(user.lead, 'enforcement-probe', 'someone-else', '--dry-run=server') : undefined,
    );
    await Promise.all([ns, otherNs].filter(Boolean).map((n) => deleteTestNamespace(n)));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('installs the policy, its binding and the three approver ClusterRoles from manifests/approvals', async () => {
    const policy = JSON.parse(await kubectl('get', 'validatingadmissionpolicy', POLICY, '-o', 'json'));
    expect(policy.spec.failurePolicy).toBe('Fail');
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      expect.objectContaining({ resources: ['rollbackplans'], operations: ['CREATE', 'UPDATE'] }),
    ]);
    const binding = JSON.parse(
      await kubectl('get', 'validatingadmissionpolicybinding', POLICY, '-o', 'json'),
    );
    expect(binding.spec).toMatchObject({ policyName: POLICY, validationActions: ['Deny'] });
    for (const role of ['nxt-rollback-oncall', 'nxt-rollback-team-lead', 'nxt-rollback-product-owner'])
      expect(await kubectl('get', 'clusterrole', role, '-o', 'name')).toContain(role);
  });

  it('refuses an approval from a user who may patch the plan but lacks the verb, and the message names the verb', async () => {
    const p = await plan('no-verb', 'medium');
    const msg = refusedByPolicy(await approve(user.patcher, p), 'approved-by from a user without approve');
    expect(msg).toContain(missingVerb('approve', 'medium'));
    expect(msg).toContain(
      `user '${user.patcher}' may not approve RollbackPlans of severity medium in namespace ${ns}`,
    );
    expect(await annotations(p)).not.toHaveProperty([Annotation.ApprovedBy]);
    // (control) the same user may patch the plan: another annotation goes through.
    admitted(await annotate(user.patcher, p, 'example.com/note', 'looks bad'), 'another annotation');
    // A reason is part of the approval: forging one needs the verb too.
    expect(
      refusedByPolicy(
        await annotate(user.patcher, p, Annotation.ApprovalReason, 'looks bad'),
        'approval-reason without the verb',
      ),
    ).toContain(missingVerb('approve', 'medium', Annotation.ApprovalReason));
    // Server-side dry runs are judged like the real request.
    refusedByPolicy(await approve(user.patcher, p, user.patcher, '--dry-run=server'), 'a dry-run approval');
  });

  it('refuses the verb on another severity, or in another namespace, only', async () => {
    const medium = await plan('medium-plan', 'medium');
    const high = await plan('high-plan', 'high');
    expect(refusedByPolicy(await approve(user.owner, medium), 'product owner on medium')).toContain(
      missingVerb('approve', 'medium'),
    );
    expect(refusedByPolicy(await approve(user.oncall, high), 'on-call on high')).toContain(
      missingVerb('approve', 'high'),
    );
    expect(refusedByPolicy(await veto(user.oncall, medium), 'on-call veto on medium')).toContain(
      missingVerb('veto', 'medium'),
    );
    // A team lead, but in another namespace: the check is namespaced.
    expect(refusedByPolicy(await approve(user.elsewhere, high), 'team lead of another namespace')).toContain(
      missingVerb('approve', 'high'),
    );
    // A plan without a severity is judged as critical: on-call may, the product owner may not.
    const none = await plan('no-severity');
    expect(refusedByPolicy(await approve(user.owner, none), 'product owner, no severity')).toContain(
      missingVerb('approve', 'critical'),
    );
    admitted(await approve(user.oncall, none), 'on-call approving a plan without severity');
  });

  it('refuses an approval or veto that names someone else, even from a user with the verb', async () => {
    const p = await plan('someone-else', 'medium');
    expect(refusedByPolicy(await approve(user.lead, p, user.oncall), 'approved-by another user')).toContain(
      mustNameSelf('approve'),
    );
    expect(refusedByPolicy(await veto(user.lead, p, user.owner), 'vetoed-by another user')).toContain(
      mustNameSelf('veto'),
    );
    expect(await annotations(p)).not.toHaveProperty([Annotation.ApprovedBy]);
    // A very long value is refused and echoed cut short (annotations may hold 256 KiB).
    const long = 'x'.repeat(5000);
    const msg = refusedByPolicy(await approve(user.lead, p, long), 'a 5000-character approved-by');
    expect(msg).toContain(`it says '${'x'.repeat(64)}...'`);
    expect(msg.length).toBeLessThan(1000);
  });

  it('admits an approval naming the requesting user who has the verb on the severity', async () => {
    for (const [who, severity] of [
      [user.oncall, 'critical'],
      [user.lead, 'critical'],
      [user.lead, 'high'],
      [user.lead, 'medium'],
      [user.owner, 'low'],
    ] as const) {
      const p = await plan(`approve-${severity}-${who.split('-')[0]}`, severity);
      admitted(await approve(who, p), `${who} approving ${severity}`);
      expect((await annotations(p))[Annotation.ApprovedBy]).toBe(who);
    }
  });

  it('vetoes the same way: refused without the verb or for someone else, admitted for oneself', async () => {
    const p = await plan('veto-low', 'low');
    expect(refusedByPolicy(await veto(user.patcher, p), 'veto without the verb')).toContain(
      missingVerb('veto', 'low'),
    );
    expect(refusedByPolicy(await veto(user.lead, p), 'team lead vetoing low')).toContain(
      missingVerb('veto', 'low'),
    );
    expect(refusedByPolicy(await veto(user.owner, p, user.lead), 'product owner naming the lead')).toContain(
      mustNameSelf('veto'),
    );
    admitted(await veto(user.owner, p), 'product owner vetoing low');
    expect((await annotations(p))[Annotation.VetoedBy]).toBe(user.owner);
    // approve and veto are separate verbs.
    const m = await plan('approve-not-veto', 'medium');
    expect(refusedByPolicy(await veto(user.approveOnly, m), 'veto with approve only')).toContain(
      missingVerb('veto', 'medium'),
    );
    admitted(await approve(user.approveOnly, m), 'approve with approve only');
  });

  it('refuses creating a plan with approved-by (or vetoed-by) pre-set by a user without the verb', async () => {
    const create = (who: string, name: string, severity: Severity, annotations: Record<string, string>) =>
      as(who, 'create', '-f', manifestFile(planBody(name, severity, annotations)));
    expect(
      refusedByPolicy(
        await create(user.patcher, 'preset', 'high', { [Annotation.ApprovedBy]: user.patcher }),
        'create with approved-by, no verb',
      ),
    ).toContain(missingVerb('approve', 'high'));
    expect(
      refusedByPolicy(
        await create(user.lead, 'preset-other', 'high', { [Annotation.ApprovedBy]: user.oncall }),
        'create with approved-by naming another user',
      ),
    ).toContain(mustNameSelf('approve'));
    expect(
      refusedByPolicy(
        await create(user.owner, 'preset-veto', 'critical', { [Annotation.VetoedBy]: user.owner }),
        'create with vetoed-by, verb on another severity',
      ),
    ).toContain(missingVerb('veto', 'critical'));
    admitted(
      await create(user.lead, 'preset-self', 'high', { [Annotation.ApprovedBy]: user.lead }),
      'create pre-approved by a team lead naming themselves',
    );
    // An empty value approves nothing and needs nothing.
    admitted(
      await create(user.patcher, 'preset-empty', 'high', { [Annotation.ApprovedBy]: '' }),
      'create with an empty approved-by',
    );
  });

  it('refuses removing or changing an approval, a veto or their reasons without the verb; admits it with the verb', async () => {
    const p = await plan('remove', 'medium');
    admitted(await approve(user.lead, p), 'team lead approving');
    admitted(await annotate(user.lead, p, Annotation.ApprovalReason, 'p99 2s'), 'the lead giving a reason');
    // patch alone: other annotations only.
    admitted(await annotate(user.patcher, p, 'example.com/note', 'x'), 'another annotation, approval kept');
    expect(
      refusedByPolicy(
        await annotate(user.patcher, p, Annotation.ApprovalReason, 'edited'),
        'rewriting the approval reason with patch only',
      ),
    ).toContain(missingVerb('approve', 'medium', Annotation.ApprovalReason));
    expect(
      refusedByPolicy(
        await annotate(user.patcher, p, Annotation.ApprovalReason, null),
        'removing the approval reason with patch only',
      ),
    ).toContain(missingVerb('approve', 'medium', Annotation.ApprovalReason));
    expect(
      refusedByPolicy(
        await annotate(user.patcher, p, Annotation.ApprovedBy, null),
        'removing approved-by with patch only',
      ),
    ).toContain(missingVerb('approve', 'medium'));
    expect(await annotations(p)).toMatchObject({
      [Annotation.ApprovedBy]: user.lead,
      [Annotation.ApprovalReason]: 'p99 2s',
    });
    // With the verb: the reason may be changed and the approval withdrawn (approve-only holds approve on medium).
    admitted(
      await annotate(user.approveOnly, p, Annotation.ApprovalReason, 'edited'),
      'a reason, by a user with approve',
    );
    admitted(
      await annotate(user.approveOnly, p, Annotation.ApprovedBy, null),
      'removing approved-by with approve',
    );
    expect(await annotations(p)).not.toHaveProperty([Annotation.ApprovedBy]);
    // Setting it back is a new approval, judged again.
    refusedByPolicy(await approve(user.patcher, p, user.lead), 'putting the lead back, as someone else');

    // A veto: the product owner vetoes a low plan with a reason.
    const v = await plan('remove-veto', 'low');
    admitted(await veto(user.owner, v), 'product owner vetoing');
    admitted(await annotate(user.owner, v, Annotation.VetoReason, 'provider outage'), 'the veto reason');
    for (const who of [user.patcher, user.lead]) {
      expect(
        refusedByPolicy(await annotate(who, v, Annotation.VetoedBy, null), `removing the veto as ${who}`),
      ).toContain(missingVerb('veto', 'low'));
      expect(
        refusedByPolicy(
          await annotate(who, v, Annotation.VetoedBy, who),
          `replacing the veto with a self-named one as ${who}`,
        ),
      ).toContain(missingVerb('veto', 'low'));
      expect(
        refusedByPolicy(
          await annotate(who, v, Annotation.VetoReason, 'forged'),
          `rewriting the veto reason as ${who}`,
        ),
      ).toContain(missingVerb('veto', 'low', Annotation.VetoReason));
    }
    expect(await annotations(v)).toMatchObject({
      [Annotation.VetoedBy]: user.owner,
      [Annotation.VetoReason]: 'provider outage',
    });
    admitted(await annotate(user.owner, v, Annotation.VetoReason, null), 'removing the reason, with veto');
    admitted(await annotate(user.owner, v, Annotation.VetoedBy, null), 'withdrawing the veto, with veto');
    expect(await annotations(v)).not.toHaveProperty([Annotation.VetoedBy]);
  });

  it("leaves status writes by the operator's identity alone, and a status write cannot set an approval", async () => {
    const p = await plan('status', 'medium');
    admitted(await approve(user.lead, p), 'team lead approving');
    const r = await as(
      OPERATOR_SUBJECT,
      'patch',
      'rollbackplan',
      p,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        metadata: { annotations: { [Annotation.ApprovedBy]: OPERATOR_SUBJECT } },
        status: { phase: 'AwaitingApproval' },
      }),
    );
    admitted(r, 'the operator patching status');
    const { custom } = testClients();
    const after: any = await custom.getNamespacedCustomObject({ ...PLANS, namespace: ns, name: p });
    expect(after.status?.phase).toBe('AwaitingApproval');
    expect(after.metadata.annotations[Annotation.ApprovedBy], 'status writes ignore metadata').toBe(
      user.lead,
    );
    // The operator has no approve verb and cannot patch the plan itself.
    const own = await approve(OPERATOR_SUBJECT, p);
    expect(own.code).not.toBe(0);
    expect(own.stderr).toMatch(/forbidden/i);
  });

  it('lets users with verb * (cluster-admin) approve as themselves: the policy proves who, RBAC decides who may', async () => {
    const p = await plan('root', 'low');
    admitted(await approve(user.root, p), 'a cluster-admin bound in the namespace');
    const q = await plan('masters', 'medium');
    // The harness's admin is in system:masters: it passes every authorizer check, but must still name itself.
    refusedByPolicy(
      await approve('admin', q, user.lead, '--as-group=system:masters'),
      'admin naming the lead',
    );
    admitted(await approve('admin', q, 'admin', '--as-group=system:masters'), 'admin naming itself');
  });
});
