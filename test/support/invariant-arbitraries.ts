// fast-check arbitraries for the invariant test (test/integration/invariant.test.ts): RollbackPlans and
// BackupSchedules that start from a valid template and carry up to three mutations, each setting one field to a
// valid, boundary, extreme or invalid value. Shrinking drops mutations and moves every choice towards the first
// (simplest) value, so a counterexample reads as "template X with field Y set to Z".
import fc from 'fast-check';
import { RUNNER_PLACEMENT } from '../env/test-kubelet.js';

export const BACKUP_NOW = 'rollback.nxtnewday.io/backup-now';

/** One field set to one value; `path` starts at the object (`spec`, `metadata`). */
export interface Mutation {
  path: string[];
  value: unknown;
}

export type NameVariant = 'short' | 'max' | 'over' | 'dotted' | 'upper';

export interface GeneratedObject {
  kind: 'RollbackPlan' | 'BackupSchedule';
  template: string;
  name: NameVariant;
  mutations: Mutation[];
}

/** Placeholders resolved per namespace when the object is built (see buildObject). */
export interface Placeholders {
  // `$SELF` is replaced by the object's own name.
  /** Base URL of the test's HTTP server, replacing `$HTTP`. */
  http: string;
  /** Id of the verified backup of fixture schedule `sched`, replacing `$BACKUP`. */
  backup: string;
}

const pick = <T>(...values: T[]) => fc.constantFrom(...values);
/** `usual` four times as often as `unusual`. */
const mostly = <T>(usual: fc.Arbitrary<T>, unusual: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: usual }, { weight: 1, arbitrary: unusual });
const x = (n: number) => 'x'.repeat(n);
const mut = (path: string | string[], value: fc.Arbitrary<unknown>, weight = 1) => ({
  weight,
  arbitrary: fc.record({ path: fc.constant(typeof path === 'string' ? path.split('.') : path), value }),
});

// --- values ---------------------------------------------------------------------------------------------

const duration = pick(
  '30s',
  '2m',
  '0s',
  '0ms',
  '1ms',
  '1.5h',
  '90m',
  '596h',
  '597h',
  '1000h',
  '9999999999h',
  `${'9'.repeat(30)}s`, // 31 characters: within maxLength 32, about 3e22 years
  `${'9'.repeat(31)}s`, // 33 characters: over maxLength
  '',
  '1d',
  '-1s',
  'abc',
);

const cron = pick(
  '0 3 * * *',
  '@daily',
  '*/15 * * * *',
  '30 2 * * 1-5',
  '* * * * *',
  '0 0 29 2 *', // leap days only
  '0 0 31 4 *', // April 31st: never
  '60 * * * *',
  '* 24 * * *',
  '* * 32 * *',
  '* * * 13 *',
  '* * * * 8',
  'a b c d e',
  '*/0 * * * *',
  '5-1 * * * *',
  '0 0 * * MON-FRI',
  '0 0 L * *',
  '0 0 * * 1#2',
  '? ? ? ? ?',
  '0 0 0 * *',
  '1,,2 * * * *',
  '* * * * * *',
  '@reboot',
  'TZ=Europe/Berlin 0 3 * * *',
);

const timeZone = pick(
  'Etc/UTC',
  'Europe/Berlin',
  'America/New_York',
  'Asia/Kathmandu',
  'UTC',
  'Mars/Olympus',
  'Europe/Berli',
  'Local',
  'EST5EDT',
  'Etc/GMT+14',
  'Etc/GMT-15',
  'europe/berlin',
  'A'.repeat(64),
  'A'.repeat(65),
);

const quantity = pick<string | number>(
  '1Gi',
  '1',
  '500m',
  '0',
  '-1Gi',
  '-1',
  '-500m',
  '1e3',
  '.5Gi',
  '100Ei',
  '9999999Ei',
  '1e100',
  '1E',
  0,
  -5,
  2 ** 53,
  1.5,
  'lots',
);

const labelKey = pick(
  'kubernetes.io/os',
  'bad key',
  '-x',
  'a/b/c',
  x(63),
  x(64),
  `example.com/${x(63)}`,
  `example.com/${x(64)}`,
  'UPPER',
  '',
);
const labelValue = pick('linux', 'true', 'bad value!', x(63), x(64), '', '-lead');

