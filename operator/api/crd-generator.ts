import * as z from 'zod';
import { GROUP, VERSION, type KindInfo } from './v1alpha1/common.js';

// Turns the zod schemas into CustomResourceDefinitions. apiextensions.k8s.io/v1 requires a *structural*
// schema (every node typed, no typed branches in anyOf/oneOf/allOf, no $ref, ...). Rather than patch
// whatever zod emits into shape, the sanitiser accepts a known set of keywords and throws, naming the
// path, on anything it cannot translate faithfully: a schema that needs fixing fails at `npm run generate`
// instead of at `kubectl apply` (or, worse, validating less than the runtime parse does).

export type JSONSchemaProps = { [key: string]: unknown };

/** JSONSchemaProps fields the sanitiser passes through unchanged (besides the nested ones it recurses into). */
const PASS_THROUGH = new Set([
  'type',
  'format',
  'title',
  'description',
  'required',
  'enum',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'nullable',
  'example',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
]);
const NESTED = new Set(['properties', 'items', 'additionalProperties', 'anyOf']);
// The bounds zod puts on every z.int(); JavaScript's limit, not a rule of ours, so not worth a CRD line.
const SAFE_INT_BOUNDS = { minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER };

// kubectl parses manifests as YAML 1.1, where these unquoted keys are booleans: `on: [...]` arrives as
// `"true": [...]` and is pruned without a word.
const YAML11_BOOLEANS = new Set(
  ['y', 'yes', 'n', 'no', 'true', 'false', 'on', 'off'].flatMap((w) => [
    w,
    w.toUpperCase(),
    w[0]!.toUpperCase() + w.slice(1),
  ]),
);

export class NonStructuralSchemaError extends Error {
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = 'NonStructuralSchemaError';
  }
}

/** The structural openAPIV3Schema for a zod schema. Throws NonStructuralSchemaError when there is none. */
export function toStructuralSchema(schema: z.ZodType): JSONSchemaProps {
  const json = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'input',
    unrepresentable: 'throw',
    cycles: 'throw',
    reused: 'inline',
  }) as JSONSchemaProps;
  delete json.$schema;
  return sanitizeSchema(json);
}

/** Returns a structural copy of an OpenAPI node emitted by zod; throws on anything non-structural. */
export function sanitizeSchema(node: JSONSchemaProps, path = '(root)'): JSONSchemaProps {
  const fail = (problem: string): never => {
    throw new NonStructuralSchemaError(path, problem);
  };
  if ('$ref' in node || '$defs' in node || 'definitions' in node) {
    fail('$ref/definitions are not allowed in a CRD (a schema with .meta({ id })?)');
  }
  if ('default' in node) fail('no schema defaults: they show up as GitOps drift; apply them at runtime');
  if (node.uniqueItems === true) fail('uniqueItems is not allowed in a CRD; use x-kubernetes-list-type: set');
  for (const key of ['allOf', 'oneOf', 'not']) {
    if (key in node) fail(`${key} is not structural (several .regex() on one string, or an intersection?)`);
  }
  const out: JSONSchemaProps = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'const') out.enum = [value];
    else if (PASS_THROUGH.has(key)) out[key] = value;
    else if (!NESTED.has(key)) fail(`keyword "${key}" is not supported in a CRD schema`);
  }
  if (out.type === 'integer') {
    if (out.minimum === SAFE_INT_BOUNDS.minimum) delete out.minimum;
    if (out.maximum === SAFE_INT_BOUNDS.maximum) delete out.maximum;
  }
  if (node.anyOf) Object.assign(out, intOrString(node.anyOf as JSONSchemaProps[], fail));

  const props = node.properties as Record<string, JSONSchemaProps> | undefined;
  const extra = node.additionalProperties;
  if (extra === true || isEmptySchema(extra)) {
    // z.looseObject / z.record(z.string(), z.unknown()): keep unknown fields instead of pruning them
    out['x-kubernetes-preserve-unknown-fields'] = true;
  } else if (extra && typeof extra === 'object') {
    if (props && Object.keys(props).length > 0)
      fail('properties with a typed catchall are not allowed in a CRD');
    out.additionalProperties = sanitizeSchema(extra as JSONSchemaProps, `${path}{}`);
  }
  for (const k of Object.keys(props ?? {})) {
    if (YAML11_BOOLEANS.has(k))
      fail(`field "${k}" is read as a boolean by YAML 1.1 parsers (kubectl); rename it`);
  }
  if (props && Object.keys(props).length > 0) {
    out.properties = Object.fromEntries(
      Object.entries(props).map(([k, v]) => [k, sanitizeSchema(v, path === '(root)' ? k : `${path}.${k}`)]),
    );
  }
  if (node.items) {
    if (Array.isArray(node.items)) fail('tuples are not allowed in a CRD');
    out.items = sanitizeSchema(node.items as JSONSchemaProps, `${path}[]`);
  }

  if (!out.type && !out['x-kubernetes-int-or-string'] && !out['x-kubernetes-preserve-unknown-fields']) {
    fail('no type (z.unknown()/z.any()?); use z.looseObject({}) for a free-form object');
  }
  if (out['x-kubernetes-list-type'] === 'map') checkMapList(out, fail);
  return out;
}

