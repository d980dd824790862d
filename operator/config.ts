import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';

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
  // How long a plan waits for a same-named Job of someone else (an earlier plan's) to go before failing.
  JOB_NAME_CONFLICT_TIMEOUT: durationMs.default(120_000),
});

export type Config = z.output<typeof ConfigSchema> & { identity: string; leaderElectionNamespace: string };

/** `--metrics-addr=:9090` style flags override the environment variable of the same name. */
export function flagsToEnv(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of argv) {
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(a);
    if (m) out[m[1]!.toUpperCase().replace(/-/g, '_')] = m[2] ?? 'true';
  }
  return out;
}

/** Validated configuration; throws an Error listing every invalid setting by name. */
export function loadConfig(env: NodeJS.ProcessEnv, argv: string[] = []): Config {
  const merged = { ...env, ...flagsToEnv(argv) };
  const r = ConfigSchema.safeParse(merged);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join('\n')}`);
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
