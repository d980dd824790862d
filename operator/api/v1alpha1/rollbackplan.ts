import * as z from 'zod';
import {
  API_VERSION,
  Annotation,
  BackupId,
  ConditionType,
  Conditions,
  DNS1123_LABEL,
  DURATION_PATTERN,
  dataKey,
  Duration,
  HTTPCheck,
  LocalObjectReference,
  ObjectMeta,
  Timestamp,
  conditionPath,
  defaultsAt,
  httpUrl,
  mapList,
  nameRule,
  notificationStatus,
  notifyTargets,
  objectName,
  parseDuration,
  parseWith,
  positiveDuration,
  sqlAssertions,
  withCelRules,
  type KindInfo,
  type KindReference,
  type ParseResult,
} from './common.js';

// RollbackPlan: "put production back the way it was". One plan is one run (like a Job), see the spec rule.

export const ROLLBACK_PLAN_KIND = 'RollbackPlan';
export const Scopes = ['app', 'database', 'feature', 'full'] as const;
export const Severities = ['critical', 'high', 'medium', 'low'] as const;
export const ValidationStages = ['pre', 'post'] as const;
export type Severity = (typeof Severities)[number];
/** The seed's response times per severity: the default RTO objective. */
export const SEVERITY_RTO: Record<Severity, string> = {
  critical: '2m',
  high: '5m',
  medium: '15m',
  low: '60m',
};
export const RollbackPlanPhases = [
  'Pending',
  'DryRunComplete',
  'Armed',
  'AwaitingApproval',
  'Running',
  'Succeeded',
  'Failed',
  'Expired',
  'Vetoed',
] as const;
/** Events a notification target can ask for (`notify[].events`); `Escalated` goes to targets with `after`. */
export const RollbackPlanEvents = [
  'Triggered',
  'AwaitingApproval',
  'Approved',
  'Vetoed',
  'Started',
  'Succeeded',
  'Failed',
  'Expired',
  'Escalated',
] as const;
export type RollbackPlanEvent = (typeof RollbackPlanEvents)[number];

/** A ConfigMap data key, or a FeatureFlag flag name. */
const flagKey = () => dataKey('spec.targets.featureFlags.disable[]');

const DeploymentTarget = z.object({
  name: objectName(),
  toRevision: z
    .int()
    .min(0)
    .optional()
    .meta({ description: 'Revision to go back to; 0 or absent: the previous revision (kubectl semantics).' }),
});

const BackupSelector = withCelRules(
  z.object({
    latestVerified: z
      .literal(true)
      .optional()
      .meta({ description: 'The newest backup that passed its checks.' }),
    id: BackupId.optional(),
    before: Timestamp.optional().meta({
      description: 'The newest verified backup finished before this time.',
    }),
  }),
  [
    {
      rule: '[has(self.latestVerified), has(self.id), has(self.before)].filter(x, x).size() == 1',
      message: 'spec.targets.database.backup must set exactly one of latestVerified, id or before',
      check: (b) => [b.latestVerified, b.id, b.before].filter((x) => x !== undefined).length === 1,
    },
  ],
);

const DatabaseTarget = z.object({
  backupScheduleRef: LocalObjectReference.meta({
    description: 'The BackupSchedule whose backups to restore.',
  }),
  backup: BackupSelector.optional(),
  mode: z.enum(['inPlace', 'newDatabaseSwap']).optional(),
  safetyBackup: z.boolean().optional().meta({ description: 'Back up the current state before restoring.' }),
  keepPreviousDatabases: z
    .int()
    .min(0)
    .max(10)
    .optional()
    .meta({
      description:
        'newDatabaseSwap: how many <db>_pre_<id> databases to keep after the swap, the new one included ' +
        '(default 1); older ones are dropped.',
    }),
});

const FeatureFlagsTarget = withCelRules(
  z.object({
    configMapRef: LocalObjectReference.optional(),
    featureFlagRef: LocalObjectReference.optional().meta({
      description: 'An OpenFeature FeatureFlag object.',
    }),
    disable: z.array(flagKey()).min(1).max(100).meta({ 'x-kubernetes-list-type': 'set' }),
  }),
  [
    {
      rule: 'has(self.configMapRef) || has(self.featureFlagRef)',
      message: 'spec.targets.featureFlags needs configMapRef or featureFlagRef',
      reason: 'FieldValueRequired',
      check: (f) => f.configMapRef !== undefined || f.featureFlagRef !== undefined,
    },
  ],
);

const Targets = z.object({
  deployments: mapList(DeploymentTarget, 'name', 50).optional(),
  database: DatabaseTarget.optional(),
  featureFlags: FeatureFlagsTarget.optional(),
});

const Validation = z.object({
  timeout: positiveDuration('spec.validation.timeout').optional(),
  http: z.array(HTTPCheck).max(16).optional().meta({ 'x-kubernetes-list-type': 'atomic' }),
  sql: sqlAssertions().optional(),
});

// One object with a `type` and optional fields instead of a union: a union is not a structural schema.
export const GitOpsPolicies = ['suspend', 'refuse', 'ignore'] as const;
export type GitOpsPolicy = (typeof GitOpsPolicies)[number];

