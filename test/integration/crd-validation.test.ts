import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBackupSchedule } from '../../operator/api/v1alpha1/backupschedule.js';
import { API_VERSION, Annotation, GROUP, VERSION } from '../../operator/api/v1alpha1/common.js';
import { parseRollbackPlan } from '../../operator/api/v1alpha1/rollbackplan.js';
import { createTestNamespace, deleteTestNamespace, kubectl, testClients } from '../support/kube.js';

// The generated CRDs (crds/*.yaml, installed by the global setup) against the real kube-apiserver: the
// OpenAPI and CEL rules reject what they should, with a message naming the field, and the runtime parse
// agrees with the API server on every rejected object.

const { custom } = testClients();
const plural = { RollbackPlan: 'rollbackplans', BackupSchedule: 'backupschedules' } as const;
type Kind = keyof typeof plural;
type Obj = Record<string, any>;

const rollbackPlan = (name: string, spec: Obj): Obj => ({
  apiVersion: API_VERSION,
  kind: 'RollbackPlan',
  metadata: { name },
  spec,
});
const backupSchedule = (name: string, spec: Obj): Obj => ({
  apiVersion: API_VERSION,
  kind: 'BackupSchedule',
  metadata: { name },
  spec,
});

/** The full RollbackPlan from docs API-SKETCH.md. */
const planSpec = (): Obj => ({
  scope: 'full',
  dryRun: false,
  reason: '5xx after the 14:00 release',
  targets: {
    deployments: [{ name: 'checkout', toRevision: 0 }, { name: 'checkout-worker' }],
    database: {
      backupScheduleRef: { name: 'shop-db' },
      backup: { latestVerified: true },
      mode: 'inPlace',
      safetyBackup: true,
    },
    featureFlags: { configMapRef: { name: 'shop-flags' }, disable: ['new-checkout-flow'] },
  },
  validation: {
    timeout: '5m',
    http: [{ url: 'http://checkout.shop.svc/healthz', expectStatus: 200 }],
    sql: [{ name: 'orders-present', query: 'select count(*) > 0 from orders', expect: 't' }],
  },
  objectives: { rto: '10m' },
  severity: 'critical',
  trigger: {
    mode: 'auto',
    conditions: [
      { type: 'DeploymentUnavailable', deployment: 'checkout', for: '30s' },
      { type: 'HTTPCheck', url: 'http://checkout.shop.svc/healthz', failureThreshold: 3, period: '10s' },
      {
        type: 'PrometheusQuery',
        address: 'http://prometheus.monitoring.svc:9090',
        query: 'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))',
        above: 0.05,
        for: '1m',
      },
    ],
    // (The sketch also has confirmFor: 2m, which the CRD allows with severity high only.)
    watchWindow: '30m',
  },
  gitops: { policy: 'suspend', resume: 'onNewRevision' },
  notify: [
    {
      name: 'oncall',
      type: 'slack',
      urlSecretRef: { name: 'slack-webhook', key: 'url' },
      events: ['Started', 'Succeeded', 'Failed', 'AwaitingApproval'],
    },
  ],
});

/** The BackupSchedule from docs API-SKETCH.md. */
const scheduleSpec = (): Obj => ({
  schedule: '0 */4 * * *',
  timeZone: 'Etc/UTC',
  suspend: false,
  startingDeadlineSeconds: 600,
  database: { secretRef: { name: 'shop-db-credentials' }, sslMode: 'require' },
  storage: { persistentVolumeClaim: { claimName: 'shop-db-backups' } },
  retention: { keepLast: 12, keepDaily: 7, keepWeekly: 4 },
  verify: {
    testRestoreSchedule: '30 2 * * *',
    sql: [{ name: 'orders-present', query: 'select count(*) > 0 from orders', expect: 't' }],
  },
  objectives: { rpo: '1h' },
  notify: [],
});

const appPlan = (targets: Obj, extra: Obj = {}): Obj => ({ scope: 'app', targets, ...extra });

/**
 * Invalid objects: [description, object, field the API server names, the runtime parse's path for it when it
 * is written differently (a map key: `requests[cpu]` vs `requests.cpu`)].
 */
