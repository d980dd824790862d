// The operator's permissions, verb by verb, each with the code that needs it. This table is the only place
// RBAC is written: `npm run generate` (hack/generate-rbac.ts) turns it into the kustomize ClusterRole, the
// per-namespace Role of a namespace-restricted install, the leader-election Role and the Helm chart's rules.
// A verb without a caller does not belong here; test/integration/operator-rbac.test.ts records every request
// of a real operator process and fails on a granted verb it never saw.

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'patch' | 'update' | 'delete';
const VERB_ORDER: Verb[] = ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'];

/**
 * Why a verb is granted: a request the operator makes (`code` names the file that makes it), or a check an
 * admission plugin makes on the operator's behalf without a request of its own.
 */
export type Use =
  | {
      code: string;
      why: string;
      /** The verb of the HTTP request, when the API server authorizes it as another verb as well. */
      requestVerb?: Verb;
    }
  | { admission: string; why: string };

export interface Grant {
  /** API group; '' is the core group. */
  group: string;
  /** Plural resource name, with `/subresource` when it is one. */
  resource: string;
  /** Only these objects of the resource (rbac/v1 resourceNames); every object when unset. */
  resourceNames?: string[];
  verbs: Partial<Record<Verb, Use>>;
}

// OpenShift and hardened clusters enable this admission plugin: setting blockOwnerDeletion on an owner
// reference then needs update on the owner's finalizers subresource. No request of the operator uses it.
const OWNER_REFS = 'OwnerReferencesPermissionEnforcement';

/**
 * What the operator does in every namespace it watches: a ClusterRole when it watches all namespaces, one
 * Role per namespace in WATCH_NAMESPACES otherwise. Creating SelfSubjectAccessReviews (the pre-flight
 * permission checks) needs no grant: the built-in system:basic-user ClusterRole allows it to everyone.
 */