export const TriggerConditionTypes = [
  'DeploymentUnavailable',
  'HTTPCheck',
  'PrometheusQuery',
  'Alert',
] as const;
export type TriggerConditionType = (typeof TriggerConditionTypes)[number];
const requiredFor = (type: string, field: 'deployment' | 'url' | 'address' | 'query' | 'matchers') => ({
  rule: `self.type != '${type}' || has(self.${field})`,
  message: `spec.trigger.conditions[].${field} is required when type is ${type}`,
  fieldPath: `.${field}`,
  reason: 'FieldValueRequired' as const,
  check: (c: { type: string } & Partial<Record<typeof field, unknown>>) =>
    c.type !== type || c[field] !== undefined,
});
/** The names conditions get when they have none (`<type lower-case>-<index>`): not allowed as explicit names. */
export const DEFAULT_CONDITION_NAME = /^(deploymentunavailable|httpcheck|prometheusquery|alert)-[0-9]+$/;
/** Alertmanager's matcher: a label name, an operator and a value (=~ and !~ are RE2, anchored, like Alertmanager). */
const AlertMatcher = z.object({
  name: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a Prometheus label name'),
  op: z.enum(['=', '!=', '=~', '!~']).optional().meta({ description: 'Default =.' }),
  value: z.string().max(1024),
});
export type AlertMatcher = z.infer<typeof AlertMatcher>;
const TriggerCondition = withCelRules(
  z.object({
    type: z.enum(TriggerConditionTypes),
    name: z
      .string()
      .min(1)
      .max(63)
      .regex(DNS1123_LABEL)
      .optional()
      .meta({ description: 'Names the condition in status and events; default <type>-<index>, lower-case.' }),
    deployment: objectName().optional(),
    minAvailable: z
      .int()
      .min(1)
      .optional()
      .meta({
        description:
          'DeploymentUnavailable: fire when fewer replicas than this are available (default 1: none available, ' +
          'i.e. the system is down). Never more than spec.replicas is asked for.',
      }),
    url: httpUrl().optional(),
    expectStatus: z.int().min(100).max(599).optional().meta({
      description: 'HTTPCheck: the status a healthy answer has (default: any 2xx).',
    }),
    failureThreshold: z.int().min(1).max(100).optional().meta({
      description: 'HTTPCheck: consecutive failed probes that fire the condition (default 3).',
    }),
    period: positiveDuration('spec.trigger.conditions[].period').optional().meta({
      description: 'HTTPCheck and PrometheusQuery: time between probes or queries (default 10s and 30s).',
    }),
    address: httpUrl().optional().meta({ description: 'Prometheus base URL.' }),
    query: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .meta({ description: 'PromQL returning one value (a scalar, or a vector of at most one series).' }),
    above: z.number().optional().meta({ description: 'PrometheusQuery: bad when the value is above this.' }),
    below: z.number().optional().meta({ description: 'PrometheusQuery: bad when the value is below this.' }),
    for: Duration.optional().meta({
      description:
        'How long the condition must hold before it fires (DeploymentUnavailable default 30s, PrometheusQuery default 0s).',
    }),
    matchers: z.array(AlertMatcher).min(1).max(16).optional().meta({
      description: 'Alert: a firing alert whose labels match all of these fires the plan.',
      'x-kubernetes-list-type': 'atomic',
    }),
  }),
  [
    requiredFor('DeploymentUnavailable', 'deployment'),
    requiredFor('HTTPCheck', 'url'),
    requiredFor('PrometheusQuery', 'address'),
    requiredFor('PrometheusQuery', 'query'),
    requiredFor('Alert', 'matchers'),
    {
      rule: "self.type != 'PrometheusQuery' || has(self.above) || has(self.below)",
      message: 'spec.trigger.conditions[] of type PrometheusQuery needs above or below',
      reason: 'FieldValueRequired',
      check: (c) => c.type !== 'PrometheusQuery' || c.above !== undefined || c.below !== undefined,
    },
    {
      // A default name taken explicitly would be shared by two conditions (one monitor, a duplicate key in
      // status.triggerConditions that the API server refuses).
      rule: `!has(self.name) || !self.name.matches('${DEFAULT_CONDITION_NAME.source}')`,
      message:
        'spec.trigger.conditions[].name must not look like a default name (<type lower-case>-<index>, e.g. httpcheck-0)',
      fieldPath: '.name',
      check: (c) => c.name === undefined || !DEFAULT_CONDITION_NAME.test(c.name),
    },
    {
      // Probes are cheap but many plans probe: below 1s is a load, not a faster detection.
      rule: "!has(self.period) || duration(self.period) >= duration('1s')",
      message: 'spec.trigger.conditions[].period must be at least 1s',
      fieldPath: '.period',
      check: (c) => {
        if (c.period === undefined || c.period.length > 32 || !DURATION_PATTERN.test(c.period)) return true;
        return parseDuration(c.period) >= 1000;
      },
    },
    {
      rule: "!has(self.matchers) || self.matchers.all(m, !has(m.op) || m.op == '=' || m.op == '!=' || m.value.size() <= 256)",
      message: 'spec.trigger.conditions[].matchers: a regular expression (=~, !~) is at most 256 characters',
      fieldPath: '.matchers',
      check: (c) =>
        (c.matchers ?? []).every((m) => !m.op || m.op === '=' || m.op === '!=' || m.value.length <= 256),
    },
  ],
);
export type TriggerCondition = z.infer<typeof TriggerCondition>;

