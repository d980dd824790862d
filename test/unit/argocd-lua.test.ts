import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argoCdConfigMap } from '../../hack/generate-argocd-cm.js';
import { GROUP } from '../../operator/api/v1alpha1/common.js';
import { RollbackPlanPhases } from '../../operator/api/v1alpha1/rollbackplan.js';
import {
  ARGOCD_DOCS,
  ensureArgoCdLua,
  RESOURCE_CUSTOMIZATIONS,
  runArgoCdLuaTests,
  type LuaResult,
  type LuaRun,
} from '../env/argocd-lua.js';

// The Argo CD health checks and the backup-now action, run by the real gopher-lua v1.1.2 set up as Argo CD sets
// it up (hack/argocd-lua), against every testdata object: from the files (as Argo CD runs built-in checks) and
// from the argocd-cm snippet users install (restricted Lua libraries).
const KINDS = ['RollbackPlan', 'BackupSchedule'] as const;
const kindDir = (kind: string) => join(RESOURCE_CUSTOMIZATIONS, GROUP, kind);
const testdata = (kind: string) =>
  readdirSync(join(kindDir(kind), 'testdata')).map((f) => ({
    file: `testdata/${f}`,
    obj: parse(readFileSync(join(kindDir(kind), 'testdata', f), 'utf8')),
  }));
const describeResult = (r: LuaResult) =>
  `${r.kind} ${r.script} (${r.source}, ${r.openLibs ? 'all Lua libraries' : 'restricted Lua libraries'}) on ${r.input}: ` +
  (r.error ? `error ${r.error}` : `expected ${JSON.stringify(r.expected)}, got ${JSON.stringify(r.actual)}`);

let bin: string;
let run: LuaRun;
beforeAll(async () => {
  bin = await ensureArgoCdLua();
  run = await runArgoCdLuaTests(bin, { configMap: join(ARGOCD_DOCS, 'argocd-cm.yaml') });
}, 300_000);

describe('Argo CD health checks and actions (gopher-lua, as Argo CD loads them)', () => {
  it('every health_test.yaml and action_test.yaml case gives the expected result, from the files and from argocd-cm', () => {
    const failures = run.results.filter((r) => !r.ok).map(describeResult);
    expect(failures, run.stderr).toEqual([]);
    expect(run.exitCode).toBe(0);
    for (const kind of KINDS) {
      const cases = parse(readFileSync(join(kindDir(kind), 'health_test.yaml'), 'utf8')).tests.length;
      for (const source of ['built-in', 'argocd-cm']) {
        const ran = run.results.filter(
          (r) => r.kind === 'health' && r.script === `${GROUP}/${kind}` && r.source === source,
        );
        expect(ran.length, `${kind} health cases run from ${source}`).toBe(cases);
      }
    }
    const actions = run.results.filter((r) => r.kind === 'action' || r.kind === 'discovery');
    expect(actions.length, 'discovery and action cases run').toBeGreaterThanOrEqual(10);
    expect(run.summary).toBe(`${run.results.length} passed, 0 failed`);
  });

  it('every testdata object is a test case, and every RollbackPlan phase and the stale-generation case are covered', () => {
    for (const kind of KINDS) {
      const cases = parse(readFileSync(join(kindDir(kind), 'health_test.yaml'), 'utf8')).tests as {
        inputPath: string;
        healthStatus: { status: string };
      }[];
      const data = testdata(kind);
      expect(cases.map((c) => c.inputPath).sort()).toEqual(data.map((d) => d.file).sort());
      // The file name starts with the expected health, as in Argo CD's own testdata.
      for (const c of cases)
        expect(c.inputPath.toLowerCase()).toContain(`/${c.healthStatus.status.toLowerCase()}_`);
      const stale = data.filter(
        (d) =>
          d.obj.status?.observedGeneration !== undefined &&
          d.obj.status.observedGeneration !== d.obj.metadata.generation,
      );
      expect(stale.length, `${kind}: a case whose status is for an older generation`).toBeGreaterThan(0);
      expect(
        data.some((d) => d.obj.status === undefined),
        `${kind}: a case without status`,
      ).toBe(true);
    }
    const phases = new Set(testdata('RollbackPlan').map((d) => d.obj.status?.phase));
    expect(
      RollbackPlanPhases.filter((p) => !phases.has(p)),
      'RollbackPlan phases without a test case',
    ).toEqual([]);
    const annotated = testdata('BackupSchedule').filter(
      (d) => d.obj.metadata.annotations?.[`${GROUP}/backup-now`] !== undefined,
    );
    expect(annotated.length, 'BackupSchedule cases with a backup-now value').toBeGreaterThanOrEqual(4);
  });

  it('docs/integrations/argocd/argocd-cm.yaml is what npm run generate writes from the scripts', () => {
    expect(readFileSync(join(ARGOCD_DOCS, 'argocd-cm.yaml'), 'utf8')).toBe(argoCdConfigMap());
  });
});