const toleration = fc.record(
  {
    key: pick('nxt.test/runner', 'other', 'bad key!', '', x(317)),
    operator: pick('Equal', 'Exists', 'In'),
    value: pick('true', 'x', '', 'bad value!'),
    effect: pick('NoSchedule', 'NoExecute', 'PreferNoSchedule', 'Sometimes'),
    tolerationSeconds: pick(60, 0, -1, 2 ** 40),
  },
  { requiredKeys: [] },
);

const resourceList = fc.record(
  { cpu: quantity, memory: quantity, 'nvidia.com/gpu': pick('1', '0.5'), 'bogus key': pick('1') },
  { requiredKeys: [] },
);

const secretName = pick('db', 'db-nokeys', 'missing-secret', 'Bad_Name');

const notifyTargets = fc.array(
  fc.record(
    {
      name: pick('ops', 'Ops', x(63), x(64)),
      type: pick('slack', 'webhook', 'pager'),
      urlSecretRef: fc.record({ name: secretName, key: pick('url', '..', 'a/b') }),
      events: fc.array(pick('Started', 'Failed', 'Succeeded', 'BackupFailed', 'Bogus'), { maxLength: 2 }),
    },
    { requiredKeys: ['name', 'type', 'urlSecretRef'] },
  ),
  { maxLength: 2 },
);

const sqlAssertions = fc.array(
  fc.record({
    name: pick('rows', 'Bad Name', x(63), x(64)),
    query: pick('select 1', 'select pg_sleep(3600)', "select repeat('x', 100000)", x(4096), x(4097), ''),
    expect: pick('1', 't', x(1024), x(1025)),
  }),
  { maxLength: 2 },
);

/** Paths of the test's HTTP server (see invariant.test.ts) and addresses nothing answers on. */
const httpUrl = pick(
  '$HTTP/ok',
  '$HTTP/status/500',
  '$HTTP/slow',
  '$HTTP/big',
  '$HTTP/aaaa',
  'http://127.0.0.1:1/',
  'http://127.0.0.1:9/',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::1]:1/',
  'http://nonexistent.invalid/',
  'ftp://example.com/',
  `http://example.com/${x(2030)}`,
  `http://example.com/${x(2040)}`,
);

/** Checks known to be hostile to an operator that waits inside a worker or matches with backtracking. */
const hostileCheck = pick<object>(
  { url: '$HTTP/aaaa', expectStatus: 200, bodyMatch: '(a+)+$', retries: 0 },
  { url: '$HTTP/slow', expectStatus: 200, retries: 100, period: '1h' },
  { url: 'http://127.0.0.1:9/', expectStatus: 200, retries: 100, period: '1s' },
  { url: '$HTTP/status/500', expectStatus: 200, retries: 100, period: '600h' },
  { url: '$HTTP/big', expectStatus: 200, bodyMatch: 'b', retries: 1 },
  { url: 'http://169.254.169.254/latest/meta-data/', expectStatus: 200, retries: 0 },
);
const randomCheck = fc.record(
  {
    url: httpUrl,
    expectStatus: mostly(pick(200, 500, 100, 599), pick(99, 600)),
    bodyMatch: mostly(pick('ok', '(a+)+$', '(', '^$', '(x+x+)+y', x(1024)), pick(x(1025))),
    retries: mostly(pick(0, 1, 2, 100), pick(101, -1)),
    period: duration,
  },
  { requiredKeys: ['url', 'expectStatus'] },
);
const httpChecks = fc.array(fc.oneof(hostileCheck, randomCheck), { maxLength: 3 });

const flagKey = pick(
  'beta',
  'never-set',
  'long-value',
  '..',
  '.',
  'dots.key',
  x(253),
  x(254),
  '-',
  '_x',
  'with space',
  'a/b',
);

