import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBackupSchedule } from '../../operator/api/v1alpha1/backupschedule.js';
import { GROUP, VERSION } from '../../operator/api/v1alpha1/common.js';
import { parseRollbackPlan } from '../../operator/api/v1alpha1/rollbackplan.js';
import { RESOURCE_CUSTOMIZATIONS } from '../env/argocd-lua.js';
import { createTestNamespace, deleteTestNamespace, kubectl, testClients } from '../support/kube.js';

// The objects the Argo CD health checks and actions are tested against (docs/integrations/argocd/
// resource_customizations/**/testdata) are objects the real API server accepts with the installed CRDs: the
// spec through `kubectl apply --dry-run=server`, the status through a dry-run update of the status subresource
// (a create ignores status), so a test case cannot rest on a field or value the operator could never write.
// The runtime parse (the same zod schemas the controllers use) must accept them too.

const { custom } = testClients();
const PLURAL: Record<string, string> = { RollbackPlan: 'rollbackplans', BackupSchedule: 'backupschedules' };
const parseObject: Record<string, (o: unknown) => { ok: boolean; problems?: unknown }> = {
  RollbackPlan: parseRollbackPlan,
  BackupSchedule: parseBackupSchedule,
};

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? yamlFiles(join(dir, e.name))
      : e.name.endsWith('.yaml') && join(dir, e.name).includes('/testdata/')
        ? [join(dir, e.name)]
        : [],
  );
}
const FILES = yamlFiles(RESOURCE_CUSTOMIZATIONS).map((path) => ({
  path,
  name: relative(RESOURCE_CUSTOMIZATIONS, path),
  obj: parse(readFileSync(path, 'utf8')) as Record<string, any>,
}));

let ns: string;
const tmp = mkdtempSync(join(tmpdir(), 'nxt-argocd-testdata-'));
beforeAll(async () => {
  ns = await createTestNamespace('argocd-testdata');
});
afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  if (ns) await deleteTestNamespace(ns);
});

/** The object as a user would apply it into `ns`: the server-set metadata dropped, a name of its own. */
function applicable(obj: Record<string, any>, name: string) {
  const { status: _status, ...rest } = obj;
  const { uid: _u, resourceVersion: _r, creationTimestamp: _c, generation: _g, ...meta } = obj.metadata;
  return { ...rest, metadata: { ...meta, name, namespace: ns } };
}

describe('Argo CD testdata objects are valid for the CRDs', () => {
  it('has testdata for both kinds', () => {
    const kinds = new Set(FILES.map((f) => f.obj.kind));
    expect([...kinds].sort()).toEqual(['BackupSchedule', 'RollbackPlan']);
    expect(FILES.length).toBeGreaterThanOrEqual(30);
  });

  it.each(FILES.map((f, i) => [f.name, f, i] as const))('%s', async (_name, f, i) => {
    const kind = f.obj.kind as string;
    expect(f.obj.apiVersion).toBe(`${GROUP}/${VERSION}`);

    const name = `td-${i}-${kind.toLowerCase()}`;
    const obj = applicable(f.obj, name);
    // The spec (and metadata) as the API server's validation sees it on apply, without storing anything.
    const file = join(tmp, `${name}.yaml`);
    writeFileSync(file, stringify(obj));
    const dryRun = await kubectl('apply', '--dry-run=server', '-o', 'name', '-f', file);
    expect(dryRun.trim()).toBe(`${kind.toLowerCase()}.${GROUP}/${name}`);
    if (f.obj.status !== undefined) await expectStatusAccepted(f, kind, name, obj);
    // Last, so a refusal above is the API server's own: the runtime parse agrees.
    const parsed = parseObject[kind]!(f.obj);
    expect(parsed.problems ?? [], `${f.name}: the runtime parse`).toEqual([]);
  });
});

/** The status: only the status subresource validates it. Create the object, then a dry-run status update. */
async function expectStatusAccepted(
  f: (typeof FILES)[number],
  kind: string,
  name: string,
  obj: Record<string, unknown>,
) {
  const created = (await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: PLURAL[kind]!,
    body: obj,
  })) as Record<string, any>;
  try {
    await custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL[kind]!,
      name,
      body: { ...created, status: f.obj.status },
      dryRun: 'All',
    });
  } catch (e) {
    const body = (e as { body?: string }).body ?? String(e);
    throw new Error(`${f.name}: the API server refused its status:\n${body}\n${stringify(f.obj.status)}`);
  }
}

// The YAML in the README applies as well (a namespace it names is moved to the test namespace).
describe('docs/integrations/argocd/README.md YAML', () => {
  const readme = readFileSync(join(RESOURCE_CUSTOMIZATIONS, '..', 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => parse(m[1]!));
  it('has YAML blocks, and each applies with kubectl apply --dry-run=server', async () => {
    expect(blocks.length).toBeGreaterThan(0);
    for (const [i, doc] of blocks.entries()) {
      const file = join(tmp, `readme-${i}.yaml`);
      writeFileSync(file, stringify({ ...doc, metadata: { ...doc.metadata, namespace: ns } }));
      await kubectl('apply', '--dry-run=server', '-f', file);
    }
  });
});