const invalid: [string, Obj, string, string?][] = [
  [
    'scope app without deployments',
    rollbackPlan('p1', { scope: 'app', targets: {} }),
    'spec.targets.deployments',
  ],
  [
    'scope database without a database target',
    rollbackPlan('p2', { scope: 'database', targets: { deployments: [{ name: 'a' }] } }),
    'spec.targets.database',
  ],
  [
    'scope feature without flags',
    rollbackPlan('p3', { scope: 'feature', targets: {} }),
    'spec.targets.featureFlags',
  ],
  [
    'scope full with flags only',
    rollbackPlan('p4', {
      scope: 'full',
      targets: { featureFlags: { configMapRef: { name: 'f' }, disable: ['x'] } },
    }),
    'spec.targets',
  ],
  ['an unknown scope', rollbackPlan('p5', { scope: 'everything', targets: {} }), 'spec.scope'],
  [
    'SQL assertions without a database restore to run them in',
    rollbackPlan('p5b', {
      scope: 'app',
      targets: { deployments: [{ name: 'a' }] },
      validation: { sql: [{ name: 'orders', query: 'select 1', expect: '1' }] },
    }),
    'spec.validation.sql',
  ],
  [
    'two ways to pick the backup',
    rollbackPlan('p6', {
      scope: 'database',
      targets: {
        database: { backupScheduleRef: { name: 'db' }, backup: { latestVerified: true, id: 'b-1' } },
      },
    }),
    'spec.targets.database.backup',
  ],
  [
    'the same Deployment twice',
    rollbackPlan('p7', appPlan({ deployments: [{ name: 'checkout' }, { name: 'checkout' }] })),
    'spec.targets.deployments[1]',
  ],
  [
    'an invalid Deployment name',
    rollbackPlan('p8', appPlan({ deployments: [{ name: 'Checkout_1' }] })),
    'spec.targets.deployments[0].name',
  ],
  [
    'a negative revision',
    rollbackPlan('p9', appPlan({ deployments: [{ name: 'a', toRevision: -1 }] })),
    'spec.targets.deployments[0].toRevision',
  ],
  [
    'a duration in words',
    rollbackPlan('p10', appPlan({ deployments: [{ name: 'a' }] }, { validation: { timeout: '5 minutes' } })),
    'spec.validation.timeout',
  ],
  [
    'a reason longer than 1024 characters',
    rollbackPlan('p11', appPlan({ deployments: [{ name: 'a' }] }, { reason: 'x'.repeat(1025) })),
    'spec.reason',
  ],
  [
    'an automatic trigger without conditions',
    rollbackPlan('p12', appPlan({ deployments: [{ name: 'a' }] }, { trigger: { mode: 'auto' } })),
    'spec.trigger.conditions',
  ],
  [
    'a Prometheus condition without a query',
    rollbackPlan(
      'p13',
      appPlan(
        { deployments: [{ name: 'a' }] },
        {
          trigger: {
            mode: 'auto',
            conditions: [{ type: 'PrometheusQuery', address: 'http://p:9090', above: 1 }],
          },
        },
      ),
    ),
    'spec.trigger.conditions[0].query',
  ],
  [
    'an onRevert plan with feature-flag steps and no severity',
    rollbackPlan('p-onrevert-flags', {
      scope: 'feature',
      targets: { featureFlags: { configMapRef: { name: 'flags' }, disable: ['x'] } },
      trigger: { mode: 'onRevert' },
    }),
    'spec.severity',
  ],
  [
    'feature flags without a source',
    rollbackPlan('p14', { scope: 'feature', targets: { featureFlags: { disable: ['x'] } } }),
    'spec.targets.featureFlags',
  ],
  [
    'an unknown notification event',
    rollbackPlan(
      'p15',
      appPlan(
        { deployments: [{ name: 'a' }] },
        {
          notify: [
            { name: 'n', type: 'slack', urlSecretRef: { name: 's', key: 'url' }, events: ['Exploded'] },
          ],
        },
      ),
    ),
    'spec.notify[0].events[0]',
  ],
  [
    'a schedule in words',
    backupSchedule('s1', { ...scheduleSpec(), schedule: 'every 4 hours' }),
    'spec.schedule',
  ],
  [
    'a six-field test-restore schedule',
    backupSchedule('s2', { ...scheduleSpec(), verify: { testRestoreSchedule: '0 0 2 * * *' } }),
    'spec.verify.testRestoreSchedule',
  ],
  [
    'both claimName and create',
    backupSchedule('s3', {
      ...scheduleSpec(),
      storage: { persistentVolumeClaim: { claimName: 'c', create: { size: '20Gi' } } },
    }),
    'spec.storage.persistentVolumeClaim',
  ],
  ['no storage backend', backupSchedule('s4', { ...scheduleSpec(), storage: {} }), 'spec.storage'],
  [
    'keepLast 0',
    backupSchedule('s5', { ...scheduleSpec(), retention: { keepLast: 0 } }),
    'spec.retention.keepLast',
  ],
  [
    'a size that is not a quantity',
    backupSchedule('s6', {
      ...scheduleSpec(),
      storage: { persistentVolumeClaim: { create: { size: '20 GB' } } },
    }),
    'spec.storage.persistentVolumeClaim.create.size',
  ],
  [
    'no database',
    backupSchedule('s7', { storage: { persistentVolumeClaim: { claimName: 'c' } } }),
    'spec.database',
  ],
  // Accepted, then silent, before the rules of issue 9 (each failed here on the old CRD):
  [
    'a minute out of range',
    backupSchedule('s8', { ...scheduleSpec(), schedule: '61 * * * *' }),
    'spec.schedule',
  ],
  [
    'Sunday written as 7',
    backupSchedule('s9', { ...scheduleSpec(), schedule: '0 0 * * 7' }),
    'spec.schedule',
  ],
  [
    'a non-numeric cron field',
    backupSchedule('s10', { ...scheduleSpec(), schedule: '0 x * * *' }),
    'spec.schedule',
  ],
  [
    'an hour out of range in the test-restore schedule',
    backupSchedule('s11', { ...scheduleSpec(), verify: { testRestoreSchedule: '0 25 * * *' } }),
    'spec.verify.testRestoreSchedule',
  ],
  [
    'a negative storage size',
    backupSchedule('s12', {
      ...scheduleSpec(),
      storage: { persistentVolumeClaim: { create: { size: '-20Gi' } } },
    }),
    'spec.storage.persistentVolumeClaim.create.size',
  ],
  [
    'a storage size of zero',
    backupSchedule('s13', { ...scheduleSpec(), storage: { persistentVolumeClaim: { create: { size: 0 } } } }),
    'spec.storage.persistentVolumeClaim.create.size',
  ],
  [
    'a negative CPU request',
    backupSchedule('s14', {
      ...scheduleSpec(),
      podTemplate: { resources: { requests: { cpu: '-100m' } } },
    }),
    'spec.podTemplate.resources.requests[cpu]',
    'spec.podTemplate.resources.requests.cpu',
  ],
  [
    'a request above its limit',
    backupSchedule('s15', {
      ...scheduleSpec(),
      podTemplate: { resources: { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } } },
    }),
    'spec.podTemplate.resources',
  ],
  [
    'a resource name a container cannot have',
    backupSchedule('s16', { ...scheduleSpec(), podTemplate: { resources: { limits: { gpu: '1' } } } }),
    'spec.podTemplate.resources.limits',
  ],
  [
    'SQL assertions without a test-restore schedule (they would never run)',
    backupSchedule('s23', {
      ...scheduleSpec(),
      verify: { sql: [{ name: 'orders', query: 'select true', expect: 't' }] },
    }),
    'spec.verify.sql',
  ],
  [
    'half a GPU',
    backupSchedule('s22', {
      ...scheduleSpec(),
      podTemplate: {
        resources: { requests: { 'nvidia.com/gpu': '0.5' }, limits: { 'nvidia.com/gpu': '0.5' } },
      },
    }),
    'spec.podTemplate.resources.requests',
  ],
  [
    'an invalid nodeSelector key',
    backupSchedule('s17', { ...scheduleSpec(), podTemplate: { nodeSelector: { 'disk type': 'ssd' } } }),
    'spec.podTemplate.nodeSelector',
  ],
  [
    'a toleration Exists with a value',
    backupSchedule('s18', {
      ...scheduleSpec(),
      podTemplate: { tolerations: [{ key: 'dedicated', operator: 'Exists', value: 'backups' }] },
    }),
    'spec.podTemplate.tolerations[0].value',
  ],
  [
    'an RPO objective of 0s',
    backupSchedule('s19', { ...scheduleSpec(), objectives: { rpo: '0s' } }),
    'spec.objectives.rpo',
  ],
  [
    'an image reference with a space',
    backupSchedule('s20', { ...scheduleSpec(), podTemplate: { image: 'postgres 16' } }),
    'spec.podTemplate.image',
  ],
  [
    'a Secret key ..',
    backupSchedule('s21', {
      ...scheduleSpec(),
      notify: [{ name: 'n', type: 'webhook', urlSecretRef: { name: 's', key: '..' } }],
    }),
    'spec.notify[0].urlSecretRef.key',
  ],
  [
    'a flag key ..',
    rollbackPlan('p16', {
      scope: 'feature',
      targets: { featureFlags: { configMapRef: { name: 'f' }, disable: ['..'] } },
    }),
    'spec.targets.featureFlags.disable[0]',
  ],
  [
    'an RTO objective of 0s',
    rollbackPlan('p17', appPlan({ deployments: [{ name: 'a' }] }, { objectives: { rto: '0s' } })),
    'spec.objectives.rto',
  ],
  [
    'a validation timeout of 0ms',
    rollbackPlan('p18', appPlan({ deployments: [{ name: 'a' }] }, { validation: { timeout: '0ms' } })),
    'spec.validation.timeout',
  ],
  [
    'an HTTP check period of 0s',
    rollbackPlan(
      'p19',
      appPlan(
        { deployments: [{ name: 'a' }] },
        { validation: { http: [{ url: 'http://a/healthz', expectStatus: 200, period: '0m' }] } },
      ),
    ),
    'spec.validation.http[0].period',
  ],
  // Regression (review): an explicit default-looking name shared a monitor with an unnamed condition and
  // made status.triggerConditions a duplicate key (422, the plan Failed).
  [
    'a trigger condition named like a default name',
    rollbackPlan(
      'p20',
      appPlan(
        { deployments: [{ name: 'a' }] },
        {
          severity: 'critical',
          trigger: {
            mode: 'auto',
            conditions: [
              { type: 'HTTPCheck', url: 'http://a/healthz' },
              { type: 'HTTPCheck', name: 'httpcheck-0', url: 'http://a/other' },
            ],
          },
        },
      ),
    ),
    'spec.trigger.conditions[1].name',
  ],
  [
    'a trigger probe period under 1s',
    rollbackPlan(
      'p21',
      appPlan(
        { deployments: [{ name: 'a' }] },
        {
          severity: 'critical',
          trigger: { mode: 'auto', conditions: [{ type: 'HTTPCheck', url: 'http://a/', period: '500ms' }] },
        },
      ),
    ),
    'spec.trigger.conditions[0].period',
  ],
];