const backupSelector = fc.oneof(
  fc.record({ latestVerified: pick<unknown>(true, false) }),
  fc.record({ id: pick('$BACKUP', 'no-such-backup', x(253), x(254), 'bad id!') }),
  fc.record({
    before: pick('2100-01-01T00:00:00Z', '2000-01-01T00:00:00Z', 'yesterday', '2026-13-45T99:99:99Z'),
  }),
  fc.record({ latestVerified: fc.constant(true), id: fc.constant('$BACKUP') }),
  fc.constant({}),
);

const deploymentTargets = fc.array(
  fc.record(
    {
      name: pick('web', 'missing', 'Web', 'web.v2', x(253), x(254)),
      toRevision: pick<number>(0, 1, 2, 3, 99, -1, 2 ** 31, 2 ** 53 - 1, 1.5),
    },
    { requiredKeys: ['name'] },
  ),
  { maxLength: 3 },
);

const triggerCondition = fc.record(
  {
    type: pick('DeploymentUnavailable', 'HTTPCheck', 'PrometheusQuery', 'Magic'),
    deployment: pick('web', 'missing'),
    url: httpUrl,
    address: pick('http://127.0.0.1:1'),
    query: pick('up'),
    above: pick(1, 1e308),
    failureThreshold: pick(1, 0, 100, 101),
    period: duration,
    for: duration,
  },
  { requiredKeys: ['type'] },
);

// --- templates -----------------------------------------------------------------------------------------

const scheduleBase = {
  database: { secretRef: { name: 'db' } },
  storage: { persistentVolumeClaim: { claimName: 'backups' } },
  podTemplate: structuredClone(RUNNER_PLACEMENT),
};

/** Valid BackupSchedule specs that reference the fixtures of a batch namespace. */
export const SCHEDULE_TEMPLATES: Record<string, object> = {
  suspended: { ...scheduleBase, suspend: true },
  scheduled: { ...scheduleBase, schedule: '0 3 * * *' },
  'created-claim': {
    ...scheduleBase,
    suspend: true,
    storage: { persistentVolumeClaim: { create: { size: '1Gi', storageClassName: 'manual' } } },
  },
  verified: {
    ...scheduleBase,
    suspend: true,
    verify: { testRestoreSchedule: '0 5 * * *', sql: [{ name: 'one', query: 'select 1', expect: '1' }] },
  },
};

const db = { backupScheduleRef: { name: 'sched' } };
const flags = { configMapRef: { name: 'flags' }, disable: ['beta'] };

/**
 * Valid RollbackPlan specs that reference the fixtures of a batch namespace. Plans on the same Deployment,
 * database or flag conflict (one per batch proceeds); `checks` disables a key of its own (`$SELF`), so every
 * such plan gets as far as its HTTP checks.
 */
export const PLAN_TEMPLATES: Record<string, object> = {
  checks: {
    scope: 'feature',
    targets: { featureFlags: { configMapRef: { name: 'flags' }, disable: ['$SELF'] } },
    validation: { timeout: '2m', http: [{ url: '$HTTP/ok', expectStatus: 200 }] },
  },
  app: { scope: 'app', targets: { deployments: [{ name: 'web' }] } },
  'app-missing': { scope: 'app', targets: { deployments: [{ name: 'missing' }] } },
  feature: { scope: 'feature', targets: { featureFlags: flags } },
  'feature-ff': {
    scope: 'feature',
    targets: { featureFlags: { featureFlagRef: { name: 'ff' }, disable: ['beta'] } },
  },
  database: {
    scope: 'database',
    targets: { database: { ...db, backup: { id: '$BACKUP' }, safetyBackup: false } },
  },
  full: {
    scope: 'full',
    targets: {
      deployments: [{ name: 'web' }],
      database: { ...db, safetyBackup: false },
      featureFlags: flags,
    },
  },
  'dry-full': {
    scope: 'full',
    dryRun: true,
    targets: { deployments: [{ name: 'web' }], database: db, featureFlags: flags },
  },
};

// --- mutations -----------------------------------------------------------------------------------------

