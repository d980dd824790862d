import { describe, expect, it } from 'vitest';
import type { Logger } from 'winston';
import { readClusterId, resolveClusterId, retryClusterId, type NamespaceReader } from './cluster-id.js';
import { KubeApiError } from './kube/errors.js';

/** The two levels resolveClusterId logs at, recorded. */
function capture() {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => lines.push({ level, message });
  return { log: { info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger, lines };
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

describe('learning the cluster id after a failed start-up read', () => {
  it('a failing API server is retryable; 403/404 and CLUSTER_ID are not', async () => {
    const { log } = capture();
    expect(await readClusterId(reader([fail(503)]), log, { delayMs: 1, attempts: 2 })).toEqual({
      retryable: true,
    });
    expect(await readClusterId(reader([fail(403)]), log, { delayMs: 1 })).toEqual({ retryable: false });
    expect(await readClusterId(reader([fail(404)]), log, { delayMs: 1 })).toEqual({ retryable: false });
    expect(await readClusterId(reader([fail(503)]), log, { configured: 'c' })).toEqual({
      clusterId: 'c',
      retryable: false,
    });
  });

  it('keeps retrying in the background with backoff until the read succeeds', async () => {
    const { log } = capture();
    const r = reader([fail(503), fail(500), fail(504), fail(503), () => ({ metadata: { uid: 'later' } })]);
    expect(await retryClusterId(r, log, { initialDelayMs: 1, maxDelayMs: 4 })).toBe('later');
    expect(r.calls).toHaveLength(5);
  });

  it('stops on a refusal (403) and when the manager stops', async () => {
    const { log, lines } = capture();
    expect(await retryClusterId(reader([fail(503), fail(403)]), log, { initialDelayMs: 1 })).toBeUndefined();
    expect(lines.find((l) => l.level === 'error')?.message).toMatch(/CLUSTER_ID/);
    const stop = new AbortController();
    const down = reader([fail(503)]);
    const p = retryClusterId(down, log, { initialDelayMs: 1, maxDelayMs: 1, signal: stop.signal });
    await new Promise((res) => setTimeout(res, 20));
    stop.abort();
    expect(await p).toBeUndefined();
    const calls = down.calls.length;
    await new Promise((res) => setTimeout(res, 20));
    expect(down.calls.length).toBe(calls);
  });
});
