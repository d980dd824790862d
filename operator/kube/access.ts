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
