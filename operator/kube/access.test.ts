import { describe, expect, it } from 'vitest';
import { AccessReviewer, type AccessCheck } from './access.js';
import type { KubeClient } from './rest.js';

const patch: AccessCheck = { group: 'apps', resource: 'deployments', verb: 'patch', namespace: 'shop' };
const list: AccessCheck = { group: 'apps', resource: 'replicasets', verb: 'list', namespace: 'shop' };

/** A client answering every SelfSubjectAccessReview with `allowed`, after a turn of the event loop. */
function reviewClient(allowed: () => boolean) {
  const sent: string[] = [];
  const client = {
    create: async (_ref: unknown, body: { spec: { resourceAttributes: AccessCheck } }) => {
      sent.push(`${body.spec.resourceAttributes.verb} ${body.spec.resourceAttributes.resource}`);
      await new Promise((r) => setImmediate(r));
      return { status: { allowed: allowed() } };
    },
  } as unknown as KubeClient;
  return { client, sent };
}

describe('AccessReviewer', () => {
  it('concurrent checks of the same thing share one review (a burst of plans sends it once)', async () => {
    const { client, sent } = reviewClient(() => true);
    const access = new AccessReviewer(client);
    const answers = await Promise.all([access.check(patch), access.check(patch), access.check(list)]);
    expect(answers.every((a) => a.allowed)).toBe(true);
    expect(sent).toEqual(['patch deployments', 'list replicasets']);
    // Remembered afterwards.
    await access.check(patch);
    expect(sent).toHaveLength(2);
  });

  it('a denial is shared by the checks waiting for it, and not remembered', async () => {
    let allowed = false;
    const { client, sent } = reviewClient(() => allowed);
    const access = new AccessReviewer(client);
    const answers = await Promise.all([access.check(patch), access.check(patch)]);
    expect(answers.map((a) => a.allowed)).toEqual([false, false]);
    expect(sent).toHaveLength(1);
    allowed = true; // RBAC fixed: seen at the next check
    expect((await access.check(patch)).allowed).toBe(true);
    expect(sent).toHaveLength(2);
  });

  it('a failed review is retried by the next check', async () => {
    let calls = 0;
    const client = {
      create: async () => {
        if (++calls === 1) throw new Error('timeout');
        return { status: { allowed: true } };
      },
    } as unknown as KubeClient;
    const access = new AccessReviewer(client);
    await expect(access.check(patch)).rejects.toThrow('timeout');
    expect((await access.check(patch)).allowed).toBe(true);
    expect(calls).toBe(2);
  });
});
