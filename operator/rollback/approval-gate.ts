import { ConditionType } from '../api/v1alpha1/common.js';
import type { ReconcileResult } from '../kube/controller.js';
import { gate } from './decision.js';
import type { TriggerContext } from './auto-trigger.js';
import { planPhaseConditions } from './plan-conditions.js';

export type GateOutcome = { kind: 'execute' } | { kind: 'stop'; result?: ReconcileResult };

/**
 * The decision matrix at the moment a plan would start executing (its trigger fired, or a manual plan was
 * applied): execute, wait for an approval or the confirm window (phase AwaitingApproval), or end vetoed.
 * A waiting manual plan records when it was requested in status.trigger (type Manual), so a restart does not
 * move the request.
 */
export async function passGate(
  t: Pick<TriggerContext, 'plan' | 'spec' | 'status' | 'now' | 'cond' | 'event' | 'write'>,
): Promise<GateOutcome> {
  const { status, spec } = t;
  const now = t.now();
  const g = gate({
    severity: spec.severity,
    mode: spec.trigger.mode,
    confirmFor: spec.trigger.confirmFor,
    annotations: t.plan.metadata.annotations,
    requestedAt: status.trigger ? new Date(status.trigger.firedAt) : now,
    now,
  });
  const waited = status.phase === 'AwaitingApproval';
  switch (g.kind) {
    case 'execute':
      if (g.approval && !status.approval) status.approval = g.approval;
      if (waited)
        t.cond({
          type: ConditionType.AwaitingApproval,
          status: 'False',
          reason: g.approval?.approvedBy ? 'Approved' : 'ConfirmWindowPassed',
          message: g.message,
        });
      if (g.approval?.approvedBy) t.event('Normal', 'Approved', g.message);
      return { kind: 'execute' };
    case 'wait':
      status.trigger ??= { firedAt: now.toISOString(), condition: 'Manual', type: 'Manual' };
      status.phase = 'AwaitingApproval';
      planPhaseConditions.awaitingApproval(t.cond, g.reason, g.message);
      if (!waited) t.event('Normal', 'AwaitingApproval', g.message);
      await t.write();
      return { kind: 'stop', result: g.requeueAfterMs ? { requeueAfterMs: g.requeueAfterMs } : undefined };
    case 'vetoed':
      status.phase = 'Vetoed';
      status.veto = g.veto;
      planPhaseConditions.vetoed(t.cond, g.message, waited);
      t.event('Normal', 'Vetoed', g.message);
      await t.write();
      return { kind: 'stop' };
  }
}