function apiError(e: unknown): { code: number; message: string } {
  if (!(e instanceof ApiException)) throw e;
  const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
  return { code: e.code, message: String(body?.message ?? e.body) };
}

describe('CRD validation on a real kube-apiserver', () => {
  let namespace = '';
  const create = (obj: Obj) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: plural[obj.kind as Kind],
      body: obj,
    });
  const mergePatch = (kind: Kind, name: string, body: Obj, subresource?: 'status') => {
    const params = { group: GROUP, version: VERSION, namespace, plural: plural[kind], name, body };
    const ct = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    return subresource
      ? custom.patchNamespacedCustomObjectStatus(params, ct)
      : custom.patchNamespacedCustomObject(params, ct);
  };

  beforeAll(async () => {
    namespace = await createTestNamespace('crd');
  });
  afterAll(async () => {
    await deleteTestNamespace(namespace);
  });

  it('installs structural CRDs', async () => {
    for (const p of Object.values(plural)) {
      const crd = JSON.parse(await kubectl('get', 'crd', `${p}.${GROUP}`, '-o', 'json'));
      const types = crd.status.conditions.map((c: Obj) => `${c.type}=${c.status}`);
      expect(types, `conditions of ${p}`).toContain('Established=True');
      expect(types.join(), `${p} must be structural`).not.toContain('NonStructuralSchema=True');
    }
  });

  // Through kubectl and YAML, as users apply them: kubectl reads YAML 1.1, where e.g. a key `on` is a
  // boolean. The stored spec must equal the one sent, so no field was pruned on the way.
  it.each([
    ['RollbackPlan', rollbackPlan('checkout-emergency', planSpec())],
    ['BackupSchedule', backupSchedule('shop-db', scheduleSpec())],
  ])('accepts the %s sample from API-SKETCH.md without pruning a field', async (kind, obj) => {
    const file = join(mkdtempSync(join(tmpdir(), 'crd-samples-')), `${obj.metadata.name}.yaml`);
    writeFileSync(file, stringify(obj));
    await kubectl('create', '-n', namespace, '-f', file);
    const stored = JSON.parse(await kubectl('get', '-n', namespace, '-f', file, '-o', 'json'));
    expect(stored.spec, `${kind} spec as stored by the API server`).toEqual(obj.spec);
    const parse = kind === 'RollbackPlan' ? parseRollbackPlan : parseBackupSchedule;
    expect(parse(stored)).toMatchObject({ ok: true });
  });

  it.each([
    ['a dotted RollbackPlan name', rollbackPlan('undo.web', appPlan({ deployments: [{ name: 'a' }] }))],
    [
      'a 56-character RollbackPlan name',
      rollbackPlan('p'.repeat(56), appPlan({ deployments: [{ name: 'a' }] })),
    ],
    [
      'a 44-character BackupSchedule name',
      backupSchedule('b'.repeat(44), {
        database: { secretRef: { name: 's' } },
        storage: { persistentVolumeClaim: { claimName: 'c' } },
      }),
    ],
  ])('rejects %s, which would break the names of the Jobs it creates', async (_what, obj) => {
    const err = await create(obj).then(
      () => undefined,
      (e: unknown) => apiError(e),
    );
    expect(err, 'the API server accepted the name').toBeDefined();
    expect(err!.code).toBe(422);
    expect(err!.message).toMatch(/metadata\.name of a (RollbackPlan|BackupSchedule) must be a DNS label/);
    const parsed = obj.kind === 'RollbackPlan' ? parseRollbackPlan(obj) : parseBackupSchedule(obj);
    expect(parsed.ok ? [] : parsed.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/must be a DNS label/),
    ]);
  });

  it.each(invalid)('rejects %s, naming the field', async (_what, obj, field, runtimePath = field) => {
    const err = await create(obj).then(
      () => undefined,
      (e: unknown) => apiError(e),
    );
    expect(err, `the API server accepted an object with ${field} invalid`).toBeDefined();
    expect(err!.code).toBe(422);
    expect(err!.message).toContain(`${field}:`);
    const parsed = obj.kind === 'RollbackPlan' ? parseRollbackPlan(obj) : parseBackupSchedule(obj);
    const paths = parsed.ok ? [] : parsed.problems.map((p) => p.path);
    expect(
      paths.some((p) => p.startsWith(runtimePath)),
      `the runtime parse should report ${runtimePath}; it reported ${JSON.stringify(paths)}`,
    ).toBe(true);
  });

  // CEL loads zones the way CronJob validation does (Go's database, case-sensitive); the runtime parse has no
  // twin (Node's ICU database differs): the controller reports UnknownTimeZone instead.
  it.each([
    ['Mars/Olympus_Mons', 'tz1'],
    ['Local', 'tz2'],
    ['europe/berlin', 'tz3'],
  ])('rejects the time zone %s, which a CronJob would not accept', async (tz, name) => {
    const err = await create(backupSchedule(name, { ...scheduleSpec(), timeZone: tz })).then(
      () => undefined,
      (e: unknown) => apiError(e),
    );
    expect(err, `the API server accepted timeZone ${tz}`).toBeDefined();
    expect(err!.code).toBe(422);
    expect(err!.message).toContain('spec.timeZone:');
    expect(err!.message).toContain('must be an IANA time zone');
  });

  it.each([
    ['the schedule', { schedule: '0,30 8-18/2 * jan-MAR mon-fri' }],
    ['? in the day fields', { schedule: '0 0 ? * ?' }],
    ['blanks around a 5-field schedule (robfig splits with strings.Fields)', { schedule: ' 0 */4 * * * ' }],
    ['every macro', { schedule: '@midnight', verify: { testRestoreSchedule: '@annually' } }],
    ['a positive fraction of an hour', { objectives: { rpo: '0.5h' } }],
    [
      'extended resources and hugepages',
      {
        podTemplate: {
          resources: {
            requests: { 'example.com/gpu': 1 },
            limits: { 'example.com/gpu': 1, 'hugepages-2Mi': '2Mi' },
          },
        },
      },
    ],
    ['a toleration of every taint', { podTemplate: { tolerations: [{ operator: 'Exists' }] } }],
    [
      'a qualified nodeSelector key',
      { podTemplate: { nodeSelector: { 'topology.kubernetes.io/zone': 'eu-1a' } } },
    ],
  ])('still accepts %s', async (_what, extra) => {
    const name = `ok-${Math.random().toString(36).slice(2, 8)}`;
    await create(backupSchedule(name, { ...scheduleSpec(), ...extra }));
    expect(parseBackupSchedule(backupSchedule(name, { ...scheduleSpec(), ...extra }))).toMatchObject({
      ok: true,
    });
  });

  describe('an existing RollbackPlan', () => {
    const name = 'immutable';
    beforeAll(async () => {
      await create(rollbackPlan(name, appPlan({ deployments: [{ name: 'checkout' }] }, { reason: 'first' })));
    });

    it('rejects a change to its spec', async () => {
      const err = await mergePatch('RollbackPlan', name, { spec: { reason: 'second' } }).then(
        () => undefined,
        (e: unknown) => apiError(e),
      );
      expect(err, 'a spec change was accepted').toBeDefined();
      expect(err!.code).toBe(422);
      expect(err!.message).toContain(
        'spec is immutable once created (like a Job); create a new RollbackPlan',
      );
    });

    it('accepts metadata and status changes, and shows them in kubectl get', async () => {
      await mergePatch('RollbackPlan', name, { metadata: { annotations: { [Annotation.Rearm]: '1' } } });
      const now = new Date().toISOString();
      await mergePatch(
        'RollbackPlan',
        name,
        {
          status: {
            phase: 'Succeeded',
            durationSeconds: 42,
            conditions: [
              {
                type: 'Ready',
                status: 'True',
                reason: 'Succeeded',
                message: 'done',
                lastTransitionTime: now,
              },
            ],
            steps: [{ name: 'PreValidation', startedAt: now, finishedAt: now, result: 'Succeeded' }],
          },
        },
        'status',
      );
      const table = await kubectl('get', 'rbp', name, '-n', namespace);
      const [header, row] = table.trim().split('\n');
      expect(header?.split(/\s{2,}/)).toEqual([
        'NAME',
        'SCOPE',
        'PHASE',
        'READY',
        'REASON',
        'DURATION',
        'AGE',
      ]);
      expect(row?.split(/\s{2,}/).slice(0, 6)).toEqual([name, 'app', 'Succeeded', 'True', 'Succeeded', '42']);
    });

    it('validates status as well', async () => {
      const err = await mergePatch('RollbackPlan', name, { status: { phase: 'Exploded' } }, 'status').then(
        () => undefined,
        (e: unknown) => apiError(e),
      );
      expect(err?.code).toBe(422);
      expect(err?.message).toContain('status.phase:');
    });
  });

  it('shows the BackupSchedule columns and lists both kinds under the nxt category', async () => {
    const table = await kubectl('get', 'bks', '-n', namespace);
    expect(
      table
        .split('\n')[0]
        ?.trim()
        .split(/\s{2,}/),
    ).toEqual(['NAME', 'SCHEDULE', 'LAST BACKUP', 'RPO', 'READY', 'AGE']);
    const names = await kubectl('get', 'nxt', '-n', namespace, '-o', 'name');
    expect(names).toContain(`backupschedule.${GROUP}/shop-db`);
    expect(names).toContain(`rollbackplan.${GROUP}/checkout-emergency`);
  });
});
