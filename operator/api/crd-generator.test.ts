import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import {
  NonStructuralSchemaError,
  buildCrd,
  sanitizeSchema,
  toStructuralSchema,
  type JSONSchemaProps,
} from './crd-generator.js';
import { BACKUP_SCHEDULE_INFO } from './v1alpha1/backupschedule.js';
import { ROLLBACK_PLAN_INFO } from './v1alpha1/rollbackplan.js';

type Node = JSONSchemaProps;
/** Calls visit for every schema node with a kubectl-style path. */
function walk(node: Node, visit: (n: Node, path: string) => void, path = '') {
  visit(node, path);
  for (const [k, v] of Object.entries((node.properties as Record<string, Node>) ?? {})) {
    walk(v, visit, path ? `${path}.${k}` : k);
  }
  if (node.items) walk(node.items as Node, visit, `${path}[]`);
  if (typeof node.additionalProperties === 'object')
    walk(node.additionalProperties as Node, visit, `${path}{}`);
}

const crds: Record<'RollbackPlan' | 'BackupSchedule', Record<string, any>> = {
  RollbackPlan: buildCrd(ROLLBACK_PLAN_INFO),
  BackupSchedule: buildCrd(BACKUP_SCHEDULE_INFO),
};
const rootSchema = (crd: Record<string, any>): Node => crd.spec.versions[0].schema.openAPIV3Schema;

describe('sanitizeSchema rejects what is not structural', () => {
  it.each<[string, z.ZodType, RegExp]>([
    ['a union', z.object({ a: z.union([z.string(), z.boolean()]) }), /^a: anyOf from a zod union/],
    [
      'two regexes on one string',
      z.object({ a: z.string().regex(/a/).regex(/b/) }),
      /^a: allOf is not structural/,
    ],
    ['a schema default', z.object({ a: z.string().default('x') }), /^a: no schema defaults/],
    ['an untyped field', z.object({ a: z.unknown() }), /^a: no type/],
    ['a reused schema with an id', z.object({ a: z.object({ b: z.string() }).meta({ id: 'B' }) }), /\$ref/],
    [
      'properties with a typed catchall',
      z.object({ a: z.object({ b: z.string() }).catchall(z.string()) }),
      /^a: properties with a typed catchall/,
    ],
    ['a YAML 1.1 boolean key', z.object({ off: z.string() }), /field "off" is read as a boolean/],
    [
      'a map list keyed by an optional field',
      z.object({
        l: z.array(z.object({ k: z.string().optional() })).meta({
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['k'],
        }),
      }),
      /^l: map list key "k" must be a required item field/,
    ],
    [
      'an int-or-string with integer bounds',
      z.object({ q: z.union([z.int().min(0), z.string()]) }),
      /^q: the integer branch/,
    ],
  ])('%s', (_what, schema, message) => {
    expect(() => toStructuralSchema(schema)).toThrow(NonStructuralSchemaError);
    expect(() => toStructuralSchema(schema)).toThrow(message);
  });

  it('rejects keywords a CRD does not know, and uniqueItems', () => {
    expect(() => sanitizeSchema({ type: 'string', readOnly: true })).toThrow('keyword "readOnly"');
    expect(() => sanitizeSchema({ type: 'array', items: { type: 'string' }, uniqueItems: true })).toThrow(
      'uniqueItems',
    );
  });
});

describe('sanitizeSchema translates what has a structural form', () => {
  it('int-or-string keeps the string constraints on the node', () => {
    expect(
      toStructuralSchema(
        z.union([
          z.int(),
          z
            .string()
            .max(8)
            .regex(/^[0-9]+Gi$/),
        ]),
      ),
    ).toEqual({
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      'x-kubernetes-int-or-string': true,
      maxLength: 8,
      pattern: '^[0-9]+Gi$',
    });
  });

  it('loose objects keep unknown fields; strict and plain objects do not', () => {
    expect(toStructuralSchema(z.looseObject({}))).toEqual({
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
    });
    expect(toStructuralSchema(z.strictObject({ a: z.boolean() }))).toEqual({
      type: 'object',
      properties: { a: { type: 'boolean' } },
      required: ['a'],
    });
  });

  it('drops the safe-integer bounds zod adds to every integer, but not real bounds', () => {
    expect(toStructuralSchema(z.int())).toEqual({ type: 'integer' });
    expect(toStructuralSchema(z.int().min(1).max(5))).toEqual({ type: 'integer', minimum: 1, maximum: 5 });
  });
});

