import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NEVER_GRANTED } from '../test/support/never-granted.js';
import { expectedRbacFiles, REPO_ROOT, staleRbacFiles } from '../hack/generate-rbac.js';
import {
  admissionOnlyPermissions,
  CLUSTER_IDENTITY_GRANTS,
  LEADER_ELECTION_GRANTS,
  OPERATOR_GRANTS,
  permissionsOf,
  toPolicyRules,
  verbsOf,
} from './rbac.js';

describe('the RBAC table', () => {
  const all = [...OPERATOR_GRANTS, ...LEADER_ELECTION_GRANTS, ...CLUSTER_IDENTITY_GRANTS];

  it('names, for every verb, a file of the operator that needs it (or the admission plugin that checks it)', () => {
    for (const g of all) {
      expect(verbsOf(g).length, `${g.group}/${g.resource} grants no verb`).toBeGreaterThan(0);
      for (const v of verbsOf(g)) {
        const use = g.verbs[v]!;
        expect(use.why.length, `${g.resource}:${v} says why`).toBeGreaterThan(5);
        if ('code' in use)
          expect(existsSync(join(REPO_ROOT, use.code)), `${g.resource}:${v} names ${use.code}`).toBe(true);
      }
    }
    expect(admissionOnlyPermissions(all)).toEqual([
      'rollback.nxtnewday.io/backupschedules/finalizers:update',
      'rollback.nxtnewday.io/rollbackplans/finalizers:update',
    ]);
  });

  it('lists each resource once and has no wildcard', () => {
    const keys = all.map((g) => `${g.group}/${g.resource}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(JSON.stringify(toPolicyRules(all))).not.toContain('*');
  });

  it('reads one Namespace, kube-system, for the cluster id: nothing else cluster-wide', () => {
    expect(toPolicyRules(CLUSTER_IDENTITY_GRANTS)).toEqual([
      { apiGroups: [''], resources: ['namespaces'], resourceNames: ['kube-system'], verbs: ['get'] },
    ]);
  });

  it('grants none of the verbs the code never used (issue 9)', () => {
    const granted = permissionsOf(toPolicyRules(OPERATOR_GRANTS));
    for (const unused of [...NEVER_GRANTED, 'core/secrets:list'])
      expect(granted, `${unused} is granted`).not.toContain(unused);
  });
});

describe('generated RBAC files', () => {
  const expected = expectedRbacFiles();

  it.each([...expected.keys()])('%s is up to date', (rel) => {
    const path = join(REPO_ROOT, rel);
    const onDisk = existsSync(path) ? readFileSync(path, 'utf8') : '(missing)';
    expect(onDisk, `${rel} is stale or missing: run \`npm run generate\` and commit the result`).toBe(
      expected.get(rel),
    );
  });

  it('a stale or missing generated file is detected', () => {
    const root = mkdtempSync(join(tmpdir(), 'nxt-rbac-gen-'));
    try {
      for (const rel of expected.keys()) {
        mkdirSync(dirname(join(root, rel)), { recursive: true });
        cpSync(join(REPO_ROOT, rel), join(root, rel));
      }
      expect(staleRbacFiles(root)).toEqual([]);
      const [first, second] = [...expected.keys()];
      // A hand edit: one more verb in the ClusterRole.
      writeFileSync(join(root, first!), readFileSync(join(root, first!), 'utf8') + '      - delete\n');
      rmSync(join(root, second!));
      expect(staleRbacFiles(root).sort()).toEqual([first, second].sort());
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
