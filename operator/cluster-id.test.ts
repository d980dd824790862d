import { describe, expect, it } from 'vitest';
import type { Logger } from 'winston';
import { resolveClusterId, type NamespaceReader } from './cluster-id.js';
import { KubeApiError } from './kube/errors.js';

/** The two levels resolveClusterId logs at, recorded. */
function capture() {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => lines.push({ level, message });
  return { log: { info: at('info'), error: at('error') } as unknown as Logger, lines };
}

const reader = (answers: (() => unknown)[]): NamespaceReader & { calls: string[] } => {
  const calls: string[] = [];
  return {
    calls,
    get: async <T>(ref: { plural: string; name: string }) => {
      calls.push(`${ref.plural}/${ref.name}`);
      return answers[Math.min(calls.length - 1, answers.length - 1)]!() as T;
    },
  };
};
const fail = (code: number) => () => {
  throw new KubeApiError(code, 'Failure', `HTTP ${code}`, 'GET', '/api/v1/namespaces/kube-system');
};

describe('resolveClusterId', () => {
  it('is the UID of the kube-system Namespace', async () => {
    const { log } = capture();
    const r = reader([() => ({ metadata: { name: 'kube-system', uid: 'ks-uid' } })]);
    expect(await resolveClusterId(r, log)).toBe('ks-uid');
    expect(r.calls).toEqual(['namespaces/kube-system']);
  });

  it('CLUSTER_ID wins, and nothing is read', async () => {
    const { log } = capture();
    const r = reader([fail(500)]);
    expect(await resolveClusterId(r, log, { configured: 'prod-eu-1' })).toBe('prod-eu-1');
    expect(r.calls).toEqual([]);
  });

  it('refused (403): no id, one attempt, an error in the log that says what to do; never a throw', async () => {
    const { log, lines } = capture();
    const r = reader([fail(403)]);
    expect(await resolveClusterId(r, log, { delayMs: 1 })).toBeUndefined();
    expect(r.calls).toHaveLength(1);
    expect(lines.find((l) => l.level === 'error')?.message).toMatch(/CLUSTER_ID/);
  });

  it('retries a failing API server a bounded number of times', async () => {
    const { log } = capture();
    const r = reader([fail(503), fail(503), () => ({ metadata: { uid: 'late' } })]);
    expect(await resolveClusterId(r, log, { delayMs: 1 })).toBe('late');
    const down = reader([fail(503)]);
    expect(await resolveClusterId(down, log, { delayMs: 1, attempts: 2 })).toBeUndefined();
    expect(down.calls).toHaveLength(2);
  });
});
