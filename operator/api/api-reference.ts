import { buildCrd, type JSONSchemaProps } from './crd-generator.js';
import type { KindInfo, KindReference } from './v1alpha1/common.js';

// Renders docs/api-reference.md from the CRDs the zod schemas generate (buildCrd): the same descriptions,
// validations and list types the API server enforces, plus what the schema deliberately leaves out (runtime
// defaults, the meaning of conditions, phases, annotations and events) from each kind's KindReference.
// Pure and deterministic: operator/api/generated-api-reference.test.ts compares it with the file on disk.

/** One field of a kind, as the reference lists it. */
export interface Field {
  /** Dotted path from the object root; list items as `[]`, map values as `<key>`. */
  path: string;
  /** Markdown: `string`, `list of object`, `map of string to string`, ... */
  type: string;
  required: boolean;
  description?: string;
  /** Markdown lines: enum values, bounds, patterns, list type, CEL rules. */
  validation: string[];
}

const WIDTH = 110;

/** Every field under `node` (excluded), depth first in schema order. */
export function collectFields(node: JSONSchemaProps, path = ''): Field[] {
  const out: Field[] = [];
  const props = (node.properties ?? {}) as Record<string, JSONSchemaProps>;
  const required = new Set((node.required as string[] | undefined) ?? []);
  for (const [name, child] of Object.entries(props)) {
    const childPath = path ? `${path}.${name}` : name;
    out.push(field(child, childPath, required.has(name)), ...inside(child, childPath));
  }
  return out;
}

/** The fields of an object, of list items (`[]`) and of map values (`<key>`): these have no row of their own. */
function inside(node: JSONSchemaProps, path: string): Field[] {
  const items = node.items as JSONSchemaProps | undefined;
  if (items) return inside(items, `${path}[]`);
  const values = node.additionalProperties as JSONSchemaProps | undefined;
  if (values && typeof values === 'object') return inside(values, `${path}.<key>`);
  return collectFields(node, path);
}

function field(node: JSONSchemaProps, path: string, required: boolean): Field {
  const validation = constraints(node);
  const items = node.items as JSONSchemaProps | undefined;
  if (items) {
    const listType = (node['x-kubernetes-list-type'] as string | undefined) ?? 'atomic';
    const keys = node['x-kubernetes-list-map-keys'] as string[] | undefined;
    validation.unshift(
      `list type: ${listType}` +
        (keys?.length ? ` (key ${keys.map(code).join(', ')})` : '') +
        explainList(listType),
    );
    validation.push(...constraints(items).map((v) => `each item: ${v}`));
  }
  const values = node.additionalProperties as JSONSchemaProps | undefined;
  if (values && typeof values === 'object')
    validation.push(...constraints(values).map((v) => `each value: ${v}`));
  return {
    path,
    type: typeOf(node),
    required,
    ...(typeof node.description === 'string' ? { description: node.description } : {}),
    validation,
  };
}

const explainList = (t: string) =>
  t === 'map'
    ? ': one item per key, merged item by item'
    : t === 'set'
      ? ': unique values'
      : ': replaced as a whole';

/** The type of a node in words (Markdown). */
export function typeOf(node: JSONSchemaProps): string {
  if (node['x-kubernetes-int-or-string']) return 'integer or string';
  const t = node.type as string | undefined;
  if (t === 'array') return `list of ${typeOf(node.items as JSONSchemaProps)}`;
  if (t === 'object') {
    const values = node.additionalProperties;
    if (values && typeof values === 'object') return `map of string to ${typeOf(values as JSONSchemaProps)}`;
    if (node['x-kubernetes-preserve-unknown-fields']) {
      return node.properties ? 'object (unknown fields kept)' : 'object (free-form)';
    }
    return 'object';
  }
  const format = node.format as string | undefined;
  return `${t ?? 'any'}${format ? ` (${format})` : ''}`;
}

