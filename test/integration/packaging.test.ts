import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import {
  CLUSTER_IDENTITY_GRANTS,
  GITOPS_OWNER_GRANTS,
  LEADER_ELECTION_GRANTS,
  OPERATOR_GRANTS,
  permissionsOf,
  toPolicyRules,
} from '../../operator/rbac.js';
import { binPath, createTestNamespace, deleteTestNamespace, kubectl } from '../support/kube.js';
import { NEVER_GRANTED } from '../support/never-granted.js';

// The image cannot be built here (no Docker engine), so the packaging is judged by the real tools: helm
// lints and renders the chart, kubectl renders the kustomize base, and the real API server's admission
// (schema validation, Pod Security `restricted`) judges every rendered object through --dry-run=server.

const REPO = resolve(import.meta.dirname, '..', '..');
const CHART = join(REPO, 'charts', 'nxt-rollback-operator');
const RELEASE = 'nxt-rollback-operator';
const CRD_FILES = ['rollback.nxtnewday.io_rollbackplans.yaml', 'rollback.nxtnewday.io_backupschedules.yaml'];
const IMAGE_UID = 65532;

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: any;
}

/** What the chart and the kustomize manifests must grant: the table in operator/rbac.ts, nothing else. */
const OPERATOR_PERMISSIONS = permissionsOf(toPolicyRules(OPERATOR_GRANTS));
const LEADER_ELECTION_PERMISSIONS = permissionsOf(toPolicyRules(LEADER_ELECTION_GRANTS));
const GITOPS_OWNER_PERMISSIONS = permissionsOf(toPolicyRules(GITOPS_OWNER_GRANTS));
/** The GitOps-owner ClusterRole and its bindings (chart gitops.*, manifests/gitops-owners). */
const isGitopsOwners = (o: KubeObject) =>
  ['ClusterRole', 'ClusterRoleBinding', 'RoleBinding'].includes(o.kind) &&
  (o.metadata.name.endsWith('-gitops-owners') || o.roleRef?.name?.endsWith('-gitops-owners'));
/** The cluster-id ClusterRole and its binding: get on the kube-system Namespace only, in every install. */
const isClusterIdentity = (o: KubeObject) =>
  ['ClusterRole', 'ClusterRoleBinding'].includes(o.kind) &&
  (o.metadata.name.endsWith('-cluster-identity') || o.roleRef?.name?.endsWith('-cluster-identity'));
const CLUSTER_IDENTITY_RULES = toPolicyRules(CLUSTER_IDENTITY_GRANTS);
/** The ClusterRoles for people and the approvals policy (manifests/approvals): not the operator's permissions. */
const isApprovals = (o: KubeObject) => o.metadata.labels?.['app.kubernetes.io/component'] === 'approvals';
const APPROVALS_KINDS = ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];
/** Everything every Role and ClusterRole of the operator in a render grants, flattened. */
const grantedIn = (objects: KubeObject[]) =>
  permissionsOf(
    objects
      .filter((o) => (o.kind === 'ClusterRole' || o.kind === 'Role') && !isApprovals(o))
      .flatMap((o) => o.rules),
  );
/** The operator's own ClusterRole (a render also holds the approver ClusterRoles). */
const operatorClusterRoles = (objects: KubeObject[]) =>
  objects.filter((o) => o.kind === 'ClusterRole' && !isApprovals(o) && !isClusterIdentity(o));
/** The seed's decision matrix as RBAC: who may approve and veto which severity (docs/approvals.md). */
const APPROVER_ROLES: Record<string, string[]> = {
  'nxt-rollback-oncall': ['critical'],
  'nxt-rollback-team-lead': ['critical', 'high', 'medium'],
  'nxt-rollback-product-owner': ['low'],
};
/** The part of an approvals object that must be the same in the chart and in manifests/approvals. */
const approvalsContent = (o: KubeObject) => ({
  kind: o.kind,
  name: o.metadata.name,
  spec: o.spec,
  rules: o.rules,
});

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a binary without throwing, so a test can assert on a failure's exit code and message. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: REPO, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const o = doc.toJS() as KubeObject | null;
    return o ? [o] : [];
  });
}
const toYaml = (objects: KubeObject[]) => objects.map((o) => stringify(o)).join('---\n');
const ofKind = (objects: KubeObject[], kind: string) => objects.filter((o) => o.kind === kind);
const warningsOf = (stderr: string) => stderr.split('\n').filter((l) => /warning/i.test(l));

function rbacObjects(objects: KubeObject[]): KubeObject[] {
  return objects.filter((o) => ['ClusterRole', 'Role', 'ClusterRoleBinding', 'RoleBinding'].includes(o.kind));
}

/** Every string in every RBAC rule and binding; a `*` anywhere is a wildcard grant. */
function wildcardsIn(objects: KubeObject[]): string[] {
  const found: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (typeof v === 'string' && v.includes('*')) found.push(`${path}=${v}`);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  for (const o of rbacObjects(objects))
    walk({ rules: o.rules, roleRef: o.roleRef }, `${o.kind}/${o.metadata.name}`);
  return found;
}

/** Moves namespaced objects (and ServiceAccount subjects) into `ns`, so a test namespace can host them. */
function relocate(objects: KubeObject[], from: string, ns: string): KubeObject[] {
  return structuredClone(objects).map((o) => {
    if (o.metadata.namespace === from) o.metadata.namespace = ns;
    for (const s of o.subjects ?? []) if (s.namespace === from) s.namespace = ns;
    return o;
  });
}

