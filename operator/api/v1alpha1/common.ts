import * as z from 'zod';

// Schemas and names shared by RollbackPlan and BackupSchedule. These zod schemas are the single source of
// truth: hack/generate-crds.ts turns them into the CRDs, and the controllers parse objects with them.
// Rules for writing them (the CRD generator enforces the first three):
// - no `.default()`: a schema default is written into the stored object, so GitOps tools see drift; defaults
//   are applied at runtime by the with*Defaults functions instead;
// - no unions except integer|string (quantities): a union is not a structural schema. Alternatives are one
//   object with optional fields plus a CEL rule ("exactly one of");
// - one `.regex()` per string: several become `allOf`, which is not structural;
// - every string and list is bounded (maxLength/maxItems): the API server estimates the worst-case cost of
//   each CEL rule from these bounds and rejects the CRD when it exceeds the budget.

export const GROUP = 'rollback.nxtnewday.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}` as const;

/** Condition types the operator sets (status.conditions[].type). */
export const ConditionType = {
  // every kind (kstatus conventions)
  Ready: 'Ready',
  Reconciling: 'Reconciling',
  Stalled: 'Stalled',
  // RollbackPlan: one per step, so `kubectl wait --for=condition=...` works for each stage
  PreValidationPassed: 'PreValidationPassed',
  GitOpsSuspended: 'GitOpsSuspended',
  AwaitingApproval: 'AwaitingApproval',
  /** Automatic plans: True while every trigger condition can be evaluated (a Prometheus that cannot answer is False). */
  TriggerHealthy: 'TriggerHealthy',
  /** Automatic plans: True once a trigger condition fired. */
  Triggered: 'Triggered',
  /** True while every notification due was delivered; False names the target that failed. */
  NotificationsDelivered: 'NotificationsDelivered',
  SafetyBackupTaken: 'SafetyBackupTaken',
  DatabaseRestored: 'DatabaseRestored',
  RolledBack: 'RolledBack',
  FlagsDisabled: 'FlagsDisabled',
  PostValidationPassed: 'PostValidationPassed',
  RTOMet: 'RTOMet',
  Succeeded: 'Succeeded',
  // BackupSchedule
  LastBackupSucceeded: 'LastBackupSucceeded',
  RPOMet: 'RPOMet',
  LastTestRestoreSucceeded: 'LastTestRestoreSucceeded',
} as const;
export type ConditionTypeName = (typeof ConditionType)[keyof typeof ConditionType];

/** Annotations users set to ask for a one-off action; a new value means a new request. */
export const Annotation = {
  /** On a BackupSchedule: take a backup now. */
  BackupNow: `${GROUP}/backup-now`,
  /**
   * On a BackupSchedule: test-restore one backup now (verify it, restore it into a scratch database, run
   * spec.verify.sql, drop the scratch database). The value is `latest` or a backup id, optionally followed by
   * `@<anything>` to ask again for the same backup; a new value acts once (status.lastTestRestoreNow), and the
   * result is recorded like a scheduled test restore (status.lastTestRestore).
   */
  TestRestoreNow: `${GROUP}/test-restore-now`,
  /**
   * On a RollbackPlan: the user who approves it (their username; the ValidatingAdmissionPolicy shipped with the
   * operator admits the change only from that user, and only with the verb `approve` on
   * `severities.rollback.nxtnewday.io/<severity>`).
   */
  ApprovedBy: `${GROUP}/approved-by`,
  /** Why it was approved (optional; recorded in status and notifications). */
  ApprovalReason: `${GROUP}/approval-reason`,
  /** On a RollbackPlan: the user who vetoes it (same rules, verb `veto`). A veto before execution wins. */
  VetoedBy: `${GROUP}/vetoed-by`,
  /** Why it was vetoed (optional). */
  VetoReason: `${GROUP}/veto-reason`,
  /** On an automatic RollbackPlan that expired or was vetoed (nothing ran): arm it again. A new value acts once. */
  Rearm: `${GROUP}/rearm`,
  /** On a RollbackPlan: resume the GitOps owners it suspended (spec.gitops.policy suspend). A new value acts once. */
  GitOpsResume: `${GROUP}/gitops-resume`,
  /** On a finished RollbackPlan: this rollback was not needed (a false positive); the value is the reason. */
  Unnecessary: `${GROUP}/unnecessary`,
} as const;

