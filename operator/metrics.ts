import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5,
  1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
const QUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);
const DURATION_BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

/**
 * Every metric the operator exports, in one private registry passed to whoever records. Names and labels of
 * the runtime metrics are controller-runtime's, so existing dashboards and alerts work unchanged.
 */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const r = [registry];
  // Counted from the plan cache at scrape time: level-based, nothing to keep in step with plan deletions.
  let awaitingApproval: () => Map<string, number> = () => new Map();
  return {
    registry,
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'] as const,
      registers: r,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'] as const,
      registers: r,
    }),
    terminalReconcileErrors: new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller',
      labelNames: ['controller'] as const,
      registers: r,
    }),
    reconcilePanics: new Counter({
      name: 'controller_runtime_reconcile_panics_total',
      help: 'Total number of reconciliation panics (unexpected exceptions) per controller',
      labelNames: ['controller'] as const,
      registers: r,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'] as const,
      buckets: RECONCILE_BUCKETS,
      registers: r,
    }),
    maxConcurrentReconciles: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'] as const,
      registers: r,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'] as const,
      registers: r,
    }),
    workqueueDepth: new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name', 'controller', 'priority'] as const,
      registers: r,
    }),
    workqueueAdds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name', 'controller'] as const,
      registers: r,
    }),
    workqueueRetries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name', 'controller'] as const,
      registers: r,
    }),
    workqueueQueueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name', 'controller'] as const,
      buckets: QUEUE_BUCKETS,
      registers: r,
    }),
    workqueueWorkDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name', 'controller'] as const,
      buckets: QUEUE_BUCKETS,
      registers: r,
    }),
    workqueueUnfinishedWork: new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help: 'How many seconds of work has been done that is in progress',
      labelNames: ['name', 'controller'] as const,
      registers: r,
    }),
    workqueueLongestRunning: new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running',
      labelNames: ['name', 'controller'] as const,
      registers: r,
    }),
    restClientRequests: new Counter({
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests, partitioned by status code, method, and host',
      labelNames: ['code', 'method', 'host'] as const,
      registers: r,
    }),
    restClientDuration: new Histogram({
      name: 'rest_client_request_duration_seconds',
      help: 'Request latency in seconds, by verb and host',
      labelNames: ['verb', 'host'] as const,
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
      registers: r,
    }),
    leaderStatus: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'] as const,
      registers: r,
    }),
    clusterIdKnown: new Gauge({
      name: 'nxt_cluster_id_known',
      help: "1 when the operator knows its cluster's id (CLUSTER_ID or the kube-system Namespace UID) for S3 prefix owner objects, 0 while it does not",
      registers: r,
    }),
    // --- Alertmanager webhook receiver ---
    alertReceiverRequests: new Counter({
      name: 'nxt_alert_receiver_requests_total',
      help: 'Requests to the Alertmanager webhook receiver, by HTTP status code of the answer',
      labelNames: ['code'] as const,
      registers: r,
    }),
    alertsFiring: new Gauge({
      name: 'nxt_alerts_firing',
      help: 'Firing alerts held by the Alertmanager webhook receiver (this replica)',
      registers: r,
    }),
    alertsDropped: new Counter({
      name: 'nxt_alerts_dropped_total',
      help: 'Firing alerts dropped because the receiver already held its maximum (10000)',
      registers: r,
    }),
    // --- domain metrics ---
    rollbackTotal: new Counter({
      name: 'nxt_rollback_total',
      help: 'Rollback plans finished, by scope, trigger and result',
      labelNames: ['scope', 'trigger', 'result'] as const,
      registers: r,
    }),
    rollbackDetection: new Histogram({
      name: 'nxt_rollback_detection_seconds',
      help: 'Time from a trigger condition beginning to hold to the plan firing, by condition type',
      labelNames: ['trigger'] as const,
      buckets: [0.5, 1, 2, 5, 10, 15, 30, 45, 60, 120, 300, 600],
      registers: r,
    }),
    rollbackRecovery: new Histogram({
      name: 'nxt_rollback_recovery_seconds',
      help: 'Time from the trigger firing (or the start of a plan without one) to its completion, approval wait included',
      labelNames: ['scope', 'trigger', 'result'] as const,
      buckets: DURATION_BUCKETS,
      registers: r,
    }),
    rollbackUnnecessary: new Counter({
      name: 'nxt_rollback_unnecessary_total',
      help: 'Finished rollbacks marked unnecessary (false positives), by trigger',
      labelNames: ['trigger'] as const,
      registers: r,
    }),
    plansAwaitingApproval: new Gauge({
      name: 'nxt_rollback_plans_awaiting_approval',
      help: 'RollbackPlans waiting for an approval or their confirm window, by namespace',
      labelNames: ['namespace'] as const,
      registers: r,
      collect() {
        this.reset();
        for (const [namespace, n] of awaitingApproval()) this.set({ namespace }, n);
      },
    }),
    /** Where nxt_rollback_plans_awaiting_approval counts from (the plan controller's cache). */
    countAwaitingApprovalFrom(source: () => Map<string, number>) {
      awaitingApproval = source;
    },
    rollbackDuration: new Histogram({
      name: 'nxt_rollback_duration_seconds',
      help: 'Time from the start of a rollback plan to its completion (measured RTO)',
      labelNames: ['scope', 'result'] as const,
      buckets: DURATION_BUCKETS,
      registers: r,
    }),
    rtoSeconds: new Gauge({
      name: 'nxt_rto_seconds',
      help: 'Measured recovery time of the last finished rollback plan, by namespace and plan',
      labelNames: ['namespace', 'plan', 'scope'] as const,
      registers: r,
    }),
    backupLastSuccess: new Gauge({
      name: 'nxt_backup_last_success_timestamp_seconds',
      help: 'Unix time of the newest successful backup per BackupSchedule',
      labelNames: ['namespace', 'schedule'] as const,
      registers: r,
    }),
    backupDuration: new Histogram({
      name: 'nxt_backup_duration_seconds',
      help: 'Duration of backup runs',
      labelNames: ['namespace', 'schedule'] as const,
      buckets: DURATION_BUCKETS,
      registers: r,
    }),
    backupSize: new Gauge({
      name: 'nxt_backup_size_bytes',
      help: 'Size of the newest successful backup',
      labelNames: ['namespace', 'schedule'] as const,
      registers: r,
    }),
    backupTotal: new Counter({
      name: 'nxt_backup_total',
      help: 'Backup runs recorded, by result',
      labelNames: ['namespace', 'schedule', 'result'] as const,
      registers: r,
    }),
    backupLocation: new Gauge({
      name: 'nxt_backup_location_info',
      help:
        'Where a BackupSchedule writes its backups (always 1): type pvc or s3, location "claim <name>" or ' +
        's3://<bucket>/<prefix> (cut to 128 characters); one series per schedule, join on (namespace, schedule)',
      labelNames: ['namespace', 'schedule', 'type', 'location'] as const,
      registers: r,
    }),
    testRestoreTotal: new Counter({
      name: 'nxt_test_restore_total',
      help: 'Test restores recorded, by result and trigger (scheduled: the verify CronJob; request: test-restore-now)',
      labelNames: ['trigger', 'namespace', 'schedule', 'result'] as const,
      registers: r,
    }),
    rpoSeconds: new Gauge({
      name: 'nxt_rpo_seconds',
      help: 'Age of the newest good backup (current recovery point)',
      labelNames: ['namespace', 'schedule'] as const,
      registers: r,
    }),
    rpoObjectiveSeconds: new Gauge({
      name: 'nxt_rpo_objective_seconds',
      help: "The BackupSchedule's RPO objective (spec.objectives.rpo) in seconds",
      labelNames: ['namespace', 'schedule'] as const,
      registers: r,
    }),
    notificationsTotal: new Counter({
      name: 'nxt_notifications_total',
      help: 'Notification deliveries finished, by target type, event and result (delivered or failed)',
      labelNames: ['type', 'event', 'result'] as const,
      registers: r,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** What removeSeries needs of a prom-client Counter, Gauge or Histogram. */
interface SeriesOwner {
  get(): Promise<{ values: { labels: Record<string, string | number | undefined> }[] }>;
  remove(labels: Record<string, string | number>): void;
}

/** Removes every series of `metric` whose labels include `match` (a histogram's buckets with it). */
async function removeSeries(metric: SeriesOwner, match: Record<string, string>): Promise<void> {
  const done = new Set<string>();
  for (const { labels } of (await metric.get()).values) {
    if (!Object.entries(match).every(([k, v]) => labels[k] === v)) continue;
    const series = Object.fromEntries(
      Object.entries(labels).filter(
        (e): e is [string, string | number] => e[0] !== 'le' && e[1] !== undefined,
      ),
    );
    const key = JSON.stringify(series);
    if (done.has(key)) continue;
    done.add(key);
    metric.remove(series);
  }
}

const owners = (...metrics: unknown[]) => metrics as SeriesOwner[];

/**
 * A BackupSchedule is gone: drop its series, so /metrics does not report a deleted schedule's RPO (and a
 * "no backup for too long" alert on it) for the rest of the process's life.
 */
export async function forgetSchedule(m: Metrics, namespace: string, schedule: string): Promise<void> {
  const match = { namespace, schedule };
  for (const metric of owners(
    m.rpoSeconds,
    m.rpoObjectiveSeconds,
    m.backupLastSuccess,
    m.backupSize,
    m.backupTotal,
    m.backupDuration,
    m.testRestoreTotal,
    m.backupLocation,
  ))
    await removeSeries(metric, match);
}

/** The longest location label value: bounded whatever the bucket and prefix (S3 allows 1024-byte keys). */
export const LOCATION_LABEL_MAX = 128;

/**
 * nxt_backup_location_info for one schedule: exactly one series per schedule (a changed location replaces the
 * old series), so the label's cardinality is that of the schedules. `location` is status.storageLocation.
 */
export async function setBackupLocation(
  m: Metrics,
  namespace: string,
  schedule: string,
  location: string,
): Promise<void> {
  const type = location.startsWith('s3://') ? 's3' : 'pvc';
  const value =
    location.length > LOCATION_LABEL_MAX ? `${location.slice(0, LOCATION_LABEL_MAX - 1)}…` : location;
  const labels = { namespace, schedule, type, location: value };
  const current = (await (m.backupLocation as unknown as SeriesOwner).get()).values.some(
    (v) => v.labels.namespace === namespace && v.labels.schedule === schedule && v.labels.location === value,
  );
  if (current) return;
  await removeSeries(owners(m.backupLocation)[0]!, { namespace, schedule });
  m.backupLocation.set(labels, 1);
}

/** A RollbackPlan is gone: drop its nxt_rto_seconds series (the per-scope histogram keeps the history). */
export async function forgetPlan(m: Metrics, namespace: string, plan: string): Promise<void> {
  await removeSeries(owners(m.rtoSeconds)[0]!, { namespace, plan });
}