const Trigger = withCelRules(
  z.object({
    mode: z.enum(['manual', 'auto', 'onRevert']).meta({
      description:
        'manual: run when applied; auto: armed, runs (at most once) when a condition holds; onRevert: a GitOps ' +
        'revert of the Deployment runs the other steps.',
    }),
    conditions: z.array(TriggerCondition).max(10).optional().meta({ 'x-kubernetes-list-type': 'atomic' }),
    confirmFor: positiveDuration('spec.trigger.confirmFor').optional().meta({
      description:
        'Severity high: after the trigger fires, wait this long for a veto (default 2m); an approval runs it at once.',
    }),
    watchWindow: positiveDuration('spec.trigger.watchWindow')
      .optional()
      .meta({
        description:
          "Stay armed this long after the targets' newest revision appeared (absent: until fired or deleted); " +
          'when it passes unfired the plan ends in phase Expired.',
      }),
  }),
  [
    {
      rule: "self.mode != 'auto' || (has(self.conditions) && size(self.conditions) > 0)",
      message: 'spec.trigger.conditions must list at least one condition when spec.trigger.mode is auto',
      fieldPath: '.conditions',
      reason: 'FieldValueRequired',
      check: (t) => t.mode !== 'auto' || (t.conditions?.length ?? 0) > 0,
    },
    {
      rule: "self.mode == 'auto' || !has(self.watchWindow)",
      message: 'spec.trigger.watchWindow applies to mode auto only',
      fieldPath: '.watchWindow',
      reason: 'FieldValueForbidden',
      check: (t) => t.mode === 'auto' || t.watchWindow === undefined,
    },
    {
      rule: '!has(self.conditions) || self.conditions.all(c, !has(c.name) || self.conditions.filter(d, has(d.name) && d.name == c.name).size() == 1)',
      message: 'spec.trigger.conditions[].name must be unique',
      fieldPath: '.conditions',
      reason: 'FieldValueDuplicate',
      check: (t) => {
        const names = (t.conditions ?? []).flatMap((c) => (c.name ? [c.name] : []));
        return new Set(names).size === names.length;
      },
    },
  ],
);

const hasDeployments = (s: { targets?: { deployments?: unknown[] } }) =>
  (s.targets?.deployments?.length ?? 0) > 0;

