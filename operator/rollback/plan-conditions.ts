import { ConditionType } from '../api/v1alpha1/common.js';
import type { ConditionInput } from '../kube/conditions.js';

/** Sets one condition of the plan (observedGeneration filled in by the caller). */
export type SetCondition = (c: Omit<ConditionInput, 'observedGeneration'>) => void;

/**
 * The kstatus triple (Ready, Reconciling, Stalled) for the phases of automatic rollback, in one place:
 * Armed, Expired and Vetoed are Current (Ready=True, nothing in progress); AwaitingApproval is InProgress
 * (Ready=False, Reconciling=True: a decision is pending, not a problem).
 */
export const planPhaseConditions = {
  armed(cond: SetCondition, message: string) {
    cond({ type: ConditionType.Ready, status: 'True', reason: 'Armed', message });
    cond({ type: ConditionType.Reconciling, status: 'False', reason: 'Armed', message: '' });
    cond({ type: ConditionType.Stalled, status: 'False', reason: 'Armed', message: '' });
  },
  expired(cond: SetCondition, message: string) {
    cond({ type: ConditionType.Ready, status: 'True', reason: 'WatchWindowPassed', message });
    cond({ type: ConditionType.Reconciling, status: 'False', reason: 'WatchWindowPassed', message: '' });
    cond({ type: ConditionType.Stalled, status: 'False', reason: 'WatchWindowPassed', message: '' });
  },
  awaitingApproval(cond: SetCondition, reason: string, message: string) {
    cond({ type: ConditionType.AwaitingApproval, status: 'True', reason, message });
    cond({ type: ConditionType.Ready, status: 'False', reason: 'AwaitingApproval', message });
    cond({ type: ConditionType.Reconciling, status: 'True', reason, message });
    cond({ type: ConditionType.Stalled, status: 'False', reason: 'AwaitingApproval', message: '' });
  },
  /** `waited`: the plan was AwaitingApproval (a plan vetoed the moment it fired never waited: no such condition). */
  vetoed(cond: SetCondition, message: string, waited: boolean) {
    if (waited) cond({ type: ConditionType.AwaitingApproval, status: 'False', reason: 'Vetoed', message });
    cond({ type: ConditionType.Ready, status: 'True', reason: 'Vetoed', message });
    cond({ type: ConditionType.Reconciling, status: 'False', reason: 'Vetoed', message: '' });
    cond({ type: ConditionType.Stalled, status: 'False', reason: 'Vetoed', message: '' });
  },
};
