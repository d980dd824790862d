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
  if (opts.configured) {
    log.info('cluster id from CLUSTER_ID', { clusterId: opts.configured });
    return opts.configured;
  }
  const attempts = opts.attempts ?? 3;
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      const ns = await client.get<KubeObject>({
        group: '',
        version: 'v1',
        plural: 'namespaces',
        name: 'kube-system',
      });
      const uid = ns.metadata?.uid;
      if (uid) {
        log.info('cluster id from the kube-system Namespace UID', { clusterId: uid });
        return uid;
      }
      last = new Error('the kube-system Namespace has no UID');
      break;
    } catch (e) {
      last = e;
      if (isForbidden(e) || isNotFound(e)) break;
      if (i + 1 < attempts) await sleep(opts.delayMs ?? 2_000, opts.signal);
      if (opts.signal?.aborted) break;
    }
  }
  log.error(
    'cannot learn the cluster id: S3 prefix owner objects will record no cluster, so a BackupSchedule of the ' +
      'same namespace and name in another cluster on the same bucket and prefix is not told apart (see ' +
      'docs/backupschedule.md). Grant get on the kube-system Namespace (the generated RBAC does) or set CLUSTER_ID',
    { err: describeError(last) },
  );
  return undefined;
}