export const RollbackPlanSpec = withCelRules(
  z.object({
    scope: z
      .enum(Scopes)
      .meta({ description: 'What to roll back: app, database, feature or full (all given).' }),
    dryRun: z.boolean().optional().meta({ description: 'Report what would happen; change nothing.' }),
    validateOnly: z
      .enum(ValidationStages)
      .optional()
      .meta({
        description:
          "Run only the plan's checks, change nothing (like dryRun): `pre` runs the pre-validation checks against " +
          'the targets as they are now; `post` the post-validation checks against the current state (rollouts ' +
          'complete, spec.validation.http within spec.validation.timeout). Ends in DryRunComplete with ' +
          'status.dryRunReport.validation. Manual plans only; not with dryRun.',
      }),
    reason: z
      .string()
      .max(1024)
      .optional()
      .meta({ description: 'Recorded in events, status and notifications.' }),
    severity: z
      .enum(Severities)
      .optional()
      .meta({
        description:
          'The decision matrix: critical runs at once; high runs after trigger.confirmFor unless vetoed (at once ' +
          'when approved); medium and low wait for an approval. Absent: a manual plan runs at once. Also sets ' +
          'the default RTO objective (2m, 5m, 15m, 60m).',
      }),
    targets: Targets,
    validation: Validation.optional(),
    objectives: z.object({ rto: positiveDuration('spec.objectives.rto').optional() }).optional(),
    trigger: Trigger.optional(),
    gitops: z
      .object({
        policy: z.enum(GitOpsPolicies).meta({
          description:
            'What to do with a target applied from Git by Flux or Argo CD (docs/gitops.md). suspend: pause the ' +
            'owner (Flux spec.suspend, Argo CD automated sync off) before the rollback, so its next sync does ' +
            'not undo it, and resume it later; refuse: fail pre-validation, touching nothing (revert in Git ' +
            'instead); ignore: roll back anyway, with a Warning (the next sync puts the Git template back).',
        }),
        resume: z
          .enum(['onNewRevision', 'manual'])
          .optional()
          .meta({
            description:
              'suspend: when to resume the owner. onNewRevision: once its source moves to a new revision (a ' +
              'commit landed, e.g. the Git revert); manual: only on the gitops-resume annotation (or the CLI ' +
              '`nxt-rollback gitops resume`). resumeAfter applies in both cases.',
          }),
        resumeAfter: positiveDuration('spec.gitops.resumeAfter')
          .optional()
          .meta({ description: 'suspend: resume the owner this long after it was suspended at the latest.' }),
      })
      .optional()
      .meta({ description: 'GitOps owners of the target Deployments (absent: policy suspend).' }),
    notify: notifyTargets(RollbackPlanEvents).optional(),
  }),
  [
    // A plan is a record of one rollback, like a Job: what ran must stay what the spec says, and a spec
    // edited mid-run (or after) would make status and journal lie. To run again differently, create a new
    // plan. Metadata (approve/rearm annotations) and status stay writable.
    {
      rule: 'self == oldSelf',
      message: 'spec is immutable once created (like a Job); create a new RollbackPlan',
      reason: 'FieldValueForbidden',
    },
    {
      rule: "!has(self.validateOnly) || !has(self.trigger) || self.trigger.mode == 'manual'",
      message:
        'spec.validateOnly runs the checks once, now: it needs spec.trigger.mode manual (or no trigger)',
      fieldPath: '.validateOnly',
      reason: 'FieldValueForbidden',
      check: (s) => s.validateOnly === undefined || (s.trigger?.mode ?? 'manual') === 'manual',
    },
    {
      rule: '!has(self.validateOnly) || !has(self.dryRun) || !self.dryRun',
      message: 'spec.validateOnly and spec.dryRun exclude each other: use one',
      fieldPath: '.validateOnly',
      reason: 'FieldValueForbidden',
      check: (s) => s.validateOnly === undefined || s.dryRun !== true,
    },
    {
      rule: "!has(self.trigger) || self.trigger.mode != 'auto' || has(self.severity)",
      message:
        'spec.severity is required when spec.trigger.mode is auto: it decides what a firing trigger does',
      fieldPath: '.severity',
      reason: 'FieldValueRequired',
      check: (s) => s.trigger?.mode !== 'auto' || s.severity !== undefined,
    },
    {
      // A Git revert (or any re-use of an old ReplicaSet) fires it: a database restore or a flag change must
      // then go through the decision matrix, never run at once for want of a severity.
      rule: "!has(self.trigger) || self.trigger.mode != 'onRevert' || self.scope == 'app' || has(self.severity)",
      message:
        'spec.severity is required when spec.trigger.mode is onRevert and the scope is not app: it decides ' +
        'whether the database and feature-flag steps of a fired plan need an approval',
      fieldPath: '.severity',
      reason: 'FieldValueRequired',
      check: (s) => s.trigger?.mode !== 'onRevert' || s.scope === 'app' || s.severity !== undefined,
    },
    {
      rule: "!has(self.trigger) || !has(self.trigger.confirmFor) || (has(self.severity) && self.severity == 'high')",
      message: 'spec.trigger.confirmFor applies to severity high only',
      fieldPath: '.trigger.confirmFor',
      reason: 'FieldValueForbidden',
      check: (s) => s.trigger?.confirmFor === undefined || s.severity === 'high',
    },
    {
      rule: "self.scope != 'app' || (has(self.targets.deployments) && size(self.targets.deployments) > 0)",
      message: 'spec.targets.deployments must list at least one Deployment when spec.scope is app',
      fieldPath: '.targets.deployments',
      reason: 'FieldValueRequired',
      check: (s) => s.scope !== 'app' || hasDeployments(s),
    },
    {
      rule: "self.scope != 'database' || has(self.targets.database)",
      message: 'spec.targets.database is required when spec.scope is database',
      fieldPath: '.targets.database',
      reason: 'FieldValueRequired',
      check: (s) => s.scope !== 'database' || s.targets?.database !== undefined,
    },
    {
      rule: "self.scope != 'feature' || has(self.targets.featureFlags)",
      message: 'spec.targets.featureFlags is required when spec.scope is feature',
      fieldPath: '.targets.featureFlags',
      reason: 'FieldValueRequired',
      check: (s) => s.scope !== 'feature' || s.targets?.featureFlags !== undefined,
    },
    {
      rule:
        "self.scope != 'full' || (has(self.targets.deployments) && size(self.targets.deployments) > 0) || " +
        'has(self.targets.database)',
      message: 'spec.targets needs deployments or database when spec.scope is full',
      fieldPath: '.targets',
      reason: 'FieldValueRequired',
      check: (s) => s.scope !== 'full' || hasDeployments(s) || s.targets?.database !== undefined,
    },
    {
      // The assertions run in the restore Job, against the restored database: without a database step they
      // would be accepted and never run.
      rule:
        '!has(self.validation) || !has(self.validation.sql) || size(self.validation.sql) == 0 || ' +
        "self.scope == 'database' || (self.scope == 'full' && has(self.targets.database))",
      message:
        'spec.validation.sql runs in the database restore: it needs scope database, or full with spec.targets.database',
      fieldPath: '.validation.sql',
      reason: 'FieldValueForbidden',
      check: (s) =>
        !s.validation?.sql?.length ||
        s.scope === 'database' ||
        (s.scope === 'full' && s.targets?.database !== undefined),
    },
  ],
);
export type RollbackPlanSpec = z.infer<typeof RollbackPlanSpec>;

// --- status --------------------------------------------------------------------------------------------

const reasonText = () => z.string().max(1024);

/** The outcome of a spec.validateOnly plan: one entry per check, in the order they ran. */
export const ValidationReport = z.object({
  stage: z.enum(ValidationStages),
  passed: z.boolean().meta({ description: 'Every check passed (Skipped ones do not count against it).' }),
  checks: z
    .array(
      z.object({
        name: z.string().min(1).max(128),
        result: z.enum(['Passed', 'Failed', 'Skipped']),
        message: reasonText(),
      }),
    )
    .max(64)
    .meta({ 'x-kubernetes-list-type': 'atomic' }),
});
export type ValidationReport = z.infer<typeof ValidationReport>;
/** metadata.uid of an object the plan created: only that object is trusted afterwards. */
const objectUid = (description: string) => z.string().max(64).optional().meta({ description });

/** One entry of the journal a restarted operator resumes from. */
const Step = z.object({
  name: z
    .string()
    .min(1)
    .max(63)
    .regex(/^[A-Za-z][A-Za-z0-9]*$/),
  startedAt: Timestamp,
  finishedAt: Timestamp.optional(),
  result: z.enum(['Running', 'Succeeded', 'Failed', 'Skipped']),
  message: reasonText().optional(),
});

