import { accessSync, constants, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { normaliseDeniedCidr } from './rollback/address-policy.js';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const durationMs = z
  .string()
  .regex(/^\d+(ms|s|m|h)$/, 'a duration like 500ms, 15s, 10m or 1h')
  .transform((v) => {
    const n = Number.parseInt(v, 10);
    const unit = v.replace(/^\d+/, '');
    return n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[unit]!;
  });
const addr = z.string().regex(/^([\w.-]*):(\d+)$|^0$/, 'host:port, :port, or 0 to disable');
/** A comma-separated list; blanks dropped. */
const list = (item: z.ZodString) =>
  z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item));

export const ConfigSchema = z.object({
  WATCH_NAMESPACES: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(
      z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'namespace names are DNS-1123 labels')),
    ),
  LEADER_ELECT: bool.default(false),
  LEADER_ELECTION_NAMESPACE: z.string().optional(),
  LEADER_ELECTION_ID: z.string().default('nxt-rollback-operator-leader'),
  LEASE_DURATION: durationMs.default(15_000),
  RENEW_DEADLINE: durationMs.default(10_000),
  RETRY_PERIOD: durationMs.default(2_000),
  POD_NAME: z.string().optional(),
  OPERATOR_IMAGE: z.string().default('ghcr.io/nxtnewday/nxt-rollback-operator:0.1.0'),
  METRICS_ADDR: addr.default(':8080'),
  HEALTH_ADDR: addr.default(':8081'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  RESYNC_PERIOD: durationMs.default(600_000),
  MAX_CONCURRENT_RECONCILES: z.coerce.number().int().min(1).max(64).default(4),
  // Workers of the RollbackPlan controller. A plan's reconcile is a few sequential API round trips and nothing
  // else (it never sleeps), so a burst of plans is bound by round trips per worker: docs/benchmarks.md.
  PLAN_MAX_CONCURRENT_RECONCILES: z.coerce.number().int().min(1).max(64).default(16),
  // How long the leader waits for its informers' first list before it gives up and exits 1 (controller-runtime's CacheSyncTimeout).
  CACHE_SYNC_TIMEOUT: durationMs.default(120_000),
  // HTTP checks refuse link-local (169.254.0.0/16, fe80::/10) and cloud metadata addresses unless this is false.
  HTTP_CHECK_DENY_LINK_LOCAL: bool.default(true),
  // Further address ranges HTTP checks may not connect to, comma-separated CIDRs (10.0.0.0/8,fd00::/8).
  HTTP_CHECK_DENIED_CIDRS: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(
      z.array(
        z.string().transform((c, ctx) => {
          try {
            return normaliseDeniedCidr(c); // ::ffff:10.0.0.0/104 becomes 10.0.0.0/8, which can match
          } catch (e) {
            ctx.addIssue({ code: 'custom', message: (e as Error).message });
            return z.NEVER;
          }
        }),
      ),
    ),
  // Images a BackupSchedule's podTemplate.image may name (exact, or a prefix ending in "/"); empty: none.
  ALLOWED_RUNNER_IMAGES: list(z.string().regex(/^[^\s,]+$/, 'image references without spaces')),
  // ServiceAccounts a BackupSchedule's podTemplate.serviceAccountName may name; empty: none.
  ALLOWED_RUNNER_SERVICE_ACCOUNTS: list(
    z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'ServiceAccount names are DNS-1123 subdomains'),
  ),
  // SQL assertions (validation.sql, verify.sql) may run as a superuser or a role that can run programs.
  ALLOW_SUPERUSER_ASSERTIONS: bool.default(false),
  // How long a plan waits for a same-named Job of someone else (an earlier plan's) to go before failing.
  JOB_NAME_CONFLICT_TIMEOUT: durationMs.default(120_000),
  // HTTP checks refuse loopback (127.0.0.0/8, ::1, and 0.0.0.0 which reaches it): the operator pod's sidecars.
  HTTP_CHECK_DENY_LOOPBACK: bool.default(true),
  // Namespaces other than a plan's own where GitOps owners (Flux Kustomizations / HelmReleases, Argo CD
  // Applications) may be suspended and resumed (spec.gitops.policy suspend; docs/gitops.md). A plan's own
  // namespace is always allowed.
  GITOPS_OWNER_NAMESPACES: list(
    z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'namespace names are DNS-1123 labels'),
  ).default(['flux-system', 'argocd']),
  // Argo CD's control-plane namespace: where an Application named by a plain tracking id lives.
  ARGOCD_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .default('argocd'),
  // How often a plan that suspended a GitOps owner re-reads the owner's source for a new revision (a requeue
  // of that plan only; the plan's own events, e.g. the gitops-resume annotation, wake it at once).
  GITOPS_RESUME_CHECK_INTERVAL: durationMs.default(30_000),
  // Alertmanager webhook receiver (POST /alertmanager, docs/alertmanager.md): host:port, :port, or 0 (off).
  ALERT_RECEIVER_ADDR: addr.default('0'),
  // File holding the bearer token Alertmanager must send (a mounted Secret key); required with the receiver on.
  ALERT_RECEIVER_TOKEN_FILE: z.string().min(1).optional(),
  // PEM certificate and key files: the receiver serves HTTPS when both are set (both or neither).
  ALERT_RECEIVER_TLS_CERT_FILE: z.string().min(1).optional(),
  ALERT_RECEIVER_TLS_KEY_FILE: z.string().min(1).optional(),
  // This cluster's id, recorded in S3 prefix owner objects (docs/backupschedule.md). Unset: the UID of the
  // kube-system Namespace, read at start-up. Set it where that UID is not stable or cannot be read.
  CLUSTER_ID: z
    .string()
    .regex(/^([A-Za-z0-9][A-Za-z0-9._:-]{0,127})?$/, 'letters, digits and . _ : - (at most 128)')
    .optional()
    .transform((v) => v || undefined),
});