export const OPERATOR_GRANTS: Grant[] = [
  {
    group: 'rollback.nxtnewday.io',
    resource: 'rollbackplans',
    verbs: {
      list: { code: 'operator/rollback/controller.ts', why: 'the RollbackPlan informer' },
      watch: { code: 'operator/rollback/controller.ts', why: 'the RollbackPlan informer' },
    },
  },
  {
    group: 'rollback.nxtnewday.io',
    resource: 'rollbackplans/status',
    verbs: {
      patch: { code: 'operator/kube/status.ts', why: 'patchStatus: every status write of a plan' },
    },
  },
  {
    group: 'rollback.nxtnewday.io',
    resource: 'rollbackplans/finalizers',
    verbs: {
      update: {
        admission: OWNER_REFS,
        why: 'blockOwnerDeletion: runner Jobs are owned by their plan (rollback/runner-jobs.ts)',
      },
    },
  },
  {
    group: 'rollback.nxtnewday.io',
    resource: 'backupschedules',
    verbs: {
      list: {
        code: 'operator/backup/controller.ts',
        why: 'the BackupSchedule informer (also read by plans)',
      },
      watch: {
        code: 'operator/backup/controller.ts',
        why: 'the BackupSchedule informer (also read by plans)',
      },
    },
  },
  {
    group: 'rollback.nxtnewday.io',
    resource: 'backupschedules/status',
    verbs: {
      patch: { code: 'operator/kube/status.ts', why: 'patchStatus: every status write of a schedule' },
    },
  },
  {
    group: 'rollback.nxtnewday.io',
    resource: 'backupschedules/finalizers',
    verbs: {
      update: {
        admission: OWNER_REFS,
        why: 'blockOwnerDeletion: CronJobs and on-request Jobs (backup-now, test-restore-now) are owned by their BackupSchedule (backup/cronjob.ts)',
      },
    },
  },
  {
    group: 'apps',
    resource: 'deployments',
    verbs: {
      get: { code: 'operator/rollback/deployment-io.ts', why: 'readDeploymentHistory before an undo' },
      list: { code: 'operator/rollback/controller.ts', why: 'the Deployment informer (post-validation)' },
      watch: { code: 'operator/rollback/controller.ts', why: 'the Deployment informer (post-validation)' },
      patch: { code: 'operator/rollback/deployment-io.ts', why: 'the undo: the template patched back' },
    },
  },
  {
    group: 'apps',
    resource: 'replicasets',
    verbs: {
      list: {
        code: 'operator/rollback/deployment-io.ts',
        why: 'the revision history of a Deployment; when its current revision appeared (auto-trigger.ts: the watch window)',
      },
    },
  },
  {
    group: 'batch',
    resource: 'cronjobs',
    verbs: {
      list: { code: 'operator/backup/controller.ts', why: 'the informer of the CronJobs it owns' },
      watch: { code: 'operator/backup/controller.ts', why: 'the informer of the CronJobs it owns' },
      create: {
        code: 'operator/backup/controller.ts',
        why: 'server-side apply of a CronJob that does not exist yet is authorized as create',
        requestVerb: 'patch',
      },
      patch: {
        code: 'operator/backup/controller.ts',
        why: 'server-side apply of the backup/verify CronJobs',
      },
      delete: { code: 'operator/backup/controller.ts', why: 'the verify CronJob when verify is turned off' },
    },
  },
  {
    group: 'batch',
    resource: 'jobs',
    verbs: {
      get: {
        code: 'operator/backup/schedule-jobs.ts',
        why: 'a live re-read before recording a finished Job; a plan confirms a Job it cannot see (rollback/runner-jobs.ts)',
      },
      list: { code: 'operator/backup/controller.ts', why: 'the Job informers (both controllers)' },
      watch: { code: 'operator/backup/controller.ts', why: 'the Job informers (both controllers)' },
      create: {
        code: 'operator/rollback/runner-jobs.ts',
        why: 'verify/safety/restore Jobs of plans; backup-now and test-restore-now Jobs (backup/schedule-jobs.ts)',
      },
      patch: {
        code: 'operator/backup/schedule-jobs.ts',
        why: 'the "recorded" annotation on a finished Job; releasing a suspended restore Job (rollback/runner-jobs.ts)',
      },
      delete: {
        code: 'operator/backup/schedule-jobs.ts',
        why: 'recorded on-request Jobs beyond the newest 3 (no CronJob history limit covers them)',
      },
    },
  },
  {
    group: '',
    resource: 'pods',
    verbs: {
      list: { code: 'operator/backup/controller.ts', why: 'runner pods: termination messages (informer)' },
      watch: { code: 'operator/backup/controller.ts', why: 'runner pods: termination messages (informer)' },
    },
  },
  {
    group: '',
    resource: 'persistentvolumeclaims',
    verbs: {
      get: {
        code: 'operator/backup/controller.ts',
        why: 'checks that an existing claim (storage.persistentVolumeClaim.claimName) is there',
      },
      create: { code: 'operator/backup/controller.ts', why: 'storage.persistentVolumeClaim.create' },
    },
  },
  {
    group: '',
    resource: 'serviceaccounts',
    verbs: {
      get: {
        code: 'operator/backup/controller.ts',
        why: 'checks that podTemplate.serviceAccountName exists before starting runner pods',
      },
    },
  },
  {
    group: '',
    resource: 'configmaps',
    verbs: {
      get: { code: 'operator/rollback/feature-steps.ts', why: 'the flag ConfigMap: check, then read values' },
      patch: { code: 'operator/rollback/feature-steps.ts', why: 'feature-flag rollback' },
    },
  },
  {
    group: '',
    resource: 'secrets',
    verbs: {
      get: {
        code: 'operator/backup/controller.ts',
        why: 'the key names of the credentials Secret (its values are never read out; runner-jobs.ts too), and the URL of a notification target at send time (operator/notify/notifier.ts)',
      },
    },
  },
  {
    group: '',
    resource: 'events',
    verbs: {
      create: { code: 'operator/kube/events.ts', why: 'an Event for every decision' },
      patch: { code: 'operator/kube/events.ts', why: 'a repeated Event: count and lastTimestamp' },
    },
  },
  {
    group: 'core.openfeature.dev',
    resource: 'featureflags',
    verbs: {
      get: { code: 'operator/rollback/feature-steps.ts', why: 'the FeatureFlag: check, then read values' },
      patch: { code: 'operator/rollback/feature-steps.ts', why: 'feature-flag rollback' },
    },
  },
];

/**
 * GitOps owners (spec.gitops.policy suspend, docs/gitops.md): pause and resume Flux Kustomizations /
 * HelmReleases and Argo CD Applications, and read the revision of their Flux sources. Granted only where owners
 * live: a ClusterRole that RoleBindings bind in each namespace of GITOPS_OWNER_NAMESPACES (and in a watched
 * namespace that holds owners itself). Not in the operator's own roles: most clusters run one of the two tools.
 */
