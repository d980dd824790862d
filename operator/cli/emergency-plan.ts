// The RollbackPlan `nxt-rollback emergency` creates, built from its flags: pure, so every bad combination is
// a usage error (exit 2) before anything reaches the API server, and the unit test pins the spec.
import { API_VERSION } from '../api/v1alpha1/common.js';
import { ROLLBACK_PLAN_KIND, Scopes, type RollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import { CliError, ExitCode } from './errors.js';
import { commaList, specDurationFlag } from './flags.js';

export type Scope = (typeof Scopes)[number];

/** The flags of `emergency` as commander hands them over. */
export interface EmergencyFlags {
  scope: Scope;
  deployments: string[];
  reason?: string;
  name?: string;
  toRevision?: string;
  schedule?: string;
  backup?: string;
  mode?: 'inPlace' | 'newDatabaseSwap';
  /** commander's --no-safety-backup: false when given. */
  safetyBackup?: boolean;
  flags?: string;
  disable?: string;
  http?: string[];
  validationTimeout?: string;
  dryRun?: boolean;
}

export interface PlanManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec: RollbackPlanSpec;
}

const usage = (msg: string) => new CliError(ExitCode.Usage, msg);

/** `emergency-app-20261129-114502-3fa1`: sortable, unique enough, ≤ 55 characters (the plan name limit). */
export function emergencyName(scope: Scope, now: Date, hex4: string): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-` +
    `${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `emergency-${scope}-${stamp}-${hex4}`;
}

/** `--backup latest|<id>|before=<RFC3339>` → spec.targets.database.backup. */
export function backupSelector(
  value: string,
): NonNullable<RollbackPlanSpec['targets']['database']>['backup'] {
  if (value === 'latest' || value === 'latestVerified') return { latestVerified: true };
  if (value.startsWith('before=')) {
    const t = value.slice('before='.length);
    if (
      !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(t) ||
      Number.isNaN(Date.parse(t))
    )
      throw usage(`--backup before=${t}: not an RFC 3339 time such as 2026-11-29T14:00:00Z`);
    return { before: t };
  }
  if (!value) throw usage('--backup needs latest, a backup id, or before=<RFC3339 time>');
  return { id: value };
}

/** `--flags [configmap/|featureflag/]<name>`: a bare name is a ConfigMap. */
export function flagsTarget(
  value: string,
): { configMapRef: { name: string } } | { featureFlagRef: { name: string } } {
  const m = /^(configmaps?|cm|featureflags?|ff)\/(.+)$/i.exec(value);
  if (!m) return { configMapRef: { name: value } };
  return m[1]!.toLowerCase().startsWith('f')
    ? { featureFlagRef: { name: m[2]! } }
    : { configMapRef: { name: m[2]! } };
}

/** The plan for the flags; throws CliError(Usage) for a combination that cannot make sense. */
export function buildEmergencyPlan(f: EmergencyFlags, now: Date, hex4: string): PlanManifest {
  const { scope } = f;
  const wantsDeployments = scope === 'app' || scope === 'full';
  const wantsDatabase = scope === 'database' || scope === 'full';
  const wantsFlags = scope === 'feature' || scope === 'full';
  const deployments = [...new Set(f.deployments)];

  if (scope === 'app' && deployments.length === 0)
    throw usage(
      '--scope app needs at least one Deployment: nxt-rollback emergency --scope app <deployment>...',
    );
  if (scope === 'database' && !f.schedule)
    throw usage('--scope database needs --schedule <BackupSchedule> (the schedule whose backup to restore)');
  if (scope === 'feature' && (!f.flags || !f.disable))
    throw usage('--scope feature needs --flags <ConfigMap or featureflag/<name>> and --disable <flag,...>');
  if (scope === 'full' && deployments.length === 0 && !f.schedule)
    throw usage(
      '--scope full needs Deployments, --schedule <BackupSchedule>, or both, e.g. ' +
        'nxt-rollback emergency --scope full checkout --schedule shop-db ' +
        '(through npm, after --: npm run rollback:emergency -- checkout --schedule shop-db)',
    );
  if (!wantsDeployments && deployments.length)
    throw usage(
      `--scope ${scope} does not roll back Deployments: drop ${deployments.join(' ')}, or use --scope app/full`,
    );
  if (f.toRevision !== undefined && !wantsDeployments)
    throw usage(`--to-revision applies to --scope app and full`);
  const databaseFlags = [
    f.schedule !== undefined && '--schedule',
    f.backup !== undefined && '--backup',
    f.mode !== undefined && '--mode',
    f.safetyBackup === false && '--no-safety-backup',
  ].filter(Boolean);
  if (!wantsDatabase && databaseFlags.length)
    throw usage(`${databaseFlags.join(', ')} apply to --scope database and full`);
  if (wantsDatabase && !f.schedule && databaseFlags.length)
    throw usage(`${databaseFlags.join(', ')} need --schedule <BackupSchedule>`);
  if (!wantsFlags && (f.flags !== undefined || f.disable !== undefined))
    throw usage('--flags and --disable apply to --scope feature and full');
  if ((f.flags === undefined) !== (f.disable === undefined))
    throw usage('--flags and --disable go together: which object, and which flags to switch off');

  let toRevision: number | undefined;
  if (f.toRevision !== undefined) {
    if (!/^\d+$/.test(f.toRevision)) throw usage(`--to-revision "${f.toRevision}" is not a revision number`);
    toRevision = Number(f.toRevision);
  }
  if (f.validationTimeout !== undefined) specDurationFlag('--validation-timeout', f.validationTimeout);

  const targets: RollbackPlanSpec['targets'] = {};
  if (deployments.length)
    targets.deployments = deployments.map((name) => ({
      name,
      ...(toRevision !== undefined ? { toRevision } : {}),
    }));
  if (f.schedule)
    targets.database = {
      backupScheduleRef: { name: f.schedule },
      ...(f.backup !== undefined ? { backup: backupSelector(f.backup) } : {}),
      ...(f.mode ? { mode: f.mode } : {}),
      ...(f.safetyBackup === false ? { safetyBackup: false } : {}),
    };
  if (f.flags && f.disable) {
    const disable = [...new Set(commaList(f.disable))];
    if (!disable.length) throw usage('--disable needs at least one flag name');
    targets.featureFlags = { ...flagsTarget(f.flags), disable };
  }
  const http = (f.http ?? []).map((url) => ({ url, expectStatus: 200 }));
  const validation =
    http.length || f.validationTimeout
      ? { ...(f.validationTimeout ? { timeout: f.validationTimeout } : {}), ...(http.length ? { http } : {}) }
      : undefined;
  return {
    apiVersion: API_VERSION,
    kind: ROLLBACK_PLAN_KIND,
    metadata: { name: f.name ?? emergencyName(scope, now, hex4) },
    spec: {
      scope,
      severity: 'critical',
      ...(f.dryRun ? { dryRun: true } : {}),
      ...(f.reason ? { reason: f.reason } : {}),
      targets,
      ...(validation ? { validation } : {}),
    },
  };
}