const scheduleMutation = fc.oneof(
  mut(['metadata', 'annotations', BACKUP_NOW], pick('now', x(253), x(254), x(2000), '', 'ünïcödé ☃'), 3),
  mut('spec.schedule', cron, 3),
  mut('spec.timeZone', timeZone, 2),
  mut('spec.suspend', fc.boolean()),
  mut('spec.startingDeadlineSeconds', pick(1, 86_400, 0, 86_401, -1)),
  mut('spec.database.secretRef.name', secretName, 2),
  mut('spec.database.sslMode', pick('require', 'verify-full', 'bogus')),
  mut(
    'spec.storage',
    pick<object>(
      { persistentVolumeClaim: { claimName: 'missing-claim' } },
      { persistentVolumeClaim: { claimName: 'backups', create: { size: '1Gi' } } },
      { persistentVolumeClaim: {} },
      {},
    ),
  ),
  mut('spec.storage.persistentVolumeClaim.create.size', quantity, 2),
  mut(
    'spec.retention',
    fc.record(
      { keepLast: pick(1, 500, 0, 501, -1), keepDaily: pick(7, 0), keepWeekly: pick(4, 501) },
      { requiredKeys: [] },
    ),
  ),
  mut('spec.verify.testRestoreSchedule', cron),
  mut('spec.verify.sql', sqlAssertions),
  mut('spec.objectives.rpo', duration, 2),
  mut('spec.notify', notifyTargets),
  mut(
    'spec.podTemplate.nodeSelector',
    fc
      .record({ key: labelKey, value: labelValue })
      .map(({ key, value }) => ({ ...RUNNER_PLACEMENT.nodeSelector, [key]: value })),
    2,
  ),
  mut(
    'spec.podTemplate.tolerations',
    toleration.map((t) => [...RUNNER_PLACEMENT.tolerations, t]),
    2,
  ),
  mut(
    'spec.podTemplate.resources',
    fc.record({ requests: resourceList, limits: resourceList }, { requiredKeys: [] }),
    2,
  ),
  mut('spec.podTemplate.serviceAccountName', pick('default', 'missing-sa', 'Bad_SA'), 2),
  mut('spec.podTemplate.image', pick('registry.invalid/nope:1', 'UPPER CASE', x(512), x(513))),
  mut('spec.podTemplate', pick({})),
);

const planMutation = fc.oneof(
  mut('spec.scope', pick('app', 'database', 'feature', 'full', 'everything'), 2),
  mut('spec.dryRun', fc.boolean(), 2),
  mut('spec.reason', pick('bad release', '', x(1024), x(1025), 'ünïcödé ☃')),
  mut('spec.severity', pick('critical', 'low', 'apocalyptic')),
  mut('spec.targets.deployments', deploymentTargets, 2),
  mut('spec.targets.deployments.0.toRevision', pick<number>(1, 2, 3, 99, 2 ** 31, 2 ** 53 - 1, -1), 2),
  mut('spec.targets.database.backup', backupSelector, 2),
  mut('spec.targets.database.backupScheduleRef.name', pick('missing', 'Sched')),
  mut('spec.targets.database.mode', pick('inPlace', 'newDatabaseSwap', 'sideways')),
  mut('spec.targets.database.safetyBackup', fc.boolean()),
  mut('spec.targets.featureFlags.disable', fc.array(flagKey, { maxLength: 4 }), 3),
  mut('spec.targets.featureFlags.configMapRef.name', pick('missing', 'Bad_CM')),
  mut('spec.targets.featureFlags.featureFlagRef.name', pick('ff', 'missing')),
  mut('spec.validation.timeout', duration, 2),
  mut('spec.validation.http', httpChecks, 4),
  mut('spec.validation.sql', sqlAssertions),
  mut('spec.objectives.rto', duration, 2),
  mut(
    'spec.trigger',
    fc.record(
      {
        mode: pick('manual', 'auto', 'onRevert', 'sometimes'),
        conditions: fc.array(triggerCondition, { maxLength: 2 }),
        confirmFor: duration,
        watchWindow: duration,
      },
      { requiredKeys: ['mode'] },
    ),
  ),
  mut(
    'spec.gitops',
    fc.record(
      { policy: pick('suspend', 'refuse', 'ignore', 'maybe'), resume: pick('onNewRevision', 'manual') },
      { requiredKeys: ['policy'] },
    ),
  ),
  mut('spec.notify', notifyTargets),
);

