import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// A Job pod pays for every module the runner loads at start, on every run (issue 13): a backup must not load
// zod, the Kubernetes client, winston, prom-client or the AWS SDK. One value import of a constant from a module
// that imports zod is enough to bring it back (it did: OBJECT_LOCK_ERROR_MAX from result.ts), and nothing else
// would notice. This walks the static imports of the sources, as Node and esbuild follow them.

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const HEAVY = ['zod', '@kubernetes/client-node', 'winston', 'prom-client', '@aws-sdk/'];
const isHeavy = (pkg: string) => HEAVY.some((h) => (h.endsWith('/') ? pkg.startsWith(h) : pkg === h));

interface Imports {
  /** Loaded when the module is: every import/export ... from, except `import type` / `export type`. */
  static: string[];
  /** `import('...')` with a literal specifier; `<computed>` otherwise. */
  dynamic: string[];
}

/**
 * The module specifiers of one TypeScript source. With verbatimModuleSyntax (tsconfig.json) an import whose
 * named bindings are all `type` is kept as `import {} from '...'`: it still loads the module, so only a
 * type-only clause (`import type`, `export type`) is erased.
 */
export function importsOf(source: string, fileName = 'x.ts'): Imports {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Imports = { static: [], dynamic: [] };
  for (const s of sf.statements) {
    if (ts.isImportDeclaration(s) && ts.isStringLiteral(s.moduleSpecifier)) {
      if (!s.importClause?.isTypeOnly) out.static.push(s.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(s) && s.moduleSpecifier && ts.isStringLiteral(s.moduleSpecifier)) {
      if (!s.isTypeOnly) out.static.push(s.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(s) && ts.isExternalModuleReference(s.moduleReference)) {
      const e = s.moduleReference.expression;
      if (!s.isTypeOnly && ts.isStringLiteral(e)) out.static.push(e.text);
    }
  }
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = n.arguments[0];
      out.dynamic.push(arg && ts.isStringLiteralLike(arg) ? arg.text : '<computed>');
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** `@scope/name/sub` → `@scope/name`, `pg/lib/x` → `pg`; undefined for node: and other built-ins. */
function packageOf(spec: string): string | undefined {
  if (spec.startsWith('node:')) return undefined;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function resolveRelative(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), base, `${base}/index.ts`])
    if (existsSync(candidate)) return candidate;
  throw new Error(`${relative(REPO, from)}: cannot resolve ${spec}`);
}

interface Graph {
  /** Repository-relative paths of the modules loaded with the entry. */
  files: string[];
  /** Package → the first module of the graph that imports it. */
  packages: Map<string, string>;
  /** Module → its dynamic import specifiers (relative ones resolved to repository paths). */
  dynamic: Map<string, string[]>;
}

/** Everything `entry` loads statically, transitively (relative specifiers followed, packages collected). */
function staticGraph(entry: string): Graph {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const dynamic = new Map<string, string[]>();
  const walk = (file: string) => {
    const rel = relative(REPO, file);
    if (files.has(rel)) return;
    files.add(rel);
    const imports = importsOf(readFileSync(file, 'utf8'), file);
    for (const spec of imports.static) {
      if (spec.startsWith('.')) walk(resolveRelative(file, spec));
      else {
        const pkg = packageOf(spec);
        if (pkg && !packages.has(pkg)) packages.set(pkg, rel);
      }
    }
    if (imports.dynamic.length)
      dynamic.set(
        rel,
        imports.dynamic.map((s) => (s.startsWith('.') ? relative(REPO, resolveRelative(file, s)) : s)),
      );
  };
  walk(resolve(REPO, entry));
  return { files: [...files].sort(), packages, dynamic };
}

const heavyOf = (g: Graph) =>
  [...g.packages]
    .filter(([pkg]) => isHeavy(pkg))
    .map(([pkg, importer]) => `${pkg} (imported by ${importer})`);

describe('importsOf', () => {
  it('counts what loads a module and skips only type-only clauses', () => {
    const src = [
      `import type { A } from 'zod';`,
      `import { type B } from 'winston';`,
      `import C, { type D } from './c.js';`,
      `import './side-effect.js';`,
      `export type { E } from 'prom-client';`,
      `export { F } from './f.js';`,
      `export * from './g.js';`,
      `const s3 = await import('@aws-sdk/client-s3');`,
      `const name = 'x'; await import(name);`,
    ].join('\n');
    expect(importsOf(src)).toEqual({
      static: ['winston', './c.js', './side-effect.js', './f.js', './g.js'],
      dynamic: ['@aws-sdk/client-s3', '<computed>'],
    });
  });
});

describe('the runner commands load no heavy package at start', () => {
  it('operator/main.ts loads nothing before it knows the command', () => {
    const g = staticGraph('operator/main.ts');
    expect([...g.packages.keys()]).toEqual([]);
  });

  it('the backup path (runner/cli.ts statically) loads pg and Node built-ins only', () => {
    const g = staticGraph('operator/backup/runner/cli.ts');
    expect(heavyOf(g)).toEqual([]);
    expect([...g.packages.keys()]).toEqual(['pg']);
  });

  it('the heavy packages come only through the per-command dynamic imports listed here', () => {
    const g = staticGraph('operator/backup/runner/cli.ts');
    /** Which dynamic imports of the static graph bring a heavy package, and for which command. */
    const lazilyHeavy: Record<string, string> = {
      'operator/backup/runner/s3-storage.ts': '--storage-url (any command on S3): the AWS SDK',
      'operator/backup/runner/probe-storage.ts': 'probe-storage (S3)',
      'operator/backup/runner/manifest.ts':
        'reading a manifest (reuse check of an existing id, verify, prune)',
      'operator/backup/runner/pin-schema.ts': 'reading a pin (verify, restore, prune)',
    };
    const unexpected: string[] = [];
    const heavyTargets = new Set<string>();
    for (const [importer, targets] of g.dynamic) {
      for (const target of targets) {
        const heavy = target.startsWith('operator/')
          ? heavyOf(staticGraph(target))
          : isHeavy(packageOf(target) ?? '')
            ? [target]
            : [];
        if (heavy.length) heavyTargets.add(target);
        if (heavy.length && !(target in lazilyHeavy))
          unexpected.push(`${importer} -> import('${target}') loads ${heavy.join(', ')}`);
      }
    }
    expect(unexpected).toEqual([]);
    // A stale entry would let its module become heavy again unnoticed: every one listed must really be heavy.
    expect(
      Object.keys(lazilyHeavy).filter((m) => !heavyTargets.has(m)),
      'listed as lazily heavy but loading no heavy package (remove it from the list)',
    ).toEqual([]);
  });

  it('the restore path (restore, test-restore and their validation) loads pg and Node built-ins only', () => {
    for (const entry of [
      'operator/backup/runner/restore.ts',
      'operator/backup/runner/restore-validation.ts',
      'operator/backup/runner/restore-jobs.ts',
      'operator/backup/runner/test-restore.ts',
    ]) {
      const g = staticGraph(entry);
      expect(heavyOf(g), entry).toEqual([]);
    }
  });
});
