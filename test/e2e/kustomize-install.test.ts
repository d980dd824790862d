import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { parseJson, REPO_ROOT, runCli } from '../support/cli.js';
import {
  applyYaml,
  expectPodTemplateRestricted,
  expectProjectContainer,
  expectRestrictedContainer,
  installToLeader,
  operatorLogs,
  printOperatorLogsOnFailure,
  projectImageParts,
  REAL_NODE_NS_LABEL,
  realNodePoliciesYaml,
  runningOperatorPods,
} from '../support/e2e.js';
import { createTestNamespace, deleteTestNamespace, kubectl, testClients } from '../support/kube.js';
import { deploymentWithHistory, imageOf } from '../support/workloads.js';

// Issue 14, once more with the kustomize base (manifests/base, `kubectl apply -k`): the same image, its own
// ServiceAccount and RBAC, two replicas with leader election, and an emergency app rollback through it. The
// overlay is the test's: the image built for this run, imagePullPolicy Never, and the namespace labelled for
// the test's real-node pod policy (hostNetwork needs Pod Security privileged; see test/support/e2e.ts). The
// base's Deployment itself, unmutated, is dry-run in a Pod Security `restricted` namespace.
describe.skipIf(inject('e2eSkipReason'))(
  'e2e: the kustomize base installs the operator image on a real node',
  () => {
    const opNs = 'nxt-rollback-system';
    let overlay = '';
    let rendered = '';
    let appNs = '';
    let restrictedNs = '';

    beforeAll(async () => {
      await applyYaml(realNodePoliciesYaml());
      overlay = mkdtempSync(join(tmpdir(), 'nxt-e2e-kustomize-'));
      const [name, tag] = projectImageParts();
      writeFileSync(
        join(overlay, 'kustomization.yaml'),
        `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${relative(overlay, join(REPO_ROOT, 'manifests', 'base'))}
images:
  - name: ghcr.io/nxtnewday/nxt-rollback-operator
    newName: ${name}
    newTag: ${tag}
patches:
  - patch: |-
      apiVersion: v1
      kind: Namespace
      metadata:
        name: ${opNs}
        labels:
          ${REAL_NODE_NS_LABEL}: "true"
          pod-security.kubernetes.io/enforce: privileged
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: nxt-rollback-operator
      spec:
        template:
          spec:
            containers:
              - name: manager
                imagePullPolicy: Never
# Repeated from the base (as manifests/overlays/kind does): OPERATOR_IMAGE follows the re-tagged image.
replacements:
  - source:
      kind: Deployment
      name: nxt-rollback-operator
      fieldPath: spec.template.spec.containers.[name=manager].image
    targets:
      - select:
          kind: Deployment
          name: nxt-rollback-operator
        fieldPaths:
          - spec.template.spec.containers.[name=manager].env.[name=OPERATOR_IMAGE].value
`,
      );
      rendered = await kubectl('kustomize', overlay);
      await installToLeader(
        opNs,
        'kubectl apply -k',
        () => kubectl('apply', '--server-side', '-k', overlay),
        240_000,
      );
    });
    printOperatorLogsOnFailure(opNs);
    afterAll(async () => {
      for (const ns of [appNs, restrictedNs]) if (ns) await deleteTestNamespace(ns);
      // Everything the overlay made except the CRDs (the global setup installed them; other files use them).
      const objects = parseAllDocuments(rendered)
        .map((d) => d.toJS())
        .filter((o) => o && o.kind !== 'CustomResourceDefinition');
      if (overlay && objects.length) {
        writeFileSync(join(overlay, 'installed.yaml'), objects.map((o) => stringify(o)).join('---\n'));
        await kubectl(
          'delete',
          '-f',
          join(overlay, 'installed.yaml'),
          '--ignore-not-found',
          '--wait=true',
        ).catch((e) => console.log(String(e)));
      }
      if (overlay) rmSync(overlay, { recursive: true, force: true });
    });

    it('runs two replicas of the image as its own ServiceAccount; an emergency app rollback goes through it', async () => {
      const pods = await runningOperatorPods(opNs);
      expect(pods).toHaveLength(2);
      for (const p of pods) {
        expect(p.spec?.serviceAccountName).toBe('nxt-rollback-operator');
        const info = await expectProjectContainer(p);
        await expectRestrictedContainer(info, `operator pod ${p.metadata!.name}`);
      }
      restrictedNs = await createTestNamespace('e2e-krestricted');
      const deployment = await testClients().apps.readNamespacedDeployment({
        name: 'nxt-rollback-operator',
        namespace: opNs,
      });
      await expectPodTemplateRestricted(restrictedNs, deployment.spec!.template, 'the base Deployment');
      appNs = await createTestNamespace('e2e-kapp');
      await deploymentWithHistory(appNs, 'checkout', ['nginx:1.25', 'nginx:1.26']);
      const r = await runCli(
        [
          '-n',
          appNs,
          'emergency',
          '--scope',
          'app',
          'checkout',
          '--reason',
          'e2e',
          '--timeout',
          '3m',
          '-o',
          'json',
        ],
        { timeoutMs: 240_000 },
      );
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(parseJson(r)).toMatchObject({ phase: 'Succeeded' });
      expect(await imageOf(appNs, 'checkout')).toBe('nginx:1.25');
      expect(await operatorLogs(opNs), 'the base RBAC lacks nothing the operator uses').not.toMatch(
        /forbidden/i,
      );
    });
  },
);
