import type { RawDeployment } from './deployment-undo.js';

export interface RolloutProgress {
  state: 'complete' | 'progressing' | 'failed';
  message: string;
}

/**
 * kubectl rollout status, as a pure function of a Deployment: complete when the controller has observed the
 * current generation, every replica runs the new template, old replicas are gone and all are available;
 * failed when the Progressing condition says ProgressDeadlineExceeded.
 */
export function rolloutProgress(d: RawDeployment): RolloutProgress {
  const name = d.metadata.name;
  const spec = d.spec as { replicas?: number };
  const status = (d as { status?: Record<string, any> }).status ?? {};
  const generation = (d.metadata as { generation?: number }).generation ?? 0;
  if ((status.observedGeneration ?? 0) < generation) {
    return { state: 'progressing', message: `waiting for deployment "${name}" spec update to be observed` };
  }
  const progressing = (status.conditions ?? []).find((c: { type: string }) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return { state: 'failed', message: `deployment "${name}" exceeded its progress deadline` };
  }
  const want = spec.replicas ?? 1;
  const updated = status.updatedReplicas ?? 0;
  const replicas = status.replicas ?? 0;
  const available = status.availableReplicas ?? 0;
  if (updated < want) {
    return { state: 'progressing', message: `${updated} of ${want} updated replicas of "${name}" are ready` };
  }
  if (replicas > updated) {
    return {
      state: 'progressing',
      message: `${replicas - updated} old replicas of "${name}" are pending termination`,
    };
  }
  if (available < updated) {
    return {
      state: 'progressing',
      message: `${available} of ${updated} updated replicas of "${name}" are available`,
    };
  }
  return {
    state: 'complete',
    message: `deployment "${name}" successfully rolled out (${available}/${want} available)`,
  };
}
