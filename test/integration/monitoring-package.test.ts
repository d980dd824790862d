import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { LocalPrometheus } from '../env/monitoring.js';
import type { TestKubelet } from '../env/test-kubelet.js';
import {
  applySchedule,
  backupNow,
  createBoundClaim,
  createDbSecret,
  dbSecretData,
  deletePvs,
  dumpPath,
  scheduleJobs,
  scheduleSpec,
  startRunnerKubelet,
  waitJobRecorded,
  waitScheduleCondition,
} from '../support/backups.js';
import { binPath, createTestNamespace, deleteTestNamespace, eventually, kubectl } from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, waitPlanPhase } from '../support/plans.js';
import { prometheusOperatorCrds } from '../support/monitoring-crds.js';
import { createTestDatabase, withClient } from '../support/postgres.js';

// The monitoring that ships with the chart and the kustomize component (issue 15), judged by the real tools:
// the API server admits the rendered ServiceMonitor and PrometheusRule against the Prometheus Operator's own
// CRDs, promtool checks the rules, and a real Prometheus scrapes a real operator process with the rules
// loaded, evaluates every one of them and fires the alerts for failures the operator really recorded.

const REPO = resolve(import.meta.dirname, '..', '..');
const CHART = join(REPO, 'charts', 'nxt-rollback-operator');
const COMPONENT = join(REPO, 'manifests', 'components', 'monitoring');
const DASHBOARD = join(CHART, 'files', 'dashboard.json');
const DOC = join(REPO, 'docs', 'monitoring.md');
const RUNBOOKS = join(REPO, 'docs', 'runbooks', 'README.md');
/** The chart's runbookBaseUrl default: a placeholder that tells the user what to set. */
const RUNBOOK_BASE = 'https://example.invalid/SET-monitoring.prometheusRule.runbookBaseUrl/docs/runbooks';
/** The release name the docs install with: its fullname is the base's, so the job is the same. */
const RELEASE = 'nxt-rollback-operator';
const JOB = 'nxt-rollback-operator-metrics';

const PROMTOOL = process.env.NXT_PROMTOOL_BIN ?? '/usr/bin/promtool';

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: any;
}
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
}
interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a binary without throwing, so a test can assert on a failure's exit code and message. */
function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd = REPO,
): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
    child.stdin.end();
  });
}

function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const o = doc.toJS() as KubeObject | null;
    return o ? [o] : [];
  });
}
const ofKind = (objects: KubeObject[], kind: string) => objects.filter((o) => o.kind === kind);
const MONITORING_KINDS = ['ServiceMonitor', 'PrometheusRule'];
const isDashboard = (o: KubeObject) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1';
const monitoringObjects = (objects: KubeObject[]) =>
  objects.filter((o) => MONITORING_KINDS.includes(o.kind) || isDashboard(o));

// --- metric names in PromQL -------------------------------------------------------------------------------

const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects (Grafana's $variables allowed). Strings, label lists,
 * matchers and ranges are cut out first; what is left that is not a function call, keyword or number is a
 * metric name.
 */
function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\$\{?\w+\}?/g, '1')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.])[A-Za-z_:][\w:]*/g)) {
    const word = m[0];
    const calls = /^\s*\(/.test(bare.slice((m.index ?? 0) + word.length)); // a function or an aggregation
    if (calls || PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names].sort();
}

/** Names a /metrics text declares (# TYPE), histogram series names included. */
function declaredNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
    else names.add(name);
  }
  return names;
}

/** Series Prometheus makes itself for every target; not the operator's to export. */
const SCRAPE_SERIES = new Set(['up']);

const ruleGroups = (rule: KubeObject): RuleGroup[] => rule.spec.groups;
const allRules = (groups: RuleGroup[]) => groups.flatMap((g) => g.rules);

function dashboardQueries(): { panel: string; expr: string }[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  const flat = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...flat(p.panels ?? [])]);
  return flat(dash.panels).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
}

/** Grafana's variables replaced by what Grafana would put there (the dashboard's defaults). */
function grafanaExpanded(expr: string, job: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '1h')
    .replaceAll('$__interval', '15s')
    .replaceAll(/\$\{?job\}?/g, job)
    .replaceAll(/\$\{?rto\}?/g, '600');
}