/** Labels the operator puts on every object it creates, so children can be listed per parent. */
export const Label = {
  ManagedBy: 'app.kubernetes.io/managed-by',
  Plan: `${GROUP}/plan`,
  BackupSchedule: `${GROUP}/backup-schedule`,
} as const;
/** Value of the app.kubernetes.io/managed-by label on children. */
export const MANAGED_BY = 'nxt-rollback-operator';

// --- strings -------------------------------------------------------------------------------------------

/** RFC 1123 subdomain: the names of Deployments, ConfigMaps, Secrets and custom objects. */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** RFC 1123 label: used for names inside our own lists (checks, notification targets). */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const objectName = () =>
  z.string().min(1).max(253).regex(DNS1123_SUBDOMAIN, 'must be a lowercase RFC 1123 name (a-z, 0-9, -, .)');

/** A date-time as Kubernetes writes it (RFC 3339); an offset is accepted so users can write local times. */
export const Timestamp = z.iso.datetime({ offset: true }).max(64);

/**
 * Go-style duration (time.ParseDuration / metav1.Duration), restricted to unsigned values with the units
 * h, m, s and ms (`0s` included: see positiveDuration): `30s`, `5m`, `1h30m`, `1.5h`. One regex, because several become a non-structural allOf.
 */
export const DURATION_PATTERN = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
export const Duration = z
  .string()
  .max(32)
  .regex(DURATION_PATTERN, 'must be a duration such as 30s, 5m or 1h30m (units h, m, s, ms)')
  .meta({ description: 'A duration such as 30s, 5m or 1h30m (units h, m, s, ms).' });

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

/** Milliseconds in a Duration string (`1h30m` → 5_400_000). Throws on a string the schema would reject. */
export function parseDuration(s: string): number {
  if (s.length > 32 || !DURATION_PATTERN.test(s)) {
    throw new Error(`invalid duration "${s}": expected e.g. 30s, 5m or 1h30m (units h, m, s, ms)`);
  }
  let ms = 0;
  for (const [, num, , unit] of s.matchAll(/([0-9]+(\.[0-9]+)?)(ms|s|m|h)/g)) {
    ms += Number(num) * UNIT_MS[unit!]!;
  }
  return Math.round(ms);
}

/** The longest duration Go (and so CEL's duration()) can represent: 2^63-1 ns. */
const MAX_GO_DURATION_MS = 9_223_372_036_854;

/**
 * A Duration that must be longer than zero (objectives, timeouts, periods): `0s` would make an objective
 * that can never be met or a loop without a pause. CEL's duration() also rejects what overflows Go's.
 */
export const positiveDuration = (field: string) =>
  withCelRules(Duration, [
    {
      rule: "duration(self) > duration('0s')",
      message: `${field} must be longer than 0s`,
      check: (s) => {
        if (s.length > 32 || !DURATION_PATTERN.test(s)) return true; // the pattern reports it
        const ms = parseDuration(s);
        return ms > 0 && ms <= MAX_GO_DURATION_MS;
      },
    },
  ]);

/** Kubernetes resource quantity (`20Gi`, `500m`, `1`): integer or string, like resource.Quantity. */
export const QUANTITY_PATTERN =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;
export const Quantity = z.union([
  z.int(),
  z.string().max(64).regex(QUANTITY_PATTERN, 'must be a quantity such as 20Gi'),
]);

/** `self` (an int-or-string quantity) as a CEL Quantity; guard with isQuantityCel first. */
const celQuantity = (self: string) => `quantity(string(${self}))`;
const isQuantityCel = (self: string) => `isQuantity(string(${self}))`;

