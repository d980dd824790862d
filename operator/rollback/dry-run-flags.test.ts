import { describe, expect, it } from 'vitest';
import type { KubeClient } from '../kube/rest.js';
import { flagSummary, readFlagDryRun, type FlagDryRun } from './dry-run-flags.js';

// Only the shaping of what was read is tested here; reading from the API server is tested on the real control
// plane (rollbackplan-full.test.ts).
const clientWith = (objects: Record<string, object>) =>
  ({
    get: async (ref: { plural: string; name: string }) => {
      const o = objects[`${ref.plural}/${ref.name}`];
      if (!o) throw Object.assign(new Error('not found'), { statusCode: 404, code: 404 });
      return o;
    },
  }) as unknown as KubeClient;

describe('readFlagDryRun', () => {
  it('bounds a long ConfigMap value like status.featureFlags[].previous (1024 characters)', async () => {
    const client = clientWith({ 'configmaps/flags': { data: { big: 'x'.repeat(5000) } } });
    const r = await readFlagDryRun(client, 'shop', { configMapRef: { name: 'flags' }, disable: ['big'] });
    expect(r.flags[0]!.current).toHaveLength(1024);
    expect(r.flags[0]!.current).toMatch(/^x+\.\.\.sha256:[0-9a-f]{32}$/);
  });
});

describe('flagSummary', () => {
  const flag = (key: string, current?: string): FlagDryRun => ({
    object: 'ConfigMap/flags',
    key,
    ...(current !== undefined ? { current } : {}),
    wouldBe: 'false',
  });
  it.each([
    [[flag('beta', 'on')], 'would disable ConfigMap/flags beta (on -> false)'],
    [[flag('beta')], 'would disable ConfigMap/flags beta (absent -> false)'],
    [
      [flag('a', 'on'), flag('b', 'on'), flag('c', 'on')],
      'would disable ConfigMap/flags a (on -> false), ConfigMap/flags b (on -> false) and 1 more',
    ],
  ])('%j', (flags, text) => expect(flagSummary(flags, 2)).toBe(text));
});