const isEmptySchema = (v: unknown) => typeof v === 'object' && v !== null && Object.keys(v).length === 0;

/** `z.union([z.int(), z.string()])`, the only union with a structural form (like resource.Quantity). */
function intOrString(branches: JSONSchemaProps[], fail: (p: string) => never): JSONSchemaProps {
  const int = branches.find((b) => b.type === 'integer');
  const str = branches.find((b) => b.type === 'string');
  if (branches.length !== 2 || !int || !str) {
    fail('anyOf from a zod union is not structural; use one object with optional fields and a CEL rule');
  }
  const { type: _i, minimum, maximum, ...intRest } = int!;
  if (Object.keys(intRest).length > 0 || (minimum ?? SAFE_INT_BOUNDS.minimum) !== SAFE_INT_BOUNDS.minimum) {
    fail('the integer branch of an int-or-string cannot carry constraints');
  }
  if ((maximum ?? SAFE_INT_BOUNDS.maximum) !== SAFE_INT_BOUNDS.maximum) {
    fail('the integer branch of an int-or-string cannot carry constraints');
  }
  // string constraints apply to string values only, so they can sit on the node itself
  const { type: _s, ...strRest } = str!;
  return { anyOf: [{ type: 'integer' }, { type: 'string' }], 'x-kubernetes-int-or-string': true, ...strRest };
}

function checkMapList(list: JSONSchemaProps, fail: (p: string) => never) {
  const keys = list['x-kubernetes-list-map-keys'] as string[] | undefined;
  const item = list.items as JSONSchemaProps | undefined;
  const required = (item?.required as string[] | undefined) ?? [];
  if (!keys?.length) fail('x-kubernetes-list-type map needs x-kubernetes-list-map-keys');
  for (const k of keys!) if (!required.includes(k)) fail(`map list key "${k}" must be a required item field`);
}

/** The CustomResourceDefinition of one kind, as a plain object ready for YAML. */
export function buildCrd(info: KindInfo): Record<string, unknown> {
  const schema = toStructuralSchema(info.schema);
  const properties = schema.properties as Record<string, JSONSchemaProps>;
  if (schema.type !== 'object' || !properties?.spec) {
    throw new NonStructuralSchemaError('(root)', `the ${info.kind} schema must be an object with a spec`);
  }
  // The API server owns these three: it checks apiVersion/kind itself, and a CRD may only restrict
  // metadata.name/generateName. Same shape as controller-gen.
  const envelope = ['apiVersion', 'kind', 'metadata'];
  const openAPIV3Schema = {
    ...schema,
    description: `${info.kind} (${GROUP}/${VERSION}).`,
    required: ((schema.required as string[] | undefined) ?? []).filter((k) => !envelope.includes(k)),
    properties: {
      ...properties,
      apiVersion: { type: 'string', description: 'APIVersion of this object.' },
      kind: { type: 'string', description: 'Kind of this object.' },
      metadata: { type: 'object' },
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${info.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: info.kind,
        listKind: info.listKind,
        plural: info.plural,
        singular: info.singular,
        shortNames: info.shortNames,
        categories: info.categories,
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema },
          subresources: { status: {} },
          additionalPrinterColumns: info.printerColumns,
        },
      ],
    },
  };
}