/** The value of a Quantity in its base unit (bytes, cores), for the runtime twins of quantity rules. */
export function quantityValue(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$/.exec(q);
  if (!m || !QUANTITY_PATTERN.test(q)) return NaN;
  const suffixes: Record<string, number> = {
    '': 1,
    n: 1e-9,
    u: 1e-6,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
  };
  const [, num, suffix] = m;
  const factor = suffixes[suffix!] ?? (/^[eE]/.test(suffix!) ? 10 ** Number(suffix!.slice(1)) : NaN);
  return Number(num) * factor;
}

/** A quantity greater than zero (a claim's size: the API server refuses 0 and negatives). */
export const positiveQuantity = (field: string) =>
  withCelRules(Quantity, [
    {
      rule: `${isQuantityCel('self')} && ${celQuantity('self')}.isGreaterThan(quantity('0'))`,
      message: `${field} must be a quantity greater than zero, such as 20Gi`,
      check: (q) => !(quantityValue(q) <= 0), // NaN: not a quantity, which the pattern reports
    },
  ]);

/** A quantity of at least zero (resource requests and limits). */
export const nonNegativeQuantity = (field: string) =>
  withCelRules(Quantity, [
    {
      rule: `${isQuantityCel('self')} && !${celQuantity('self')}.isLessThan(quantity('0'))`,
      message: `${field} must be a quantity of at least zero, such as 500m or 1Gi`,
      check: (q) => !(quantityValue(q) < 0), // NaN: not a quantity, which the pattern reports
    },
  ]);

/** `requests[k] <= limits[k]` for every resource in both, as the API server requires of a container. */
export const requestsWithinLimitsRule = (
  field: string,
): CelRule<{
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
}> => ({
  rule:
    '!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || ' +
    `!${isQuantityCel('self.requests[k]')} || !${isQuantityCel('self.limits[k]')} || ` +
    `${celQuantity('self.requests[k]')}.compareTo(${celQuantity('self.limits[k]')}) <= 0)`,
  message: `${field}: every request must be less than or equal to its limit`,
  check: (r) =>
    Object.entries(r.requests ?? {}).every(
      ([k, v]) => r.limits?.[k] === undefined || !(quantityValue(v) > quantityValue(r.limits[k]!)),
    ),
});

/**
 * Five-field cron expression (minute hour day-of-month month day-of-week) or a macro like @daily, the syntax
 * CronJob accepts (robfig/cron's ParseStandard). The pattern checks each field's grammar and value ranges
 * (no 61st minute, Sunday is 0); backup/cron.ts checks the rest (a range that ends before it starts).
 */
const ci = (word: string) => [...word].map((c) => `[${c}${c.toUpperCase()}]`).join('');
const cronNames = (names: string[]) => names.map(ci).join('|');
const cronField = (values: string) => {
  const element = `(\\*|\\?|(${values})(-(${values}))?)(/0*[1-9][0-9]*)?`;
  return `${element}(,${element})*`;
};
const CRON_FIELDS = [
  '[0-5]?[0-9]', // minute
  '[01]?[0-9]|2[0-3]', // hour
  '0?[1-9]|[12][0-9]|3[01]', // day of month
  `0?[1-9]|1[0-2]|${cronNames(['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'])}`,
  `0?[0-6]|${cronNames(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'])}`, // day of week
].map(cronField);
// A 5-field spec may have blanks around it (the CronJob parser splits it with Go's strings.Fields); a macro
// must match exactly, as it does there.
export const CRON_PATTERN = new RegExp(
  `^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[ \\t]*${CRON_FIELDS.join('[ \\t]+')}[ \\t]*)$`,
);
export const cronSchedule = (field: string) =>
  withCelRules(z.string().max(128), [
    {
      rule: `self.matches(r'${CRON_PATTERN.source}')`,
      message:
        `${field} must be a 5-field cron expression such as "0 */4 * * *" (minute 0-59, hour 0-23, day of ` +
        'month 1-31, month 1-12 or jan-dec, day of week 0-6 or sun-sat) or a macro such as @daily',
      check: (s) => CRON_PATTERN.test(s),
    },
  ]);

/**
 * An IANA time zone the API server knows (CEL's timestamp functions load zones as CronJob validation does,
 * from Go's database). No runtime twin: Node's ICU database differs in details (it ignores case), so the
 * controller checks the zone itself and reports UnknownTimeZone.
 */
