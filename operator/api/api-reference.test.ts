import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { DEFAULT_CONFIRM_FOR } from '../rollback/decision.js';
import { code, collectFields, escape, renderApiReference, renderKind, wrap } from './api-reference.js';
import { buildCrd, type JSONSchemaProps } from './crd-generator.js';
import {
  BACKUP_SCHEDULE_DEFAULTS,
  BACKUP_SCHEDULE_DEFAULT_PATHS,
  BACKUP_SCHEDULE_INFO,
  BACKUP_SCHEDULE_REFERENCE,
  BackupScheduleEvents,
  withBackupScheduleDefaults,
} from './v1alpha1/backupschedule.js';
import {
  Annotation,
  ConditionType,
  ObjectMeta,
  mapList,
  showDefault,
  withCelRules,
  type KindInfo,
  type KindReference,
} from './v1alpha1/common.js';
import {
  ROLLBACK_PLAN_DEFAULTS,
  ROLLBACK_PLAN_DEFAULT_PATHS,
  ROLLBACK_PLAN_INFO,
  ROLLBACK_PLAN_REFERENCE,
  RollbackPlanEvents,
  RollbackPlanPhases,
  withRollbackPlanDefaults,
} from './v1alpha1/rollbackplan.js';

// A small kind with one of each thing the renderer must handle: an enum, nested objects, a map list whose items
// carry a CEL rule, a map, a set, a rule on spec with a fieldPath, and runtime defaults.
const Item = withCelRules(
  z.object({ name: z.string().min(1).max(20), size: z.int().min(1).max(5).optional() }),
  [{ rule: 'self.size != 3', message: 'spec.items[].size must not be 3' }],
);
const TinySpec = withCelRules(
  z.object({
    color: z.enum(['red', 'blue']).meta({ description: 'The colour of <thing>_x_.' }),
    nested: z
      .object({
        deep: z.object({
          leaf: z
            .string()
            .max(10)
            .regex(/^[a-z]+$/)
            .optional(),
        }),
      })
      .optional(),
    items: mapList(Item, 'name', 4).optional(),
    labels: z.record(z.string().max(63), z.string().max(63)).meta({ maxProperties: 8 }).optional(),
    tags: z
      .array(z.enum(['a', 'b']))
      .max(2)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'set' }),
    sizes: z.array(z.int().min(0)).max(3).optional(), // no list type: atomic, as the API server treats it
  }),
  [
    {
      rule: "self.color != 'red' || has(self.nested)",
      message: 'spec.nested is required when color is red',
      fieldPath: '.nested',
    },
  ],
);
const TINY: KindInfo = {
  kind: 'Tiny',
  listKind: 'TinyList',
  plural: 'tinies',
  singular: 'tiny',
  shortNames: ['tn'],
  categories: ['nxt'],
  schema: z.object({
    apiVersion: z.literal('x/v1'),
    kind: z.literal('Tiny'),
    metadata: ObjectMeta,
    spec: TinySpec,
    status: z.object({ phase: z.enum(['Up', 'Down']).optional() }).optional(),
  }),
  printerColumns: [
    { name: 'Color', type: 'string', jsonPath: '.spec.color', priority: 1, description: 'red | blue' },
  ],
};
const TINY_REFERENCE: KindReference = {
  guide: 'tiny.md',
  defaults: { 'spec.nested.deep.leaf': '`abc`', 'spec.items[].size': '`1`' },
  conditions: { Ready: 'True when <ready>.' },
  phases: { Up: 'Running.', Down: 'Stopped.' },
  annotations: { 'example.com/poke': 'Pokes it.' },
  events: { Poked: 'It was poked.' },
};

const section = (text: string, heading: string) => {
  const start = text.indexOf(`${heading}\n`);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const end = text.indexOf('\n#', start + heading.length);
  return text.slice(start, end < 0 ? undefined : end + 1);
};