describe('packaging: image, Helm chart, kustomize base, samples', () => {
  const helmHome = mkdtempSync(join(tmpdir(), 'nxt-helm-'));
  // Helm keeps its cache/config out of the user's home; nothing here needs a repository.
  const helmEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  };
  const helm = (...args: string[]) => run(binPath('helm'), args, helmEnv);
  const kube = (args: string[], stdin = '') =>
    run(binPath('kubectl'), [`--kubeconfig=${inject('kubeconfigPath')}`, ...args], process.env, stdin);

  let kubeVersion = '';
  let ns = ''; // Pod Security `restricted` enforced, warned and audited
  const watched: string[] = [];

  /** Server-side dry-run apply; returns the applied names and the API server's warnings. */
  async function applyDryRun(objects: KubeObject[], what: string, extra: string[] = []) {
    const r = await kube(
      [
        'apply',
        '--server-side',
        '--force-conflicts',
        '--field-manager=packaging-test',
        '--dry-run=server',
      ].concat(['-o', 'name', '-f', '-', ...extra]),
      toYaml(objects),
    );
    expect(r.code, `${what} should apply with --dry-run=server; kubectl said:\n${r.stderr}`).toBe(0);
    return { names: r.stdout.trim().split('\n').filter(Boolean), warnings: warningsOf(r.stderr) };
  }

  async function helmTemplate(namespace: string, ...sets: string[]): Promise<KubeObject[]> {
    const args = ['template', RELEASE, CHART, '--namespace', namespace, '--kube-version', kubeVersion];
    const r = await helm(...args, ...sets.flatMap((s) => ['--set', s]));
    expect(r.code, `helm template ${sets.join(' ')} should render; helm said:\n${r.stderr}`).toBe(0);
    return parseObjects(r.stdout);
  }

  async function kustomize(dir: string): Promise<KubeObject[]> {
    const r = await kube(['kustomize', join(REPO, dir)]);
    expect(r.code, `kubectl kustomize ${dir} should render; kubectl said:\n${r.stderr}`).toBe(0);
    return parseObjects(r.stdout);
  }

  /**
   * A pod template passes `restricted` when its Deployment is admitted without a PodSecurity warning and
   * a Pod built from it is admitted by a namespace that enforces the level.
   */
  async function podSecurityVerdict(deployment: KubeObject) {
    const d = structuredClone(deployment);
    d.metadata.namespace = ns;
    const dep = await kube(
      ['apply', '--server-side', '--dry-run=server', '-o', 'name', '-f', '-'],
      stringify(d),
    );
    const template = d.spec.template;
    // The ServiceAccount does not exist in the test namespace; it plays no part in Pod Security.
    const podSpec = { ...template.spec, serviceAccountName: undefined };
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${d.metadata.name}-psa`.slice(0, 63),
        namespace: ns,
        labels: template.metadata.labels,
      },
      spec: JSON.parse(JSON.stringify(podSpec)),
    };
    const p = await kube(['create', '--dry-run=server', '-o', 'name', '-f', '-'], stringify(pod));
    return { deployment: dep, pod: p };
  }

  beforeAll(async () => {
    kubeVersion = JSON.parse(await kubectl('version', '-o', 'json')).serverVersion.gitVersion;
    ns = await createTestNamespace('pkg');
    await kubectl(
      'label',
      'namespace',
      ns,
      'pod-security.kubernetes.io/warn=restricted',
      'pod-security.kubernetes.io/audit=restricted',
    );
    for (let i = 0; i < 2; i++) watched.push(await createTestNamespace('pkg-watch'));
  });
  afterAll(async () => {
    await Promise.all([ns, ...watched].map((n) => deleteTestNamespace(n)));
    rmSync(helmHome, { recursive: true, force: true });
  });

  describe('Helm chart', () => {
    it('passes helm lint, also with --strict, without warnings or errors', async () => {
      for (const flags of [[], ['--strict']]) {
        const r = await helm('lint', CHART, ...flags);
        const out = r.stdout + r.stderr;
        expect(r.code, `helm lint ${flags.join(' ')} should pass:\n${out}`).toBe(0);
        expect(out.split('\n').filter((l) => /\[(WARNING|ERROR)\]/.test(l))).toEqual([]);
      }
    });

    it('refuses a misspelled value (values.schema.json) and several replicas without leader election', async () => {
      const typo = await helm(
        'template',
        RELEASE,
        CHART,
        '--kube-version',
        kubeVersion,
        '--set',
        'replicaCont=3',
      );
      expect(typo.code, 'a misspelled key should fail the render').not.toBe(0);
      expect(typo.stderr).toContain('replicaCont');
      const badNs = await helm(
        'template',
        RELEASE,
        CHART,
        '--kube-version',
        kubeVersion,
        '--set',
        'watchNamespaces={Shop}',
      );
      expect(badNs.code, 'a namespace that is not a DNS-1123 label should fail the render').not.toBe(0);
      const noLease = await helm(
        'template',
        RELEASE,
        CHART,
        '--kube-version',
        kubeVersion,
        '--set',
        'leaderElection.enabled=false',
      );
      expect(noLease.code, '2 replicas without leader election should fail the render').not.toBe(0);
      expect(noLease.stderr).toContain('leaderElection.enabled');
      const single = await helmTemplate(ns, 'replicaCount=1', 'leaderElection.enabled=false');
      const env = ofKind(single, 'Deployment')[0]!.spec.template.spec.containers[0].env;
      expect(env.find((e: { name: string }) => e.name === 'LEADER_ELECT')?.value).toBe('false');
      expect(
        ofKind(single, 'Role').map((r) => r.metadata.name),
        'no leader-election Role without it',
      ).toEqual([]);
    });

    it('renders cluster-wide by default: a ClusterRole with exactly the operator rules, no ServiceMonitor', async () => {
      const objects = await helmTemplate(ns);
      expect(objects.map((o) => o.kind).sort()).toEqual(
        [
          'ClusterRole',
          'ClusterRole', // the approver roles for people: oncall, team-lead, product-owner
          'ClusterRole',
          'ClusterRole',
          'ClusterRoleBinding',
          'ClusterRole', // the cluster id: get on the kube-system Namespace
          'ClusterRoleBinding',
          'ValidatingAdmissionPolicy',
          'ValidatingAdmissionPolicyBinding',
          'Deployment',
          'PodDisruptionBudget',
          'Role',
          'RoleBinding',
          'Service',
          'ServiceAccount',
        ].sort(),
      );
      expect(wildcardsIn(objects)).toEqual([]);
      const [clusterRole, ...more] = operatorClusterRoles(objects);
      expect(more, 'one ClusterRole for the operator').toEqual([]);
      expect(clusterRole!.metadata.name).toBe(RELEASE);
      expect(permissionsOf(clusterRole!.rules)).toEqual(OPERATOR_PERMISSIONS);
      expect(grantedIn(objects).filter((p) => NEVER_GRANTED.includes(p))).toEqual([]);
      expect(objects.filter(isClusterIdentity).map((o) => o.rules ?? o.subjects)).toEqual([
        CLUSTER_IDENTITY_RULES,
        [{ kind: 'ServiceAccount', name: RELEASE, namespace: ns }],
      ]);
      const [leaderRole] = ofKind(objects, 'Role');
      expect(leaderRole!.metadata.namespace).toBe(ns);
      expect(permissionsOf(leaderRole!.rules)).toEqual(LEADER_ELECTION_PERMISSIONS);
      const [deployment] = ofKind(objects, 'Deployment');
      const manager = deployment!.spec.template.spec.containers[0];
      const env = Object.fromEntries(
        manager.env.map((e: any) => [e.name, e.value ?? `fieldRef:${e.valueFrom.fieldRef.fieldPath}`]),
      );
      expect(env).toEqual({
        WATCH_NAMESPACES: '',
        LEADER_ELECT: 'true',
        LEADER_ELECTION_NAMESPACE: 'fieldRef:metadata.namespace',
        POD_NAME: 'fieldRef:metadata.name',
        OPERATOR_IMAGE: manager.image,
        METRICS_ADDR: ':8080',
        HEALTH_ADDR: ':8081',
        LOG_LEVEL: 'info',
        PLAN_MAX_CONCURRENT_RECONCILES: '16',
        MAX_CONCURRENT_RECONCILES: '4',
        // No runner pod overrides but the runner ServiceAccount; no superuser SQL assertions.
        ALLOWED_RUNNER_IMAGES: '',
        ALLOWED_RUNNER_SERVICE_ACCOUNTS: 'nxt-backup-runner',
        ALLOW_SUPERUSER_ASSERTIONS: 'false',
        // No GitOps owner namespaces: owners in a plan's own namespace only.
        GITOPS_OWNER_NAMESPACES: '',
        ARGOCD_NAMESPACE: 'argocd',
      });
      expect(objects.filter(isGitopsOwners), 'no GitOps-owner RBAC with the default values').toEqual([]);
      expect(deployment!.spec.replicas).toBe(2);
      expect(manager.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
      expect(manager.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    });

    it('with clusterId: CLUSTER_ID set and no cluster-identity ClusterRole (nothing is read)', async () => {
      const objects = await helmTemplate(ns, 'clusterId=prod-eu-1');
      expect(objects.filter(isClusterIdentity)).toEqual([]);
      const [deployment] = ofKind(objects, 'Deployment');
      const env = deployment!.spec.template.spec.containers[0].env;
      expect(env.find((e: { name: string }) => e.name === 'CLUSTER_ID')?.value).toBe('prod-eu-1');
    });

    it('reconcileWorkers sets both worker counts', async () => {
      const objects = await helmTemplate(
        ns,
        'reconcileWorkers.rollbackPlans=8',
        'reconcileWorkers.backupSchedules=2',
      );
      const env = ofKind(objects, 'Deployment')[0]!.spec.template.spec.containers[0].env;
      const value = (name: string) => env.find((e: { name: string }) => e.name === name)?.value;
      expect(value('PLAN_MAX_CONCURRENT_RECONCILES')).toBe('8');
      expect(value('MAX_CONCURRENT_RECONCILES')).toBe('2');
    });

    it('with watchNamespaces and serviceMonitor: a Role in each namespace, runner ServiceAccounts, one ServiceMonitor', async () => {
      const objects = await helmTemplate(
        ns,
        `watchNamespaces={${watched.join(',')}}`,
        'metrics.serviceMonitor.enabled=true',
      );
      expect(wildcardsIn(objects)).toEqual([]);
      const roles = ofKind(objects, 'Role').filter((r) => r.metadata.namespace !== ns);
      expect(roles.map((r) => r.metadata.namespace).sort()).toEqual([...watched].sort());
      for (const r of roles) expect(permissionsOf(r.rules)).toEqual(OPERATOR_PERMISSIONS);
      expect(grantedIn(objects).filter((p) => NEVER_GRANTED.includes(p))).toEqual([]);
      const bindings = ofKind(objects, 'RoleBinding').filter((b) => b.metadata.namespace !== ns);
      expect(bindings.map((b) => b.metadata.namespace).sort()).toEqual([...watched].sort());
      for (const b of bindings)
        expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: RELEASE, namespace: ns }]);
      expect(
        objects.filter(
          (o) =>
            ((o.kind === 'ClusterRole' && !isApprovals(o)) || o.kind === 'ClusterRoleBinding') &&
            !isClusterIdentity(o),
        ),
        'a namespace-restricted install grants the operator nothing cluster-wide but the cluster id (the approver roles bind nobody)',
      ).toEqual([]);
      expect(ofKind(objects.filter(isClusterIdentity), 'ClusterRole')[0]!.rules).toEqual(
        CLUSTER_IDENTITY_RULES,
      );
      const runners = ofKind(objects, 'ServiceAccount').filter(
        (s) => s.metadata.name === 'nxt-backup-runner',
      );
      expect(runners.map((s) => s.metadata.namespace).sort()).toEqual([...watched].sort());
      for (const s of runners) expect(s.automountServiceAccountToken).toBe(false);
      const env = ofKind(objects, 'Deployment')[0]!.spec.template.spec.containers[0].env;
      expect(env.find((e: { name: string }) => e.name === 'WATCH_NAMESPACES')?.value).toBe(watched.join(','));
      const allowing = await helmTemplate(
        ns,
        'runnerPolicy.allowedImages={reg.example/team/,reg.example/tools:2}',
        'runnerPolicy.allowedServiceAccounts={deployer,nxt-backup-runner}',
        'runnerPolicy.allowSuperuserAssertions=true',
      );
      const allowEnv = Object.fromEntries(
        ofKind(allowing, 'Deployment')[0]!.spec.template.spec.containers[0].env.map((e: any) => [
          e.name,
          e.value,
        ]),
      );
      expect(allowEnv).toMatchObject({
        ALLOWED_RUNNER_IMAGES: 'reg.example/team/,reg.example/tools:2',
        ALLOWED_RUNNER_SERVICE_ACCOUNTS: 'nxt-backup-runner,deployer',
        ALLOW_SUPERUSER_ASSERTIONS: 'true',
      });
      const monitors = ofKind(objects, 'ServiceMonitor');
      expect(monitors.map((m) => m.apiVersion)).toEqual(['monitoring.coreos.com/v1']);
    });

    it('applies with --dry-run=server, default and namespace-restricted (ServiceMonitor CRD absent: left out)', async () => {
      for (const sets of [
        [],
        [`watchNamespaces={${watched.join(',')}}`, 'metrics.serviceMonitor.enabled=true'],
      ]) {
        const objects = await helmTemplate(ns, ...sets);
        const applicable = objects.filter((o) => o.kind !== 'ServiceMonitor');
        const { names, warnings } = await applyDryRun(
          applicable,
          `chart rendered with ${sets.join(' ') || 'defaults'}`,
        );
        expect(names.length).toBe(applicable.length);
        expect(warnings, 'the API server should not warn about the chart').toEqual([]);
      }
    });

    it('renders NOTES.txt on a helm install --dry-run against the cluster', async () => {
      const r = await helm(
        'install',
        RELEASE,
        CHART,
        '--namespace',
        ns,
        '--dry-run=server',
        `--kubeconfig=${inject('kubeconfigPath')}`,
        '--set',
        `watchNamespaces={${watched.join(',')}}`,
      );
      expect(r.code, `helm install --dry-run should succeed:\n${r.stderr}`).toBe(0);
      const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
      expect(notes).toContain(`Watching only: ${watched.join(', ')}`);
      expect(notes).toContain(`kubectl -n ${ns} rollout status deployment/${RELEASE}`);
    });

    describe('GitOps owners (gitops.*)', () => {
      const gitopsEnv = (objects: KubeObject[]) =>
        Object.fromEntries(
          ofKind(objects, 'Deployment')[0]!
            .spec.template.spec.containers[0].env.filter((e: { name: string }) =>
              ['GITOPS_OWNER_NAMESPACES', 'ARGOCD_NAMESPACE'].includes(e.name),
            )
            .map((e: { name: string; value: string }) => [e.name, e.value]),
        );
      const bindingNamespaces = (objects: KubeObject[]) =>
        ofKind(objects.filter(isGitopsOwners), 'RoleBinding')
          .map((b) => b.metadata.namespace)
          .sort();
      /** The generated manifests/gitops-owners/clusterrole.yaml: the chart must grant the same rules. */
      const manifestRules = () =>
        parseObjects(readFileSync(join(REPO, 'manifests', 'gitops-owners', 'clusterrole.yaml'), 'utf8'))[0]!
          .rules;

      it('ownerNamespaces: the generated ClusterRole, a RoleBinding in exactly those namespaces, the env', async () => {
        const objects = await helmTemplate(
          ns,
          'gitops.ownerNamespaces={flux-system,argocd}',
          'gitops.argocdNamespace=argo-cd',
        );
        const owners = objects.filter(isGitopsOwners);
        expect(owners.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}`).sort()).toEqual([
          'ClusterRole/',
          'RoleBinding/argocd',
          'RoleBinding/flux-system',
        ]);
        const [role] = ofKind(owners, 'ClusterRole');
        expect(role!.metadata.name).toBe(`${RELEASE}-gitops-owners`);
        expect(permissionsOf(role!.rules)).toEqual(GITOPS_OWNER_PERMISSIONS);
        expect(role!.rules, 'the same rules as manifests/gitops-owners/clusterrole.yaml').toEqual(
          manifestRules(),
        );
        for (const b of ofKind(owners, 'RoleBinding')) {
          expect(b.roleRef).toEqual({
            apiGroup: 'rbac.authorization.k8s.io',
            kind: 'ClusterRole',
            name: `${RELEASE}-gitops-owners`,
          });
          expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: RELEASE, namespace: ns }]);
        }
        expect(wildcardsIn(objects)).toEqual([]);
        expect(grantedIn(objects).filter((p) => NEVER_GRANTED.includes(p))).toEqual([]);
        expect(gitopsEnv(objects)).toEqual({
          GITOPS_OWNER_NAMESPACES: 'flux-system,argocd',
          ARGOCD_NAMESPACE: 'argo-cd',
        });
        // The operator's own ClusterRole is untouched.
        expect(
          permissionsOf(operatorClusterRoles(objects).find((r) => r.metadata.name === RELEASE)!.rules),
        ).toEqual(OPERATOR_PERMISSIONS);
      });

      it('ownersInWatchedNamespaces with watchNamespaces: RoleBindings in owner and watched namespaces, once each; applies with --dry-run=server', async () => {
        const objects = await helmTemplate(
          ns,
          `watchNamespaces={${watched.join(',')}}`,
          `gitops.ownerNamespaces={${ns},${watched[0]}}`,
          'gitops.ownersInWatchedNamespaces=true',
        );
        expect(bindingNamespaces(objects)).toEqual([ns, ...watched].sort());
        expect(ofKind(objects.filter(isGitopsOwners), 'ClusterRoleBinding')).toEqual([]);
        expect(gitopsEnv(objects).GITOPS_OWNER_NAMESPACES).toBe(`${ns},${watched[0]}`);
        const { names, warnings } = await applyDryRun(
          objects,
          'chart rendered with gitops.ownersInWatchedNamespaces and watchNamespaces',
        );
        expect(names.length).toBe(objects.length);
        expect(warnings).toEqual([]);
      });

      it('ownersInWatchedNamespaces with all namespaces watched: one ClusterRoleBinding, no RoleBinding', async () => {
        const objects = await helmTemplate(
          ns,
          'gitops.ownerNamespaces={flux-system}',
          'gitops.ownersInWatchedNamespaces=true',
        );
        const owners = objects.filter(isGitopsOwners);
        expect(owners.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding']);
        expect(ofKind(owners, 'ClusterRoleBinding')[0]!.subjects).toEqual([
          { kind: 'ServiceAccount', name: RELEASE, namespace: ns },
        ]);
        expect(gitopsEnv(objects).GITOPS_OWNER_NAMESPACES).toBe('flux-system');
      });

      it('rbac.create=false renders no GitOps-owner RBAC; the schema refuses a bad namespace', async () => {
        const off = await helmTemplate(ns, 'rbac.create=false', 'gitops.ownerNamespaces={flux-system}');
        expect(off.filter(isGitopsOwners)).toEqual([]);
        expect(gitopsEnv(off).GITOPS_OWNER_NAMESPACES).toBe('flux-system');
        const bad = await helm(
          'template',
          RELEASE,
          CHART,
          '--kube-version',
          kubeVersion,
          '--set',
          'gitops.ownerNamespaces={Flux_System}',
        );
        expect(bad.code).not.toBe(0);
        expect(bad.stderr).toMatch(/gitops\/ownerNamespaces/);
      });
    });

    it("carries the same CRDs as the repository's crds/", (ctx) => {
      const chartCrds = join(CHART, 'crds');
      ctx.skip(!existsSync(chartCrds), 'charts/nxt-rollback-operator/crds/ is not generated yet');
      for (const f of CRD_FILES) {
        expect(readFileSync(join(chartCrds, f), 'utf8'), `chart crds/${f} should equal crds/${f}`).toBe(
          readFileSync(join(REPO, 'crds', f), 'utf8'),
        );
      }
    });
  });

  describe('kustomize base', () => {
    const crdKustomization = join(REPO, 'crds', 'kustomization.yaml');

    it('renders the CRDs, a restricted namespace and a Deployment whose runner image is its own image', async (ctx) => {
      ctx.skip(!existsSync(crdKustomization), 'crds/kustomization.yaml is not generated yet');
      const objects = await kustomize('manifests/base');
      const crdNames = ofKind(objects, 'CustomResourceDefinition').map((c) => c.metadata.name);
      expect(crdNames.sort()).toEqual([
        'backupschedules.rollback.nxtnewday.io',
        'rollbackplans.rollback.nxtnewday.io',
      ]);
      const [namespace] = ofKind(objects, 'Namespace');
      expect(namespace!.metadata.name).toBe('nxt-rollback-system');
      expect(namespace!.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
      const namespaced = objects.filter(
        (o) =>
          ![
            'Namespace',
            'CustomResourceDefinition',
            'ClusterRole',
            'ClusterRoleBinding',
            ...APPROVALS_KINDS,
          ].includes(o.kind),
      );
      expect(namespaced.filter((o) => o.metadata.namespace !== 'nxt-rollback-system')).toEqual([]);
      const [deployment] = ofKind(objects, 'Deployment');
      expect(deployment!.spec.replicas).toBe(2);
      const manager = deployment!.spec.template.spec.containers[0];
      const env = (name: string) => manager.env.find((e: { name: string }) => e.name === name);
      expect(env('OPERATOR_IMAGE').value).toBe(manager.image);
      expect(env('LEADER_ELECT').value).toBe('true');
      // The chart's reconcileWorkers defaults, which are the operator's own (operator/config.ts).
      expect(env('PLAN_MAX_CONCURRENT_RECONCILES').value).toBe('16');
      expect(env('MAX_CONCURRENT_RECONCILES').value).toBe('4');
      expect(env('ALLOWED_RUNNER_IMAGES').value).toBe('');
      expect(env('ALLOW_SUPERUSER_ASSERTIONS').value).toBe('false');
      expect(env('LEADER_ELECTION_NAMESPACE').valueFrom.fieldRef.fieldPath).toBe('metadata.namespace');
      expect(deployment!.spec.template.spec.securityContext.runAsUser).toBe(IMAGE_UID);

      // The kind overlay re-tags the image; OPERATOR_IMAGE must follow it.
      const kind = ofKind(await kustomize('manifests/overlays/kind'), 'Deployment')[0]!.spec.template.spec;
      expect(kind.containers[0].image).toBe('nxt-rollback-operator:dev');
      expect(kind.containers[0].env.find((e: { name: string }) => e.name === 'OPERATOR_IMAGE').value).toBe(
        'nxt-rollback-operator:dev',
      );
    });

    it('grants exactly the operator rules, with no wildcard, like the chart', async (ctx) => {
      ctx.skip(!existsSync(crdKustomization), 'crds/kustomization.yaml is not generated yet');
      const objects = await kustomize('manifests/base');
      expect(wildcardsIn(objects)).toEqual([]);
      const [clusterRole, ...more] = operatorClusterRoles(objects);
      expect(more, 'one ClusterRole for the operator').toEqual([]);
      expect(permissionsOf(clusterRole!.rules)).toEqual(OPERATOR_PERMISSIONS);
      expect(grantedIn(objects).filter((p) => NEVER_GRANTED.includes(p))).toEqual([]);
      expect(ofKind(objects.filter(isClusterIdentity), 'ClusterRole')[0]!.rules).toEqual(
        CLUSTER_IDENTITY_RULES,
      );
      const [role] = ofKind(objects, 'Role');
      expect(role!.metadata.namespace).toBe('nxt-rollback-system');
      expect(permissionsOf(role!.rules)).toEqual(LEADER_ELECTION_PERMISSIONS);
      for (const b of [...ofKind(objects, 'ClusterRoleBinding'), ...ofKind(objects, 'RoleBinding')]) {
        expect(b.subjects).toEqual([
          { kind: 'ServiceAccount', name: 'nxt-rollback-operator', namespace: 'nxt-rollback-system' },
        ]);
      }
    });

    it('applies with --dry-run=server (namespaced objects moved into a test namespace)', async (ctx) => {
      ctx.skip(!existsSync(crdKustomization), 'crds/kustomization.yaml is not generated yet');
      // nxt-rollback-system does not exist on the shared test cluster and a dry run cannot create it.
      const objects = relocate(await kustomize('manifests/base'), 'nxt-rollback-system', ns).filter(
        (o) => o.kind !== 'Namespace',
      );
      const { names, warnings } = await applyDryRun(objects, 'manifests/base');
      expect(names.length).toBe(objects.length);
      expect(warnings, 'the API server should not warn about the base').toEqual([]);
    });

    it('namespaced overlay: nothing cluster-wide but the cluster id; the watched-namespace Role grants exactly the operator rules', async (ctx) => {
      ctx.skip(!existsSync(crdKustomization), 'crds/kustomization.yaml is not generated yet');
      const operator = await kustomize('manifests/overlays/namespaced');
      expect(
        operator.filter(
          (o) =>
            ((o.kind === 'ClusterRole' && !isApprovals(o)) || o.kind === 'ClusterRoleBinding') &&
            !isClusterIdentity(o),
        ),
        'the namespaced overlay must not grant the operator anything cluster-wide (the approver roles bind nobody)',
      ).toEqual([]);
      expect(ofKind(operator.filter(isClusterIdentity), 'ClusterRole')[0]!.rules).toEqual(
        CLUSTER_IDENTITY_RULES,
      );
      expect(ofKind(operator, 'Role').map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).toEqual([
        'nxt-rollback-system/nxt-rollback-operator-leader-election',
      ]);
      const env = ofKind(operator, 'Deployment')[0]!.spec.template.spec.containers[0].env;
      expect(env.find((e: { name: string }) => e.name === 'WATCH_NAMESPACES').value).not.toBe('');

      const perNamespace = await kustomize('manifests/overlays/namespaced/watched-namespace');
      expect(perNamespace.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
        'Role/nxt-rollback-operator',
        'RoleBinding/nxt-rollback-operator',
        'ServiceAccount/nxt-backup-runner',
      ]);
      expect(wildcardsIn(perNamespace)).toEqual([]);
      expect(permissionsOf(ofKind(perNamespace, 'Role')[0]!.rules)).toEqual(OPERATOR_PERMISSIONS);
      expect(ofKind(perNamespace, 'RoleBinding')[0]!.subjects).toEqual([
        { kind: 'ServiceAccount', name: 'nxt-rollback-operator', namespace: 'nxt-rollback-system' },
      ]);
      // `kubectl apply -n <watched> -k ...`: nothing in it names a namespace of its own.
      expect(perNamespace.filter((o) => o.metadata.namespace)).toEqual([]);
      const { names, warnings } = await applyDryRun(perNamespace, 'watched-namespace', ['-n', watched[0]!]);
      expect(names.length).toBe(perNamespace.length);
      expect(warnings).toEqual([]);
    });
  });

  describe('kustomize component gitops-owners-flux', () => {
    it('binds the generated gitops-owners ClusterRole in flux-system only and sets GITOPS_OWNER_NAMESPACES', async (ctx) => {
      ctx.skip(
        !existsSync(join(REPO, 'crds', 'kustomization.yaml')),
        'crds/kustomization.yaml is not generated yet',
      );
      // An overlay as docs/install.md shows it: the base plus the component.
      const dir = mkdtempSync(join(tmpdir(), 'nxt-gitops-overlay-'));
      try {
        const manifests = relative(dir, join(REPO, 'manifests'));
        writeFileSync(
          join(dir, 'kustomization.yaml'),
          stringify({
            apiVersion: 'kustomize.config.k8s.io/v1beta1',
            kind: 'Kustomization',
            resources: [`${manifests}/base`],
            components: [`${manifests}/components/gitops-owners-flux`],
          }),
        );
        const r = await kube(['kustomize', dir]);
        expect(r.code, `kubectl kustomize should render the overlay:\n${r.stderr}`).toBe(0);
        const objects = parseObjects(r.stdout);
        const owners = objects.filter(isGitopsOwners);
        expect(
          owners.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`).sort(),
        ).toEqual([
          'ClusterRole//nxt-rollback-operator-gitops-owners',
          'RoleBinding/flux-system/nxt-rollback-operator-gitops-owners',
        ]);
        expect(permissionsOf(ofKind(owners, 'ClusterRole')[0]!.rules)).toEqual(GITOPS_OWNER_PERMISSIONS);
        expect(ofKind(owners, 'RoleBinding')[0]!.subjects).toEqual([
          { kind: 'ServiceAccount', name: 'nxt-rollback-operator', namespace: 'nxt-rollback-system' },
        ]);
        // The chart renders the same rules (the same generated source).
        const chartRole = ofKind(
          (await helmTemplate(ns, 'gitops.ownerNamespaces={flux-system}')).filter(isGitopsOwners),
          'ClusterRole',
        )[0]!;
        expect(chartRole.rules).toEqual(ofKind(owners, 'ClusterRole')[0]!.rules);
        const env = ofKind(objects, 'Deployment')[0]!.spec.template.spec.containers[0].env;
        expect(env.find((e: { name: string }) => e.name === 'GITOPS_OWNER_NAMESPACES')?.value).toBe(
          'flux-system',
        );
        expect(wildcardsIn(objects)).toEqual([]);
        // The base alone binds nothing of it.
        expect((await kustomize('manifests/base')).filter(isGitopsOwners)).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('Pod Security', () => {
    it('every Deployment pod template passes the restricted level', async () => {
      const deployments = [
        ...ofKind(await helmTemplate(ns), 'Deployment'),
        ...ofKind(await helmTemplate(ns, `watchNamespaces={${watched.join(',')}}`), 'Deployment'),
      ];
      if (existsSync(join(REPO, 'crds', 'kustomization.yaml'))) {
        deployments.push(...ofKind(await kustomize('manifests/base'), 'Deployment'));
        deployments.push(...ofKind(await kustomize('manifests/overlays/kind'), 'Deployment'));
      }
      for (const d of deployments) {
        const verdict = await podSecurityVerdict(d);
        expect(verdict.deployment.code, verdict.deployment.stderr).toBe(0);
        expect(warningsOf(verdict.deployment.stderr), `Deployment ${d.metadata.name}`).toEqual([]);
        expect(
          verdict.pod.code,
          `a Pod from ${d.metadata.name}'s template was rejected:\n${verdict.pod.stderr}`,
        ).toBe(0);
      }
    });

    it('(control) the same check catches a pod template that is not restricted', async () => {
      const [deployment] = ofKind(await helmTemplate(ns), 'Deployment');
      const loose = structuredClone(deployment!);
      delete loose.spec.template.spec.securityContext;
      delete loose.spec.template.spec.containers[0].securityContext;
      const verdict = await podSecurityVerdict(loose);
      expect(warningsOf(verdict.deployment.stderr).join('\n')).toMatch(
        /would violate PodSecurity "restricted/,
      );
      expect(verdict.pod.code).not.toBe(0);
      expect(verdict.pod.stderr).toMatch(/violates PodSecurity "restricted/);
    });

    it('the Alertmanager receiver (chart alertReceiver.*, kustomize component): Service, env, token mount, restricted', async () => {
      const refused = await helm(
        'template',
        RELEASE,
        CHART,
        '--kube-version',
        kubeVersion,
        '--set',
        'alertReceiver.enabled=true',
      );
      expect(refused.code, 'enabled without a token Secret is refused').not.toBe(0);
      expect(refused.stderr).toContain('alertReceiver.enabled needs alertReceiver.tokenSecret.name');
      const chart = await helmTemplate(
        ns,
        'alertReceiver.enabled=true',
        'alertReceiver.tokenSecret.name=am-token',
        'alertReceiver.tlsSecret.name=am-tls',
      );
      const overlay = mkdtempSync(join(tmpdir(), 'nxt-kustomize-'));
      try {
        writeFileSync(
          join(overlay, 'kustomization.yaml'),
          stringify({
            apiVersion: 'kustomize.config.k8s.io/v1beta1',
            kind: 'Kustomization',
            resources: [relative(overlay, join(REPO, 'manifests/base'))],
            components: [relative(overlay, join(REPO, 'manifests/components/alert-receiver'))],
          }),
        );
        const r = await kube(['kustomize', overlay]);
        expect(r.code, r.stderr).toBe(0);
        const kustomized = parseObjects(r.stdout);
        for (const [what, objects, tokenSecret] of [
          ['chart', chart, 'am-token'],
          ['kustomize', kustomized, 'nxt-rollback-alert-receiver-token'],
        ] as const) {
          const svc = ofKind(objects, 'Service').find((o) => o.metadata.name.endsWith('-alerts'));
          expect(svc?.spec.ports, what).toEqual([
            { name: 'alerts', port: 9095, targetPort: 'alerts', protocol: 'TCP' },
          ]);
          const d = ofKind(objects, 'Deployment')[0]!;
          const c = d.spec.template.spec.containers[0];
          const env = Object.fromEntries(
            c.env.map((e: { name: string; value?: string }) => [e.name, e.value]),
          );
          expect(env.ALERT_RECEIVER_ADDR, what).toBe(':9095');
          expect(env.ALERT_RECEIVER_TOKEN_FILE, what).toBe('/etc/nxt-rollback/alert-receiver-token/token');
          expect(
            c.ports.map((p: { name: string }) => p.name),
            what,
          ).toContain('alerts');
          const vol = d.spec.template.spec.volumes.find(
            (v: { name: string }) => v.name === 'alert-receiver-token',
          );
          expect(vol.secret.secretName, what).toBe(tokenSecret);
          const verdict = await podSecurityVerdict(d);
          expect(warningsOf(verdict.deployment.stderr), what).toEqual([]);
          expect(verdict.pod.code, `${what}: ${verdict.pod.stderr}`).toBe(0);
        }
        const chartEnv = ofKind(chart, 'Deployment')[0]!.spec.template.spec.containers[0].env;
        expect(chartEnv.find((e: { name: string }) => e.name === 'ALERT_RECEIVER_TLS_CERT_FILE')?.value).toBe(
          '/etc/nxt-rollback/alert-receiver-tls/tls.crt',
        );
      } finally {
        rmSync(overlay, { recursive: true, force: true });
      }
    });
  });

  describe('approvals (manifests/approvals, chart approvals.*)', () => {
    it('the chart renders the same policy, binding and approver roles as manifests/approvals, behind its values', async () => {
      const shipped = await kustomize('manifests/approvals');
      expect(shipped.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
        [
          'ValidatingAdmissionPolicy/nxt-rollback-approvals',
          'ValidatingAdmissionPolicyBinding/nxt-rollback-approvals',
          ...Object.keys(APPROVER_ROLES).map((r) => `ClusterRole/${r}`),
        ].sort(),
      );
      const chart = (await helmTemplate(ns)).filter(isApprovals);
      expect(chart.map(approvalsContent), 'chart templates/approvals.yaml = manifests/approvals').toEqual(
        expect.arrayContaining(shipped.map(approvalsContent)),
      );
      expect(chart.length).toBe(shipped.length);
      // The base installs them too (cluster-wide install), so kustomize users are protected by default.
      const base = (await kustomize('manifests/base')).filter(isApprovals);
      expect(base.map(approvalsContent)).toEqual(expect.arrayContaining(shipped.map(approvalsContent)));

      const noPolicy = await helmTemplate(ns, 'approvals.policy.enabled=false');
      expect(noPolicy.filter((o) => APPROVALS_KINDS.includes(o.kind))).toEqual([]);
      expect(noPolicy.filter(isApprovals).length, 'the roles stay').toBe(3);
      const noRoles = await helmTemplate(ns, 'approvals.roles.create=false');
      expect(
        noRoles
          .filter(isApprovals)
          .map((o) => o.kind)
          .sort(),
      ).toEqual(APPROVALS_KINDS);
    });

    it('the approver roles follow the decision matrix, with no wildcard and nothing but plans and severities', async () => {
      const roles = (await kustomize('manifests/approvals')).filter((o) => o.kind === 'ClusterRole');
      expect(wildcardsIn(roles)).toEqual([]);
      for (const role of roles) {
        const severities = APPROVER_ROLES[role.metadata.name]!;
        expect(role.rules, `ClusterRole ${role.metadata.name}`).toEqual([
          {
            apiGroups: ['rollback.nxtnewday.io'],
            resources: ['rollbackplans'],
            verbs: ['get', 'list', 'watch', 'patch'],
          },
          {
            apiGroups: ['rollback.nxtnewday.io'],
            resources: ['severities'],
            resourceNames: severities,
            verbs: ['approve', 'veto'],
          },
        ]);
      }
      // The operator itself may neither approve nor veto: no such verb in its rules.
      expect(OPERATOR_PERMISSIONS.filter((p) => /severities|:approve|:veto/.test(p))).toEqual([]);
    });
  });

  describe('samples', () => {
    it('every sample is commented and the kustomization lists them all', () => {
      const dir = join(REPO, 'manifests', 'samples');
      const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
      expect(files.filter((f) => f.startsWith('rollbackplan-')).length).toBe(5);
      expect(files.filter((f) => f.startsWith('backupschedule-')).length).toBe(2);
      for (const f of files)
        expect(readFileSync(join(dir, f), 'utf8'), `${f} starts with a comment`).toMatch(/^# /);
      const listed = parseObjects(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]!
        .resources as string[];
      expect(listed.filter((r) => r.endsWith('.yaml')).sort()).toEqual(files.sort());
    });

    it('apply with --dry-run=server against the installed CRDs', async (ctx) => {
      const crds = await kube([
        'get',
        'crd',
        'rollbackplans.rollback.nxtnewday.io',
        'backupschedules.rollback.nxtnewday.io',
      ]);
      ctx.skip(
        crds.code !== 0,
        'the CRDs are not installed (crds/ was empty when the test environment started)',
      );
      const objects = await kustomize('manifests/samples');
      const { names, warnings } = await applyDryRun(objects, 'manifests/samples', ['-n', ns]);
      expect(warnings, 'strict field validation should find no unknown or duplicate fields').toEqual([]);
      expect(names.sort()).toEqual(
        [
          'serviceaccount/nxt-backup-runner',
          'backupschedule.rollback.nxtnewday.io/billing-db',
          'backupschedule.rollback.nxtnewday.io/shop-db',
          'rollbackplan.rollback.nxtnewday.io/checkout-app',
          'rollbackplan.rollback.nxtnewday.io/checkout-app-preview',
          'rollbackplan.rollback.nxtnewday.io/checkout-emergency',
          'rollbackplan.rollback.nxtnewday.io/checkout-flags-off',
          'rollbackplan.rollback.nxtnewday.io/shop-db-restore',
        ].sort(),
      );
      const runner = ofKind(objects, 'ServiceAccount')[0]!;
      expect(runner.automountServiceAccountToken).toBe(false);
    });
  });

  describe('Dockerfile (static: no Docker engine here)', () => {
    // Continuation lines joined, comments dropped: one instruction per entry.
    const instructions = readFileSync(join(REPO, 'Dockerfile'), 'utf8')
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const stages = instructions.reduce<string[][]>((acc, line) => {
      if (/^FROM /i.test(line)) acc.push([]);
      acc.at(-1)?.push(line);
      return acc;
    }, []);

    it('builds in one stage and ships only production dependencies and dist/ on node:20-bookworm-slim', () => {
      const base = instructions.find((l) => l.startsWith('ARG NODE_IMAGE='))?.split('=')[1];
      expect(base).toBe('node:20-bookworm-slim');
      expect(stages.length).toBeGreaterThanOrEqual(2);
      for (const s of stages) expect(s[0]).toMatch(/^FROM \$\{NODE_IMAGE\}/);
      const all = stages.map((s) => s.join('\n'));
      expect(all.some((s) => /npm ci\b(?!.*--omit=dev)/.test(s) && s.includes('npm run build'))).toBe(true);
      const runtime = all.at(-1)!;
      expect(runtime).not.toMatch(/npm (ci|install)/);
      expect(all.some((s) => s.includes('npm ci --omit=dev'))).toBe(true);
      expect(runtime).toMatch(/COPY .*--from=build \/src\/dist /);
    });

    it('bundles the entry point in the build stage: npm run build runs hack/bundle.ts, which the context carries', () => {
      const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      };
      expect(pkg.scripts.build, 'npm run build type-checks (tsc) and bundles').toMatch(
        /^tsc -p tsconfig\.build\.json && tsx hack\/bundle\.ts$/,
      );
      const build = stages.find((s) => s.some((l) => l.includes('npm run build')))!.join('\n');
      expect(build).toMatch(/^COPY hack\/bundle\.ts /m);
      const ignore = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n');
      expect(ignore, '.dockerignore lets hack/bundle.ts into the build context').toContain('!hack/bundle.ts');
    });

    it('carries the PostgreSQL client tools and runs the bundle node dist/bundle/main.js as uid 65532 in production mode', () => {
      const runtime = stages.at(-1)!.join('\n');
      expect(runtime).toMatch(/apt-get install[^\n]*postgresql-client/);
      expect(runtime).toMatch(/^ENV NODE_ENV=production/m);
      expect(runtime).toMatch(new RegExp(`^USER ${IMAGE_UID}(:${IMAGE_UID})?$`, 'm'));
      expect(runtime).toMatch(/^ENTRYPOINT \[.*"node", "dist\/bundle\/main\.js"\]$/m);
      expect(runtime).toMatch(/^CMD \["manager"\]$/m);
      expect(
        existsSync(join(REPO, 'operator', 'main.ts')),
        'dist/bundle/main.js is bundled from operator/main.ts',
      ).toBe(true);
      const ignore = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n');
      expect(ignore[ignore.findIndex((l) => l && !l.startsWith('#'))], '.dockerignore is an allow-list').toBe(
        '*',
      );
    });
  });
});