export const RollbackPlanStatus = z.object({
  phase: z.enum(RollbackPlanPhases).optional(),
  observedGeneration: z.int().min(0).optional(),
  conditions: Conditions.optional(),
  steps: mapList(Step, 'name', 32).optional(),
  deployments: mapList(
    z.object({
      name: objectName(),
      fromRevision: z.int().min(0).optional(),
      toRevision: z.int().min(0).optional(),
      replicaSet: objectName()
        .optional()
        .meta({ description: 'The ReplicaSet whose template is restored, pinned by pre-validation.' }),
      result: z.enum(['Pending', 'RolledBack', 'Skipped', 'Failed']).optional(),
      generation: z
        .int()
        .min(0)
        .optional()
        .meta({ description: 'metadata.generation of the Deployment once the rollback was in place.' }),
      observedResourceVersion: z.string().max(128).optional().meta({
        description:
          'metadata.resourceVersion of the Deployment when pre-validation decided to roll it back.',
      }),
      observedTemplateHash: z.string().max(64).optional().meta({
        description:
          'sha256 of the pod template pre-validation saw; the rollback patches only a Deployment that still has it.',
      }),
      message: reasonText().optional(),
    }),
    'name',
    50,
  ).optional(),
  database: z
    .object({
      backupScheduleRef: objectName()
        .optional()
        .meta({ description: 'The BackupSchedule the backup came from.' }),
      backupId: BackupId.optional().meta({ description: 'The backup restored (pinned at pre-validation).' }),
      backupFinishedAt: Timestamp.optional(),
      verifyJob: objectName().optional().meta({ description: 'Job that re-checked the backup before use.' }),
      verifyJobUID: objectUid('UID of the verify Job; a Job of that name with another UID is not read.'),
      safetyBackupId: BackupId.optional().meta({ description: 'Backup of the pre-restore state: the undo.' }),
      safetyBackupJob: objectName().optional(),
      safetyBackupJobUID: objectUid('UID of the safety-backup Job.'),
      safetyBackupStartedAt: Timestamp.optional().meta({
        description:
          "When the safety backup's runner started (its snapshot is taken right after): writes after it and before the restore are in neither the safety backup nor the restored database.",
      }),
      restoreJob: objectName().optional().meta({ description: 'Written before the restore Job is created.' }),
      restoreJobUID: objectUid(
        'Written before the restore Job is released; if that Job is gone the plan fails (RestoreJobLost), never restoring twice.',
      ),
      restoreJobReleased: z.boolean().optional().meta({
        description:
          'Written before the restore Job is released: it is released at most once (suspended again later, it fails the plan: RestoreJobSuspended).',
      }),
      mode: z.enum(['inPlace', 'newDatabaseSwap']).optional(),
      previousDatabase: z
        .string()
        .max(63)
        .optional()
        .meta({ description: 'newDatabaseSwap: the database as it was, kept under this name for undo.' }),
      verifiedTables: z.int().min(0).optional(),
      restoreApplied: z.boolean().optional().meta({
        description: 'True when an in-place restore committed but then failed (validation, connection).',
      }),
      restoreSeconds: z.number().min(0).optional(),
      previousDatabasesKept: z.array(z.string().max(63)).max(16).optional().meta({
        description: 'newDatabaseSwap: the <db>_pre_<id> databases kept, newest first.',
        'x-kubernetes-list-type': 'atomic',
      }),
      previousDatabasesDropped: z.array(z.string().max(63)).max(16).optional().meta({
        description: 'newDatabaseSwap: older <db>_pre_<id> databases this restore dropped.',
        'x-kubernetes-list-type': 'atomic',
      }),
    })
    .optional(),
  featureFlags: mapList(
    z.object({
      // `featureflag/` + a 253-character key
      key: z.string().min(1).max(265),
      previous: z.string().max(1024).optional().meta({ description: 'Absent: the flag did not exist.' }),
      now: z.string().max(1024).optional(),
    }),
    'key',
    100,
  ).optional(),
  gitops: z
    .object({
      policy: z
        .enum(GitOpsPolicies)
        .meta({ description: 'The policy acted on (spec.gitops.policy or its default).' }),
      owners: z
        .array(
          z.object({
            tool: z.enum(['flux', 'argocd']),
            kind: z.enum(['Kustomization', 'HelmRelease', 'Application']),
            name: objectName(),
            namespace: z.string().max(63),
            deployments: z
              .array(objectName())
              .max(50)
              .meta({ description: 'The targets it applies.', 'x-kubernetes-list-type': 'atomic' }),
            state: z
              .enum([
                'Pending',
                'Suspending',
                'Suspended',
                'AlreadySuspended',
                'Resumed',
                'LeftAsIs',
                'Refused',
                'Ignored',
              ])
              .meta({
                description:
                  'Refused / Ignored: policy refuse / ignore, not touched; Pending: to be suspended; Suspending: the original is recorded, the pause is being written; ' +
                  'Suspended: paused by this plan; AlreadySuspended: someone else had paused it (never resumed by ' +
                  'this plan); Resumed: the original was restored; LeftAsIs: changed by someone else while ' +
                  'suspended, so not restored.',
              }),
            previous: z
              .string()
              .max(8192)
              .optional()
              .meta({
                description:
                  'The original value, as JSON, restored exactly on resume: Flux spec.suspend, Argo CD ' +
                  'spec.syncPolicy (absent: the field was not set).',
              }),
            source: z.string().max(512).optional().meta({
              description:
                "The owner's source (e.g. GitRepository flux-system/app) whose revision is watched.",
            }),
            revisionAtSuspend: z.string().max(512).optional().meta({
              description:
                "The source's revision when suspended: a different one resumes (resume onNewRevision).",
            }),
            suspendedAt: Timestamp.optional(),
            resumedAt: Timestamp.optional(),
            resumedBy: z.enum(['newRevision', 'annotation', 'resumeAfter']).optional(),
            message: reasonText().optional(),
          }),
        )
        .max(10)
        .meta({ 'x-kubernetes-list-type': 'atomic' }),
      lastResumeRequest: z.string().max(253).optional().meta({
        description: 'The gitops-resume annotation value acted on (a new value acts once).',
      }),
    })
    .optional()
    .meta({ description: 'The GitOps owners of the targets and what the plan did to them (spec.gitops).' }),
  dryRunReport: z
    .looseObject({
      validation: ValidationReport.optional().meta({
        description: 'spec.validateOnly: the checks that ran against the current state, and their results.',
      }),
    })
    .optional()
    .meta({ description: 'What a run would change (free-form), or the result of spec.validateOnly.' }),
  armed: z
    .object({
      since: Timestamp.meta({
        description:
          "Start of the watch window: the targets' newest revision appeared (or the plan was armed).",
      }),
      until: Timestamp.optional().meta({ description: 'End of the watch window (absent: no window).' }),
      revisions: z
        .array(z.object({ deployment: objectName(), revision: z.int().min(0) }))
        .max(50)
        .optional()
        .meta({ description: 'The revisions being watched.', 'x-kubernetes-list-type': 'atomic' }),
    })
    .optional()
    .meta({ description: 'Automatic plans: what is being watched, and until when.' }),
  triggerConditions: mapList(
    z.object({
      name: z.string().min(1).max(63),
      type: z.enum(TriggerConditionTypes),
      state: z.enum(['Healthy', 'Pending', 'Firing', 'Unknown']).meta({
        description:
          'Healthy: not holding; Pending: holding, for not yet passed; Firing: fired; Unknown: cannot be evaluated.',
      }),
      since: Timestamp.optional().meta({ description: 'When the current state began.' }),
      observed: reasonText().optional().meta({ description: 'The last observation that changed the state.' }),
    }),
    'name',
    10,
  )
    .optional()
    .meta({ description: 'Automatic plans: the state of each trigger condition (written on changes only).' }),
  trigger: z
    .object({
      firedAt: Timestamp,
      condition: z.string().max(63).meta({ description: 'The condition that fired (its name), or Manual.' }),
      type: z.enum([...TriggerConditionTypes, 'Manual']).optional(),
      observed: reasonText().optional(),
      conditionSince: Timestamp.optional().meta({
        description: 'When the condition began to hold: firedAt minus this is the time to detect.',
      }),
    })
    .optional(),
  approval: z
    .object({
      approvedBy: z.string().max(253).optional(),
      approvedAt: Timestamp,
      reason: reasonText().optional(),
      automatic: z
        .boolean()
        .optional()
        .meta({ description: 'True when no human approved: severity critical, or high after confirmFor.' }),
    })
    .optional(),
  veto: z
    .object({ vetoedBy: z.string().max(253), vetoedAt: Timestamp, reason: reasonText().optional() })
    .optional(),
  lastRearm: z
    .object({ rearmedAt: Timestamp, annotationValue: z.string().max(253) })
    .optional()
    .meta({
      description:
        "The last rearm that armed the plan again (its time keys the new episode's notifications).",
    }),
  lastRearmRefused: z
    .object({ refusedAt: Timestamp, annotationValue: z.string().max(253) })
    .optional()
    .meta({
      description:
        'The last rearm refused (approved-by or vetoed-by still set), so the same value does not ask again.',
    }),
  review: z
    .object({ unnecessary: z.boolean(), markedAt: Timestamp, reason: reasonText().optional() })
    .optional()
    .meta({ description: 'Marked afterwards as an unnecessary rollback (a false positive).' }),
  notifications: notificationStatus(RollbackPlanEvents).optional(),
  recoverySeconds: z.number().min(0).optional().meta({
    description:
      'Time to recover: from the trigger firing (or the start) to the end, approval wait included.',
  }),
  startedAt: Timestamp.optional(),
  completedAt: Timestamp.optional(),
  durationSeconds: z
    .number()
    .min(0)
    .optional()
    .meta({ description: 'Measured recovery time (RTO), to 0.01 s.' }),
});
export type RollbackPlanStatus = z.infer<typeof RollbackPlanStatus>;

