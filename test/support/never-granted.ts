/**
 * Verbs the code never used that an earlier RBAC granted (issue 9); none may come back in any render.
 * (batch/jobs:delete left the list: the BackupSchedule now prunes its recorded on-request Jobs.)
 */
export const NEVER_GRANTED: readonly string[] = [
  'core/persistentvolumeclaims:delete',
  'core/persistentvolumeclaims:list',
  'core/persistentvolumeclaims:watch',
  'batch/cronjobs:update',
  'rollback.nxtnewday.io/rollbackplans:patch',
  'rollback.nxtnewday.io/rollbackplans:update',
  'rollback.nxtnewday.io/backupschedules:patch',
  'rollback.nxtnewday.io/backupschedules:update',
  'rollback.nxtnewday.io/rollbackplans/status:update',
  'rollback.nxtnewday.io/backupschedules/status:update',
  'core/configmaps:list',
  'core/configmaps:watch',
  'apps/replicasets:watch',
  'core.openfeature.dev/featureflags:list',
  'core.openfeature.dev/featureflags:watch',
  'events.k8s.io/events:create',
  'events.k8s.io/events:patch',
];
