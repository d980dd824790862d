import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  restrictedContainer,
  testClients,
} from '../support/kube.js';

// Proves the harness runs a real control plane: the deployment, replicaset, cronjob and job controllers, the
// scheduler and kwok all take part.
describe('local control plane', () => {
  const { apps, batch, core } = testClients();
  let ns = '';
  beforeAll(async () => {
    ns = await createTestNamespace('cp');
  });
  afterAll(async () => {
    await deleteTestNamespace(ns);
  });

  it('keeps one ReplicaSet per Deployment revision and brings pods to Ready', async () => {
    const labels = { app: 'web' };
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [restrictedContainer('web', 'nginx:1.25')] },
          },
        },
      },
    });
    const waitRevisionReady = (rev: string) =>
      eventually(`deployment web at revision ${rev} with 2 ready replicas`, async () => {
        const d = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
        const s = d.status;
        return (
          d.metadata?.annotations?.['deployment.kubernetes.io/revision'] === rev &&
          s?.observedGeneration === d.metadata?.generation &&
          s?.updatedReplicas === 2 &&
          s?.readyReplicas === 2 &&
          s?.replicas === 2
        );
      });
    await waitRevisionReady('1');
    for (const [i, image] of ['nginx:1.26', 'nginx:1.27'].entries()) {
      await kubectl('-n', ns, 'set', 'image', 'deployment/web', `web=${image}`);
      await waitRevisionReady(String(i + 2));
    }
    const rss = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=web' });
    const byRevision = Object.fromEntries(
      rss.items.map((rs) => [
        rs.metadata?.annotations?.['deployment.kubernetes.io/revision'],
        rs.spec?.template?.spec?.containers[0]?.image,
      ]),
    );
    expect(byRevision).toEqual({ '1': 'nginx:1.25', '2': 'nginx:1.26', '3': 'nginx:1.27' });
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' });
    const ready = pods.items.filter(
      (p) =>
        p.status?.phase === 'Running' &&
        p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    expect(ready.map((p) => p.spec?.containers[0]?.image)).toEqual(['nginx:1.27', 'nginx:1.27']);
  });

  it('creates a Job from a CronJob (kubectl create job --from) and sees it complete', async () => {
    await batch.createNamespacedCronJob({
      namespace: ns,
      body: {
        metadata: { name: 'nightly' },
        spec: {
          schedule: '0 3 * * *',
          jobTemplate: {
            spec: {
              backoffLimit: 0,
              template: {
                spec: { restartPolicy: 'Never', containers: [restrictedContainer('task', 'busybox:1.36')] },
              },
            },
          },
        },
      },
    });
    await kubectl('-n', ns, 'create', 'job', 'nightly-manual', '--from=cronjob/nightly');
    const job = await eventually('job nightly-manual to complete', async () => {
      const j = await batch.readNamespacedJob({ name: 'nightly-manual', namespace: ns });
      return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? j : undefined;
    });
    expect(job.status?.succeeded).toBe(1);
    expect(job.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'CronJob', name: 'nightly' });
    expect(job.metadata?.annotations?.['cronjob.kubernetes.io/instantiate']).toBe('manual');
  });

  it('enforces restricted Pod Security in test namespaces', async () => {
    await expect(
      core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'privileged' },
          spec: { containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }] },
        },
      }),
    ).rejects.toThrow(/violates PodSecurity .*restricted/);
  });
});
