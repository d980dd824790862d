// The RollbackPlan `validate` creates: spec.validateOnly with the targets and checks from the command line (or
// copied from an existing plan). Pure, so the spec is pinned by a unit test.
import { API_VERSION } from '../api/v1alpha1/common.js';
import type { RollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import { CliError, ExitCode } from './errors.js';

export type Stage = 'pre' | 'post';

export interface ValidationInput {
  deployments: string[];
  http: string[];
  /** BackupSchedule of the database target. */
  schedule?: string;
  /** `<configmap>` or `featureflag/<name>`. */
  flags?: string;
  disable: string[];
  /** spec.validation.timeout. */
  validationTimeout?: string;
  /** The spec of an existing plan whose targets and validation are copied (--plan). */
  from?: Partial<RollbackPlanSpec>;
}

type Targets = RollbackPlanSpec['targets'];

const NOTHING_TO_VALIDATE =
  'nothing to validate: name Deployments, --schedule <BackupSchedule>, --flags <name> --disable <keys>, or --plan <plan>';

/**
 * The checks of the flags that need no cluster: --flags and --disable together, and some target named (or
 * --plan, whose targets are read later).
 */
export function checkValidationTargets(
  input: Omit<ValidationInput, 'from' | 'validationTimeout'> & { fromPlan: boolean },
): void {
  if ((input.flags !== undefined || input.disable.length) && (!input.flags || !input.disable.length))
    throw new CliError(ExitCode.Usage, '--flags <name> and --disable <a,b> go together');
  if (!input.fromPlan && !input.deployments.length && !input.schedule && !input.flags)
    throw new CliError(ExitCode.Usage, NOTHING_TO_VALIDATE);
}

/** The targets and validation of the plan, from the flags and/or an existing plan's spec. */
export function validationSpec(input: ValidationInput): Omit<RollbackPlanSpec, 'validateOnly'> {
  const from = input.from;
  const targets: Targets = structuredClone(from?.targets ?? {});
  if (input.deployments.length) {
    const known = new Set((targets.deployments ?? []).map((d) => d.name));
    targets.deployments = [
      ...(targets.deployments ?? []),
      ...input.deployments.filter((d) => !known.has(d)).map((name) => ({ name })),
    ];
  }
  if (input.schedule) targets.database = { backupScheduleRef: { name: input.schedule } };
  checkValidationTargets({ ...input, fromPlan: true });
  if (input.flags) {
    const ff = /^featureflags?\//i.test(input.flags);
    const name = input.flags.replace(/^(featureflags?|configmaps?|cm)\//i, '');
    targets.featureFlags = {
      ...(ff ? { featureFlagRef: { name } } : { configMapRef: { name } }),
      disable: input.disable,
    };
  }
  const has = {
    app: (targets.deployments?.length ?? 0) > 0,
    database: !!targets.database,
    feature: !!targets.featureFlags,
  };
  const kinds = Object.entries(has).filter(([, v]) => v);
  if (!kinds.length) throw new CliError(ExitCode.Usage, NOTHING_TO_VALIDATE);
  // From the combined targets, never the copied plan's scope: --plan app-plan --schedule db is full.
  const scope: RollbackPlanSpec['scope'] =
    kinds.length === 1 ? (kinds[0]![0] as 'app' | 'database' | 'feature') : 'full';
  const http = [...(from?.validation?.http ?? []), ...input.http.map((url) => ({ url, expectStatus: 200 }))];
  const validation: NonNullable<RollbackPlanSpec['validation']> = {
    ...(from?.validation?.sql?.length ? { sql: from.validation.sql } : {}),
    ...(http.length ? { http } : {}),
    ...(input.validationTimeout
      ? { timeout: input.validationTimeout }
      : from?.validation?.timeout
        ? { timeout: from.validation.timeout }
        : {}),
  };
  return {
    scope,
    targets,
    ...(Object.keys(validation).length ? { validation } : {}),
  };
}

/** The RollbackPlan of one stage: `validate-<stage>-<time>-<hex>`. */
export function validationPlan(name: string, stage: Stage, spec: Omit<RollbackPlanSpec, 'validateOnly'>) {
  return {
    apiVersion: API_VERSION,
    kind: 'RollbackPlan',
    metadata: {
      name,
      labels: { 'app.kubernetes.io/created-by': 'nxt-rollback-cli' },
    },
    spec: {
      ...spec,
      validateOnly: stage,
      reason: `nxt-rollback validate --${stage}`,
    },
  };
}