const OWNER_PATCH = {
  code: 'operator/gitops/suspend.ts',
  why: 'pause the owner before a rollback, restore it on resume',
};
const OWNER_GET = {
  code: 'operator/gitops/suspend.ts',
  why: 'pre-validation, the original value, the resume check',
};
const SOURCE_GET = {
  code: 'operator/gitops/suspend.ts',
  why: "the source's revision at the suspension and since",
};
const SOURCE_WATCH = {
  code: 'operator/gitops/source-watch.ts',
  why: "a suspended owner's source: a new revision wakes its plan",
};
export const GITOPS_OWNER_GRANTS: Grant[] = [
  {
    group: 'kustomize.toolkit.fluxcd.io',
    resource: 'kustomizations',
    verbs: { get: OWNER_GET, patch: OWNER_PATCH },
  },
  {
    group: 'helm.toolkit.fluxcd.io',
    resource: 'helmreleases',
    verbs: { get: OWNER_GET, patch: OWNER_PATCH },
  },
  {
    group: 'argoproj.io',
    resource: 'applications',
    verbs: { get: OWNER_GET, list: SOURCE_WATCH, watch: SOURCE_WATCH, patch: OWNER_PATCH },
  },
  ...['gitrepositories', 'ocirepositories', 'buckets', 'helmcharts'].map((resource) => ({
    group: 'source.toolkit.fluxcd.io',
    resource,
    verbs: { get: SOURCE_GET, list: SOURCE_WATCH, watch: SOURCE_WATCH },
  })),
];

/**
 * The cluster's id (operator/cluster-id.ts): the UID of the kube-system Namespace, recorded in S3 prefix owner
 * objects. A ClusterRole of its own in every install, the namespace-restricted one too: one object, one verb.
 */
export const CLUSTER_IDENTITY_GRANTS: Grant[] = [
  {
    group: '',
    resource: 'namespaces',
    resourceNames: ['kube-system'],
    verbs: {
      get: {
        code: 'operator/cluster-id.ts',
        why: "the cluster's id (its UID) at start-up, for S3 prefix ownership (unless CLUSTER_ID is set)",
      },
    },
  },
];

/** Leader election: a Lease in the operator's own namespace only (a Role there, in every install). */
export const LEADER_ELECTION_GRANTS: Grant[] = [
  {
    group: 'coordination.k8s.io',
    resource: 'leases',
    verbs: {
      get: { code: 'operator/kube/leader.ts', why: 'read the Lease' },
      create: { code: 'operator/kube/leader.ts', why: 'the first leader creates the Lease' },
      update: { code: 'operator/kube/leader.ts', why: 'acquire, renew and release' },
    },
  },
];

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: Verb[];
}

/** The verbs of a grant in a stable order. */
export const verbsOf = (g: Grant): Verb[] => VERB_ORDER.filter((v) => g.verbs[v] !== undefined);

/** One rbac/v1 PolicyRule per grant: a rule per resource keeps each verb next to its reason. */
export const toPolicyRules = (grants: Grant[]): PolicyRule[] =>
  grants.map((g) => ({
    apiGroups: [g.group],
    resources: [g.resource],
    ...(g.resourceNames ? { resourceNames: g.resourceNames } : {}),
    verbs: verbsOf(g),
  }));

/** `group/resource:verb` strings (`core` for ''), sorted: what a list of grants or rules allows. */
export function permissionsOf(
  rules: Array<{ apiGroups?: string[]; resources?: string[]; verbs: string[] }>,
): string[] {
  const out = new Set<string>();
  for (const r of rules)
    for (const g of r.apiGroups ?? [])
      for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${g || 'core'}/${res}:${v}`);
  return [...out].sort();
}

/** Permissions that an admission plugin checks and no request of the operator ever uses. */
export function admissionOnlyPermissions(grants: Grant[]): string[] {
  const out: string[] = [];
  for (const g of grants)
    for (const v of verbsOf(g))
      if ('admission' in g.verbs[v]!) out.push(`${g.group || 'core'}/${g.resource}:${v}`);
  return out.sort();
}

/**
 * For every permission a request uses: the request that proves it (`group/resource:verb` of the HTTP
 * request, which differs for a server-side apply that creates). Admission-only permissions are left out.
 */
export function requestProofs(grants: Grant[]): { permission: string; request: string }[] {
  const out: { permission: string; request: string }[] = [];
  for (const g of grants)
    for (const v of verbsOf(g)) {
      const use = g.verbs[v]!;
      if (!('code' in use)) continue;
      const key = `${g.group || 'core'}/${g.resource}`;
      out.push({ permission: `${key}:${v}`, request: `${key}:${use.requestVerb ?? v}` });
    }
  return out;
}