// `<name>-restore`, `-safety` and `-verify` Jobs: 55 + 8 = 63.
export const RollbackPlan = withCelRules(
  z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(ROLLBACK_PLAN_KIND),
    metadata: ObjectMeta,
    spec: RollbackPlanSpec,
    status: RollbackPlanStatus.optional(),
  }),
  [nameRule(ROLLBACK_PLAN_KIND, 55)],
);
export type RollbackPlan = z.infer<typeof RollbackPlan>;

/** Validates an object read from the API server; problems name their path (`spec.targets...`). */
export const parseRollbackPlan = (obj: unknown): ParseResult<RollbackPlan> => parseWith(RollbackPlan, obj);

// --- runtime defaults ----------------------------------------------------------------------------------
// Not in the schema: a schema default is written into the stored object and shows up as drift in GitOps.

export const ROLLBACK_PLAN_DEFAULTS = {
  dryRun: false,
  validationTimeout: '5m',
  rto: '10m',
  backup: { latestVerified: true },
  mode: 'inPlace',
  safetyBackup: true,
  keepPreviousDatabases: 1,
  trigger: { mode: 'manual' },
  gitops: { policy: 'suspend', resume: 'onNewRevision' },
} as const;

type DatabaseTarget = NonNullable<RollbackPlanSpec['targets']['database']>;
export type EffectiveDatabaseTarget = DatabaseTarget &
  Required<Pick<DatabaseTarget, 'backup' | 'mode' | 'safetyBackup' | 'keepPreviousDatabases'>>;
