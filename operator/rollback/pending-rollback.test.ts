import { describe, expect, it } from 'vitest';
import {
  templateDigest,
  type PodTemplate,
  type RawDeployment,
  type RawReplicaSet,
} from './deployment-undo.js';
import { decidePendingRollback, observedState, type DeploymentEntry } from './pending-rollback.js';

const UID = 'uid-web';
const template = (image: string, hash?: string): PodTemplate => ({
  metadata: { labels: { app: 'web', ...(hash ? { 'pod-template-hash': hash } : {}) } },
  spec: { containers: [{ name: 'web', image }] },
});
const deployment = (image: string, resourceVersion = '42'): RawDeployment => ({
  metadata: { name: 'web', uid: UID, resourceVersion },
  spec: { selector: { matchLabels: { app: 'web' } }, template: template(image) },
});
const rs = (name: string, revision: number, image: string): RawReplicaSet => ({
  metadata: {
    name,
    creationTimestamp: `2026-01-01T00:00:0${revision}Z`,
    ownerReferences: [{ uid: UID, controller: true }],
    annotations: { 'deployment.kubernetes.io/revision': String(revision) },
  },
  spec: { template: template(image, `hash-${name}`) },
});
// Revision 3 (1.27) is bad; pre-validation decided to restore web-2 (1.26).
const history = [rs('web-1', 1, 'nginx:1.25'), rs('web-2', 2, 'nginx:1.26'), rs('web-3', 3, 'nginx:1.27')];
const decided: DeploymentEntry = {
  name: 'web',
  fromRevision: 3,
  toRevision: 2,
  replicaSet: 'web-2',
  result: 'Pending',
  ...observedState(deployment('nginx:1.27', '42')),
};

describe('decidePendingRollback', () => {
  it('patches a Deployment still on the template pre-validation saw, even after status-only changes', () => {
    const d = decidePendingRollback(decided, deployment('nginx:1.27', '57'), history);
    expect(d.action).toBe('patch');
    expect(d.action === 'patch' && d.plan.replicaSet).toBe('web-2');
  });
  it('refuses (HistoryChanged) when a user rolled forward after the decision, instead of reverting them', () => {
    // The user's new release 1.28 is revision 4; web-2 is still revision 2, so a re-plan alone would patch.
    const now = [...history, rs('web-4', 4, 'nginx:1.28')];
    const d = decidePendingRollback(decided, deployment('nginx:1.28', '60'), now);
    expect(d).toMatchObject({
      action: 'historyChanged',
      message: expect.stringMatching(
        /changed after pre-validation.*resourceVersion 42, now 60.*did not patch/,
      ),
    });
  });
  it('is RolledBack (in place) when the template already is the target', () => {
    const after = [rs('web-1', 1, 'nginx:1.25'), rs('web-3', 3, 'nginx:1.27'), rs('web-2', 4, 'nginx:1.26')];
    expect(decidePendingRollback(decided, deployment('nginx:1.26', '70'), after)).toEqual({
      action: 'inPlace',
    });
  });
  it('keeps the revision check for entries recorded before the template hash existed', () => {
    const legacy: DeploymentEntry = { name: 'web', toRevision: 2, replicaSet: 'web-2', result: 'Pending' };
    expect(decidePendingRollback(legacy, deployment('nginx:1.27'), history).action).toBe('patch');
    const gone = history.filter((r) => r.metadata.name !== 'web-2');
    expect(decidePendingRollback(legacy, deployment('nginx:1.27'), gone).action).toBe('historyChanged');
  });
});

describe('templateDigest', () => {
  it('ignores the pod-template-hash label, key order and null-vs-absent, and sees any real change', () => {
    const a: PodTemplate = {
      metadata: { labels: { app: 'web', x: '1' } },
      spec: { containers: [{ name: 'w', image: 'i' }] },
    };
    const b: PodTemplate = {
      spec: { volumes: null, containers: [{ image: 'i', name: 'w' }] },
      metadata: { labels: { 'pod-template-hash': 'abc', x: '1', app: 'web' } },
    };
    expect(templateDigest(a)).toBe(templateDigest(b));
    expect(templateDigest(a)).not.toBe(
      templateDigest({ ...a, spec: { containers: [{ name: 'w', image: 'j' }] } }),
    );
    expect(templateDigest(a)).toMatch(/^[0-9a-f]{64}$/);
  });
});
