import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { parseRollbackPlan } from '../../operator/api/v1alpha1/rollbackplan.js';
import { gate } from '../../operator/rollback/decision.js';
import { ensureFluxBinaries } from '../env/flux.js';
import {
  allBlocks,
  blockProblem,
  cliCheck,
  cliUsageError,
  customColumnExprs,
  heredocsOf,
  jsonpathFields,
  kubectlLine,
  OPERATOR_KEYS,
  isShell,
  NOT_EXECUTABLE_LANGS,
  nxtRollbackArgs,
  REPO,
  scriptOf,
  simpleCommands,
  YAML_LANGS,
  type Block,
} from '../support/docs.js';
import { binPath, createTestNamespace, deleteTestNamespace, kubectl } from '../support/kube.js';
import { prometheusOperatorCrds } from '../support/monitoring-crds.js';
import { kubectlWith, renderKustomize } from '../support/rbac.js';

// Every fenced block of README.md and docs/**/*.md (inside list items and blockquotes too) is checked, so the
// docs cannot rot; a page added later is picked up without a change here.
// - Languages: yaml, the shell languages (sh, bash, shell; console = `$ ` commands with their output) and the
//   few not-executable ones of NOT_EXECUTABLE_LANGS (text, json, ...; test/support/docs.ts says why each)
//   are known; any other language, an untagged fence, an empty block, a `$ ` session outside a console block
//   fails.
// - YAML: Kubernetes objects are applied with `kubectl apply --dry-run=server` against the real API server
//   with the CRDs they need (ours, Flux's, the Prometheus Operator's): schema, CEL rules, strict field
//   validation, no warnings. A `<!-- docs-test: fragment Kind -->` block is merged into a minimal Kind first.
//   Kustomizations are rendered by `kubectl kustomize` where they would live and the result is dry-run the
//   same way; Prometheus rules are checked by promtool and an Alertmanager configuration by amtool. YAML in a
//   shell heredoc (`kubectl create -f - <<EOF`) is dry-run too, with the command's verb.
// - Shell: `bash -n`; every nxt-rollback / kubectl nxt-rollback / `npm run` of the CLI goes through the CLI's
//   own program in check-only mode (commander's parsing and each command's own checks: a bad flag combination
//   fails), and the plan an `emergency` line would create is dry-run on the server; every kubectl and helm
//   command line is parsed by the real binary (`--help` appended: cobra rejects an unknown command or flag
//   first); a kubectl line's rollback.nxtnewday.io keys must be the operator's, its resource types must resolve
//   (`kubectl explain`), its -o / --for=jsonpath expressions must parse (`kubectl get <type> -A -o ...`) and read
//   fields the type's schema has, and a line that changes objects runs with --dry-run=server in the test
//   namespace (NotFound of the objects it names is expected, nothing else); the paths given to -f / -k exist, and what `apply`/`create` would send from them is dry-run
//   (-k rendered first); `helm template` runs for real; `npm run X` names a script.
// - `<!-- docs-test: expect-error (why) -->` before a shell block showing a refusal: each of its nxt-rollback
//   lines must be refused, by the CLI's checks or by the server's dry run of what it would create. (A failure
//   that depends on the cluster's state or on who runs it, such as not found or forbidden, is not marked: the
//   line itself is valid.)
// - docs/tutorial.md's shell blocks run for real, in order, in one bash, against the control plane.
// - `<!-- docs-test: skip (reason) -->` before a block: nothing of it goes to the server (no dry run, no helm
//   --validate) and the tutorial does not run it; it is still read (YAML parsed; a shell block's bash -n and
//   its nxt-rollback, kubectl and helm lines checked like any other). The reason is required; skips are reported.
// The decision matrix's plans also go through gate(), so what the page says each severity does is what the
// operator does.

const execFileP = promisify(execFile);
const TUTORIAL = 'docs/tutorial.md';
const TUTORIAL_NAMESPACE = 'tutorial';
const PROMTOOL = process.env.NXT_PROMTOOL_BIN ?? '/usr/bin/promtool';
const AMTOOL = process.env.NXT_AMTOOL_BIN ?? '/usr/bin/amtool';

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; generateName?: string; namespace?: string; annotations?: Record<string, string> };
  [field: string]: any;
}

const blocks = allBlocks();
const where = (b: Block) => `${b.file}:${b.line}`;
const yamlBlocks = blocks.filter((b) => YAML_LANGS.has(b.lang));
const shellBlocks = blocks.filter(isShell);
const files = [...new Set([...yamlBlocks, ...shellBlocks].map((b) => b.file))];
const scripts = (
  JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
).scripts;