/** A node's own validation (not its items' or values'), one Markdown line each. */
function constraints(node: JSONSchemaProps): string[] {
  const out: string[] = [];
  const values = node.enum as unknown[] | undefined;
  if (values)
    out.push(`${values.length === 1 ? 'only' : 'one of'} ${values.map((v) => code(String(v))).join(', ')}`);
  const range = (min: unknown, max: unknown, unit: string) => {
    if (min !== undefined && max !== undefined) out.push(`${min}–${max} ${unit}`);
    else if (min !== undefined) out.push(`at least ${min} ${unit}`);
    else if (max !== undefined) out.push(`at most ${max} ${unit}`);
  };
  if (node.type === 'integer' || node.type === 'number') {
    const { minimum: min, maximum: max } = node;
    if (min !== undefined && max !== undefined && !node.exclusiveMinimum && !node.exclusiveMaximum) {
      out.push(`${min}–${max}`);
    } else {
      const lo = min === undefined ? '' : `${node.exclusiveMinimum ? '>' : '≥'} ${min}`;
      const hi = max === undefined ? '' : `${node.exclusiveMaximum ? '<' : '≤'} ${max}`;
      if (lo || hi) out.push([lo, hi].filter(Boolean).join(' and '));
    }
    if (node.multipleOf !== undefined) out.push(`multiple of ${node.multipleOf}`);
  }
  range(node.minLength, node.maxLength, 'characters');
  if (typeof node.pattern === 'string') out.push(`pattern ${code(node.pattern)}`);
  range(node.minItems, node.maxItems, 'items');
  range(node.minProperties, node.maxProperties, 'entries');
  for (const r of (node['x-kubernetes-validations'] as CelValidation[] | undefined) ?? []) {
    const at = r.fieldPath ? ` (reported at ${code(r.fieldPath)})` : '';
    out.push(`rule ${code(r.rule)}: ${escape(r.message ?? '')}${at}`);
  }
  return out;
}

interface CelValidation {
  rule: string;
  message?: string;
  fieldPath?: string;
}

/**
 * The whole reference for the given kinds. `patterns` names long patterns many fields share (name → pattern):
 * they are printed once, in a Patterns section, and fields refer to them by name. Throws when a default names
 * a field the schema does not have.
 */
export function renderApiReference(
  kinds: { info: KindInfo; reference: KindReference }[],
  patterns: Record<string, string> = {},
): string {
  const lines = [
    '# API reference',
    '',
    '<!-- generated by npm run generate (hack/generate-api-reference.ts) from operator/api/v1alpha1; do not edit -->',
    '',
    ...wrap(
      'Every field of the custom resources, generated from the zod schemas that also generate the CRDs, so it ' +
        'says exactly what the API server checks. Paths name list items as `[]` and map values as `<key>`; ' +
        'a required field must be set whenever the object or list item that holds it is. ' +
        'Defaults are applied by the operator at run time and never written into your objects (a schema default ' +
        'would show up as drift in GitOps tools). Rules are CEL (`x-kubernetes-validations`), evaluated by the API ' +
        'server; the operator repeats most of them when it reads an object.',
    ),
    '',
    ...kinds.map(({ info }) => `- [${info.kind}](#${info.kind.toLowerCase()})`),
    ...(Object.keys(patterns).length > 0 ? ['- [Patterns](#patterns)'] : []),
    '',
  ];
  for (const k of kinds) lines.push(...renderKind(k.info, k.reference, patterns));
  if (Object.keys(patterns).length > 0) {
    lines.push('## Patterns', '', 'Patterns many fields share, referred to by name above:', '');
    for (const [name, pattern] of Object.entries(patterns)) lines.push(`- ${name}:`, `  ${code(pattern)}`);
    lines.push('');
  }
  return (
    lines
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trimEnd() + '\n'
  );
}

