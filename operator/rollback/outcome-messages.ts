import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { findStep } from './journal.js';

/**
 * Post-validation's result: the Deployments rolled out (only when the plan has Deployments) and the HTTP
 * checks passed (only when it has checks). `httpPassed` is checkHttp's done message ('' or
 * '; N HTTP check(s) passed').
 */
export function postValidationMessage(deployments: number, httpPassed: string): string {
  const parts = [deployments > 0 ? `${deployments} Deployment(s) rolled out and available` : ''];
  parts.push(httpPassed.replace(/^; /, ''));
  return parts.filter(Boolean).join('; ');
}

/**
 * The plan's Succeeded Event: the duration and RTO objective, what AppRollback did (its message, plus the
 * Deployments it rolled back by name and revision), the writes a database restore lost for good (safetyGapNote),
 * and post-validation's result. It is the one Event every
 * successful plan records, so a DeploymentRolledBack Event dropped by the API server (429 or 5xx in a burst)
 * still leaves an Event naming each Deployment that was rolled back; built from status, no extra request.
 */
export function succeededEventMessage(
  status: RollbackPlanStatus,
  summary: string,
  rto: string,
  gitopsRevert = false,
): string {
  const parts = [`${summary} (RTO objective ${rto})`];
  const app = findStep(status.steps, 'AppRollback')?.message;
  if (app) parts.push(app);
  const rolled = (status.deployments ?? []).filter((d) => d.result === 'RolledBack');
  // onRevert: the step's message already names them (GitOps rolled them back, the operator patched nothing).
  if (app && rolled.length && !gitopsRevert)
    parts.push(
      `rolled back: ${rolled.map((d) => `${d.name} ${d.fromRevision ?? '?'} -> ${d.toRevision ?? '?'}`).join(', ')}`,
    );
  const gap = safetyGapNote(status);
  if (gap) parts.push(gap);
  const post = findStep(status.steps, 'PostValidation')?.message;
  if (post) parts.push(post);
  return parts.join('; ');
}

/**
 * The writes a restore loses for good: those after the safety backup's snapshot (its runner's start) and
 * before the restore replaced the data are in neither the safety backup nor the restored database. Says how
 * long that window was at least (safety backup start -> DatabaseRestore start); '' without a safety backup
 * time. newDatabaseSwap keeps them in the previous database when it was kept.
 */
export function safetyGapNote(status: RollbackPlanStatus): string {
  const db = status.database;
  const from = Date.parse(db?.safetyBackupStartedAt ?? '');
  const to = Date.parse(findStep(status.steps, 'DatabaseRestore')?.startedAt ?? '');
  if (!db?.safetyBackupId || Number.isNaN(from) || Number.isNaN(to)) return '';
  const seconds = Math.max(0, Math.round((to - from) / 1000));
  const where =
    db.mode === 'newDatabaseSwap' && db.previousDatabase
      ? `not in the safety backup (the previous database ${db.previousDatabase} has them)`
      : 'in neither the safety backup nor the restored database';
  return `writes made after the safety backup ${db.safetyBackupId} started (${db.safetyBackupStartedAt}, ${seconds}s before the restore started) are ${where}`;
}