describe.each(Object.entries(crds))('the %s CRD', (kind, crd: Record<string, any>) => {
  const root = rootSchema(crd);
  const nodes: [string, Node][] = [];
  walk(root, (n, p) => nodes.push([p, n]));

  it('is a namespaced v1 CRD with one stored version and a status subresource', () => {
    expect(crd.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names.categories).toEqual(['nxt']);
    expect(crd.spec.versions).toHaveLength(1);
    expect(crd.spec.versions[0]).toMatchObject({
      name: 'v1alpha1',
      served: true,
      storage: true,
      subresources: { status: {} },
    });
  });

  it('leaves apiVersion, kind and metadata to the API server', () => {
    expect(root.properties).toMatchObject({ metadata: { type: 'object' }, apiVersion: { type: 'string' } });
    expect(root.required).toEqual(['spec']);
  });

  it('has no schema defaults', () => {
    expect(nodes.filter(([, n]) => 'default' in n).map(([p]) => p)).toEqual([]);
  });

  // CEL cost estimation needs bounded strings and lists, or the API server rejects the CRD.
  it('bounds every string and list', () => {
    const unbounded = nodes
      .filter(([p]) => !['apiVersion', 'kind'].includes(p))
      .filter(
        ([, n]) =>
          (n.type === 'string' && !n.enum && n.maxLength === undefined) ||
          (n.type === 'array' && n.maxItems === undefined),
      )
      .map(([p]) => p);
    expect(unbounded, 'fields without maxLength/maxItems').toEqual([]);
  });

  it('types status fully, except the free-form dry-run report', () => {
    const free = nodes.filter(
      ([p, n]) => p.startsWith('status') && n['x-kubernetes-preserve-unknown-fields'],
    );
    expect(free.map(([p]) => p)).toEqual(kind === 'RollbackPlan' ? ['status.dryRunReport'] : []);
  });

  it('keys conditions by type', () => {
    const conditions = (root.properties as any).status.properties.conditions;
    expect(conditions).toMatchObject({
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    });
  });

  it('gives every list a list type', () => {
    const untyped = nodes
      .filter(([, n]) => n.type === 'array' && !n['x-kubernetes-list-type'])
      .map(([p]) => p);
    expect(untyped).toEqual([]);
  });
});

describe('printer columns', () => {
  const columns = (crd: Record<string, any>) =>
    crd.spec.versions[0].additionalPrinterColumns.map((c: any) => `${c.name}=${c.jsonPath}`);

  it('RollbackPlan shows scope, phase, readiness and duration', () => {
    expect(columns(crds.RollbackPlan)).toEqual([
      'Scope=.spec.scope',
      'Phase=.status.phase',
      'Ready=.status.conditions[?(@.type=="Ready")].status',
      'Reason=.status.conditions[?(@.type=="Ready")].reason',
      'Duration=.status.durationSeconds',
      'Age=.metadata.creationTimestamp',
    ]);
  });

  it('BackupSchedule shows the effective schedule from status', () => {
    expect(columns(crds.BackupSchedule)).toEqual([
      'Schedule=.status.schedule',
      'Last Backup=.status.lastSuccessfulBackup.finishedAt',
      'RPO=.status.rpoSeconds',
      'Ready=.status.conditions[?(@.type=="Ready")].status',
      'Age=.metadata.creationTimestamp',
    ]);
  });

  it('every column path exists in the schema', () => {
    for (const crd of Object.values(crds)) {
      const paths = new Set<string>();
      walk(rootSchema(crd), (_n, p) => paths.add(`.${p}`));
      for (const c of crd.spec.versions[0].additionalPrinterColumns) {
        const path = c.jsonPath.replace(/\[\?\(@\.type=="\w+"\)\]/, '[]');
        if (!path.startsWith('.metadata'))
          expect(paths, `${crd.spec.names.kind} column ${c.name}`).toContain(path);
      }
    }
  });
});