/** GitHub's anchors for the headings of a Markdown file (lower case, spaces to dashes, punctuation dropped). */
function markdownAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  for (const m of text.matchAll(/^#{1,6} (.+)$/gm))
    anchors.add(
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    );
  return anchors;
}

/** The docs' kustomize overlay that renames the objects (namePrefix), with the patch that keeps the job. */
function docPrefixOverlay(): Record<string, any> {
  const overlay = [...readFileSync(DOC, 'utf8').matchAll(/^```yaml\n([\s\S]*?)^```$/gm)]
    .map((m) => parseAllDocuments(m[1]!)[0]!.toJS() as Record<string, any>)
    .find((o) => o?.kind === 'Kustomization' && o.namePrefix);
  if (!overlay) throw new Error('docs/monitoring.md has no Kustomization yaml block with a namePrefix');
  return overlay;
}

/** The `--set` flags of the docs' helm command, and the docs' kustomize overlay. */
function docExamples(): { helmSets: string[]; overlay: Record<string, any> } {
  const text = readFileSync(DOC, 'utf8');
  const helm = [...text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)]
    .map((m) => m[1]!)
    .find((b) => b.includes('helm upgrade --install'));
  if (!helm) throw new Error('docs/monitoring.md has no sh block with helm upgrade --install');
  const overlay = [...text.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)]
    .map((m) => parseAllDocuments(m[1]!)[0]!.toJS() as Record<string, any>)
    .find(
      (o) =>
        o?.kind === 'Kustomization' && (o.components ?? []).some((c: string) => c.includes('monitoring')),
    );
  if (!overlay)
    throw new Error('docs/monitoring.md has no Kustomization yaml block with the monitoring component');
  return { helmSets: [...helm.matchAll(/--set (\S+)/g)].map((m) => m[1]!), overlay };
}

