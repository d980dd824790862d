import { describeAccess, type AccessCheck } from '../kube/access.js';
import { boundIdentity, boundText } from '../kube/bounded.js';
import { isNotFound, userFixableRejection } from '../kube/errors.js';
import type { KubeObject } from '../kube/rest.js';
import { finishStep } from './journal.js';
import { concurrentPlanFailure } from './locks.js';
import type { PlanRun, StepOutcome } from './plan-run.js';

/** OpenFeature Operator's FeatureFlag (core.openfeature.dev). */
const FEATURE_FLAG = { group: 'core.openfeature.dev', version: 'v1beta1', plural: 'featureflags' } as const;
export const DISABLED = 'false';
/** status.featureFlags[].previous's maxLength: a longer value is kept as its start and a hash. */
const RECORDED_VALUE_MAX = 1024;

const configMapRef = (run: PlanRun, name: string) => ({
  group: '',
  version: 'v1',
  plural: 'configmaps',
  namespace: run.namespace,
  name,
});

function record(run: PlanRun, name: string, ok: boolean, message: string) {
  run.status.steps = finishStep(run.status.steps, name, ok ? 'Succeeded' : 'Failed', message, run.now());
}

/** The flag objects exist (ConfigMap, FeatureFlag and its CRD) and the operator may patch them. */
export async function preValidateFlags(run: PlanRun): Promise<StepOutcome> {
  const t = run.spec.targets.featureFlags!;
  const locked = concurrentPlanFailure(run, 'flags');
  if (locked) return locked;
  const checks: AccessCheck[] = [];
  if (t.configMapRef) {
    try {
      const cm = await run.client.get<KubeObject>(configMapRef(run, t.configMapRef.name));
      if (cm.immutable === true) {
        const msg = `ConfigMap "${t.configMapRef.name}" (spec.targets.featureFlags.configMapRef) is immutable, so its flags cannot be disabled; recreate it without immutable: true`;
        record(run, 'CheckFlagsExist', false, msg);
        return { kind: 'failed', reason: 'TargetImmutable', message: msg };
      }
    } catch (e) {
      if (!isNotFound(e)) throw e;
      const msg = `ConfigMap "${t.configMapRef.name}" (spec.targets.featureFlags.configMapRef) not found in namespace ${run.namespace}`;
      record(run, 'CheckFlagsExist', false, msg);
      return { kind: 'failed', reason: 'TargetNotFound', message: msg };
    }
    checks.push({ group: '', resource: 'configmaps', verb: 'patch', namespace: run.namespace });
  }
  if (t.featureFlagRef) {
    try {
      await run.client.get({ ...FEATURE_FLAG, namespace: run.namespace, name: t.featureFlagRef.name });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      const msg = `FeatureFlag "${t.featureFlagRef.name}" (core.openfeature.dev) not found in namespace ${run.namespace}, or the OpenFeature CRD is not installed`;
      record(run, 'CheckFlagsExist', false, msg);
      return { kind: 'failed', reason: 'TargetNotFound', message: msg };
    }
    checks.push({
      group: FEATURE_FLAG.group,
      resource: FEATURE_FLAG.plural,
      verb: 'patch',
      namespace: run.namespace,
    });
  }
  record(
    run,
    'CheckFlagsExist',
    true,
    [
      t.configMapRef && `ConfigMap ${t.configMapRef.name}`,
      t.featureFlagRef && `FeatureFlag ${t.featureFlagRef.name}`,
    ]
      .filter(Boolean)
      .join(', ') + ' found',
  );
  for (const c of checks) {
    if (!(await run.access.check(c)).allowed) {
      const msg = `the operator's ServiceAccount may not ${describeAccess(c)}`;
      record(run, 'CheckFlagPermissions', false, msg);
      return { kind: 'failed', reason: 'Forbidden', message: msg };
    }
  }
  return { kind: 'done', message: `flags to disable: ${t.disable.join(', ')}` };
}