const nameVariant = fc.oneof(
  { weight: 12, arbitrary: fc.constant<NameVariant>('short') },
  { weight: 1, arbitrary: pick<NameVariant>('max', 'over', 'dotted', 'upper') },
);

const objectOf = (
  kind: GeneratedObject['kind'],
  templates: Record<string, object>,
  mutation: fc.Arbitrary<Mutation>,
) =>
  fc.record({
    kind: fc.constant(kind),
    // the first template (shrinking's target) three times as often as each other one
    template: mostly(fc.constant(Object.keys(templates)[0]!), pick(...Object.keys(templates))),
    name: nameVariant,
    mutations: fc.array(mutation, { maxLength: 3 }),
  });

/** One RollbackPlan or BackupSchedule, half of each. */
export const generatedObject: fc.Arbitrary<GeneratedObject> = fc.oneof(
  objectOf('BackupSchedule', SCHEDULE_TEMPLATES, scheduleMutation),
  objectOf('RollbackPlan', PLAN_TEMPLATES, planMutation),
);

// --- building ------------------------------------------------------------------------------------------

/** The longest names the CRDs accept: Job names `<plan>-restore` and `<schedule>-backup-now-<8 hex>`. */
const MAX_NAME = { RollbackPlan: 55, BackupSchedule: 43 } as const;

/** A unique name per index, shaped by the variant (at the length limit, one over, with a dot, upper case). */
export function objectName(g: GeneratedObject, index: number): string {
  const base = `${g.kind === 'RollbackPlan' ? 'p' : 's'}${index}`;
  const max = MAX_NAME[g.kind];
  switch (g.name) {
    case 'short':
      return base;
    case 'max':
      return `${base}-`.padEnd(max, 'x');
    case 'over':
      return `${base}-`.padEnd(max + 1, 'x');
    case 'dotted':
      return `${base}.v2`;
    case 'upper':
      return base.toUpperCase();
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown) {
  let node: Record<string, unknown> = target;
  for (const [i, key] of path.entries()) {
    if (i === path.length - 1) {
      node[key] = structuredClone(value);
      return;
    }
    const next = node[key];
    if (next === null || typeof next !== 'object') node[key] = /^\d+$/.test(path[i + 1]!) ? [] : {};
    node = node[key] as Record<string, unknown>;
  }
}

function resolve(value: unknown, p: Placeholders & { self: string }): unknown {
  if (typeof value === 'string')
    return value.replace('$HTTP', p.http).replace('$BACKUP', p.backup).replace('$SELF', p.self);
  if (Array.isArray(value)) return value.map((v) => resolve(v, p));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, p)]));
  return value;
}

/** The object to create: the template, then every mutation in order, then the placeholders resolved. */
export function buildObject(g: GeneratedObject, index: number, p: Placeholders): Record<string, any> {
  const templates = g.kind === 'RollbackPlan' ? PLAN_TEMPLATES : SCHEDULE_TEMPLATES;
  const name = objectName(g, index);
  const obj: Record<string, unknown> = {
    apiVersion: 'rollback.nxtnewday.io/v1alpha1',
    kind: g.kind,
    metadata: { name },
    spec: structuredClone(templates[g.template]),
  };
  for (const m of g.mutations) setPath(obj, m.path, m.value);
  return resolve(obj, { ...p, self: name.toLowerCase() }) as Record<string, any>;
}

/** A mutation as a reader wants it: `spec.validation.timeout = "0s"`, long strings abbreviated. */
export function describeGenerated(g: GeneratedObject): string {
  const muts = g.mutations.map((m) => `${m.path.join('.')} = ${abbreviate(m.value)}`);
  return `${g.kind} from template "${g.template}"${g.name !== 'short' ? ` (name: ${g.name})` : ''}${muts.length ? ` with ${muts.join('; ')}` : ' unchanged'}`;
}

/** JSON with every string longer than 60 characters shown as its length and start. */
export function abbreviate(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    typeof v === 'string' && v.length > 60 ? `<${v.length} chars: ${v.slice(0, 24)}…>` : v,
  );
}