// The runner must fail when a script's result differs: the same tests against a copy with one expected status
// and one script changed.
describe('hack/argocd-lua reports a differing result', () => {
  const copy = mkdtempSync(join(tmpdir(), 'nxt-argocd-lua-'));
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  it('fails on a wrong expected status and on a script that returns another status', async () => {
    cpSync(RESOURCE_CUSTOMIZATIONS, copy, { recursive: true });
    const tests = join(copy, GROUP, 'RollbackPlan', 'health_test.yaml');
    writeFileSync(
      tests,
      readFileSync(tests, 'utf8').replace(
        /status: Suspended(\n\s+message: '?ConfirmWindow)/,
        'status: Healthy$1',
      ),
    );
    const health = join(copy, GROUP, 'BackupSchedule', 'health.lua');
    writeFileSync(
      health,
      readFileSync(health, 'utf8').replace(
        'return result("Progressing", request .. ": waiting for the operator to start the backup")',
        'return result("Healthy", request .. ": waiting for the operator to start the backup")',
      ),
    );
    const mutated = await runArgoCdLuaTests(bin, { dir: copy });
    expect(mutated.exitCode).toBe(1);
    const failed = mutated.results.filter((r) => !r.ok).map((r) => `${r.script} ${r.input}`);
    expect(failed.sort()).toEqual([
      `${GROUP}/BackupSchedule testdata/progressing_backupNowNotSeen.yaml`,
      `${GROUP}/BackupSchedule testdata/progressing_liveBackupNowNotSeen.yaml`,
      `${GROUP}/RollbackPlan testdata/suspended_awaitingApproval.yaml`,
    ]);
    expect(mutated.summary).toBe(`${mutated.results.length - 3} passed, 3 failed`);
  });

  it('gives an argocd-cm script only the restricted libraries, as Argo CD does (no string library)', async () => {
    const dir = join(copy, 'restricted');
    const script = 'return { status = "Healthy", message = string.upper("ok") }\n';
    mkdirSync(join(dir, 'x.io', 'K', 'testdata'), { recursive: true });
    writeFileSync(join(dir, 'x.io', 'K', 'health.lua'), script);
    writeFileSync(
      join(dir, 'x.io', 'K', 'testdata', 'a.yaml'),
      'apiVersion: x.io/v1\nkind: K\nmetadata: {name: a}\n',
    );
    writeFileSync(
      join(dir, 'x.io', 'K', 'health_test.yaml'),
      stringify({
        tests: [{ healthStatus: { status: 'Healthy', message: 'OK' }, inputPath: 'testdata/a.yaml' }],
      }),
    );
    const cm = join(copy, 'argocd-cm.yaml');
    writeFileSync(
      cm,
      stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'argocd-cm' },
        data: { 'resource.customizations.health.x.io_K': script },
      }),
    );
    const r = await runArgoCdLuaTests(bin, { dir, configMap: cm });
    expect(r.results.map((x) => [x.source, x.openLibs, x.ok])).toEqual([
      ['built-in', true, true],
      ['argocd-cm', false, false],
    ]);
    expect(r.results[1]!.error).toMatch(/attempt to index a non-table object\(nil\) with key 'upper'/);
  });
});
