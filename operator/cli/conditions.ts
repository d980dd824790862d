// Reading one condition of an object's status.conditions: RollbackPlans, BackupSchedules and Deployments alike.

/** What the CLI reads of a condition (metav1.Condition, or a Deployment's). */
export interface ConditionLike {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** The condition of `type` in `obj.status.conditions`, if the object has one. */
export function conditionOf<C extends { type: string } = ConditionLike>(
  obj: { metadata?: unknown; status?: { conditions?: readonly C[] } } | undefined,
  type: string,
): C | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}