function parseDocs(b: Block): unknown[] {
  return parseAllDocuments(b.text)
    .map((d) => {
      if (d.errors.length) throw new Error(`invalid YAML: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS() as unknown;
    })
    .filter((d) => d != null);
}
const isObject = (d: unknown): d is Doc =>
  typeof d === 'object' && d !== null && 'apiVersion' in d && 'kind' in d && 'metadata' in d;
/** An object a command sends: some (SubjectAccessReview) have no metadata. */
const isApiObject = (d: unknown): d is Doc =>
  typeof d === 'object' && d !== null && 'apiVersion' in d && 'kind' in d;

/** Minimal valid objects a `fragment Kind` block is merged into. */
const FRAGMENT_BASE: Record<string, Doc> = {
  RollbackPlan: {
    apiVersion: 'rollback.nxtnewday.io/v1alpha1',
    kind: 'RollbackPlan',
    metadata: { name: 'docs-fragment' },
    spec: { scope: 'app', targets: { deployments: [{ name: 'web' }] } },
  },
  BackupSchedule: {
    apiVersion: 'rollback.nxtnewday.io/v1alpha1',
    kind: 'BackupSchedule',
    metadata: { name: 'docs-fragment' },
    spec: {
      database: { secretRef: { name: 'db' } },
      storage: { persistentVolumeClaim: { claimName: 'backups' } },
    },
  },
};

function merge(into: any, from: any): any {
  if (typeof into !== 'object' || typeof from !== 'object' || Array.isArray(from) || into === null)
    return from;
  const out = { ...into };
  for (const [k, v] of Object.entries(from)) out[k] = k in out ? merge(out[k], v) : v;
  return out;
}

/** A fragment block as a whole object: `spec:`/`metadata:` at the top merge into the object, else into spec. */
function fromFragment(kind: string, fragment: Record<string, unknown>): Doc {
  const base = FRAGMENT_BASE[kind];
  if (!base)
    throw new Error(`no minimal ${kind} to merge a fragment into (known: ${Object.keys(FRAGMENT_BASE)})`);
  const top = 'spec' in fragment || 'metadata' in fragment;
  return merge(structuredClone(base), top ? fragment : { spec: fragment }) as Doc;
}

/** The verb of a kubectl command line whose objects the docs test dry-runs: apply or create, else undefined. */
function kubectlVerb(args: string[]): 'apply' | 'create' | undefined {
  const verb = args.find((a) => a === 'apply' || a === 'create' || a === 'delete' || a === 'replace');
  return verb === 'apply' || verb === 'create' ? verb : undefined;
}

/** The objects of a manifest file, or of the .yaml/.yml/.json files of a directory (as `kubectl -f dir`). */
function manifestsAt(path: string): Doc[] {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => /\.(ya?ml|json)$/.test(f))
        .sort()
        .map((f) => join(path, f))
    : [path];
  return files.flatMap((f) =>
    parseAllDocuments(readFileSync(f, 'utf8'))
      .map((d) => d.toJS() as unknown)
      .filter(isApiObject),
  );
}

const run = (cmd: string, args: string[], opts: { cwd?: string; input?: string; timeoutMs?: number } = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });

describe('the docs run: every YAML and shell block of README.md and docs/', () => {
  let ns = '';
  const tmp = mkdtempSync(join(tmpdir(), 'nxt-docs-'));
  /** CRDs this file installed (and removes again: the control plane is shared). */
  const installedCrds: string[] = [];

  /**
   * Server-side dry run into the test namespace (a namespace the docs name is moved there): `apply`, or
   * `create` for what the docs create (objects with generateName, SubjectAccessReviews).
   */
  async function dryRun(docs: Doc[], verb: 'apply' | 'create' = 'apply') {
    const moved = docs.map((d) => ({
      ...d,
      metadata: { ...d.metadata, ...(d.metadata?.namespace ? { namespace: ns } : {}) },
    }));
    const file = join(tmp, `${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: moved }));
    // --force-conflicts: a dry run of objects the global setup applied (CRDs) under another field manager.
    const how =
      verb === 'apply'
        ? ['apply', '--server-side', '--force-conflicts', '--field-manager=docs-test']
        : ['create'];
    return kubectlWith(
      inject('kubeconfigPath'),
      ...how,
      '--dry-run=server',
      '-n',
      ns,
      '-o',
      'name',
      '-f',
      file,
    );
  }

  /** dryRun, with a failure for each object not admitted or admitted with a warning. */
  async function admitted(objs: Doc[], fail: (m: string) => void, verb: 'apply' | 'create' = 'apply') {
    // `kubectl apply` needs a name: an object with only generateName is created.
    const r = await dryRun(objs, objs.some((o) => !o.metadata?.name) ? 'create' : verb);
    const what = objs
      .map((d) => `${d.kind}/${d.metadata?.name ?? d.metadata?.generateName ?? ''}`)
      .join(', ');
    if (r.code !== 0) fail(`${what} not admitted: ${r.stderr}`);
    else if (r.stdout.trim().split('\n').length !== objs.length) fail(`${what}: ${r.stdout}`);
    const warnings = r.stderr.split('\n').filter((l) => /warning/i.test(l));
    if (warnings.length) fail(`${what}: ${warnings.join('; ')}`);
    return r.code === 0;
  }

  /** `kubectl kustomize dir`, parsed; a failure (and no objects) when it does not render. */
  async function renderKustomization(dir: string, fail: (m: string) => void): Promise<Doc[]> {
    const r = await run(binPath('kubectl'), ['kustomize', dir]);
    if (r.code !== 0) {
      fail(`kubectl kustomize ${relative(REPO, dir) || dir}: ${r.stderr}`);
      return [];
    }
    return parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Doc)
      .filter((d) => d != null);
  }

  async function installCrdFiles(crdFiles: string[]) {
    for (const f of crdFiles) {
      const name = (parseAllDocuments(readFileSync(f, 'utf8'))[0]!.toJS() as Doc).metadata.name;
      const exists = await kubectl('get', 'crd', name, '--ignore-not-found', '-o', 'name');
      if (exists.trim()) continue;
      await kubectl('apply', '--server-side', '--force-conflicts', '--field-manager=docs-test', '-f', f);
      installedCrds.push(f);
    }
    if (crdFiles.length)
      await kubectl(
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        ...crdFiles.map((f) => `-f=${f}`),
      );
  }

  const kubectlRuns = new Map<string, Promise<{ code: number; stdout: string; stderr: string }>>();
  /** A read-only kubectl run against the control plane, once per distinct command line. */
  const kubectlOnce = (args: string[]) => {
    const key = JSON.stringify(args);
    if (!kubectlRuns.has(key))
      kubectlRuns.set(
        key,
        run(binPath('kubectl'), [
          `--kubeconfig=${inject('kubeconfigPath')}`,
          '--request-timeout=30s',
          ...args,
        ]),
      );
    return kubectlRuns.get(key)!;
  };

  /**
   * What is wrong with a kubectl line beyond its flags (which `--help` checks): the keys it uses are the
   * operator's; every resource type it names resolves on the server (`kubectl explain`, our CRDs and short
   * names included); its -o expressions parse (`kubectl get <type> -A -o <expr>`) and the fields they read exist
   * in the type's schema (`kubectl explain type.field`); and, when `live`, a line that changes objects runs with
   * --dry-run=server in the test namespace, where only NotFound of the objects it names is expected.
   */
  /** explain's refusal of type.field; none under a free-form object (no schema below it to check against). */
  async function fieldMissing(type: string, field: string): Promise<string | undefined> {
    const f = await kubectlOnce(['explain', `${type}.${field}`]);
    if (f.code === 0) return undefined;
    // The operator's own kinds: an object marked x-kubernetes-preserve-unknown-fields on the way
    // (status.dryRunReport lists `validation` but holds more) is free-form below it.
    if (freeFormInOwnCrd(type, field)) return undefined;
    const segs = field.split('.');
    for (let n = segs.length - 1; n > 0; n--) {
      const parent = await kubectlOnce(['explain', `${type}.${segs.slice(0, n).join('.')}`]);
      // x-kubernetes-preserve-unknown-fields (status.dryRunReport): explain lists no FIELDS.
      if (parent.code === 0) return /^FIELDS:/m.test(parent.stdout) ? f.stderr.trim() : undefined;
    }
    return f.stderr.trim();
  }

  /** Whether `field` of one of the operator's CRDs passes through a free-form object (crds/*.yaml). */
  function freeFormInOwnCrd(type: string, field: string): boolean {
    const t = type.toLowerCase().replace(/\.rollback\.nxtnewday\.io$/, '');
    for (const file of readdirSync(join(REPO, 'crds')).filter((f) => f.startsWith('rollback.'))) {
      const crd = parseAllDocuments(readFileSync(join(REPO, 'crds', file), 'utf8'))[0]!.toJS() as {
        spec: {
          names: { plural: string; singular: string; kind: string; shortNames?: string[] };
          versions: { schema: { openAPIV3Schema: Schema } }[];
        };
      };
      const n = crd.spec.names;
      if (![n.plural, n.singular, n.kind.toLowerCase(), ...(n.shortNames ?? [])].includes(t)) continue;
      let node: Schema | undefined = crd.spec.versions[0]!.schema.openAPIV3Schema;
      for (const seg of field.split('.')) {
        if (!node) return false;
        if (node['x-kubernetes-preserve-unknown-fields'] === true) return true;
        node = node.items ? node.items.properties?.[seg] : node.properties?.[seg];
      }
      return false;
    }
    return false;
  }
  interface Schema {
    properties?: Record<string, Schema>;
    items?: Schema;
    'x-kubernetes-preserve-unknown-fields'?: boolean;
  }

  async function kubectlProblems(args: string[], live: boolean): Promise<string[]> {
    const problems: string[] = [];
    const k = kubectlLine(args);
    for (const key of k.keys)
      if (!OPERATOR_KEYS.has(key)) problems.push(`${key}: not an annotation or label of the operator`);
    const known: string[] = [];
    for (const t of k.types) {
      const r = await kubectlOnce(['explain', t]);
      if (r.code !== 0) problems.push(`resource type "${t}": ${r.stderr.trim()}`);
      else known.push(t);
    }
    const exprs = [...k.outputs, ...(k.waitJsonpath ? [`jsonpath=${k.waitJsonpath}`] : [])];
    // The expression is read against the one type the line names (else a type every cluster has).
    const type = k.types.length === 1 ? known[0] : undefined;
    for (const e of exprs) {
      const r = await kubectlOnce(['get', type ?? 'namespaces', '-A', '-o', e]);
      if (r.code !== 0) problems.push(`-o ${e}: ${r.stderr.trim()}`);
      if (!type) continue;
      const jsonpaths = e.startsWith('jsonpath=')
        ? [e.slice('jsonpath='.length)]
        : e.startsWith('custom-columns=')
          ? customColumnExprs(e.slice('custom-columns='.length))
          : [];
      for (const field of jsonpaths.flatMap(jsonpathFields)) {
        const missing = await fieldMissing(type, field);
        if (missing) problems.push(`${e}: ${type} has no field ${field}: ${missing}`);
      }
    }
    if (live && k.dryRunnable && !k.fromFiles) {
      // The docs' namespace and shell values are not the test cluster's: the test namespace, and `x`.
      const dryArgs: string[] = [];
      for (let i = 0; i < args.length; i++) {
        const a = args[i]!;
        if (a === '-n' || a === '--namespace') i++;
        else if (a.startsWith('--namespace=') || a.startsWith('--dry-run')) continue;
        else dryArgs.push(a.replace(/\$\([^)]*\)|\$\{?\w+\}?/g, 'x'));
      }
      const dd = dryArgs.indexOf('--');
      const extra = ['-n', ns, '--dry-run=server'];
      const r = await run(binPath('kubectl'), [
        `--kubeconfig=${inject('kubeconfigPath')}`,
        '--request-timeout=30s',
        ...(dd < 0 ? [...dryArgs, ...extra] : [...dryArgs.slice(0, dd), ...extra, ...dryArgs.slice(dd)]),
      ]);
      const errors = r.stderr
        .split('\n')
        .map((l) => l.trim())
        .filter(
          (l) =>
            l &&
            !/^Error from server \(NotFound\): .* not found$/.test(l) &&
            // The test namespace enforces the restricted Pod Security level; the docs' namespaces need not.
            !/^Warning: would violate PodSecurity/.test(l) &&
            // The -n the check adds, on a line about a cluster-scoped object.
            !/^Warning: deleting cluster-scoped resources, not scoped to the provided namespace/.test(l),
        );
      // Warnings count too (stderr holds nothing else on success).
      if (errors.length) problems.push(`--dry-run=server: ${errors.join('; ')}`);
    }
    return problems;
  }

  beforeAll(async () => {
    ns = await createTestNamespace('docs');
    // The CRDs the docs' objects need besides ours (installed by the global setup).
    const groups = new Set(
      yamlBlocks
        .filter((b) => b.skip === undefined)
        .flatMap((b) => {
          try {
            return parseDocs(b).filter(isObject);
          } catch {
            return [];
          }
        })
        .map((d) => d.apiVersion.split('/')[0]!),
    );
    if ([...groups].some((g) => g.endsWith('.toolkit.fluxcd.io'))) {
      const dir = join(await ensureFluxBinaries(), 'crds');
      await installCrdFiles(
        readdirSync(dir)
          .filter((f) => f.endsWith('.yaml'))
          .map((f) => join(dir, f)),
      );
    }
    // Argo CD's Application CRD, from test/env/argocd.ts where that exists (the GitOps work adds it): loaded by
    // path so this file does not depend on it before it is merged.
    const argo = join(REPO, 'test', 'env', 'argocd.ts');
    if (groups.has('argoproj.io') && existsSync(argo)) {
      const mod = (await import(/* @vite-ignore */ argo)) as {
        installArgoCdApplicationCrd?: (kubeconfig: string) => Promise<void>;
      };
      await mod.installArgoCdApplicationCrd?.(inject('kubeconfigPath'));
    }
    // The chart's monitoring objects too: `helm template --validate` of the docs' helm commands needs them.
    const helmMonitoring = shellBlocks.some((b) => /helm[\s\S]*monitoring\.\w+\.enabled=true/.test(b.text));
    // And a kustomization with the monitoring component: its rendered objects are dry-run.
    const kustomizeMonitoring = blocks.some((b) => /components\/monitoring/.test(b.text));
    if (groups.has('monitoring.coreos.com') || helmMonitoring || kustomizeMonitoring)
      await installCrdFiles(await prometheusOperatorCrds());
  }, 30 * 60_000); // a cold Flux build (hack/build-flux.sh) takes up to 30 min on a busy 2-core machine
  afterAll(async () => {
    if (ns) await deleteTestNamespace(ns);
    if (installedCrds.length)
      await kubectl(
        'delete',
        '--ignore-not-found',
        '--wait=false',
        ...installedCrds.flatMap((f) => ['-f', f]),
      );
    await kubectl('delete', 'namespace', TUTORIAL_NAMESPACE, '--ignore-not-found', '--wait=false').catch(
      () => {},
    );
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every docs-test marker is understood and every skip says why (the skips are reported)', () => {
    const bad = blocks
      .filter((b) => b.badMarker !== undefined || b.skip === '')
      .map((b) =>
        b.badMarker !== undefined
          ? `${where(b)}: unknown marker "docs-test: ${b.badMarker}" (skip (reason) | fragment Kind | expect-error)`
          : `${where(b)}: "docs-test: skip" needs a reason in parentheses`,
      );
    expect(bad).toEqual([]);
    const checked = [...yamlBlocks, ...shellBlocks];
    const skipped = checked.filter((b) => b.skip);
    console.log(
      `docs: ${yamlBlocks.length} yaml and ${shellBlocks.length} shell blocks in ${files.length} files; ` +
        `${skipped.length} skipped:\n` +
        skipped.map((b) => `  ${where(b)} (${b.lang}): ${b.skip}`).join('\n'),
    );
    expect(yamlBlocks.length).toBeGreaterThan(10);
    expect(shellBlocks.length).toBeGreaterThan(20);
  });

  it('every fenced block is in a language the test checks, or one it knows is not run; none is empty', () => {
    const problems = blocks.flatMap((b) => {
      const p = blockProblem(b);
      return p ? [`${where(b)}: ${p}`] : [];
    });
    expect(problems).toEqual([]);
    const notRun = blocks.filter((b) => b.lang in NOT_EXECUTABLE_LANGS);
    console.log(
      `docs: ${blocks.length} fenced blocks; not run: ` +
        Object.keys(NOT_EXECUTABLE_LANGS)
          .map((l) => `${notRun.filter((b) => b.lang === l).length} ${l}`)
          .join(', '),
    );
  });

  for (const file of files) {
    const ys = yamlBlocks.filter((b) => b.file === file);
    if (ys.length)
      it(`${file}: every yaml block is admitted by the API server (or its tool), without warnings`, async () => {
        const failures: string[] = [];
        for (const b of ys) {
          const fail = (m: string) => failures.push(`${where(b)}: ${m}`);
          let docs: unknown[];
          try {
            docs = parseDocs(b);
          } catch (e) {
            fail((e as Error).message);
            continue;
          }
          // Skipped: parsed, not sent.
          if (b.skip !== undefined) continue;
          if (b.fragment) {
            if (docs.length !== 1 || typeof docs[0] !== 'object') {
              fail('a fragment is one YAML mapping');
              continue;
            }
            docs = [fromFragment(b.fragment, docs[0] as Record<string, unknown>)];
          }
          const first = docs[0] as Record<string, unknown> | unknown[] | undefined;
          const isKustomization = (d: unknown) =>
            typeof d === 'object' &&
            d !== null &&
            (d as Doc).kind === 'Kustomization' &&
            String((d as Doc).apiVersion).startsWith('kustomize.config.k8s.io');
          if (docs.length && docs.every((d) => isObject(d) || isKustomization(d))) {
            const objs = docs as Doc[];
            if (objs.every(isKustomization)) {
              // Where the page says it lives: an overlay next to manifests/base.
              const dir = join(REPO, 'manifests', 'overlays', `.docs-test-${process.pid}`);
              mkdirSync(dir, { recursive: true });
              let rendered: Doc[];
              try {
                writeFileSync(join(dir, 'kustomization.yaml'), b.text);
                rendered = await renderKustomization(dir, fail);
              } finally {
                rmSync(dir, { recursive: true, force: true });
              }
              // What `kubectl apply -k` would send, admitted by the API server.
              if (rendered.length) await admitted(rendered, fail);
              continue;
            }
            await admitted(objs, fail);
          } else if (docs.length === 1 && first && !Array.isArray(first) && 'groups' in first) {
            const f = join(tmp, 'rules.yml');
            writeFileSync(f, b.text);
            const r = await run(PROMTOOL, ['check', 'rules', f]);
            if (r.code !== 0) fail(`promtool check rules: ${r.stdout}${r.stderr}`);
          } else if (
            docs.length === 1 &&
            Array.isArray(first) &&
            first.every((r) => typeof r === 'object' && r && ('alert' in r || 'record' in r))
          ) {
            const f = join(tmp, 'rules.yml');
            writeFileSync(f, stringify({ groups: [{ name: 'docs', rules: first }] }));
            const r = await run(PROMTOOL, ['check', 'rules', f]);
            if (r.code !== 0) fail(`promtool check rules: ${r.stdout}${r.stderr}`);
          } else if (docs.length === 1 && first && !Array.isArray(first) && 'route' in first) {
            const f = join(tmp, 'alertmanager.yml');
            writeFileSync(f, b.text);
            const r = await run(AMTOOL, ['check-config', f]);
            if (r.code !== 0) fail(`amtool check-config: ${r.stdout}${r.stderr}`);
          } else {
            fail(
              'neither Kubernetes objects nor Prometheus rules nor an Alertmanager configuration: mark it ' +
                '<!-- docs-test: fragment Kind --> or <!-- docs-test: skip (reason) -->',
            );
          }
        }
        expect(failures).toEqual([]);
      });

    const ss = shellBlocks.filter((b) => b.file === file);
    if (ss.length)
      it(`${file}: every shell block parses, and each nxt-rollback, kubectl and helm command line is valid`, async () => {
        const failures: string[] = [];
        for (const b of ss) {
          const fail = (m: string) => failures.push(`${where(b)}: ${m}`);
          /** Not skipped: what it would send goes to the server (dry runs, helm --validate). */
          const live = b.skip === undefined;
          const script = scriptOf(b);
          const syntax = await run('bash', ['-n'], { input: script });
          if (syntax.code !== 0) fail(`bash -n: ${syntax.stderr}`);
          let cliLines = 0;
          for (const argv of simpleCommands(script)) {
            const line = argv.join(' ');
            const cli = nxtRollbackArgs(argv, scripts);
            if (cli) {
              cliLines++;
              const checked = await cliCheck(cli);
              // What the line would create from its flags alone (emergency's plan), dry-run on the server.
              let refusedByServer: string | undefined;
              for (const obj of live ? checked.wouldCreate : []) {
                const r = await dryRun([obj as Doc], 'create');
                if (r.code !== 0) refusedByServer = r.stderr.trim();
              }
              const refusal = checked.error ?? refusedByServer;
              if (b.expectError && !refusal)
                fail(`${line}: marked expect-error, but the CLI and the API server's dry run accept it`);
              if (!b.expectError && refusal) fail(`${line}: ${refusal}`);
              // A transcript of the CLI's own refusal shows the refusal it really makes.
              const said = checked.error?.split('\n')[0]!.replace(/^error: /, '');
              if (b.expectError && said && b.lang === 'console' && !b.text.includes(said))
                fail(`${line}: the transcript does not show the CLI's error "${said}"`);
              continue;
            }
            const [cmd, ...args] = argv;
            if (cmd === 'npm' && args[0] === 'run' && args[1] && !(args[1] in scripts))
              fail(`${line}: package.json has no script "${args[1]}"`);
            if (cmd === 'kubectl' || cmd === 'helm') {
              // Before a `--` (kubectl exec ... -- cmd): after it, --help would be the remote command's.
              const dd = args.indexOf('--');
              const r = await run(
                binPath(cmd),
                dd < 0 ? [...args, '--help'] : [...args.slice(0, dd), '--help', ...args.slice(dd)],
              );
              if (r.code !== 0) fail(`${line}: ${r.stderr.trim()}`);
              if (cmd === 'kubectl') for (const p of await kubectlProblems(args, live)) fail(`${line}: ${p}`);
              // What apply/create would send from a repository path is dry-run as well.
              const verb = kubectlVerb(args);
              for (let i = 0; i < args.length; i++) {
                const [flag, inline] = args[i]!.split('=', 2) as [string, string | undefined];
                if (!['-f', '--filename', '-k', '--kustomize'].includes(flag)) continue;
                const path = inline ?? args[i + 1]!;
                if (path === '-' || /^https?:|\$/.test(path)) continue;
                // A repository path (manifests/..., charts/..., crds/) must exist; a file the reader saves need not.
                const inRepo = path.includes('/') && existsSync(join(REPO, path.split('/')[0]!));
                if (!inRepo) continue;
                if (!existsSync(join(REPO, path))) {
                  fail(`${line}: ${path} does not exist in the repository`);
                  continue;
                }
                const objs =
                  flag === '-k' || flag === '--kustomize'
                    ? await renderKustomization(join(REPO, path), (m) => fail(`${line}: ${m}`))
                    : manifestsAt(join(REPO, path));
                if (cmd === 'kubectl' && verb && objs.length && live)
                  await admitted(objs, (m) => fail(`${line}: ${m}`), verb);
              }
            }
            if (cmd === 'helm' && ['template', 'install', 'upgrade'].includes(args[0]!) && live) {
              const chart = args.find((a) => a.startsWith('charts/'));
              if (!chart || !existsSync(join(REPO, chart))) {
                fail(`${line}: no chart of this repository`);
                continue;
              }
              // Rendered for real, with the same values (install/upgrade as the template they would apply).
              // --validate: the objects are checked by the API server under test (its version, its CRDs).
              const flags = args.slice(1).filter((a) => !['--install', '--wait', '--atomic'].includes(a));
              const validate = flags.includes('--kube-version')
                ? []
                : ['--validate', `--kubeconfig=${inject('kubeconfigPath')}`];
              const r = await run(binPath('helm'), ['template', ...flags, ...validate]);
              if (r.code !== 0) fail(`${line}: helm template: ${r.stderr.trim()}`);
            }
          }
          if (b.expectError && !cliLines) fail('marked expect-error, but it has no nxt-rollback command');
          // YAML a command reads from a heredoc (`kubectl create -f - <<EOF`), dry-run with the command's verb.
          for (const h of heredocsOf(script)) {
            const fail = (m: string) => failures.push(`${where(b)} (heredoc of ${h.argv.join(' ')}): ${m}`);
            const [cmd, ...args] = h.argv;
            const readsManifests =
              cmd === 'kubectl' &&
              args.some(
                (a, i) => /^(-f|--filename)(=-)?$/.test(a) && (a.endsWith('=-') || args[i + 1] === '-'),
              );
            let docs: unknown[] = [];
            try {
              docs = parseDocs({ ...b, text: h.body });
            } catch (e) {
              if (readsManifests) fail((e as Error).message);
              continue;
            }
            const objs = docs.filter(isApiObject);
            if (readsManifests && (!objs.length || objs.length !== docs.length))
              fail('kubectl -f - reads Kubernetes objects: the heredoc holds something else');
            else if (objs.length && live) await admitted(objs, fail, kubectlVerb(args) ?? 'apply');
          }
        }
        expect(failures).toEqual([]);
      });
  }

  it('(control) the checks refuse what they should', async () => {
    // An unknown flag of the CLI, of kubectl and of helm; a YAML field the CRD does not have.
    expect(await cliUsageError(['emergency', '--scope', 'app', 'web', '--dryrun'])).toMatch(/unknown option/);
    expect((await run(binPath('kubectl'), ['-n', 'shop', 'get', 'rbp', '--bogus', '--help'])).code).not.toBe(
      0,
    );
    expect(
      (await run(binPath('helm'), ['template', 'x', 'charts/nxt-rollback-operator', '--bogus', '--help']))
        .code,
    ).not.toBe(0);
    expect((await run('bash', ['-n'], { input: 'if true; then echo\n' })).code).not.toBe(0);
    // A kubectl line is checked against the server, not only its flags: keys, types, expressions, dry run.
    expect(
      await kubectlProblems(
        ['-n', 'shop', 'annotate', '--overwrite', 'bks/shop-db', 'rollback.nxtnewday.io/backupnow-typo=x'],
        true,
      ),
    ).toEqual([expect.stringMatching(/backupnow-typo: not an annotation/)]);
    const typo = await kubectlProblems(
      ['get', 'rollbakplanz', 'nope', '-o', 'jsonpath={.status.phaze'],
      true,
    );
    expect(typo).toEqual([
      expect.stringMatching(/resource type "rollbakplanz"/),
      expect.stringMatching(/-o jsonpath=\{\.status\.phaze:/),
    ]);
    expect(
      await kubectlProblems(['-n', 'shop', 'get', 'rbp', 'x', '-o', 'jsonpath={.status.phaze}'], true),
    ).toEqual([expect.stringMatching(/rbp has no field status\.phaze/)]);
    expect(
      await kubectlProblems(
        ['get', 'bks', '-o', 'custom-columns=N:.metadata.name,L:.status.lastBakup'],
        true,
      ),
    ).toEqual([expect.stringMatching(/no field status\.lastBakup/)]);
    expect(
      await kubectlProblems(
        ['-n', 'shop', 'create', 'secret', 'generic', 'Bad_Name', '--from-literal=a=b'],
        true,
      ),
    ).toEqual([expect.stringMatching(/--dry-run=server: .*Bad_Name/)]);
    expect(
      await kubectlProblems(
        ['-n', 'shop', 'annotate', 'rbp/x', 'rollback.nxtnewday.io/approved-by=me', '--overwrite'],
        true,
      ),
      'an annotate of an object the cluster does not have (NotFound) is fine',
    ).toEqual([]);
    const plan = (spec: Record<string, unknown>): Doc => ({
      apiVersion: 'rollback.nxtnewday.io/v1alpha1',
      kind: 'RollbackPlan',
      metadata: { name: 'broken' },
      spec: { scope: 'app', targets: { deployments: [{ name: 'web' }] }, ...spec },
    });
    const bad = await dryRun([plan({ severity: 'urgent' })]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/severity/);
    const unknown = await dryRun([plan({ severty: 'low' })]);
    expect(
      unknown.code + unknown.stderr.length,
      'an unknown field is refused or warned about',
    ).toBeGreaterThan(0);
    expect(unknown.stderr).toMatch(/severty/);
    const frag = await dryRun([fromFragment('RollbackPlan', { trigger: { mode: 'sometimes' } })]);
    expect(frag.code).not.toBe(0);
  });

  it(`${TUTORIAL}: its commands run for real, in order, against the control plane`, async () => {
    const steps = blocks.filter((b) => b.file === TUTORIAL && isShell(b) && b.skip === undefined);
    expect(steps.length, `${TUTORIAL} has shell blocks to run`).toBeGreaterThan(3);
    await execFileP(binPath('kubectl'), [
      `--kubeconfig=${inject('kubeconfigPath')}`,
      'delete',
      'namespace',
      TUTORIAL_NAMESPACE,
      '--ignore-not-found',
      '--wait=true',
      '--timeout=60s',
    ]);
    // One bash, as the reader's terminal; background jobs (the operator) are ended when it exits.
    const script = [
      'set -euo pipefail',
      "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
      ...steps.map((b) =>
        b.expectError
          ? `echo "### ${where(b)} (must fail)" >&2\nif (\n${scriptOf(b)}\n); then echo "${where(b)} did not fail" >&2; exit 1; fi`
          : `echo "### ${where(b)}" >&2\n${scriptOf(b)}`,
      ),
    ].join('\n');
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'bash', '-c', script], {
        cwd: REPO,
        env: {
          ...process.env,
          KUBECONFIG: inject('kubeconfigPath'),
          PATH: `${inject('binDir')}:${join(REPO, 'bin')}:${process.env.PATH}`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const t = setTimeout(() => child.kill('SIGKILL'), 240_000);
      child.on('close', (code) => {
        clearTimeout(t);
        resolve({ code: code ?? 1, out });
      });
    });
    expect(r.code, `the tutorial's commands failed:\n${r.out.slice(-6000)}`).toBe(0);
  }, 300_000);

  it('decision-matrix.md: one plan per severity, and gate() does with each what the page says', () => {
    const plans = yamlBlocks
      .filter((b) => b.file === 'docs/decision-matrix.md')
      .flatMap(parseDocs)
      .filter(isObject)
      .filter((d) => d.kind === 'RollbackPlan');
    const bySeverity = Object.fromEntries(plans.map((p) => [p.spec.severity, p]));
    expect(plans.map((p) => p.spec.severity).sort()).toEqual(['critical', 'high', 'low', 'medium']);
    for (const p of plans)
      expect(parseRollbackPlan(p).ok, `${p.metadata.name} parses with the schema`).toBe(true);

    const decide = (p: Doc) => {
      const now = new Date('2026-01-01T12:00:00Z');
      return gate({
        severity: p.spec.severity,
        mode: p.spec.trigger?.mode ?? 'manual',
        confirmFor: p.spec.trigger?.confirmFor,
        annotations: p.metadata.annotations,
        requestedAt: now,
        now,
      });
    };
    const critical = bySeverity.critical!;
    expect(critical.spec.trigger.mode).toBe('auto');
    expect(critical.spec.trigger.conditions).toEqual([
      expect.objectContaining({ type: 'DeploymentUnavailable', for: '30s' }),
    ]);
    expect(decide(critical)).toMatchObject({ kind: 'execute', approval: { automatic: true } });

    const high = bySeverity.high!;
    expect(high.spec.trigger).toMatchObject({ mode: 'auto', confirmFor: '2m' });
    expect(high.spec.trigger.conditions).toEqual([expect.objectContaining({ type: 'PrometheusQuery' })]);
    expect(decide(high)).toMatchObject({ kind: 'wait', reason: 'ConfirmWindow', requeueAfterMs: 120_000 });

    const medium = bySeverity.medium!;
    expect(medium.spec.trigger.conditions).toEqual([expect.objectContaining({ type: 'Alert' })]);
    expect(decide(medium)).toMatchObject({ kind: 'wait', reason: 'ApprovalRequired' });

    const low = bySeverity.low!;
    expect(low.spec.trigger, 'the low example is a manual plan').toBeUndefined();
    expect(decide(low)).toMatchObject({ kind: 'wait', reason: 'ApprovalRequired' });
  });

  it('approvals.md: the RoleBindings bind the ClusterRoles manifests/approvals ships, one per level', async () => {
    const shipped = (await renderKustomize('manifests/approvals'))
      .filter((o) => o.kind === 'ClusterRole')
      .map((o) => o.metadata.name)
      .sort();
    const bound = yamlBlocks
      .filter((b) => b.file === 'docs/approvals.md')
      .flatMap(parseDocs)
      .filter(isObject)
      .filter((d) => d.kind === 'RoleBinding' && d.roleRef.kind === 'ClusterRole')
      .map((d) => d.roleRef.name)
      .sort();
    expect(bound).toEqual(shipped);
  });
});