/** A spec with every runtime default filled in: what the controller acts on. */
export type EffectiveRollbackPlanSpec = Omit<
  RollbackPlanSpec,
  'dryRun' | 'targets' | 'validation' | 'objectives' | 'trigger' | 'gitops'
> & {
  dryRun: boolean;
  targets: Omit<RollbackPlanSpec['targets'], 'database'> & { database?: EffectiveDatabaseTarget };
  validation: NonNullable<RollbackPlanSpec['validation']> & { timeout: string };
  objectives: { rto: string };
  trigger: NonNullable<RollbackPlanSpec['trigger']>;
  gitops: NonNullable<RollbackPlanSpec['gitops']> & { resume: 'onNewRevision' | 'manual' };
};

/** Fills in the runtime defaults; pure (the input is not modified). */
export function withRollbackPlanDefaults(spec: RollbackPlanSpec): EffectiveRollbackPlanSpec {
  const d = ROLLBACK_PLAN_DEFAULTS;
  const db = spec.targets.database;
  const { database: _db, ...rest } = spec.targets;
  const targets: EffectiveRollbackPlanSpec['targets'] = { ...rest };
  if (db) {
    targets.database = {
      ...db,
      backup: db.backup ?? { ...d.backup },
      mode: db.mode ?? d.mode,
      safetyBackup: db.safetyBackup ?? d.safetyBackup,
      keepPreviousDatabases: db.keepPreviousDatabases ?? d.keepPreviousDatabases,
    };
  }
  return {
    ...spec,
    dryRun: spec.dryRun ?? d.dryRun,
    targets,
    validation: { ...spec.validation, timeout: spec.validation?.timeout ?? d.validationTimeout },
    // The severity's response time is the default objective; without a severity, the old default.
    objectives: {
      ...spec.objectives,
      rto: spec.objectives?.rto ?? (spec.severity ? SEVERITY_RTO[spec.severity] : d.rto),
    },
    trigger: spec.trigger ?? { ...d.trigger },
    gitops: {
      ...spec.gitops,
      policy: spec.gitops?.policy ?? d.gitops.policy,
      resume: spec.gitops?.resume ?? d.gitops.resume,
    },
  };
}

/** Where each ROLLBACK_PLAN_DEFAULTS value applies: the API reference shows it at that field. */
export const ROLLBACK_PLAN_DEFAULT_PATHS = {
  dryRun: 'spec.dryRun',
  validationTimeout: 'spec.validation.timeout',
  rto: 'spec.objectives.rto',
  backup: 'spec.targets.database.backup',
  mode: 'spec.targets.database.mode',
  safetyBackup: 'spec.targets.database.safetyBackup',
  keepPreviousDatabases: 'spec.targets.database.keepPreviousDatabases',
  trigger: 'spec.trigger',
  gitops: 'spec.gitops',
} as const satisfies Record<keyof typeof ROLLBACK_PLAN_DEFAULTS, string>;

const severityRto = Object.entries(SEVERITY_RTO)
  .map(([s, rto]) => `${s} \`${rto}\``)
  .join(', ');

