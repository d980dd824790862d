import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace, deleteTestNamespace, eventually, testClients } from '../support/kube.js';
import { resumableWatch } from '../support/watch.js';

// test/support/watch.ts against the real API server: a watch that ends (a reset, as under load) is started
// again from the last resourceVersion, so no event in between is missed and the watch is not failed.
describe('resumableWatch (helm-install exactly-once watches)', () => {
  const { kc, core } = testClients();
  let ns = '';
  beforeAll(async () => {
    ns = await createTestNamespace('watch');
  });
  afterAll(async () => {
    await deleteTestNamespace(ns);
  });

  it('sees the listed objects and every object made across a reset', async () => {
    const cm = (name: string) =>
      core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name } } });
    await cm('before');
    const seen = new Set<string>();
    const w = await resumableWatch(
      kc,
      `/api/v1/namespaces/${ns}/configmaps`,
      () => core.listNamespacedConfigMap({ namespace: ns }),
      (o: { metadata?: { name?: string } }) => seen.add(o.metadata?.name ?? ''),
    );
    try {
      expect(seen.has('before')).toBe(true);
      await cm('during-1');
      await eventually('during-1 seen', async () => seen.has('during-1'), 10_000);
      w.interrupt();
      // made while no watch is open: the next watch starts from the last resourceVersion and gets it
      await cm('between');
      await eventually('the watch started again', async () => w.restarts === 1, 10_000);
      await cm('after');
      await eventually(
        'between and after seen',
        async () => seen.has('between') && seen.has('after'),
        10_000,
      );
      expect(w.errors).toEqual([]);
    } finally {
      w.stop();
    }
  });
});
