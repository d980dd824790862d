import type { EffectiveRollbackPlanSpec } from '../api/v1alpha1/rollbackplan.js';
import { boundIdentity } from '../kube/bounded.js';
import { isNotFound } from '../kube/errors.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { DISABLED } from './feature-steps.js';

/** OpenFeature Operator's FeatureFlag, the object disableFlags in feature-steps.ts patches. */
const FEATURE_FLAG = { group: 'core.openfeature.dev', version: 'v1beta1', plural: 'featureflags' } as const;

/** One flag a feature-scope run would disable, with its value now. */
export interface FlagDryRun {
  /** `ConfigMap/<name>` or `FeatureFlag/<name>`. */
  object: string;
  key: string;
  /** Absent: the flag is not set (not null: status is written with a merge patch, where null deletes). */
  current?: string;
  wouldBe: string;
}

// Status (and so the report) is bounded like status.featureFlags[].previous: a ConfigMap value can be 1 MiB.
const MAX_VALUE = 1024;
const current = (v: unknown): { current?: string } => {
  if (v === undefined || v === null) return {};
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  // The same bounded form as status.featureFlags[].previous: its start plus a hash, so two long values differ.
  return { current: boundIdentity(s, MAX_VALUE) };
};

/**
 * The flags a feature-scope run would disable, read-only, from every object it names: ConfigMap keys set to
 * "false" and OpenFeature FeatureFlag entries set to state DISABLED (what disableFlags in feature-steps.ts
 * writes). A missing object is a problem a real run's pre-validation would stop at.
 */
export async function readFlagDryRun(
  client: KubeClient,
  namespace: string,
  t: NonNullable<EffectiveRollbackPlanSpec['targets']['featureFlags']>,
): Promise<{ flags: FlagDryRun[]; problems: string[] }> {
  const flags: FlagDryRun[] = [];
  const problems: string[] = [];
  const read = async (ref: Parameters<KubeClient['get']>[0]) => {
    try {
      return await client.get<KubeObject>(ref);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      return undefined;
    }
  };
  if (t.configMapRef) {
    const name = t.configMapRef.name;
    const cm = await read({ group: '', version: 'v1', plural: 'configmaps', namespace, name });
    if (!cm) problems.push(`ConfigMap "${name}" not found`);
    else
      for (const key of t.disable)
        flags.push({ object: `ConfigMap/${name}`, key, ...current(cm.data?.[key]), wouldBe: DISABLED });
  }
  if (t.featureFlagRef) {
    const name = t.featureFlagRef.name;
    const ff = await read({ ...FEATURE_FLAG, namespace, name });
    if (!ff)
      problems.push(
        `FeatureFlag "${name}" (core.openfeature.dev) not found, or the OpenFeature CRD is not installed`,
      );
    else
      for (const key of t.disable)
        flags.push({
          object: `FeatureFlag/${name}`,
          key,
          ...current(ff.spec?.flagSpec?.flags?.[key]?.state),
          wouldBe: 'DISABLED',
        });
  }
  return { flags, problems };
}

/** One line for the summary: `would disable ConfigMap/flags beta (on -> false), FeatureFlag/ff beta (ENABLED -> DISABLED)`. */
export function flagSummary(flags: readonly FlagDryRun[], max = 10): string {
  const shown = flags
    .slice(0, max)
    .map((f) => `${f.object} ${f.key} (${short(f.current)} -> ${f.wouldBe})`)
    .join(', ');
  return `would disable ${shown}${flags.length > max ? ` and ${flags.length - max} more` : ''}`;
}

const short = (v: string | undefined) =>
  v === undefined ? 'absent' : v.length > 40 ? `${v.slice(0, 37)}...` : v;