/**
 * Why the step cannot go on, for an error of an API call on a flag object: a refused request (an admission
 * policy, a ConfigMap grown past its size limit) with the server's message, or a target deleted since
 * pre-validation. Retrying either cannot succeed. Anything else (5xx, timeouts, 409) is thrown and retried.
 */
function stepFailure(what: string, e: unknown): StepOutcome {
  if (isNotFound(e)) {
    return {
      kind: 'failed',
      reason: 'TargetNotFound',
      message: `${what}: the object was deleted during the rollback`,
    };
  }
  const r = userFixableRejection(e);
  if (!r) throw e;
  return {
    kind: 'failed',
    reason: 'FlagPatchRejected',
    message: `the API server rejected ${what} (${r.code} ${r.reason}): ${r.message}`,
  };
}

/**
 * Disables the flags. Previous values are written to status before anything changes (a durable record of
 * what to restore), then the ConfigMap keys are set to "false" and FeatureFlag entries to state DISABLED.
 * Re-running sets the same values: idempotent across restarts.
 */
export async function disableFlags(run: PlanRun): Promise<StepOutcome> {
  const t = run.spec.targets.featureFlags!;
  if (!run.status.featureFlags?.length) {
    const recorded: NonNullable<typeof run.status.featureFlags> = [];
    if (t.configMapRef) {
      let cm: KubeObject;
      try {
        cm = await run.client.get<KubeObject>(configMapRef(run, t.configMapRef.name));
      } catch (e) {
        return stepFailure(`the read of ConfigMap ${t.configMapRef.name}`, e);
      }
      for (const key of t.disable)
        recorded.push({
          key,
          ...(cm.data?.[key] !== undefined
            ? { previous: boundIdentity(String(cm.data[key]), RECORDED_VALUE_MAX) }
            : {}),
          now: DISABLED,
        });
    }
    if (t.featureFlagRef) {
      let ff: KubeObject;
      try {
        ff = await run.client.get<KubeObject>({
          ...FEATURE_FLAG,
          namespace: run.namespace,
          name: t.featureFlagRef.name,
        });
      } catch (e) {
        return stepFailure(`the read of FeatureFlag ${t.featureFlagRef.name}`, e);
      }
      for (const key of t.disable) {
        const state = ff.spec?.flagSpec?.flags?.[key]?.state;
        const entry = {
          key: `featureflag/${key}`,
          ...(state !== undefined ? { previous: boundIdentity(String(state), RECORDED_VALUE_MAX) } : {}),
          now: 'DISABLED',
        };
        recorded.push(entry);
      }
    }
    run.status.featureFlags = recorded;
    await run.checkpoint();
  }
  if (t.configMapRef) {
    try {
      await run.client.patch(configMapRef(run, t.configMapRef.name), 'merge', {
        data: Object.fromEntries(t.disable.map((k) => [k, DISABLED])),
      });
    } catch (e) {
      return stepFailure(`the patch of ConfigMap ${t.configMapRef.name}`, e);
    }
  }
  if (t.featureFlagRef) {
    try {
      await run.client.patch(
        { ...FEATURE_FLAG, namespace: run.namespace, name: t.featureFlagRef.name },
        'merge',
        {
          spec: { flagSpec: { flags: Object.fromEntries(t.disable.map((k) => [k, { state: 'DISABLED' }])) } },
        },
      );
    } catch (e) {
      return stepFailure(`the patch of FeatureFlag ${t.featureFlagRef.name}`, e);
    }
  }
  const changed = (run.status.featureFlags ?? []).map(
    (f) => `${f.key}: ${f.previous === undefined ? '(absent)' : boundText(f.previous, 64)} -> ${f.now}`,
  );
  run.event('Normal', 'FlagsDisabled', changed.join(', '));
  return { kind: 'done', message: `disabled ${changed.join(', ')}` };
}