// --- explicit examples ---------------------------------------------------------------------------------

const example = (
  kind: GeneratedObject['kind'],
  template: string,
  ...mutations: [string | string[], unknown][]
): GeneratedObject => ({
  kind,
  template,
  name: 'short',
  mutations: mutations.map(([path, value]) => ({
    path: typeof path === 'string' ? path.split('.') : path,
    value,
  })),
});
const slowCheck = { url: '$HTTP/slow', expectStatus: 200, retries: 100, period: '1h' };

/**
 * The inputs issue 9 names, run every time next to the generated ones (random generation reaches some of
 * them only rarely): the catastrophic regex, four plans with long checks and a bystander, timer overflow,
 * long flag values, bad cron fields and time zones, negative quantities, bad label keys and tolerations,
 * missing claims and ServiceAccounts behind an emergency backup, zero objectives.
 */
export const KNOWN_INPUTS: GeneratedObject[] = [
  example('RollbackPlan', 'checks', [
    'spec.validation.http',
    [{ url: '$HTTP/aaaa', expectStatus: 200, bodyMatch: '(a+)+$', retries: 0 }],
  ]),
  example('RollbackPlan', 'checks', ['spec.validation.http', [slowCheck]]),
  example('RollbackPlan', 'checks', ['spec.validation.http', [slowCheck]]),
  example('RollbackPlan', 'checks', ['spec.validation.http', [slowCheck]]),
  example('RollbackPlan', 'checks', ['spec.validation.http', [slowCheck]]),
  example('RollbackPlan', 'checks'),
  example('RollbackPlan', 'checks', [
    'spec.validation.http',
    [{ url: '$HTTP/status/500', expectStatus: 200, retries: 100, period: '600h' }],
  ]),
  example('RollbackPlan', 'checks', [
    'spec.validation.http',
    [{ url: 'http://169.254.169.254/latest/meta-data/', expectStatus: 200, retries: 0 }],
  ]),
  example('RollbackPlan', 'feature', ['spec.targets.featureFlags.disable', ['long-value']]),
  example('RollbackPlan', 'feature', ['spec.targets.featureFlags.disable', ['..']]),
  example('RollbackPlan', 'checks', ['spec.objectives.rto', '0s']),
  example('BackupSchedule', 'suspended', ['spec.schedule', '60 * * * *']),
  example('BackupSchedule', 'suspended', ['spec.schedule', 'a b c d e']),
  example('BackupSchedule', 'verified', ['spec.verify.testRestoreSchedule', '* 24 * * *']),
  example('BackupSchedule', 'suspended', ['spec.timeZone', 'Mars/Olympus']),
  example('BackupSchedule', 'created-claim', ['spec.storage.persistentVolumeClaim.create.size', '-1Gi']),
  example('BackupSchedule', 'suspended', ['spec.podTemplate.resources', { requests: { cpu: '-1' } }]),
  example('BackupSchedule', 'suspended', [
    'spec.podTemplate.nodeSelector',
    { ...RUNNER_PLACEMENT.nodeSelector, 'bad key': 'x' },
  ]),
  example('BackupSchedule', 'suspended', [
    'spec.podTemplate.tolerations',
    [{ key: 'nxt.test/runner', operator: 'Exists', value: 'true', effect: 'NoSchedule' }],
  ]),
  example(
    'BackupSchedule',
    'suspended',
    ['spec.storage.persistentVolumeClaim.claimName', 'missing-claim'],
    [['metadata', 'annotations', BACKUP_NOW], 'now'],
  ),
  example(
    'BackupSchedule',
    'suspended',
    ['spec.podTemplate.serviceAccountName', 'missing-sa'],
    [['metadata', 'annotations', BACKUP_NOW], 'now'],
  ),
  example('BackupSchedule', 'suspended', [['metadata', 'annotations', BACKUP_NOW], x(254)]),
  example('BackupSchedule', 'suspended', ['spec.objectives.rpo', '0s']),
  example('BackupSchedule', 'suspended', ['spec.objectives.rpo', '600h']),
  example('BackupSchedule', 'scheduled', ['spec.schedule', '0 0 31 4 *']),
];
