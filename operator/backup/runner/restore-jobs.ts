import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * pg_restore --jobs opens one database connection per job and the restored database's server does most of
 * the work; beyond a few jobs a runner only crowds the server.
 */
export const MAX_RESTORE_JOBS = 4;

/**
 * CPUs the cgroup's quota allows, from cgroup v2 `cpu.max` (`200000 100000` = 2 CPUs, `max 100000` = no
 * limit) or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1 = no limit). Undefined without a limit or when
 * the text does not parse. Pure.
 */
export function cpuQuota(
  cpuMax: string | undefined,
  v1?: { quota: string; period: string },
): number | undefined {
  const fraction = (quota: number, period: number) =>
    Number.isFinite(quota) && Number.isFinite(period) && quota > 0 && period > 0 ? quota / period : undefined;
  if (cpuMax !== undefined) {
    const [quota, period] = cpuMax.trim().split(/\s+/);
    if (quota === 'max') return undefined;
    return fraction(Number(quota), Number(period ?? '100000'));
  }
  if (v1) return fraction(Number(v1.quota.trim()), Number(v1.period.trim()));
  return undefined;
}

/**
 * How many pg_restore jobs a runner uses: the CPUs it may use (the cgroup quota, rounded up, capped by the
 * CPUs Node sees), at least 1 and at most MAX_RESTORE_JOBS. Pure.
 */
export function restoreJobs(cpus: { available: number; quota?: number }): number {
  const usable = cpus.quota === undefined ? cpus.available : Math.min(cpus.available, Math.ceil(cpus.quota));
  return Math.max(1, Math.min(MAX_RESTORE_JOBS, Math.floor(usable)));
}

const readOr = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * The runner's env override of the job count (an integer 1..MAX_RESTORE_JOBS; 1 = one transaction, e.g. behind
 * a transaction-pooling PgBouncer or a tight connection limit); undefined when unset or not such an integer.
 */
export const RESTORE_JOBS_ENV = 'NXT_RESTORE_JOBS';
export function restoreJobsOverride(value: string | undefined): number | undefined {
  if (value === undefined || !/^[1-9][0-9]*$/.test(value.trim())) return undefined;
  return Math.min(MAX_RESTORE_JOBS, Number(value.trim()));
}

/** restoreJobs for this process: os.availableParallelism() and the pod's CPU limit from its cgroup. */
export function podRestoreJobs(env: NodeJS.ProcessEnv = process.env): number {
  const override = restoreJobsOverride(env[RESTORE_JOBS_ENV]);
  if (override !== undefined) return override;
  const v2 = readOr('/sys/fs/cgroup/cpu.max');
  const quota = readOr('/sys/fs/cgroup/cpu/cpu.cfs_quota_us');
  const period = readOr('/sys/fs/cgroup/cpu/cpu.cfs_period_us');
  return restoreJobs({
    available: availableParallelism(),
    quota: cpuQuota(v2, quota !== undefined && period !== undefined ? { quota, period } : undefined),
  });
}
