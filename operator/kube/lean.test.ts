import { describe, expect, it } from 'vitest';
import { cacheTransform, LAST_APPLIED, leanDeployment, leanObject } from './lean.js';
import type { KubeObject } from './rest.js';

const deployment = (): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {
    name: 'web',
    namespace: 'shop',
    uid: 'u1',
    resourceVersion: '7',
    generation: 3,
    labels: { app: 'web' },
    annotations: { 'deployment.kubernetes.io/revision': '2', [LAST_APPLIED]: '{"big":"copy"}' },
    managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }],
  },
  spec: {
    replicas: 2,
    paused: false,
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'x' }] } },
  },
  status: { observedGeneration: 3, availableReplicas: 2 },
});

describe('informer cache transforms', () => {
  it('leanObject drops managedFields and the last-applied annotation, and nothing else', () => {
    const d = deployment();
    const lean = leanObject(d);
    expect(lean.metadata).not.toHaveProperty('managedFields');
    expect(lean.metadata.annotations).toEqual({ 'deployment.kubernetes.io/revision': '2' });
    expect(lean.spec).toEqual(d.spec);
    expect(lean.status).toEqual(d.status);
    const { managedFields: _m, annotations: _a, ...rest } = d.metadata;
    expect(lean.metadata).toMatchObject(rest);
    expect(d.metadata.managedFields, 'the input is not changed').toBeDefined();
  });

  it('leanDeployment also drops the pod template but keeps what the controllers read', () => {
    const lean = leanDeployment(deployment());
    expect(lean.spec).toEqual({ replicas: 2, paused: false, selector: { matchLabels: { app: 'web' } } });
    expect(lean.status).toEqual({ observedGeneration: 3, availableReplicas: 2 });
    expect(lean.metadata).toMatchObject({ name: 'web', generation: 3, uid: 'u1', resourceVersion: '7' });
    expect(lean.metadata.annotations).toEqual({ 'deployment.kubernetes.io/revision': '2' });
  });

  it('picks the Deployment transform only for apps/deployments', () => {
    expect(cacheTransform({ group: 'apps', plural: 'deployments' })).toBe(leanDeployment);
    expect(cacheTransform({ group: 'batch', plural: 'jobs' })).toBe(leanObject);
    expect(cacheTransform({ group: '', plural: 'pods' })).toBe(leanObject);
  });

  it('passes objects without metadata through (a watch ERROR status is not a cached object)', () => {
    const status = { kind: 'Status', code: 410 } as unknown as KubeObject;
    expect(leanObject(status)).toBe(status);
  });
});
