import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseRollbackPlan } from '../../operator/api/v1alpha1/rollbackplan.js';
import { gate } from '../../operator/rollback/decision.js';
import { createTestNamespace, deleteTestNamespace } from '../support/kube.js';
import { kubectlWith, renderKustomize } from '../support/rbac.js';

// Every ```yaml block of these pages is applied with `kubectl apply --dry-run=server` against the real API
// server with the CRDs installed (schema, CEL rules, strict field validation), so the docs cannot rot. The
// decision matrix's plans are also run through gate(), so what the page says each severity does is what the
// operator does.

const REPO = resolve(import.meta.dirname, '..', '..');
const DOCS = ['docs/decision-matrix.md', 'docs/approvals.md'] as const;

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [field: string]: any;
}

/** The ```yaml blocks of a Markdown file, each parsed into its documents. */
function yamlBlocks(file: string): Doc[][] {
  const text = readFileSync(join(REPO, file), 'utf8');
  return [...text.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) =>
    parseAllDocuments(m[1]!).map((d) => {
      if (d.errors.length)
        throw new Error(`${file}: invalid YAML: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS() as Doc;
    }),
  );
}

describe('the YAML in the docs applies to the real API server', () => {
  let ns = '';
  const tmp = mkdtempSync(join(tmpdir(), 'nxt-docs-'));
  const blocks = Object.fromEntries(DOCS.map((f) => [f, yamlBlocks(f)])) as Record<
    (typeof DOCS)[number],
    Doc[][]
  >;

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

  beforeAll(async () => {
    ns = await createTestNamespace('docs');
  });
  afterAll(async () => {
    if (ns) await deleteTestNamespace(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const file of DOCS) {
    it(`${file}: every yaml block is admitted with --dry-run=server, without warnings`, async () => {
      expect(blocks[file].length, `${file} should have yaml blocks`).toBeGreaterThan(0);
      for (const [i, docs] of blocks[file].entries()) {
        const r = await dryRun(docs);
        const what = `${file} yaml block ${i + 1} (${docs.map((d) => `${d.kind}/${d.metadata.name}`).join(', ')})`;
        expect(r.code, `${what} should apply; kubectl said:\n${r.stderr}`).toBe(0);
        expect(r.stdout.trim().split('\n').length, `${what}: one line per object`).toBe(docs.length);
        expect(
          r.stderr.split('\n').filter((l) => /warning/i.test(l)),
          `${what}: warnings`,
        ).toEqual([]);
      }
    });
  }

  it('(control) the same dry run refuses a plan the CRD rejects and warns about an unknown field', async () => {
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
  });

  it('decision-matrix.md: one plan per severity, and gate() does with each what the page says', () => {
    const plans = blocks['docs/decision-matrix.md'].flat().filter((d) => d.kind === 'RollbackPlan');
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
    const bound = blocks['docs/approvals.md']
      .flat()
      .filter((d) => d.kind === 'RoleBinding' && d.roleRef.kind === 'ClusterRole')
      .map((d) => d.roleRef.name)
      .sort();
    expect(bound).toEqual(shipped);
  });
});
