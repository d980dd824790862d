import type { Logger } from 'winston';
import { describeError, isForbidden, isNotFound } from './kube/errors.js';
import type { KubeObject } from './kube/rest.js';
import { sleep } from './kube/timers.js';

/** What resolveClusterId needs of the API client: one GET. */
export interface NamespaceReader {
  get<T = KubeObject>(ref: { group: string; version: string; plural: string; name: string }): Promise<T>;
}

export interface ClusterIdOptions {
  /** CLUSTER_ID of the configuration: used as is, nothing is read. */
  configured?: string;
  /** Attempts of the read when the API server fails (never for 403/404). */
  attempts?: number;
  delayMs?: number;
  signal?: AbortSignal;
}

/**
 * This cluster's id, recorded in every S3 prefix owner object so two clusters never use one prefix as the
 * same schedule (docs/backupschedule.md): CLUSTER_ID when configured, else the UID of the `kube-system`
 * Namespace (the common convention; RBAC: get on namespaces, resourceNames [kube-system]). Never throws: when
 * it cannot be read the operator runs on without one (runner Jobs then get no NXT_CLUSTER_ID and prefixes
 * are guarded by namespace/name only), and says so as an error in its log. Each request is bounded by the
 * client's timeout; a failure other than 403/404 is tried `attempts` times.
 */
export async function resolveClusterId(
  client: NamespaceReader,
  log: Logger,
  opts: ClusterIdOptions = {},
): Promise<string | undefined> {
  return (await readClusterId(client, log, opts)).clusterId;
}

/** What the start-up read learned: the id, or whether a later attempt may still learn it. */
export interface ClusterIdOutcome {
  clusterId?: string;
  /** The read failed in a way a later attempt may fix (API server errors, timeouts; never 403/404). */
  retryable: boolean;
}

const readKubeSystem = (client: NamespaceReader) =>
  client.get<KubeObject>({ group: '', version: 'v1', plural: 'namespaces', name: 'kube-system' });

/** resolveClusterId, saying also whether a later attempt may succeed (then see retryClusterId). */
export async function readClusterId(
  client: NamespaceReader,
  log: Logger,
  opts: ClusterIdOptions = {},
): Promise<ClusterIdOutcome> {
  if (opts.configured) {
    log.info('cluster id from CLUSTER_ID', { clusterId: opts.configured });
    return { clusterId: opts.configured, retryable: false };
  }
  const attempts = opts.attempts ?? 3;
  let last: unknown;
  let retryable = false;
  for (let i = 0; i < attempts; i++) {
    try {
      const uid = (await readKubeSystem(client)).metadata?.uid;
      if (uid) {
        log.info('cluster id from the kube-system Namespace UID', { clusterId: uid });
        return { clusterId: uid, retryable: false };
      }
      last = new Error('the kube-system Namespace has no UID');
      retryable = false;
      break;
    } catch (e) {
      last = e;
      retryable = !(isForbidden(e) || isNotFound(e));
      if (!retryable) break;
      if (i + 1 < attempts) await sleep(opts.delayMs ?? 2_000, opts.signal);
      if (opts.signal?.aborted) break;
    }
  }
  log.error(
    retryable
      ? 'cannot learn the cluster id yet: retrying in the background. Until then BackupSchedules on S3 are ' +
          'Ready=False (ClusterIdUnknown) and their CronJobs are left as they are (see docs/backupschedule.md). ' +
          'Set CLUSTER_ID to skip the read'
      : 'cannot learn the cluster id: S3 prefix owner objects will record no cluster, so a BackupSchedule of the ' +
          'same namespace and name in another cluster on the same bucket and prefix is not told apart (see ' +
          'docs/backupschedule.md). Grant get on the kube-system Namespace (the generated RBAC does) or set CLUSTER_ID',
    { err: describeError(last) },
  );
  return { retryable };
}

export interface RetryClusterIdOptions {
  /** First wait, doubled after each failure up to maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
}

/**
 * Keeps reading the kube-system Namespace's UID after a start-up read that failed retryably, with backoff,
 * until it succeeds (returns the id), is refused for good (403/404: undefined, logged) or `signal` aborts
 * (undefined). Runs beside the controllers, never in a reconcile worker.
 */
export async function retryClusterId(
  client: NamespaceReader,
  log: Logger,
  opts: RetryClusterIdOptions = {},
): Promise<string | undefined> {
  let delay = opts.initialDelayMs ?? 5_000;
  const max = opts.maxDelayMs ?? 300_000;
  for (let attempt = 1; !opts.signal?.aborted; attempt++) {
    await sleep(delay, opts.signal);
    if (opts.signal?.aborted) return undefined;
    try {
      const uid = (await readKubeSystem(client)).metadata?.uid;
      if (uid) {
        log.info('cluster id from the kube-system Namespace UID (after retrying)', {
          clusterId: uid,
          attempt,
        });
        return uid;
      }
      log.error('the kube-system Namespace has no UID; running without a cluster id (set CLUSTER_ID)');
      return undefined;
    } catch (e) {
      if (isForbidden(e) || isNotFound(e)) {
        log.error(
          'cannot learn the cluster id: refused; running without one. Grant get on the kube-system Namespace ' +
            'or set CLUSTER_ID',
          { err: describeError(e) },
        );
        return undefined;
      }
      if (attempt === 1 || attempt % 10 === 0)
        log.warn('still cannot learn the cluster id; retrying', { err: describeError(e), attempt });
      delay = Math.min(delay * 2, max);
    }
  }
  return undefined;
}
