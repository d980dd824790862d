import type { Logger } from 'winston';
import type { EffectiveRollbackPlanSpec, RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import type { RunnerPolicy } from '../backup/runner-policy.js';
import type { AccessReviewer } from '../kube/access.js';
import type { EventType } from '../kube/events.js';
import type { GitOpsSettings } from '../gitops/suspend.js';
import type { DeploymentHistory } from './deployment-io.js';
import type { RawDeployment } from './deployment-undo.js';
import type { PlanChecks } from './post-validation.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';

/** What a step decides: done (go on), wait (come back later), or failed (stop the plan). */
export type StepOutcome =
  /**
   * `reported`: the step's own Events already say what it did (one per object changed), so the controller
   * records no `<Step>Succeeded` Event repeating them; the journal and the step's condition still carry it.
   * `finishedAt`: when the step's work ended, if before the step saw it (a Job that ran alongside another
   * step); the journal's finishedAt, instead of now.
   */
  | { kind: 'done'; message: string; skipped?: boolean; reported?: boolean; finishedAt?: Date }
  /** `reason` (optional) goes on the Reconciling condition with the message, so a wait names its cause. */
  | { kind: 'wait'; message: string; requeueAfterMs: number; reason?: string }
  | { kind: 'failed'; reason: string; message: string };

/** One reconcile's view of a plan: the parsed spec, a working copy of status, and the means to act. */
export interface PlanRun {
  plan: KubeObject;
  namespace: string;
  spec: EffectiveRollbackPlanSpec;
  status: RollbackPlanStatus;
  client: KubeClient;
  log: Logger;
  now(): Date;
  /** Every RollbackPlan the operator sees (for locks). */
  allPlans(): KubeObject[];
  event(type: EventType, reason: string, message: string): void;
  /** Writes the working status now (a durable checkpoint before the next side effect). */
  checkpoint(): Promise<void>;
  /** Cached reads the database steps need: BackupSchedules, runner Jobs and their pods in this namespace. */
  cache: {
    schedule(name: string): KubeObject | undefined;
    job(name: string): KubeObject | undefined;
    podsOfJob(name: string): KubeObject[];
    /** A Deployment as the watch last delivered it (post-validation is triggered by exactly that event). */
    deployment(name: string): KubeObject | undefined;
  };
  /** Permission checks (remembered briefly). */
  access: AccessReviewer;
  /**
   * Deployment histories read during this reconcile. The rollback reuses the pre-validation read instead of a
   * second GET + LIST: its patch replaces metadata.resourceVersion, so a Deployment changed in between gets a
   * 409 and the next reconcile reads afresh.
   */
  histories: Map<string, DeploymentHistory>;
  /**
   * Deployments this reconcile patched, as the PATCH returned them: post-validation right after the rollback
   * reads the new generation from here instead of a GET while the watch cache still holds the old object.
   */
  patched?: Map<string, RawDeployment>;
  /** Image of runner Jobs when the BackupSchedule does not override it. */
  runnerImage: string;
  /** The plan's HTTP checks, run in the background (never in this reconcile). */
  checks: PlanChecks;
  /** Which runner pod overrides the operator configuration allows (image, ServiceAccount, superuser SQL). */
  runnerPolicy: RunnerPolicy;
  /** How long a step waits for someone else's Job holding its Job's name to be deleted. */
  jobConflictTimeoutMs: number;
  /** Where GitOps owners may be patched (spec.gitops.policy suspend); absent: the plan's namespace only. */
  gitops?: GitOpsSettings;
}

export interface StepDefinition {
  name: string;
  /** The condition that turns True when the step succeeds. */
  condition?: string;
  /**
   * A read-only step whose success is no Event of its own: its condition and journal entry carry the message
   * (and a failure is still the plan's Warning `Failed` Event).
   */
  quiet?: boolean;
  run(run: PlanRun): Promise<StepOutcome>;
}