describe('monitoring package: ServiceMonitor, PrometheusRule, Grafana dashboard', () => {
  const helmHome = mkdtempSync(join(tmpdir(), 'nxt-helm-'));
  const helmEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  };
  const helm = (...args: string[]) => run(binPath('helm'), args, helmEnv);
  const kube = (...args: string[]) =>
    run(binPath('kubectl'), [`--kubeconfig=${inject('kubeconfigPath')}`, ...args]);
  const tmp = mkdtempSync(join(tmpdir(), 'nxt-monitoring-'));
  let kubeVersion = '';
  let ns = '';
  let crdFiles: string[] = [];
  let chart: KubeObject[] = [];
  let kustomized: KubeObject[] = [];

  async function helmTemplate(namespace: string, ...sets: string[]): Promise<KubeObject[]> {
    const args = ['template', RELEASE, CHART, '--namespace', namespace, '--kube-version', kubeVersion];
    const r = await helm(...args, ...sets.flatMap((s) => ['--set', s]));
    expect(r.code, `helm template ${sets.join(' ')} should render; helm said:\n${r.stderr}`).toBe(0);
    return parseObjects(r.stdout);
  }

  /** Renders a docs' overlay as if it lived in manifests/overlays/<name>/ (its relative paths re-pointed). */
  async function kustomize(overlay: Record<string, any>, name: string): Promise<KubeObject[]> {
    const dir = join(tmp, name);
    mkdirSync(dir);
    const fromRepo = (p: string) => relative(dir, resolve(REPO, 'manifests', 'overlays', 'x', p));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      stringify({
        ...overlay,
        resources: (overlay.resources ?? []).map(fromRepo),
        components: overlay.components.map(fromRepo),
      }),
    );
    const r = await kube('kustomize', dir);
    expect(r.code, `kubectl kustomize of the docs' overlay ${name} should render:\n${r.stderr}`).toBe(0);
    return parseObjects(r.stdout);
  }

  /** Server-side dry-run apply of objects moved into the test namespace; returns the applied names. */
  async function applyDryRun(objects: KubeObject[], what: string): Promise<string[]> {
    const moved = structuredClone(objects).map((o) => ({ ...o, metadata: { ...o.metadata, namespace: ns } }));
    const file = join(tmp, `${what.replace(/\W+/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: moved }));
    const r = await kube(
      'apply',
      '--server-side',
      '--dry-run=server',
      '--field-manager=monitoring-test',
      '-o',
      'name',
      '-f',
      file,
    );
    expect(r.code, `${what} should be admitted with --dry-run=server; kubectl said:\n${r.stderr}`).toBe(0);
    expect(
      r.stderr.split('\n').filter((l) => /warning/i.test(l)),
      `${what}: API server warnings`,
    ).toEqual([]);
    return r.stdout.trim().split('\n').filter(Boolean);
  }

  beforeAll(async () => {
    kubeVersion = JSON.parse(await kubectl('version', '-o', 'json')).serverVersion.gitVersion;
    ns = await createTestNamespace('mon');
    crdFiles = await prometheusOperatorCrds();
    await kubectl('apply', '--server-side', '--force-conflicts', ...crdFiles.flatMap((f) => ['-f', f]));
    await kubectl('wait', '--for=condition=Established', '--timeout=60s', ...crdFiles.map((f) => `-f=${f}`));
    chart = await helmTemplate(ns, ...docExamples().helmSets);
    kustomized = await kustomize(docExamples().overlay, 'overlay');
  });
  afterAll(async () => {
    if (ns) await deleteTestNamespace(ns);
    // The Prometheus Operator's CRDs are this file's: leave the shared control plane as it was.
    if (crdFiles.length)
      await kubectl('delete', '--ignore-not-found', '--wait=false', ...crdFiles.flatMap((f) => ['-f', f]));
    rmSync(tmp, { recursive: true, force: true });
    rmSync(helmHome, { recursive: true, force: true });
  });

  describe('rendering and admission', () => {
    it('the chart renders none of it by default, and each flag adds exactly its object', async () => {
      expect(monitoringObjects(await helmTemplate(ns)).map((o) => o.kind)).toEqual([]);
      for (const [flags, kinds] of [
        [['monitoring.serviceMonitor.enabled=true'], ['ServiceMonitor']],
        [['monitoring.dashboard.enabled=true'], ['ConfigMap']],
        // The key the chart had before: still honoured.
        [['metrics.serviceMonitor.enabled=true'], ['ServiceMonitor']],
        // The rules with what gives their series the job they select: the ServiceMonitor (either key)...
        [
          ['monitoring.prometheusRule.enabled=true', 'monitoring.serviceMonitor.enabled=true'],
          MONITORING_KINDS,
        ],
        [['monitoring.prometheusRule.enabled=true', 'metrics.serviceMonitor.enabled=true'], MONITORING_KINDS],
        // ...or a selector of series something else scrapes.
        [
          ['monitoring.prometheusRule.enabled=true', 'monitoring.prometheusRule.selector=job="my-scrape"'],
          ['PrometheusRule'],
        ],
      ]) {
        expect(
          monitoringObjects(await helmTemplate(ns, ...flags!))
            .map((o) => o.kind)
            .sort(),
          flags!.join(' '),
        ).toEqual([...kinds!].sort());
      }
      const refused = async (...sets: string[]) => {
        const r = await helm(
          'template',
          RELEASE,
          CHART,
          '--kube-version',
          kubeVersion,
          ...sets.flatMap((x) => ['--set', x]),
        );
        expect(r.code, `helm template ${sets.join(' ')} should fail`).not.toBe(0);
        return r.stderr;
      };
      // Rules whose job nothing gives the series: refused, with what to do.
      const alone = await refused('monitoring.prometheusRule.enabled=true');
      expect(alone).toContain(
        'monitoring.prometheusRule.enabled needs monitoring.serviceMonitor.enabled=true',
      );
      expect(alone).toContain(`job="${RELEASE}-metrics"`);
      expect(alone).toContain('monitoring.prometheusRule.selector');
      const withSm = ['monitoring.prometheusRule.enabled=true', 'monitoring.serviceMonitor.enabled=true'];
      expect(await refused(...withSm, 'monitoring.prometheusRule.backupStaleFraction=1')).toContain(
        'backupStaleFraction',
      );
      expect(await refused(...withSm, 'monitoring.prometheusRule.runbookBaseUrl=docs/runbooks')).toContain(
        'runbookBaseUrl',
      );
      expect(await refused(...withSm, 'monitoring.prometheusRule.selector=job')).toContain('selector');
    });

    it('with monitoring.prometheusRule.selector every rule selects that, not the job; promtool accepts them', async () => {
      const groups = ruleGroups(
        ofKind(
          await helmTemplate(
            ns,
            'monitoring.prometheusRule.enabled=true',
            // Two matchers; helm's --set splits on a comma that is not escaped.
            'monitoring.prometheusRule.selector=job="my-scrape"\\,env!="dev"',
          ),
          'PrometheusRule',
        )[0]!,
      );
      for (const r of allRules(groups)) {
        expect(r.expr, r.alert).toContain('{job="my-scrape",env!="dev"');
        expect(r.expr, r.alert).not.toContain(JOB);
      }
      const file = join(tmp, 'selector-rules.yml');
      writeFileSync(file, stringify({ groups }));
      const r = await run(PROMTOOL, ['check', 'rules', file]);
      expect(r.code, `promtool check rules:\n${r.stdout}${r.stderr}`).toBe(0);
    });

    it("helm template with the docs' flags: the API server admits the ServiceMonitor, PrometheusRule and dashboard ConfigMap", async () => {
      const objects = monitoringObjects(chart);
      expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'PrometheusRule', 'ServiceMonitor']);
      const names = await applyDryRun(objects, 'chart monitoring objects');
      expect(names.sort()).toEqual(
        [
          `configmap/${RELEASE}-dashboard`,
          `prometheusrule.monitoring.coreos.com/${RELEASE}`,
          `servicemonitor.monitoring.coreos.com/${RELEASE}`,
        ].sort(),
      );
      // The ServiceMonitor selects the metrics Service and names its port; the rules select its job.
      const [monitor] = ofKind(chart, 'ServiceMonitor');
      const service = ofKind(chart, 'Service').find((s) => s.metadata.name === JOB)!;
      expect(service, `the chart's metrics Service is named ${JOB}`).toBeDefined();
      for (const [k, v] of Object.entries(monitor!.spec.selector.matchLabels))
        expect(service.metadata.labels?.[k], `Service label ${k}`).toBe(v);
      expect(service.spec.ports.map((p: { name: string }) => p.name)).toContain(
        monitor!.spec.endpoints[0].port,
      );
      expect(monitor!.spec.endpoints[0].honorLabels).toBe(true);
      const rules = allRules(ruleGroups(ofKind(chart, 'PrometheusRule')[0]!));
      for (const r of rules) expect(r.expr, r.alert).toContain(`job="${JOB}"`);
      const dashboard = chart.find(isDashboard)!;
      expect(JSON.parse(dashboard.data['nxt-rollback-operator.json'])).toEqual(
        JSON.parse(readFileSync(DASHBOARD, 'utf8')),
      );
    });

    it("the kustomize component (the docs' overlay): admitted, the chart's rules and the chart's dashboard", async () => {
      const objects = monitoringObjects(kustomized);
      expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'PrometheusRule', 'ServiceMonitor']);
      for (const o of objects)
        expect(o.metadata.namespace, `${o.kind} namespace`).toBe('nxt-rollback-system');
      await applyDryRun(objects, 'kustomize monitoring objects');
      const [monitor] = ofKind(kustomized, 'ServiceMonitor');
      const service = ofKind(kustomized, 'Service').find((s) => s.metadata.name === JOB)!;
      for (const [k, v] of Object.entries(monitor!.spec.selector.matchLabels))
        expect(service.metadata.labels?.[k], `Service label ${k}`).toBe(v);
      expect(monitor!.spec.endpoints).toEqual(ofKind(chart, 'ServiceMonitor')[0]!.spec.endpoints);
      // One source for each: the component's copies must equal what the chart renders by default.
      expect(
        ofKind(kustomized, 'PrometheusRule')[0]!.spec,
        'manifests/components/monitoring/prometheusrule.yaml differs from the chart: regenerate it (see its header)',
      ).toEqual(
        ofKind(
          await helmTemplate(
            'nxt-rollback-system',
            'monitoring.serviceMonitor.enabled=true',
            'monitoring.prometheusRule.enabled=true',
          ),
          'PrometheusRule',
        )[0]!.spec,
      );
      expect(
        readFileSync(join(COMPONENT, 'dashboard.json'), 'utf8'),
        'manifests/components/monitoring/dashboard.json differs: cp charts/nxt-rollback-operator/files/dashboard.json manifests/components/monitoring/dashboard.json',
      ).toBe(readFileSync(DASHBOARD, 'utf8'));
      expect(kustomized.find(isDashboard)!.data['nxt-rollback-operator.json']).toBe(
        readFileSync(DASHBOARD, 'utf8'),
      );
    });

    it("the docs' namePrefix/namespace overlay keeps the job the rules select (and without its patch would not)", async () => {
      /** The job the ServiceMonitor gives the series: a relabeling's, else the scraped Service's name. */
      const problems = (objects: KubeObject[]): string[] => {
        const [monitor] = ofKind(objects, 'ServiceMonitor');
        const [rule] = ofKind(objects, 'PrometheusRule');
        const service = ofKind(objects, 'Service').find((s) =>
          Object.entries(monitor!.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v),
        );
        if (!service) return ['the ServiceMonitor selects no Service'];
        const found: string[] = [];
        const namespaces = monitor!.spec.namespaceSelector?.matchNames ?? [monitor!.metadata.namespace];
        if (!namespaces.includes(service.metadata.namespace))
          found.push(
            `the ServiceMonitor looks in ${namespaces}, the Service is in ${service.metadata.namespace}`,
          );
        const relabel = (monitor!.spec.endpoints[0].relabelings ?? []).find(
          (x: { targetLabel?: string }) => x.targetLabel === 'job',
        );
        const job = relabel?.replacement ?? service.metadata.name;
        for (const r of allRules(ruleGroups(rule!)))
          if (!r.expr.includes(`job="${job}"`)) found.push(`${r.alert} does not select job="${job}"`);
        return found;
      };
      const overlay = docPrefixOverlay();
      const patched = await kustomize(overlay, 'prefix-overlay');
      expect(ofKind(patched, 'Service').map((s) => s.metadata.name)).toContain(`${overlay.namePrefix}${JOB}`);
      expect(problems(patched)).toEqual([]);
      expect(monitoringObjects(patched).map((o) => o.metadata.namespace)).toEqual(
        monitoringObjects(patched).map(() => overlay.namespace),
      );
      await applyDryRun(monitoringObjects(patched), 'the namePrefix overlay with its patch');
      // The check does judge: without the documented patch the rules select a job nothing has.
      const { patches: _patches, ...unpatched } = overlay;
      expect(problems(await kustomize(unpatched, 'prefix-overlay-unpatched')).length).toBeGreaterThan(0);
    });

    it('promtool check rules passes on the rule groups, with severity, summary, description and runbook_url on each alert', async () => {
      const groups = ruleGroups(ofKind(chart, 'PrometheusRule')[0]!);
      const file = join(tmp, 'rules.yml');
      writeFileSync(file, stringify({ groups }));
      const r = await run(PROMTOOL, ['check', 'rules', file]);
      expect(r.code, `promtool check rules:\n${r.stdout}${r.stderr}`).toBe(0);
      const rules = allRules(groups);
      expect(r.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
      // The alerts the issue asks for, by name.
      expect(rules.map((x) => x.alert).sort()).toEqual(
        [
          'NxtBackupStale',
          'NxtRPOBreached',
          'NxtBackupFailed',
          'NxtTestRestoreFailed',
          'NxtRollbackFailed',
          'NxtRollbackAwaitingApproval',
          'NxtRollbackOperatorDown',
          'NxtRollbackOperatorNoLeader',
          'NxtReconcileErrors',
          'NxtWorkQueueDepthHigh',
        ].sort(),
      );
      for (const x of rules) {
        expect(['critical', 'warning'], `${x.alert} severity`).toContain(x.labels?.severity);
        expect(x.annotations?.summary, `${x.alert} summary`).toBeTruthy();
        expect(x.annotations?.description, `${x.alert} description`).toBeTruthy();
        expect(x.annotations?.runbook_url, `${x.alert} runbook_url`).toBe(
          `${RUNBOOK_BASE}/README.md#${x.alert.toLowerCase()}`,
        );
      }
      // Each runbook_url's anchor is a section of docs/runbooks/README.md, and an absolute URL.
      const anchors = markdownAnchors(readFileSync(RUNBOOKS, 'utf8'));
      for (const x of rules) {
        const url = new URL(x.annotations!.runbook_url!);
        expect(url.pathname.endsWith('/docs/runbooks/README.md'), x.alert).toBe(true);
        expect([...anchors], `${x.alert}: ${url.hash} in docs/runbooks/README.md`).toContain(
          url.hash.slice(1),
        );
      }
      // The base is the user's to set; a trailing slash is not doubled.
      const custom = ruleGroups(
        ofKind(
          await helmTemplate(
            ns,
            'monitoring.serviceMonitor.enabled=true',
            'monitoring.prometheusRule.enabled=true',
            'monitoring.prometheusRule.runbookBaseUrl=https://git.example.com/ops/nxt/blob/main/docs/runbooks/',
          ),
          'PrometheusRule',
        )[0]!,
      );
      expect(allRules(custom).find((x) => x.alert === 'NxtRPOBreached')!.annotations!.runbook_url).toBe(
        'https://git.example.com/ops/nxt/blob/main/docs/runbooks/README.md#nxtrpobreached',
      );
      // The docs' commands, as written, from a directory with the repository's charts/.
      const block = [...readFileSync(DOC, 'utf8').matchAll(/^```sh\n([\s\S]*?)^```$/gm)]
        .map((m) => m[1]!)
        .find((b) => b.includes('promtool check rules'));
      expect(block, 'docs/monitoring.md shows the promtool check').toBeDefined();
      const cwd = mkdtempSync(join(tmp, 'docs-'));
      symlinkSync(join(REPO, 'charts'), join(cwd, 'charts'));
      const docRun = await run(
        'bash',
        ['-euo', 'pipefail', '-c', block!],
        {
          ...process.env,
          PATH: `${dirname(binPath('helm'))}:${dirname(PROMTOOL)}:${process.env.PATH}`,
        },
        cwd,
      );
      expect(docRun.code, `the docs' promtool commands:\n${docRun.stdout}${docRun.stderr}`).toBe(0);
      expect(docRun.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
      // And promtool does judge: a broken expression fails the same check.
      writeFileSync(file, stringify({ groups: [{ name: 'g', rules: [{ alert: 'Broken', expr: 'sum(' }] }] }));
      expect((await run(PROMTOOL, ['check', 'rules', file])).code).not.toBe(0);
    });

    it('NxtRollbackOperatorNoLeader is rendered only with leader election', async () => {
      const alerts = async (...sets: string[]) =>
        allRules(
          ruleGroups(
            ofKind(
              await helmTemplate(
                ns,
                'monitoring.serviceMonitor.enabled=true',
                'monitoring.prometheusRule.enabled=true',
                ...sets,
              ),
              'PrometheusRule',
            )[0]!,
          ),
        ).map((r) => r.alert);
      expect(await alerts()).toContain('NxtRollbackOperatorNoLeader');
      expect(await alerts('leaderElection.enabled=false', 'replicaCount=1')).not.toContain(
        'NxtRollbackOperatorNoLeader',
      );
    });

    it('the dashboard has the panels the issue asks for, each with a query, with unique ids', () => {
      const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
        uid: string;
        panels: (Panel & { id: number })[];
        templating: { list: { name: string }[] };
      };
      expect(dash.uid).toBe('nxt-rollback-operator');
      const ids = dash.panels.map((p) => p.id);
      expect(new Set(ids).size, 'panel ids are unique').toBe(ids.length);
      for (const p of dash.panels.filter((x) => x.type !== 'row'))
        expect(p.targets?.length, `panel "${p.title}" has a query`).toBeGreaterThan(0);
      expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'job', 'rto']);
      // Backup age is drawn against each schedule's own objective, not one number for all.
      const age = dash.panels.find((p) => p.title === 'Backup age against the RPO')!;
      expect(age.targets!.map((t) => metricNamesIn(t.expr))).toEqual([
        ['nxt_backup_last_success_timestamp_seconds'],
        ['nxt_rpo_objective_seconds'],
      ]);
      const titles = dash.panels.map((p) => p.title);
      for (const title of [
        'Rollbacks by trigger and result',
        'Time to detect (p50, p95)',
        'Time to recover (p95) against the RTO',
        'Success rate (30 days)',
        'False-positive rate (30 days)',
        'Backup age against the RPO',
        'Backup size',
        'Backup duration (mean)',
        'Backup and test-restore failures',
        'Reconcile latency (p50, p99)',
        'API requests by code and method',
        'Work queue depth',
      ])
        expect(titles).toContain(title);
    });

    it('the metric-name extraction finds names, and only names, in PromQL', () => {
      expect(
        metricNamesIn(
          'histogram_quantile(0.95, sum by (le, job) (rate(a_seconds_bucket{job=~"$job",x="y z"}[5m]))) > 1e-3 or vector($rto)',
        ),
      ).toEqual(['a_seconds_bucket']);
      expect(metricNamesIn('(x_total unless x_total offset 1h) and on(namespace) time() - y > 2700')).toEqual(
        ['x_total', 'y'],
      );
    });
  });

  describe('against a running operator and a real Prometheus', () => {
    const kubeletLog: string[] = [];
    const pvs: string[] = [];
    let workDir = '';
    let kubelet: TestKubelet;
    let op: OperatorProcess;
    let prom: LocalPrometheus;
    let groups: RuleGroup[] = [];
    let app = '';

    beforeAll(async () => {
      app = await createTestNamespace('mon-app');
      workDir = mkdtempSync(join(tmpdir(), 'nxt-mon-kubelet-'));
      kubelet = await startRunnerKubelet(workDir, (m) => kubeletLog.push(m));
      op = await startOperator({
        env: {
          WATCH_NAMESPACES: app,
          LEADER_ELECT: 'true',
          LEADER_ELECTION_NAMESPACE: app,
          LEADER_ELECTION_ID: 'nxt-rollback-operator-leader',
        },
      });
      await op.waitReady();
      groups = ruleGroups(ofKind(chart, 'PrometheusRule')[0]!);
      prom = await LocalPrometheus.start({
        scrapeTargets: [new URL(op.metricsUrl).host],
        // What the ServiceMonitor gives the series: job = the metrics Service's name.
        targetLabels: { job: JOB },
        rules: stringify({ groups }),
      });
      await prom.waitForTargetsUp();
    });
    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail') {
        console.log(`--- test kubelet ---\n${kubeletLog.slice(-30).join('\n')}`);
        console.log(`--- operator ---\n${op?.logs().slice(-4000)}`);
        console.log(`--- prometheus ---\n${prom?.logTail()}`);
      }
    });
    afterAll(async () => {
      await prom?.stop();
      await op?.stop();
      await kubelet?.stop();
      if (app) await deleteTestNamespace(app);
      await deletePvs(pvs);
      if (workDir) rmSync(workDir, { recursive: true, force: true });
    });

    it('the operator reconciles a failing plan, a waiting plan, a failed backup and a failed test restore', async () => {
      await applyPlan(app, 'missing-app', {
        scope: 'app',
        reason: 'monitoring test: the Deployment does not exist',
        targets: { deployments: [{ name: 'no-such-deployment' }] },
      });
      await applyPlan(app, 'needs-approval', {
        scope: 'app',
        severity: 'medium',
        reason: 'monitoring test: waits for an approval',
        targets: { deployments: [{ name: 'no-such-deployment' }] },
      });
      const failed = await waitPlanPhase(app, 'missing-app', ['Failed', 'Succeeded']);
      expect(failed.status.phase).toBe('Failed');
      await waitPlanPhase(app, 'needs-approval', ['AwaitingApproval']);

      // A schedule of a database that does not exist: its backup fails.
      await createDbSecret(app, 'no-db', dbSecretData('nxt_no_such_database'));
      pvs.push(await createBoundClaim(app, 'bad-backups'));
      await applySchedule(app, 'bad', scheduleSpec('no-db', 'bad-backups'));
      // A real database: a good backup, then a test restore of a corrupted copy of it fails.
      const db = await createTestDatabase('mon');
      await withClient(db.url, (c) =>
        c.query('create table orders as select g as id from generate_series(1, 100) g'),
      );
      await createDbSecret(app, 'db', dbSecretData(db.name));
      pvs.push(await createBoundClaim(app, 'good-backups'));
      await applySchedule(
        app,
        'good',
        scheduleSpec('db', 'good-backups', { verify: { testRestoreSchedule: '30 3 * * *' } }),
      );
      await waitScheduleCondition(app, 'bad', 'Ready', 'True');
      await waitScheduleCondition(app, 'good', 'Ready', 'True');
      await backupNow(app, 'bad', 'monitoring-test');
      await backupNow(app, 'good', 'monitoring-test');
      const jobOf = (s: string) =>
        eventually(`a backup Job of ${s}`, async () =>
          (await scheduleJobs(app, s)).find(
            (j) => j.metadata?.labels?.['app.kubernetes.io/component'] === 'backup',
          ),
        );
      const [badJob, goodJob] = await Promise.all([jobOf('bad'), jobOf('good')]);
      await Promise.all([
        waitJobRecorded(app, badJob.metadata!.name!),
        waitJobRecorded(app, goodJob.metadata!.name!),
      ]);
      await waitScheduleCondition(app, 'bad', 'LastBackupSucceeded', 'False');
      await waitScheduleCondition(app, 'good', 'LastBackupSucceeded', 'True', 'BackupVerified');
      const file = dumpPath(kubelet.pvcDir(app, 'good-backups'), goodJob.metadata!.name!);
      const size = readFileSync(file).length;
      const fd = openSync(file, 'r+');
      writeSync(fd, Buffer.alloc(64, 0x5a), 0, 64, Math.floor(size / 2));
      closeSync(fd);
      await kubectl('-n', app, 'create', 'job', '--from=cronjob/good-verify', 'good-verify-monitoring');
      await waitJobRecorded(app, 'good-verify-monitoring');
      await waitScheduleCondition(app, 'good', 'LastTestRestoreSucceeded', 'False', 'ChecksumMismatch');
    });

    it('every metric the rules and the dashboard panels reference is exported by the operator', async () => {
      const exposition = await fetch(op.metricsUrl).then((r) => r.text());
      const exported = declaredNames(exposition);
      const referenced = new Map<string, string[]>();
      const note = (name: string, where: string) =>
        referenced.set(name, [...(referenced.get(name) ?? []), where]);
      for (const r of allRules(groups)) for (const n of metricNamesIn(r.expr)) note(n, `rule ${r.alert}`);
      for (const q of dashboardQueries())
        for (const n of metricNamesIn(q.expr)) note(n, `panel "${q.panel}"`);
      const missing = [...referenced]
        .filter(([n]) => !exported.has(n) && !SCRAPE_SERIES.has(n))
        .map(([n, where]) => `${n} (${[...new Set(where)].join(', ')})`);
      expect(missing, 'referenced but not exported by the operator').toEqual([]);
      // Not vacuous: the rules and panels do reference the domain and runtime metrics.
      for (const n of [
        'nxt_backup_total',
        'nxt_rollback_total',
        'nxt_test_restore_total',
        'workqueue_depth',
        'nxt_rpo_objective_seconds',
      ])
        expect([...referenced.keys()], n).toContain(n);
      // The scenario above really produced the series the firing alerts read.
      for (const series of [
        /^nxt_rollback_total\{.*result="failed".*\} 1$/m,
        /^nxt_backup_total\{.*schedule="bad",result="failed"\} 1$/m,
        /^nxt_test_restore_total\{.*schedule="good",result="failed"\} 1$/m,
        /^nxt_backup_size_bytes\{.*schedule="good"\} \d+$/m,
        // The schedules' objective (the CRD default 1h), which the backup-age rules join on.
        /^nxt_rpo_objective_seconds\{.*schedule="good"\} 3600$/m,
        /^nxt_rpo_objective_seconds\{.*schedule="bad"\} 3600$/m,
        /^nxt_rollback_plans_awaiting_approval\{.*\} 1$/m,
        /^leader_election_master_status\{.*\} 1$/m,
      ])
        expect(exposition, String(series)).toMatch(series);
    });

    it('Prometheus evaluates every alert rule without error; the failures fire, the waiting plan is pending', async () => {
      const names = allRules(groups).map((r) => r.alert);
      const health = await eventually(
        'every rule evaluated at least once',
        async () => {
          const r = await fetch(`${prom.url}/api/v1/rules?type=alert`, { signal: AbortSignal.timeout(5000) });
          const body = (await r.json()) as {
            data: {
              groups: {
                rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[];
              }[];
            };
          };
          const rules = body.data.groups.flatMap((g) => g.rules);
          const evaluated = rules.filter((x) => !x.lastEvaluation.startsWith('0001-'));
          return evaluated.length === names.length ? rules : undefined;
        },
        30_000,
        500,
      );
      expect(health.map((x) => x.name).sort()).toEqual([...names].sort());
      expect(
        health.filter((x) => x.health !== 'ok').map((x) => `${x.name}: ${x.health} ${x.lastError ?? ''}`),
        'rules with evaluation errors',
      ).toEqual([]);

      for (const alert of ['NxtRollbackFailed', 'NxtBackupFailed', 'NxtTestRestoreFailed'])
        await prom.waitForAlert(alert, 'firing', 30_000);
      await prom.waitForAlert('NxtRollbackAwaitingApproval', 'pending', 30_000);
      const alerts = (
        (await fetch(`${prom.url}/api/v1/alerts`).then((r) => r.json())) as {
          data: { alerts: { labels: Record<string, string>; state: string }[] };
        }
      ).data.alerts;
      const firing = (name: string) => alerts.filter((a) => a.labels.alertname === name);
      expect(firing('NxtRollbackFailed').map((a) => a.labels)).toEqual([
        expect.objectContaining({ scope: 'app', trigger: 'manual', severity: 'critical' }),
      ]);
      expect(firing('NxtBackupFailed').map((a) => a.labels)).toEqual([
        expect.objectContaining({ namespace: app, schedule: 'bad', severity: 'warning' }),
      ]);
      expect(firing('NxtTestRestoreFailed').map((a) => a.labels)).toEqual([
        expect.objectContaining({ namespace: app, schedule: 'good', severity: 'warning' }),
      ]);
      expect(firing('NxtRollbackAwaitingApproval').map((a) => a.labels)).toEqual([
        expect.objectContaining({ namespace: app }),
      ]);
      // The operator runs and leads, and the good schedule's backup is fresh: these stay quiet.
      for (const quiet of [
        'NxtRollbackOperatorDown',
        'NxtRollbackOperatorNoLeader',
        'NxtRPOBreached',
        'NxtBackupStale',
      ])
        expect(firing(quiet), quiet).toEqual([]);
      // Quiet because the good schedule's backup is younger than its own objective, not because the join
      // of age and objective matched nothing: the same expression with the comparison turned round finds it.
      for (const name of ['NxtRPOBreached', 'NxtBackupStale']) {
        const rule = allRules(groups).find((x) => x.alert === name)!;
        const turned = rule.expr.replace('> on (namespace, schedule)', '<= on (namespace, schedule)');
        expect(turned, name).not.toBe(rule.expr);
        const result = (await prom.query(turned)).data.result as { metric: Record<string, string> }[];
        expect(
          result.map((x) => `${x.metric.namespace}/${x.metric.schedule}`),
          `${name} with <=`,
        ).toEqual([`${app}/good`]);
      }
    });

    it('every dashboard query is accepted by Prometheus, and the backup panels show the schedules', async () => {
      const queries = dashboardQueries();
      expect(queries.length).toBeGreaterThanOrEqual(20);
      for (const q of queries) {
        const r = await prom.query(grafanaExpanded(q.expr, JOB));
        expect(r.status, `panel "${q.panel}": ${q.expr}`).toBe('success');
      }
      const size = queries.find((q) => q.panel === 'Backup size')!;
      const result = (await prom.query(grafanaExpanded(size.expr, JOB))).data.result as {
        metric: Record<string, string>;
      }[];
      expect(result.map((s) => s.metric.schedule)).toEqual(['good']);
    });

    it('NxtRollbackOperatorDown goes pending once the operator is gone', async () => {
      await op.kill();
      await prom.waitForAlert('NxtRollbackOperatorDown', 'pending', 30_000);
    });
  });
});
