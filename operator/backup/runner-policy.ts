// Runner pods get the database credentials. Whoever may create a BackupSchedule must therefore not decide
// alone which image runs them or which ServiceAccount they run as (a ServiceAccount can carry cloud
// identity or image pull secrets even without a token): the operator's administrator allows overrides
// explicitly, and without an allow-list there are none.
import type { Config } from '../config.js';

/** What the operator configuration lets BackupSchedules change about runner pods, and how they may check. */
export interface RunnerPolicy {
  /** The runner image when no override is asked for; always allowed. */
  operatorImage: string;
  /** Exact image references, or prefixes ending in "/" (a registry path and everything below it). */
  allowedImages: readonly string[];
  allowedServiceAccounts: readonly string[];
  /** Passed to the runner: may SQL assertions run as a superuser (or a role that can run programs)? */
  allowSuperuserAssertions: boolean;
  /** The cluster's id for runner Jobs (NXT_CLUSTER_ID: S3 prefix ownership); unset when unknown. */
  clusterId?: string;
  /** The operator still retries to learn its cluster's id (config.clusterIdPending): S3 runner Jobs wait. */
  clusterIdPending?: boolean;
}

export const runnerPolicyOf = (config: Config): RunnerPolicy => ({
  operatorImage: config.OPERATOR_IMAGE,
  allowedImages: config.ALLOWED_RUNNER_IMAGES,
  allowedServiceAccounts: config.ALLOWED_RUNNER_SERVICE_ACCOUNTS,
  allowSuperuserAssertions: config.ALLOW_SUPERUSER_ASSERTIONS,
  ...(config.clusterId ? { clusterId: config.clusterId } : {}),
  ...(config.clusterIdPending ? { clusterIdPending: true } : {}),
});

export interface OverrideRefusal {
  reason: 'ImageNotAllowed' | 'ServiceAccountNotAllowed';
  message: string;
}

/** True when `image` is the operator's own or matches an entry of the allow-list. */
export function imageAllowed(image: string, policy: RunnerPolicy): boolean {
  if (image === policy.operatorImage) return true;
  return policy.allowedImages.some((entry) =>
    entry.endsWith('/') ? image.startsWith(entry) && image.length > entry.length : image === entry,
  );
}

const listed = (setting: string, values: readonly string[]) =>
  values.length
    ? `${setting} allows only ${values.join(', ')}`
    : `${setting} is empty: no override is allowed`;

/**
 * Why the pod template of a BackupSchedule may not be used, or undefined when it may. Fields the template
 * leaves out take the operator's defaults and need no permission.
 */
export function refuseRunnerOverrides(
  podTemplate: { image?: string; serviceAccountName?: string } | undefined,
  policy: RunnerPolicy,
): OverrideRefusal | undefined {
  const image = podTemplate?.image;
  if (image !== undefined && !imageAllowed(image, policy)) {
    return {
      reason: 'ImageNotAllowed',
      message:
        `spec.podTemplate.image "${image}" is not allowed by the operator configuration ` +
        `(${listed('ALLOWED_RUNNER_IMAGES', policy.allowedImages)}); runner pods receive the database ` +
        'credentials, so only images the operator administrator lists may run them. Remove the override or ask ' +
        'for the image to be allowed',
    };
  }
  const sa = podTemplate?.serviceAccountName;
  if (sa !== undefined && !policy.allowedServiceAccounts.includes(sa)) {
    return {
      reason: 'ServiceAccountNotAllowed',
      message:
        `spec.podTemplate.serviceAccountName "${sa}" is not allowed by the operator configuration ` +
        `(${listed('ALLOWED_RUNNER_SERVICE_ACCOUNTS', policy.allowedServiceAccounts)}); runner pods receive ` +
        'the database credentials. Remove the override or ask for the ServiceAccount to be allowed',
    };
  }
  return undefined;
}