/** The API reference's view of a RollbackPlan beyond the schema (docs/api-reference.md). */
export const ROLLBACK_PLAN_REFERENCE: KindReference = {
  guide: 'rollbackplan.md',
  defaults: {
    ...defaultsAt(ROLLBACK_PLAN_DEFAULTS, ROLLBACK_PLAN_DEFAULT_PATHS),
    'spec.objectives.rto': `by spec.severity: ${severityRto}; without a severity \`${ROLLBACK_PLAN_DEFAULTS.rto}\``,
    // Defaults applied where the field is used (operator/rollback, operator/triggers), as the descriptions say.
    'spec.validation.http[].retries': '`2`',
    'spec.validation.http[].period': '`2s`',
    'spec.trigger.confirmFor': '`2m`',
    'spec.trigger.conditions[].name': '`<type, lower-case>-<index>`, e.g. `httpcheck-0`',
    'spec.trigger.conditions[].minAvailable': '`1`',
    'spec.trigger.conditions[].expectStatus': 'any 2xx',
    'spec.trigger.conditions[].failureThreshold': '`3`',
    'spec.trigger.conditions[].period': 'HTTPCheck `10s`, PrometheusQuery `30s`',
    'spec.trigger.conditions[].for': 'DeploymentUnavailable `30s`, PrometheusQuery `0s`',
    'spec.trigger.conditions[].matchers[].op': '`=`',
  },
  conditions: {
    [ConditionType.Ready]:
      'kstatus: True once the plan is settled (armed and watching, succeeded, dry run done, expired, vetoed); ' +
      'False while it runs or waits for an approval, and on failure (the reason names it).',
    [ConditionType.Reconciling]:
      'kstatus: True while the plan works towards its end (the reason names the current step); False once settled.',
    [ConditionType.Stalled]:
      'kstatus: True when the plan failed or its spec is invalid: it will not get further by itself.',
    [ConditionType.PreValidationPassed]:
      'Every pre-validation check passed; False with the reason of the first failure.',
    [ConditionType.GitOpsSuspended]:
      'True while the plan holds a Flux / Argo CD owner of its targets paused (spec.gitops.policy suspend); the ' +
      'message names the Git revert still needed. False with reason Resumed once all are resumed, or PolicyIgnore.',
    [ConditionType.AwaitingApproval]:
      'True while the plan waits for an approval, or for trigger.confirmFor to pass without a veto.',
    [ConditionType.TriggerHealthy]:
      'Automatic plans: True while every trigger condition can be evaluated (False names the one that cannot).',
    [ConditionType.Triggered]:
      'Automatic plans: True once a trigger condition fired (status.trigger says which).',
    [ConditionType.NotificationsDelivered]:
      'True while every notification due was delivered; False names the target that failed.',
    [ConditionType.SafetyBackupTaken]:
      'The pre-restore safety backup was taken (False, reason SafetyBackupSkipped, when safetyBackup is false).',
    [ConditionType.DatabaseRestored]: 'The database was restored from the selected backup.',
    [ConditionType.RolledBack]: 'The Deployments were rolled back.',
    [ConditionType.FlagsDisabled]: 'The feature flags were switched off.',
    [ConditionType.PostValidationPassed]:
      'The rollouts completed and the HTTP checks passed after the rollback.',
    [ConditionType.RTOMet]:
      'Set on success: True (WithinObjective) or False (ObjectiveMissed), recoverySeconds against the RTO objective.',
    [ConditionType.Succeeded]: 'True when the plan succeeded; False with the failure reason when it failed.',
  },
  phases: {
    Pending: 'Accepted; nothing has started yet.',
    DryRunComplete: 'A dry run finished (terminal); status.dryRunReport says what a run would change.',
    Armed: 'An automatic plan watches its trigger conditions (status.armed, status.triggerConditions).',
    AwaitingApproval: 'The plan waits for an approval, or for trigger.confirmFor to pass without a veto.',
    Running: 'The steps are running (status.steps is the journal).',
    Succeeded: 'Every step succeeded (terminal).',
    Failed: 'A step failed (terminal); the Ready and Succeeded conditions name the reason.',
    Expired:
      'The watch window passed without a trigger firing; nothing ran (terminal; the rearm annotation re-arms).',
    Vetoed: 'Vetoed before anything ran (terminal; the rearm annotation re-arms).',
  } satisfies Record<(typeof RollbackPlanPhases)[number], string>,
  annotations: {
    [Annotation.ApprovedBy]:
      'Approves the plan: the value is your username, admitted only from you and only with the verb approve on ' +
      'severities.rollback.nxtnewday.io/<severity>.',
    [Annotation.ApprovalReason]: 'Why it was approved (optional; recorded in status and notifications).',
    [Annotation.VetoedBy]:
      'Vetoes the plan (same rules, verb veto). A veto before execution wins; the plan ends in phase Vetoed.',
    [Annotation.VetoReason]: 'Why it was vetoed (optional).',
    [Annotation.Rearm]:
      'Arms an automatic plan again that expired or was vetoed (nothing ran). A new value acts once (status.lastRearm).',
    [Annotation.GitOpsResume]:
      'Resumes the GitOps owners this plan suspended (spec.gitops.policy suspend), restoring what was there ' +
      'before. A new value acts once (status.gitops.lastResumeRequest). The CLI: nxt-rollback gitops resume.',
    [Annotation.Unnecessary]:
      'Marks a finished plan as an unnecessary rollback (a false positive); the value is the reason (status.review).',
  },
  events: {
    Triggered: 'A trigger condition fired.',
    AwaitingApproval: 'The plan waits for an approval (or for confirmFor to pass without a veto).',
    Approved:
      'The plan was approved, by a person or automatically (severity critical, or high after confirmFor).',
    Vetoed: 'The plan was vetoed; nothing ran.',
    Started: 'The steps started.',
    Succeeded: 'The plan succeeded.',
    Failed: 'The plan failed.',
    Expired: 'The watch window passed without a trigger firing.',
    Escalated:
      'Sent once to targets with after, when the plan is still not finished that long after it was triggered (or started).',
  } satisfies Record<RollbackPlanEvent, string>,
};

// --- CRD -----------------------------------------------------------------------------------------------

export const ROLLBACK_PLAN_INFO: KindInfo = {
  kind: ROLLBACK_PLAN_KIND,
  listKind: 'RollbackPlanList',
  plural: 'rollbackplans',
  singular: 'rollbackplan',
  shortNames: ['rbp'],
  categories: ['nxt'],
  schema: RollbackPlan,
  printerColumns: [
    { name: 'Scope', type: 'string', jsonPath: '.spec.scope' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Ready', type: 'string', jsonPath: conditionPath(ConditionType.Ready, 'status') },
    { name: 'Reason', type: 'string', jsonPath: conditionPath(ConditionType.Ready, 'reason') },
    {
      name: 'Duration',
      type: 'number',
      jsonPath: '.status.durationSeconds',
      description: 'Seconds the run took.',
    },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