/** One kind's section. */
export function renderKind(
  info: KindInfo,
  reference: KindReference,
  patterns: Record<string, string> = {},
): string[] {
  const crd = buildCrd(info) as {
    spec: { group: string; versions: { name: string; schema: { openAPIV3Schema: JSONSchemaProps } }[] };
  };
  const version = crd.spec.versions[0]!;
  const root = version.schema.openAPIV3Schema;
  const fields = collectFields(root).filter((f) => /^(spec|status)([.[]|$)/.test(f.path));
  for (const f of fields) {
    f.validation = f.validation.map((v) =>
      Object.entries(patterns).reduce(
        (line, [name, p]) => line.replace(`pattern ${code(p)}`, `pattern ${name} ([Patterns](#patterns))`),
        v,
      ),
    );
  }
  const known = new Set(fields.map((f) => f.path));
  for (const path of Object.keys(reference.defaults)) {
    if (!known.has(path))
      throw new Error(`${info.kind}: default for ${path}, which is not a field of the schema`);
  }

  const out = [
    `## ${info.kind}`,
    '',
    ...wrap(
      `${code(`${crd.spec.group}/${version.name}`)}, namespaced, with a status subresource. Plural ` +
        `${code(info.plural)}, singular ${code(info.singular)}, short names ${info.shortNames.map(code).join(', ')}, ` +
        `categories ${info.categories.map(code).join(', ')}. How to write one: [${reference.guide}](${reference.guide}).`,
    ),
    '',
  ];
  const rootRules = constraints({ 'x-kubernetes-validations': root['x-kubernetes-validations'] });
  if (rootRules.length > 0)
    out.push('Object rules:', '', ...rootRules.flatMap((r) => wrap(r, '- ', '  ')), '');

  out.push(`### ${info.kind} printer columns`, '', '| column | type | JSONPath | shown | description |');
  out.push('| --- | --- | --- | --- | --- |');
  for (const c of info.printerColumns) {
    const shown = (c.priority ?? 0) === 0 ? 'always' : '`-o wide`';
    out.push(
      `| ${c.name} | ${c.type} | ${cell(code(c.jsonPath))} | ${shown} | ${cell(escape(c.description ?? ''))} |`,
    );
  }
  out.push('');

  for (const [part, title] of [
    ['spec', 'spec'],
    ['status', 'status'],
  ] as const) {
    out.push(`### ${info.kind} ${title}`, '');
    for (const f of fields.filter((x) => x.path === part || x.path.startsWith(`${part}.`))) {
      out.push(...renderField(f, reference.defaults[f.path]));
    }
    out.push('');
  }

  const list = (title: string, entries: Record<string, string>, intro?: string) => {
    out.push(`### ${info.kind} ${title}`, '');
    if (intro) out.push(...wrap(intro), '');
    for (const [k, meaning] of Object.entries(entries))
      out.push(...wrap(`${code(k)}: ${escape(meaning)}`, '- ', '  '));
    out.push('');
  };
  list('conditions', reference.conditions, 'status.conditions[], by type:');
  if (reference.phases) list('phases', reference.phases, 'status.phase:');
  list('annotations', reference.annotations);
  list(
    'events',
    reference.events,
    'The events a notification target can ask for (spec.notify[].events). The Kubernetes Events the operator ' +
      `records are listed in [${reference.guide}](${reference.guide}).`,
  );
  return out;
}

/** One field: a bullet with path, type, required and description; defaults and validation nested below it. */
export function renderField(f: Field, defaultValue?: string): string[] {
  const head =
    `**${code(f.path)}** (${f.type}, ${f.required ? 'required' : 'optional'})` +
    (f.description ? `: ${escape(f.description)}` : '');
  return [
    ...wrap(head, '- ', '  '),
    ...(defaultValue ? wrap(`default: ${defaultValue}`, '  - ', '    ') : []),
    ...f.validation.flatMap((v) => wrap(v, '  - ', '    ')),
  ];
}

/** A Markdown code span that shows `s` verbatim, whatever backticks it holds. */
export function code(s: string): string {
  const longest = Math.max(0, ...[...s.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  // CommonMark strips one space at each end when both are there, and needs one next to a backtick
  const pad = /^`|`$/.test(s) || /^ .*[^ ].* $/.test(s) ? ' ' : '';
  return `${fence}${pad}${s}${pad}${fence}`;
}

/**
 * Plain text made safe for Markdown: `<db>_pre_<id>` would otherwise lose its "tags" or turn into emphasis.
 * Code spans already in the text are kept as they are.
 */
export function escape(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/[\\<>*_]/g, (c) => `\\${c}`)))
    .join('');
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/**
 * Word-wraps one Markdown block at WIDTH: `first` prefixes the first line, `rest` the others. Breaks only at
 * single spaces outside code spans (a rule or pattern stays copyable on one line, however long) and never
 * before a word that would start a new block (`- `, `#`, `>`, `1.`, a fence, HTML).
 */
export function wrap(text: string, first = '', rest = ''): string[] {
  const KEEP = '\u0000';
  const words = text
    .replace(/(`+)[\s\S]*?[^`]\1(?!`)/g, (span) => span.replaceAll(' ', KEEP))
    .split(' ')
    .map((w) => w.replaceAll(KEEP, ' '));
  const lines: string[] = [];
  let line = first + words[0];
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    const canBreak = w !== '' && words[i - 1] !== '' && !/^([-+*>#|=<]|\d+[.)]|```|~~~)/.test(w);
    if (canBreak && line.length + 1 + w.length > WIDTH && line.trim() !== '') {
      lines.push(line);
      line = rest + w;
    } else line += ` ${w}`;
  }
  lines.push(line);
  return lines;
}