export const timeZone = (field: string) =>
  withCelRules(
    z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, 'must be an IANA time zone such as Europe/Berlin'),
    [
      {
        rule: "self.lowerAscii() != 'local' && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0",
        message: `${field} must be an IANA time zone such as Europe/Berlin or Etc/UTC (not Local)`,
      },
    ],
  );

/** A ConfigMap or Secret key: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`. */
export const dataKey = (field: string) =>
  withCelRules(
    z
      .string()
      .min(1)
      .max(253)
      .regex(/^[-._a-zA-Z0-9]+$/, 'may contain only letters, digits, -, _ and .'),
    [
      {
        rule: "self != '.' && self != '..'",
        message: `${field} must not be '.' or '..' (not a valid ConfigMap or Secret key)`,
        check: (s) => s !== '.' && s !== '..',
      },
    ],
  );

// --- CEL rules with a runtime twin --------------------------------------------------------------------

/**
 * A CEL rule for the CRD (`x-kubernetes-validations`) with, when it can be expressed without `oldSelf`,
 * the same rule in TypeScript so parseRollbackPlan/parseBackupSchedule report it too (objects created
 * before a rule existed, or a cluster with an older CRD, still reach the controller).
 */
export interface CelRule<T> {
  rule: string;
  /** Names the field, because the API server shows it next to the path where the rule sits. */
  message: string;
  /** A CEL string expression that replaces `message` at the API server, e.g. to name the bad map key. */
  messageExpression?: string;
  /** Where the API server reports the problem, relative to the node with the rule, e.g. `.targets.database`. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  /** The same rule for the runtime parse; omitted for transition rules (they need the old object). */
  check?: (self: T) => boolean;
}

/** Attaches CEL rules to a schema (for the CRD) and their runtime twins as zod refinements. */
export function withCelRules<S extends z.ZodType>(schema: S, rules: CelRule<z.output<S>>[]): S {
  const refined = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      if (r.check && !r.check(value)) {
        ctx.addIssue({ code: 'custom', message: r.message, path: fieldPathSegments(r.fieldPath) });
      }
    }
  }) as S;
  return refined.meta({
    'x-kubernetes-validations': rules.map(({ check: _check, ...cel }) => cel),
  });
}

const fieldPathSegments = (fieldPath: string | undefined): string[] =>
  fieldPath ? fieldPath.split('.').filter(Boolean) : [];

/**
 * The object's name becomes part of the names (and backup ids) of the Jobs the operator creates, which must be
 * DNS labels of at most 63 characters: longer or dotted names are rejected at apply time instead of failing
 * later or colliding after truncation.
 */
export function nameRule<T extends { metadata?: { name?: string } }>(kind: string, max: number): CelRule<T> {
  return {
    rule: `!has(self.metadata.name) || (size(self.metadata.name) <= ${max} && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))`,
    message: `metadata.name of a ${kind} must be a DNS label (lower-case letters, digits, '-', no '.') of at most ${max} characters: it names the Jobs the operator creates`,
    reason: 'FieldValueInvalid',
    check: (o) =>
      o.metadata?.name === undefined ||
      (o.metadata.name.length <= max && DNS1123_LABEL.test(o.metadata.name)),
  };
}

// --- shared objects ------------------------------------------------------------------------------------

/** metav1.Condition, with apimachinery's validation (same patterns and lengths as its OpenAPI). */
export const Condition = z.object({
  type: z
    .string()
    .max(316)
    .regex(
      /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
    ),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.int().min(0).optional(),
  lastTransitionTime: Timestamp,
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
});
export type Condition = z.infer<typeof Condition>;

/**
 * A list whose items are identified by `key` (`x-kubernetes-list-type: map`): the API server rejects a
 * duplicate key and server-side apply merges item by item. The runtime parse reports duplicates too.
 */
