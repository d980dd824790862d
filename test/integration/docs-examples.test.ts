import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { parseRollbackPlan } from '../../operator/api/v1alpha1/rollbackplan.js';
import { gate } from '../../operator/rollback/decision.js';
import { ensureFluxBinaries } from '../env/flux.js';
import {
  allBlocks,
  cliUsageError,
  isShell,
  nxtRollbackArgs,
  REPO,
  scriptOf,
  SHELL_LANGS,
  simpleCommands,
  YAML_LANGS,
  type Block,
} from '../support/docs.js';
import { binPath, createTestNamespace, deleteTestNamespace, kubectl } from '../support/kube.js';
import { prometheusOperatorCrds } from '../support/monitoring-crds.js';
import { kubectlWith, renderKustomize } from '../support/rbac.js';

// Every ```yaml block and every shell block (```sh, ```bash, ```console, ```shell; and the `$ ` lines of a
// ```text or untagged transcript) of README.md and
// docs/**/*.md is checked, so the docs cannot rot; a page added later is picked up without a change here.
// - YAML: Kubernetes objects are applied with `kubectl apply --dry-run=server` against the real API server
//   with the CRDs they need (ours, Flux's, the Prometheus Operator's): schema, CEL rules, strict field
//   validation, no warnings. A `<!-- docs-test: fragment Kind -->` block is merged into a minimal Kind first.
//   Kustomizations are rendered by `kubectl kustomize` where they would live, Prometheus rules are checked by
//   promtool and an Alertmanager configuration by amtool.
// - Shell: `bash -n`; every nxt-rollback / kubectl nxt-rollback / `npm run` of the CLI is parsed by the CLI's
//   own commander program (unknown command, flag or choice = failure); every kubectl and helm command line is
//   parsed by the real binary (`--help` appended: cobra rejects an unknown command or flag first); the paths
//   given to -f / -k exist and -k directories render; `helm template` runs for real; `npm run X` names a script.
// - docs/tutorial.md's shell blocks run for real, in order, in one bash, against the control plane.
// - `<!-- docs-test: skip (reason) -->` before a block opts it out; the reason is required; skips are reported.
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
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
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

  /** Server-side dry-run apply into the test namespace (a namespace the docs name is moved there). */
  async function dryRun(docs: Doc[]) {
    const moved = docs.map((d) => ({
      ...d,
      metadata: { ...d.metadata, ...(d.metadata.namespace ? { namespace: ns } : {}) },
    }));
    const file = join(tmp, `${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: moved }));
    return kubectlWith(
      inject('kubeconfigPath'),
      'apply',
      '--server-side',
      '--dry-run=server',
      '--field-manager=docs-test',
      '-n',
      ns,
      '-o',
      'name',
      '-f',
      file,
    );
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
    if (groups.has('monitoring.coreos.com') || helmMonitoring)
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
          ? `${where(b)}: unknown marker "docs-test: ${b.badMarker}" (skip (reason) | fragment Kind)`
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

  for (const file of files) {
    const ys = yamlBlocks.filter((b) => b.file === file && b.skip === undefined);
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
              try {
                writeFileSync(join(dir, 'kustomization.yaml'), b.text);
                const r = await run(binPath('kubectl'), ['kustomize', dir]);
                if (r.code !== 0) fail(`kubectl kustomize: ${r.stderr}`);
              } finally {
                rmSync(dir, { recursive: true, force: true });
              }
              continue;
            }
            const r = await dryRun(objs);
            const what = objs.map((d) => `${d.kind}/${d.metadata.name}`).join(', ');
            if (r.code !== 0) fail(`${what} not admitted: ${r.stderr}`);
            else if (r.stdout.trim().split('\n').length !== objs.length) fail(`${what}: ${r.stdout}`);
            const warnings = r.stderr.split('\n').filter((l) => /warning/i.test(l));
            if (warnings.length) fail(`${what}: ${warnings.join('; ')}`);
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

    const ss = shellBlocks.filter((b) => b.file === file && b.skip === undefined);
    if (ss.length)
      it(`${file}: every shell block parses, and each nxt-rollback, kubectl and helm command line is valid`, async () => {
        const failures: string[] = [];
        for (const b of ss) {
          const fail = (m: string) => failures.push(`${where(b)}: ${m}`);
          const script = scriptOf(b);
          const syntax = await run('bash', ['-n'], { input: script });
          if (syntax.code !== 0) fail(`bash -n: ${syntax.stderr}`);
          for (const argv of simpleCommands(script)) {
            const line = argv.join(' ');
            const cli = nxtRollbackArgs(argv, scripts);
            if (cli) {
              const err = await cliUsageError(cli);
              if (err) fail(`${line}: ${err}`);
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
              for (let i = 0; i < args.length; i++) {
                const [flag, inline] = args[i]!.split('=', 2) as [string, string | undefined];
                if (!['-f', '--filename', '-k', '--kustomize'].includes(flag)) continue;
                const path = inline ?? args[i + 1]!;
                if (path === '-' || /^https?:|\$/.test(path)) continue;
                // A repository path (manifests/..., charts/..., crds/) must exist; a file the reader saves need not.
                const inRepo = path.includes('/') && existsSync(join(REPO, path.split('/')[0]!));
                if (!inRepo) continue;
                if (!existsSync(join(REPO, path))) fail(`${line}: ${path} does not exist in the repository`);
                else if (flag === '-k' || flag === '--kustomize') {
                  const k = await run(binPath('kubectl'), ['kustomize', path]);
                  if (k.code !== 0) fail(`${line}: kubectl kustomize ${path}: ${k.stderr}`);
                }
              }
            }
            if (cmd === 'helm' && ['template', 'install', 'upgrade'].includes(args[0]!)) {
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
    const steps = blocks.filter(
      (b) => b.file === TUTORIAL && SHELL_LANGS.has(b.lang) && b.skip === undefined,
    );
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
      ...steps.map((b) => `echo "### ${where(b)}" >&2\n${scriptOf(b)}`),
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