describe('renderKind on a small schema', () => {
  const text = renderKind(TINY, TINY_REFERENCE).join('\n');

  it('lists every spec field with its path, type, required, description, default and validation', () => {
    expect(section(text, '### Tiny spec')).toBe(
      [
        '### Tiny spec',
        '',
        '- **`spec`** (object, required)',
        "  - rule `self.color != 'red' || has(self.nested)`: spec.nested is required when color is red (reported at",
        '    `.nested`)',
        '- **`spec.color`** (string, required): The colour of \\<thing\\>\\_x\\_.',
        '  - one of `red`, `blue`',
        '- **`spec.nested`** (object, optional)',
        '- **`spec.nested.deep`** (object, required)',
        '- **`spec.nested.deep.leaf`** (string, optional)',
        '  - default: `abc`',
        '  - at most 10 characters',
        '  - pattern `^[a-z]+$`',
        '- **`spec.items`** (list of object, optional)',
        '  - list type: map (key `name`): one item per key, merged item by item',
        '  - at most 4 items',
        '  - each item: rule `self.size != 3`: spec.items[].size must not be 3',
        '- **`spec.items[].name`** (string, required)',
        '  - 1–20 characters',
        '- **`spec.items[].size`** (integer, optional)',
        '  - default: `1`',
        '  - 1–5',
        '- **`spec.labels`** (map of string to string, optional)',
        '  - at most 8 entries',
        '  - each value: at most 63 characters',
        '- **`spec.tags`** (list of string, optional)',
        '  - list type: set: unique values',
        '  - at most 2 items',
        '  - each item: one of `a`, `b`',
        '- **`spec.sizes`** (list of integer, optional)',
        '  - list type: atomic: replaced as a whole',
        '  - at most 3 items',
        '  - each item: ≥ 0',
        '',
        '',
      ].join('\n'),
    );
  });

  it('lists status, printer columns, conditions, phases, annotations and events', () => {
    expect(section(text, '### Tiny status')).toContain(
      '- **`status.phase`** (string, optional)\n  - one of `Up`, `Down`\n',
    );
    expect(section(text, '### Tiny printer columns')).toContain(
      '| Color | string | `.spec.color` | `-o wide` | red \\| blue |',
    );
    expect(section(text, '### Tiny conditions')).toContain('- `Ready`: True when \\<ready\\>.');
    expect(section(text, '### Tiny phases')).toContain('- `Up`: Running.\n- `Down`: Stopped.');
    expect(section(text, '### Tiny annotations')).toContain('- `example.com/poke`: Pokes it.');
    expect(section(text, '### Tiny events')).toContain('- `Poked`: It was poked.');
    const unwrapped = text.replace(/\n(?![-#\n])\s*/g, ' ');
    expect(unwrapped).toContain('Kubernetes Events the operator records are listed in [tiny.md](tiny.md).');
    expect(unwrapped).toContain('How to write one: [tiny.md](tiny.md).');
    expect(text).toMatch(/short names `tn`, categories `nxt`/);
  });

  it('refuses a default for a field the schema does not have (a renamed field leaves none behind)', () => {
    expect(() => renderKind(TINY, { ...TINY_REFERENCE, defaults: { 'spec.nested.leaf': '`abc`' } })).toThrow(
      'Tiny: default for spec.nested.leaf, which is not a field of the schema',
    );
  });

  it('prints a named pattern once and refers to it from the fields', () => {
    const out = renderApiReference([{ info: TINY, reference: TINY_REFERENCE }], {
      'lower-case word': '^[a-z]+$',
    });
    expect(out).toContain('  - pattern lower-case word ([Patterns](#patterns))\n');
    expect(section(out, '## Patterns')).toContain('- lower-case word:\n  `^[a-z]+$`\n');
    expect(out.match(/\^\[a-z\]\+\$/g)).toHaveLength(1);
  });
});

describe('Markdown helpers', () => {
  it('code() shows any text verbatim, backticks included', () => {
    expect(code('a|b')).toBe('`a|b`');
    expect(code('x `y` z')).toBe('``x `y` z``');
    expect(code('`y`')).toBe('`` `y` ``');
    expect(code(' a ')).toBe('`  a  `');
  });

  it('escape() keeps tags and emphasis from eating the text, but leaves code spans alone', () => {
    expect(escape('<db>_pre_<id> and `<db>_pre_<id>`')).toBe('\\<db\\>\\_pre\\_\\<id\\> and `<db>_pre_<id>`');
  });

  it('wrap() breaks at spaces outside code spans, never before a block marker', () => {
    const long = `${'word '.repeat(20)}\`${'a '.repeat(60)}\` end`;
    const lines = wrap(long, '- ', '  ');
    expect(lines.join(' ').replace(/\s+/g, ' ')).toBe(`- ${long}`.replace(/\s+/g, ' '));
    expect(lines.some((l) => l.includes(`\`${'a '.repeat(60)}\``))).toBe(true); // the code span stays on one line
    for (const l of lines.slice(1)) expect(l.startsWith('  ')).toBe(true);

    const risky = `${'x'.repeat(104)} - y`; // a break before "-" would start a new list item
    expect(wrap(risky)).toEqual([risky]);
    expect(wrap(`${'x'.repeat(104)} 12. y`)).toEqual([`${'x'.repeat(104)} 12. y`]);
    expect(wrap(`${'x'.repeat(104)} yyy zzzz`)).toEqual([`${'x'.repeat(104)} yyy`, 'zzzz']);
  });
});

// --- the reference data next to the schemas ------------------------------------------------------------

const fieldPaths = (info: KindInfo) => {
  const crd = buildCrd(info) as { spec: { versions: { schema: { openAPIV3Schema: JSONSchemaProps } }[] } };
  return new Set(collectFields(crd.spec.versions[0]!.schema.openAPIV3Schema).map((f) => f.path));
};
/** The value at `spec.a.b` of an effective spec. */
const at = (spec: unknown, path: string) =>
  path
    .split('.')
    .slice(1)
    .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], spec);

describe.each([
  {
    kind: 'RollbackPlan',
    info: ROLLBACK_PLAN_INFO,
    reference: ROLLBACK_PLAN_REFERENCE,
    defaults: ROLLBACK_PLAN_DEFAULTS as Record<string, unknown>,
    paths: ROLLBACK_PLAN_DEFAULT_PATHS as Record<string, string>,
    // a spec with every defaulted object present but empty, so each default shows up in the effective spec
    effective: () =>
      withRollbackPlanDefaults({
        scope: 'database',
        targets: { database: { backupScheduleRef: { name: 'db' } } },
      }),
  },
  {
    kind: 'BackupSchedule',
    info: BACKUP_SCHEDULE_INFO,
    reference: BACKUP_SCHEDULE_REFERENCE,
    defaults: BACKUP_SCHEDULE_DEFAULTS as Record<string, unknown>,
    paths: BACKUP_SCHEDULE_DEFAULT_PATHS as Record<string, string>,
    effective: () =>
      withBackupScheduleDefaults({
        database: { secretRef: { name: 's' } },
        storage: { persistentVolumeClaim: { claimName: 'c' } },
      }),
  },
])('$kind reference', ({ info, reference, defaults, paths, effective }) => {
  it('lists every runtime default, at the path where the defaulting function puts it', () => {
    expect(Object.keys(paths).sort()).toEqual(Object.keys(defaults).sort());
    const spec = effective();
    for (const [key, path] of Object.entries(paths)) {
      expect(at(spec, path), `${key} → ${path}`).toEqual(defaults[key]);
      expect(reference.defaults[path], `${path} in the reference`).toContain(showDefault(defaults[key]));
    }
  });

  it('names only fields the schema has', () => {
    const fields = fieldPaths(info);
    for (const path of Object.keys(reference.defaults)) expect(fields.has(path), path).toBe(true);
  });
});

describe('reference completeness', () => {
  it('gives every condition type, annotation and event a meaning', () => {
    const conditions = new Set([
      ...Object.keys(ROLLBACK_PLAN_REFERENCE.conditions),
      ...Object.keys(BACKUP_SCHEDULE_REFERENCE.conditions),
    ]);
    for (const c of Object.values(ConditionType)) expect(conditions.has(c), c).toBe(true);
    expect(
      [
        ...Object.keys(ROLLBACK_PLAN_REFERENCE.annotations),
        ...Object.keys(BACKUP_SCHEDULE_REFERENCE.annotations),
      ].sort(),
    ).toEqual(Object.values(Annotation).sort());
    expect(Object.keys(ROLLBACK_PLAN_REFERENCE.events)).toEqual([...RollbackPlanEvents]);
    expect(Object.keys(BACKUP_SCHEDULE_REFERENCE.events)).toEqual([...BackupScheduleEvents]);
    expect(Object.keys(ROLLBACK_PLAN_REFERENCE.phases ?? {})).toEqual([...RollbackPlanPhases]);
  });

  it('shows the confirmFor default the decision matrix uses', () => {
    expect(ROLLBACK_PLAN_REFERENCE.defaults['spec.trigger.confirmFor']).toBe(`\`${DEFAULT_CONFIRM_FOR}\``);
  });
});