export function mapList<T extends z.ZodObject, K extends keyof z.output<T> & string>(
  item: T,
  key: K,
  max: number,
) {
  return z
    .array(item)
    .max(max)
    .superRefine((items, ctx) => {
      const seen = new Set<unknown>();
      items.forEach((it, i) => {
        const k = (it as Record<string, unknown>)[key];
        if (seen.has(k))
          ctx.addIssue({ code: 'custom', message: `duplicate ${key} "${String(k)}"`, path: [i, key] });
        seen.add(k);
      });
    })
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': [key] });
}

/** status.conditions: keyed by type, so server-side apply merges one condition at a time. */
export const Conditions = mapList(Condition, 'type', 32);

/** Reference to an object in the same namespace. */
export const LocalObjectReference = z.object({ name: objectName() });
export type LocalObjectReference = z.infer<typeof LocalObjectReference>;

/** A key in a Secret in the same namespace. */
export const SecretKeySelector = z.object({
  name: objectName(),
  key: dataKey('urlSecretRef.key'),
});
export type SecretKeySelector = z.infer<typeof SecretKeySelector>;

const HTTP_URL = /^https?:\/\/[^\s/?#]+([/?#]\S*)?$/;
export const httpUrl = () => z.string().max(2048).regex(HTTP_URL, 'must be an http:// or https:// URL');

/** An HTTP check: GET url until the status (and optionally the body) matches. */
export const HTTPCheck = z.object({
  // isURL is Go's url.ParseRequestURI, laxer than Node's parser: the check code reports the rest (InvalidURL).
  url: withCelRules(httpUrl(), [{ rule: 'isURL(self)', message: 'url must be a valid URL' }]),
  expectStatus: z.int().min(100).max(599),
  bodyMatch: z.string().max(1024).optional().meta({ description: 'Regular expression the body must match.' }),
  retries: z.int().min(0).max(100).optional(),
  period: positiveDuration('spec.validation.http[].period').optional(),
});
export type HTTPCheck = z.infer<typeof HTTPCheck>;

/** A SQL query whose single value, as text, must equal `expect` (`select count(*) > 0 ...` → `t`). */
export const SQLAssertion = z.object({
  name: z.string().min(1).max(63).regex(DNS1123_LABEL),
  query: z.string().min(1).max(4096),
  expect: z.string().max(1024),
});
export type SQLAssertion = z.infer<typeof SQLAssertion>;

export const sqlAssertions = () => mapList(SQLAssertion, 'name', 16);

/**
 * A notification target. `events` lists what to send; absent means every event of the kind. (The sketch
 * called it `on`, but YAML 1.1 parsers, kubectl's included, read an unquoted `on:` key as `true`.)
 */
export const NotifyTargetTypes = ['webhook', 'slack', 'msteams'] as const;
export function notifyTargets<const E extends readonly [string, ...string[]]>(events: E) {
  const target = withCelRules(
    z.object({
      name: z.string().min(1).max(63).regex(DNS1123_LABEL),
      type: z.enum(NotifyTargetTypes).meta({
        description:
          'webhook: a JSON document (see docs/notifications.md); slack: an incoming-webhook message; ' +
          'msteams: an Adaptive Card for a Teams Workflows webhook.',
      }),
      urlSecretRef: SecretKeySelector.meta({
        description:
          'The Secret key holding the URL (it often carries a token, so it is never put in the spec).',
      }),
      events: z.array(z.enum(events)).max(events.length).optional().meta({ 'x-kubernetes-list-type': 'set' }),
      after: positiveDuration('notify[].after')
        .optional()
        .meta({
          description:
            'Escalation; events does not apply to such a target. RollbackPlan: notify it once (event Escalated) if ' +
            'the plan is still not finished this long after it fired (or started). BackupSchedule: notify it once ' +
            'per breach (event RPOBreached) when the RPO has been breached this long.',
        }),
    }),
    [
      {
        rule: '!has(self.after) || !has(self.events)',
        message: 'notify[]: a target with after (an escalation target) takes no events list',
        fieldPath: '.events',
        reason: 'FieldValueForbidden',
        check: (t) => t.after === undefined || t.events === undefined,
      },
    ],
  );
  return mapList(target, 'name', 10);
}

/** Delivery record of each notification (`<target>/<event>[/<key>]`), so each is sent once, restarts included. */
export function notificationStatus<const E extends readonly [string, ...string[]]>(events: E) {
  return mapList(
    z.object({
      id: z.string().min(1).max(192).meta({
        description:
          '<target>/<event>, plus /<key> for events that recur (a backup run; a plan re-armed): each is sent once.',
      }),
      target: z.string().max(63),
      event: z.enum(events),
      state: z.enum(['Pending', 'Delivered', 'Failed']),
      attempts: z.int().min(0).optional(),
      firstAttemptAt: Timestamp.optional(),
      lastAttemptAt: Timestamp.optional(),
      nextAttemptAt: Timestamp.optional().meta({
        description:
          'A Pending record that failed for now: when it is tried again (retries span about 15 minutes).',
      }),
      deliveredAt: Timestamp.optional(),
      message: z.string().max(1024).optional(),
    }),
    'id',
    64,
  );
}

/** Identifier of a backup (also the name of its file and of the Job that made it). */
export const BackupId = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);

