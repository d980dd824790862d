import { Annotation, parseDuration } from '../api/v1alpha1/common.js';
import { boundText } from '../kube/bounded.js';
import type { RollbackPlanStatus, Severity } from '../api/v1alpha1/rollbackplan.js';

/** Severity high: how long a fired plan waits for a veto when spec.trigger.confirmFor is absent. */
export const DEFAULT_CONFIRM_FOR = '2m';
/** Longest text copied from an annotation into status (the schema's bound for reasons). */
const MAX_REASON = 1024;
const MAX_USER = 253;

export interface GateInput {
  severity?: Severity;
  mode: 'manual' | 'auto' | 'onRevert';
  confirmFor?: string;
  annotations: Record<string, string> | undefined;
  /** status.trigger.firedAt for automatic plans; for manual plans, when the plan was first seen. */
  requestedAt: Date;
  now: Date;
}

export type Gate =
  /** Run the steps now; `approval` (when set) goes to status.approval. */
  | { kind: 'execute'; approval?: NonNullable<RollbackPlanStatus['approval']>; message: string }
  /** Not yet: phase AwaitingApproval with this reason; look again after requeueAfterMs (if set). */
  | {
      kind: 'wait';
      reason: 'ConfirmWindow' | 'ApprovalRequired';
      message: string;
      requeueAfterMs?: number;
      /** ConfirmWindow: when the plan executes unless vetoed. */
      executesAt?: Date;
    }
  /** Vetoed before it ran: terminal phase Vetoed. */
  | { kind: 'vetoed'; veto: NonNullable<RollbackPlanStatus['veto']>; message: string };

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
// boundText: never cuts a surrogate pair in two (a lone surrogate is not valid UTF-8 for the API server).
const bounded = (s: string | undefined, max: number) => (s === undefined ? undefined : boundText(s, max));

/**
 * The seed's decision matrix, applied when a plan would start executing (an automatic plan's trigger fired,
 * or a manual plan was applied):
 * - a veto (annotation vetoed-by) before execution wins, whatever the severity;
 * - an approval (annotation approved-by) executes at once, whatever the severity;
 * - critical: executes at once (Level 1: any on-call, < 2 min);
 * - high: automatic plans wait confirmFor (default 2m) for a veto, then execute; a manual plan executes at once
 *   (a person applied it);
 * - medium, low: wait for an approval (Levels 3 and 4: never automatic);
 * - no severity: a manual plan executes at once (the behaviour before the matrix existed). (Automatic plans
 *   must name a severity: the CRD requires it.)
 * Who may approve or veto is not decided here: the ValidatingAdmissionPolicy admits the annotation only from the
 * user it names and only with the verb on severities.rollback.nxtnewday.io/<severity>.
 */
export function gate(input: GateInput): Gate {
  const a = input.annotations ?? {};
  const vetoedBy = a[Annotation.VetoedBy]?.trim();
  if (vetoedBy) {
    const reason = bounded(a[Annotation.VetoReason], MAX_REASON);
    return {
      kind: 'vetoed',
      veto: {
        vetoedBy: bounded(vetoedBy, MAX_USER)!,
        vetoedAt: iso(input.now),
        ...(reason ? { reason } : {}),
      },
      message: `vetoed by ${bounded(vetoedBy, MAX_USER)}${reason ? `: ${reason}` : ''}; nothing was changed`,
    };
  }
  const approvedBy = a[Annotation.ApprovedBy]?.trim();
  if (approvedBy) {
    const reason = bounded(a[Annotation.ApprovalReason], MAX_REASON);
    return {
      kind: 'execute',
      approval: {
        approvedBy: bounded(approvedBy, MAX_USER),
        approvedAt: iso(input.now),
        ...(reason ? { reason } : {}),
      },
      message: `approved by ${bounded(approvedBy, MAX_USER)}${reason ? `: ${reason}` : ''}`,
    };
  }
  const sev = input.severity;
  if (sev === 'medium' || sev === 'low') {
    return {
      kind: 'wait',
      reason: 'ApprovalRequired',
      message: `severity ${sev}: waiting for an approval (annotate ${Annotation.ApprovedBy}=<your username>, or \`kubectl nxt-rollback approve\`); a veto (${Annotation.VetoedBy}) cancels it`,
    };
  }
  if (sev === 'high' && input.mode !== 'manual') {
    const confirmMs = parseDuration(input.confirmFor ?? DEFAULT_CONFIRM_FOR);
    const executesAt = new Date(input.requestedAt.getTime() + confirmMs);
    const left = executesAt.getTime() - input.now.getTime();
    if (left > 0) {
      return {
        kind: 'wait',
        reason: 'ConfirmWindow',
        message: `severity high: executes at ${iso(executesAt)} unless vetoed (${Annotation.VetoedBy}); an approval (${Annotation.ApprovedBy}) runs it now`,
        requeueAfterMs: left,
        executesAt,
      };
    }
    return {
      kind: 'execute',
      approval: { approvedAt: iso(input.now), automatic: true },
      message: `severity high: not vetoed within ${input.confirmFor ?? DEFAULT_CONFIRM_FOR}`,
    };
  }
  if (sev === 'critical' && input.mode !== 'manual') {
    return {
      kind: 'execute',
      approval: { approvedAt: iso(input.now), automatic: true },
      message: 'severity critical: executes at once',
    };
  }
  return { kind: 'execute', message: 'applied by a person' };
}
