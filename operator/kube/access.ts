import type { KubeClient } from './rest.js';

export interface AccessCheck {
  group: string;
  resource: string;
  verb: string;
  namespace: string;
  subresource?: string;
}

/** Asks the API server whether this operator may do `check` (SelfSubjectAccessReview); returns the denial text. */
export async function checkAccess(
  client: KubeClient,
  check: AccessCheck,
): Promise<{ allowed: boolean; reason: string }> {
  const res = await client.create<{ status?: { allowed?: boolean; reason?: string; denied?: boolean } }>(
    { group: 'authorization.k8s.io', version: 'v1', plural: 'selfsubjectaccessreviews' },
    {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { ...check, ...(check.subresource ? {} : { subresource: undefined }) } },
    },
  );
  return { allowed: res.status?.allowed === true, reason: res.status?.reason ?? '' };
}

export const describeAccess = (c: AccessCheck) =>
  `${c.verb} ${c.resource}${c.subresource ? '/' + c.subresource : ''}${c.group ? '.' + c.group : ''} in ${c.namespace}`;

/**
 * SelfSubjectAccessReviews with a short memory: permissions change rarely, and an emergency rollback should
 * not pay two API round trips for a check it made seconds ago. Only "allowed" answers are remembered, so a
 * fixed RBAC problem is seen at once. Concurrent checks of the same thing share one review: a burst of plans
 * reaching pre-validation together (or after the memory expired) sends it once, not once per worker.
 */
export class AccessReviewer {
  private readonly allowed = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<{ allowed: boolean; reason: string }>>();
  constructor(
    private readonly client: KubeClient,
    private readonly ttlMs = 60_000,
  ) {}

  check(c: AccessCheck): Promise<{ allowed: boolean; reason: string }> {
    const key = describeAccess(c);
    const until = this.allowed.get(key);
    if (until !== undefined && until > Date.now())
      return Promise.resolve({ allowed: true, reason: 'cached' });
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const review = (async () => {
      try {
        const r = await checkAccess(this.client, c);
        if (r.allowed) this.allowed.set(key, Date.now() + this.ttlMs);
        else this.allowed.delete(key);
        return r;
      } finally {
        this.inFlight.delete(key);
      }
    })();
    this.inFlight.set(key, review);
    return review;
  }
}