/** Object metadata as the runtime sees it; the CRD leaves metadata to the API server. */
export const ObjectMeta = z.looseObject({
  name: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.int().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

// --- CRD description -----------------------------------------------------------------------------------

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  /** 0 (default): shown by `kubectl get`; 1: only with `-o wide`. */
  priority?: number;
}

/** Everything operator/api/crd-generator.ts needs to write the CRD of one kind. */
export interface KindInfo {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  /** The full object (apiVersion, kind, metadata, spec, status). */
  schema: z.ZodObject;
  printerColumns: PrinterColumn[];
}

/**
 * What the API reference (docs/api-reference.md, operator/api/api-reference.ts) says beyond the schema. Runtime
 * defaults live here, not in the schema (see the rules at the top); the reference refuses a default whose path is
 * not a field, so a renamed field cannot leave a stale default behind.
 */
export interface KindReference {
  /** The user guide of the kind, relative to docs/ (it lists the Kubernetes Events the operator records). */
  guide: string;
  /** Runtime default by field path (`spec.targets.database.mode`, lists as `[]`), as Markdown. */
  defaults: Record<string, string>;
  /** Condition type → one-line meaning. */
  conditions: Record<string, string>;
  /** status.phase value → one-line meaning (kinds with a phase). */
  phases?: Record<string, string>;
  /** Annotation (full name) → what setting it does. */
  annotations: Record<string, string>;
  /** Notification event (`spec.notify[].events`) → when it is sent. */
  events: Record<string, string>;
}

/** A default value as the reference shows it: `5m`, `true`, `{latestVerified: true}`. */
export function showDefault(v: unknown): string {
  const flow = (x: unknown): string =>
    x !== null && typeof x === 'object'
      ? `{${Object.entries(x)
          .map(([k, e]) => `${k}: ${flow(e)}`)
          .join(', ')}}`
      : String(x);
  return `\`${flow(v)}\``;
}

/** `defaults` of a KindReference from a *_DEFAULTS constant and the path each of its keys applies to. */
export function defaultsAt<D extends Record<string, unknown>>(
  defaults: D,
  paths: Record<keyof D, string>,
): Record<string, string> {
  return Object.fromEntries(Object.entries(paths).map(([k, path]) => [path, showDefault(defaults[k])]));
}

/** JSONPath of a condition field, for printer columns. */
export const conditionPath = (type: ConditionTypeName, field: 'status' | 'reason') =>
  `.status.conditions[?(@.type=="${type}")].${field}`;

// --- runtime parsing -----------------------------------------------------------------------------------

export interface Problem {
  /** Dotted path such as `spec.targets.deployments[1].name`. */
  path: string;
  message: string;
}
export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: Problem[] };

/** Runs a schema and turns zod issues into path-named problems; never throws. */
export function parseWith<T>(schema: z.ZodType<T>, obj: unknown): ParseResult<T> {
  const r = schema.safeParse(obj);
  if (r.success) return { ok: true, value: r.data };
  return {
    ok: false,
    problems: r.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
  };
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out || '(root)';
}