export type Config = z.output<typeof ConfigSchema> & {
  identity: string;
  leaderElectionNamespace: string;
  /** This cluster's id (CLUSTER_ID, or the kube-system Namespace's UID), set by the manager at start-up. */
  clusterId?: string;
  /**
   * The start-up read of the cluster id failed in a way a retry may fix, and the manager is still retrying
   * in the background: BackupSchedules on S3 wait (Ready=False ClusterIdUnknown) rather than re-applying their
   * CronJobs without NXT_CLUSTER_ID.
   */
  clusterIdPending?: boolean;
};

/** `--metrics-addr=:9090` style flags override the environment variable of the same name. */
export function flagsToEnv(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of argv) {
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(a);
    if (m) out[m[1]!.toUpperCase().replace(/-/g, '_')] = m[2] ?? 'true';
  }
  return out;
}

/**
 * client-go's checks of a leader election configuration (leaderelection.NewLeaderElector). A renew deadline
 * at or past the lease duration lets a standby take the lease while the leader still believes it leads.
 */
export function leaderElectionProblems(c: {
  LEASE_DURATION: number;
  RENEW_DEADLINE: number;
  RETRY_PERIOD: number;
}): { setting: string; message: string }[] {
  const out: { setting: string; message: string }[] = [];
  if (c.LEASE_DURATION < 1000)
    out.push({ setting: 'LEASE_DURATION', message: 'must be at least 1s (a Lease counts whole seconds)' });
  if (c.RETRY_PERIOD <= 0) out.push({ setting: 'RETRY_PERIOD', message: 'must be greater than zero' });
  if (c.RENEW_DEADLINE >= c.LEASE_DURATION)
    out.push({
      setting: 'RENEW_DEADLINE',
      message: `must be shorter than LEASE_DURATION (${c.RENEW_DEADLINE} ms >= ${c.LEASE_DURATION} ms): a standby could take the lease while the leader still works`,
    });
  // client-go: renewDeadline must exceed retryPeriod * JitterFactor (1.2), or one jittered retry uses it up.
  if (c.RENEW_DEADLINE <= c.RETRY_PERIOD * 1.2)
    out.push({
      setting: 'RETRY_PERIOD',
      message: `must be shorter than RENEW_DEADLINE / 1.2 (${c.RETRY_PERIOD} ms vs. RENEW_DEADLINE ${c.RENEW_DEADLINE} ms)`,
    });
  return out;
}

/** Settings of the Alertmanager receiver that only make sense together, and its files readable. */
export function alertReceiverProblems(c: {
  ALERT_RECEIVER_ADDR: string;
  ALERT_RECEIVER_TOKEN_FILE?: string;
  ALERT_RECEIVER_TLS_CERT_FILE?: string;
  ALERT_RECEIVER_TLS_KEY_FILE?: string;
}): { setting: string; message: string }[] {
  const out: { setting: string; message: string }[] = [];
  if (c.ALERT_RECEIVER_ADDR !== '0' && !c.ALERT_RECEIVER_TOKEN_FILE)
    out.push({
      setting: 'ALERT_RECEIVER_TOKEN_FILE',
      message:
        'is required when ALERT_RECEIVER_ADDR is set: the receiver accepts only Alertmanager with its token',
    });
  if (Boolean(c.ALERT_RECEIVER_TLS_CERT_FILE) !== Boolean(c.ALERT_RECEIVER_TLS_KEY_FILE))
    out.push({
      setting: c.ALERT_RECEIVER_TLS_CERT_FILE
        ? 'ALERT_RECEIVER_TLS_KEY_FILE'
        : 'ALERT_RECEIVER_TLS_CERT_FILE',
      message: 'set both ALERT_RECEIVER_TLS_CERT_FILE and ALERT_RECEIVER_TLS_KEY_FILE, or neither',
    });
  if (c.ALERT_RECEIVER_ADDR !== '0')
    for (const setting of [
      'ALERT_RECEIVER_TOKEN_FILE',
      'ALERT_RECEIVER_TLS_CERT_FILE',
      'ALERT_RECEIVER_TLS_KEY_FILE',
    ] as const) {
      const file = c[setting];
      if (!file) continue;
      try {
        accessSync(file, constants.R_OK); // a missing Secret mount: a configuration error, not a crash later
      } catch (e) {
        out.push({
          setting,
          message: `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
        });
      }
    }
  return out;
}

/** Validated configuration; throws an Error listing every invalid setting by name. */
export function loadConfig(env: NodeJS.ProcessEnv, argv: string[] = []): Config {
  const merged = { ...env, ...flagsToEnv(argv) };
  const r = ConfigSchema.safeParse(merged);
  const problems = r.success
    ? [...leaderElectionProblems(r.data), ...alertReceiverProblems(r.data)].map(
        (p) => `  ${p.setting}: ${p.message}`,
      )
    : r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  if (!r.success || problems.length) {
    throw new Error(`invalid configuration:\n${problems.join('\n')}`);
  }
  let saNamespace: string | undefined;
  try {
    saNamespace = readFileSync(SA_NAMESPACE_FILE, 'utf8').trim();
  } catch {
    /* not in a pod */
  }
  return {
    ...r.data,
    identity: `${r.data.POD_NAME ?? hostname()}_${randomUUID()}`,
    leaderElectionNamespace: r.data.LEADER_ELECTION_NAMESPACE ?? saNamespace ?? 'nxt-rollback-system',
  };
}
