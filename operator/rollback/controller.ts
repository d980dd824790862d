import {
  Annotation,
  API_VERSION,
  ConditionType,
  GROUP,
  Label,
  MANAGED_BY,
  parseDuration,
  VERSION,
} from '../api/v1alpha1/common.js';
import { SCHEDULE_RESOURCE } from '../backup/controller.js';
import { runnerPolicyOf } from '../backup/runner-policy.js';
import { JOB_NAME_LABEL } from '../backup/pod-builders.js';
import {
  parseRollbackPlan,
  ROLLBACK_PLAN_KIND,
  withRollbackPlanDefaults,
  type AlertMatcher,
  type EffectiveRollbackPlanSpec,
  type RollbackPlanStatus,
} from '../api/v1alpha1/rollbackplan.js';
import { AccessReviewer } from '../kube/access.js';
import { setCondition, type ConditionInput } from '../kube/conditions.js';
import { Controller, type ReconcileContext, type ReconcileResult, type Request } from '../kube/controller.js';
import type { EventType } from '../kube/events.js';
import type { MultiInformer } from '../kube/informer.js';
import type { KubeObject } from '../kube/rest.js';
import { patchStatusOrReport, statusRejectedConditions } from '../kube/status.js';
import type { ManagerContext } from '../manager.js';
import { preValidateApp, rollBackDeployments } from './app-steps.js';
import {
  preValidateGitOps,
  resumeOwners,
  suspendedOwners,
  suspendOwners,
  type GitOpsSettings,
} from '../gitops/suspend.js';
import { GitOpsSourceWatches } from '../gitops/source-watch.js';
import { forgetPlan } from '../metrics.js';
import {
  preValidateDatabase,
  RESTORE_OUTCOME_UNKNOWN_REASONS,
  restoreDatabase,
  settleSafetyBackup,
  takeSafetyBackup,
} from './database-steps.js';
import { disableFlags, preValidateFlags } from './feature-steps.js';
import { buildDryRunReport } from './dry-run-report.js';
import { scopeTargets } from './scope.js';
import {
  findStep,
  finishStep,
  isFinished,
  noteStep,
  secondsBetween,
  startStep,
  timestamp,
} from './journal.js';
import {
  POST_STEP,
  validatePost,
  validatePre,
  validationReport,
  type ValidationCheck,
  type ValidationStage,
} from './validate-only.js';
import type { PlanRun, StepDefinition, StepOutcome } from './plan-run.js';
import { succeededEventMessage } from './outcome-messages.js';
import { HttpChecks, httpProbeOptions, postValidate, preValidateHttpChecks } from './post-validation.js';
import { TriggerMonitors } from '../triggers/monitors.js';
import { LabelMatcher } from '../triggers/matchers.js';
import { reconcileArmed, type TriggerContext } from './auto-trigger.js';
import { reconcileRevertArmed } from './revert-trigger.js';
import { passGate } from './approval-gate.js';
import { applyRearm, rearmRequest, reviewOf, reviewRequest } from './plan-requests.js';
import { Notifier } from '../notify/notifier.js';
import { planPriority, PlansByDeployment } from './plan-queue.js';
import { progressWrite } from './progress-writes.js';
import { PLAN_NOTIFICATIONS } from '../notify/kinds.js';

const ownNamespaceOnly: GitOpsSettings = {
  ownerNamespaces: [],
  argocdNamespace: 'argocd',
  resumeCheckMs: 30_000,
};

/** The operator's GitOps settings (GITOPS_OWNER_NAMESPACES, ARGOCD_NAMESPACE, GITOPS_RESUME_CHECK_INTERVAL). */
const gitOpsSettings = (c: ManagerContext['config']): GitOpsSettings => ({
  ownerNamespaces: c.GITOPS_OWNER_NAMESPACES,
  argocdNamespace: c.ARGOCD_NAMESPACE,
  resumeCheckMs: c.GITOPS_RESUME_CHECK_INTERVAL,
});

export const PLAN_RESOURCE = { group: GROUP, version: VERSION, plural: 'rollbackplans' } as const;
const TERMINAL_PHASES = new Set(['Succeeded', 'Failed', 'DryRunComplete', 'Expired', 'Vetoed']);
/** Phases in which an automatic plan's trigger monitors run. */
const WATCHING_PHASES = new Set([undefined, 'Pending', 'Armed']);

/**
 * The ordered steps of a plan: pre-validation of everything first (nothing is touched until all checks
 * pass), then safety backup, database restore, app rollback, flags, post-validation. Each step's success
 * turns its condition True; a failure stops the plan at that step. One overlap: the safety backup's Job
 * starts with pre-validation's verify Job (both only read; safetyBackupAlongsideVerify), so the SafetyBackup
 * step starts during PreValidation and usually finishes right after it. The restore still waits for both,
 * and the database is restored before the Deployments are rolled back.
 */
export function stepsFor(spec: EffectiveRollbackPlanSpec): StepDefinition[] {
  const on = scopeTargets(spec);
  const revert = spec.trigger.mode === 'onRevert';
  const steps: StepDefinition[] = [
    {
      name: 'PreValidation',
      condition: ConditionType.PreValidationPassed,
      // An app-only plan's checks decide nothing an Event must record (PreValidationPassed says they passed);
      // a database or flag plan's pre-validation picks the backup and values it acts on: that stays an Event.
      quiet: !scopeChanges(spec),
      run: async (r) => {
        const outcome = await preValidate(r);
        // A failure after the safety backup started alongside the verify Job: its journal entry says what
        // became of it (nothing is restored; the plan does not wait for it).
        if (outcome.kind === 'failed' && on.database) await settleSafetyBackup(r);
        return outcome;
      },
    },
  ];
  async function preValidate(r: PlanRun): Promise<StepOutcome> {
    const messages: string[] = [];
    const validators = [
      !!spec.validation.http?.length && preValidateHttpChecks,
      on.database && preValidateDatabase,
      // onRevert: GitOps rolled the Deployments back; status.deployments was recorded when it fired.
      on.deployments && !revert && preValidateApp,
      on.deployments && !revert && ((r: PlanRun) => preValidateGitOps(r, r.gitops ?? ownNamespaceOnly)),
      on.flags && preValidateFlags,
    ];
    for (const v of validators) {
      if (!v) continue;
      const outcome = await v(r);
      if (outcome.kind !== 'done') return outcome;
      messages.push(outcome.message);
    }
    return { kind: 'done', message: messages.join('; ') };
  }
  if (on.database) {
    steps.push({ name: 'SafetyBackup', condition: ConditionType.SafetyBackupTaken, run: takeSafetyBackup });
    steps.push({ name: 'DatabaseRestore', condition: ConditionType.DatabaseRestored, run: restoreDatabase });
  }
  if (on.deployments)
    steps.push({
      name: 'AppRollback',
      condition: ConditionType.RolledBack,
      // The GitOps owners are paused first (spec.gitops.policy suspend), so their next sync keeps the rollback;
      // onRevert: the GitOps tool is the one rolling back, nothing to pause.
      run: revert ? recordGitOpsRollback : async (r) => (await suspendOwners(r)) ?? rollBackDeployments(r),
    });
  if (on.flags)
    steps.push({ name: 'FeatureFlags', condition: ConditionType.FlagsDisabled, run: disableFlags });
  steps.push({
    name: 'PostValidation',
    condition: ConditionType.PostValidationPassed,
    // The plan's Succeeded Event follows in the same write and carries this step's message.
    quiet: true,
    run: (r) => postValidate(r, 'PostValidation'),
  });
  return steps;
}

export function setupRollbackPlanController(ctx: ManagerContext): Controller {
  const managed = `${Label.ManagedBy}=${MANAGED_BY}`;
  const plans = ctx.informers.for<KubeObject>(PLAN_RESOURCE);
  const deployments = ctx.informers.for<KubeObject>({ group: 'apps', version: 'v1', plural: 'deployments' });
  const informers: PlanInformers = {
    deployments,
    schedules: ctx.informers.for<KubeObject>(SCHEDULE_RESOURCE),
    jobs: ctx.informers.for<KubeObject>({ group: 'batch', version: 'v1', plural: 'jobs' }, managed),
    pods: ctx.informers.for<KubeObject>({ group: '', version: 'v1', plural: 'pods' }, managed),
  };
  const byPlanLabel = (o: KubeObject) => {
    const plan = o.metadata.labels?.[Label.Plan];
    return plan && o.metadata.namespace ? [`${o.metadata.namespace}/${plan}`] : [];
  };
  // HTTP checks and trigger monitors run as background tasks and wake their plan through the queue.
  const checks = new HttpChecks(ctx, plans, (key) => controller.queue.add(key));
  const monitors = new TriggerMonitors(ctx.tasks, httpProbeOptions(ctx.config));
  const forgetMonitors = (p: KubeObject) => p.metadata.uid && monitors.forget(p.metadata.uid);
  plans.addHandler({
    onUpdate: (_old, p) => !WATCHING_PHASES.has(p.status?.phase) && forgetMonitors(p),
    onDelete: forgetMonitors,
  });
  // Notifications are delivered in the background too; a finished delivery or a due escalation wakes the plan.
  const notifier = new Notifier(ctx, plans, PLAN_NOTIFICATIONS, (key, ms) =>
    controller.queue.addAfter(key, ms),
  );
  const reconciler = new RollbackPlanReconciler(
    ctx,
    plans,
    informers,
    checks,
    monitors,
    (key) => controller.queue.add(key),
    notifier,
  );
  const keyOf = (p: KubeObject) => `${p.metadata.namespace}/${p.metadata.name}`;
  // A new or resolved alert may fire an armed plan with an Alert condition whose matchers match it: only
  // those are woken (not every Alert plan to scan the whole store on every payload).
  const alertMatcher = new LabelMatcher();
  ctx.alerts.onChange((changed) => {
    if (!changed.length) return;
    for (const p of plans.list()) {
      if (!WATCHING_PHASES.has(p.status?.phase)) continue;
      let wants: boolean;
      try {
        wants = conditionsOf(p).some(
          (c) =>
            c.type === 'Alert' &&
            Array.isArray(c.matchers) &&
            changed.some((a) => alertMatcher.matchesAll(c.matchers!, a.labels)),
        );
      } catch {
        wants = true; // a spec the schema should have refused: let its reconcile say what is wrong
      }
      if (wants) controller.queue.add(keyOf(p));
    }
  });
  ctx.metrics.countAwaitingApprovalFrom(() => {
    const n = new Map<string, number>();
    for (const p of plans.list())
      if (p.status?.phase === 'AwaitingApproval' && p.metadata.namespace)
        n.set(p.metadata.namespace, (n.get(p.metadata.namespace) ?? 0) + 1);
    return n;
  });
  // Plans by the Deployments they target or watch: a Deployment event finds its plans without a scan.
  const byDeployment = new PlansByDeployment();
  plans.addHandler({
    onAdd: (p) => byDeployment.upsert(p),
    onUpdate: (_old, p) => byDeployment.upsert(p),
    onDelete: (p) => byDeployment.delete(p),
  });
  const controller = new Controller('rollbackplan', reconciler, {
    log: ctx.log,
    metrics: ctx.metrics,
    workers: ctx.config.PLAN_MAX_CONCURRENT_RECONCILES,
    // Plans that only wait for their rollout go behind plans with work to do (new ones first).
    priorityOf: (key) => planPriority(plans.get(key)),
  })
    .watches(plans)
    .watchesMapped(informers.jobs, byPlanLabel)
    .watchesMapped(informers.pods, byPlanLabel)
    // Plans that target the Deployment, or watch it in a DeploymentUnavailable condition (armed plans).
    .watchesMapped(deployments, (d) => byDeployment.plansFor(d.metadata.namespace ?? '', d.metadata.name));
  return controller;
}

/** Whether a plan changes anything besides the Deployments (database restore, flags). */
function scopeChanges(spec: EffectiveRollbackPlanSpec): boolean {
  const on = scopeTargets(spec);
  return on.database || on.flags;
}

/** onRevert: the AppRollback step records what GitOps did (status.deployments, written when the plan fired). */
async function recordGitOpsRollback(run: PlanRun): Promise<StepOutcome> {
  const rolled = (run.status.deployments ?? []).filter((d) => d.result === 'RolledBack');
  for (const d of rolled)
    run.event(
      'Normal',
      'DeploymentRolledBack',
      `${d.message ?? `Deployment ${d.name} rolled back by GitOps`}`,
    );
  return {
    kind: 'done',
    message: `${rolled.length} Deployment(s) rolled back by GitOps (not patched by the operator): ${rolled
      .map((d) => `${d.name} ${d.fromRevision ?? '?'} -> ${d.toRevision}`)
      .join(', ')}`,
  };
}

const conditionsOf = (p: KubeObject): { type?: string; deployment?: string; matchers?: AlertMatcher[] }[] =>
  Array.isArray(p.spec?.trigger?.conditions) ? p.spec.trigger.conditions : [];

interface PlanInformers {
  deployments: MultiInformer<KubeObject>;
  schedules: MultiInformer<KubeObject>;
  jobs: MultiInformer<KubeObject>;
  pods: MultiInformer<KubeObject>;
}

/**
 * Level-based reconcile of one RollbackPlan: read it from the cache, decide from spec + status, run the next
 * steps of its scope, and write status after every step (the journal a restarted operator resumes from).
 */
export class RollbackPlanReconciler {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly plans: MultiInformer<KubeObject>,
    private readonly informers: PlanInformers,
    private readonly checks: HttpChecks,
    private readonly monitors: TriggerMonitors,
    private readonly enqueue: (key: string) => void,
    private readonly notifier?: Notifier,
  ) {
    this.access = new AccessReviewer(ctx.client);
    // A suspended owner's source moved: wake the plans waiting for it (they resume it if it is their trigger).
    this.sourceWatches = new GitOpsSourceWatches(ctx.client, ctx.log, ctx.tasks, (source) => {
      for (const p of plans.list())
        if (suspendedOwners(p.status ?? {}).some((o) => o.source === source))
          enqueue(`${p.metadata.namespace}/${p.metadata.name}`);
    });
  }

  private readonly access: AccessReviewer;
  private readonly sourceWatches: GitOpsSourceWatches;
  /** Plans that started executing, by key, until the cache shows their startedAt (see plansWithIntents). */
  private readonly intents = new Map<string, KubeObject>();

  /** The namespace's plans from the cache, with the starts this process made that the cache does not show yet. */
  private plansWithIntents(namespace: string): KubeObject[] {
    return this.plans.list(namespace).map((p) => {
      const key = `${p.metadata.namespace}/${p.metadata.name}`;
      const intent = this.intents.get(key);
      if (!intent) return p;
      // The cache caught up (it shows the start), the plan ended (a refused status write fails it), or this is
      // another object of that name: the cache is the truth again.
      if (
        p.status?.startedAt ||
        TERMINAL_PHASES.has(p.status?.phase) ||
        intent.metadata.uid !== p.metadata.uid
      ) {
        this.intents.delete(key);
        return p;
      }
      return { ...p, status: intent.status };
    });
  }
  /** When this process last wrote each plan's status (by key; the uid tells a new plan of that name apart). */
  private readonly statusWrites = new Map<string, { uid: string | undefined; at: number }>();
  /** Vetoes that came after execution started, already reported (an Event, once per value and process), by plan key. */
  private readonly vetoesIgnored = new Map<string, string>();

  async reconcile(req: Request, rc: ReconcileContext): Promise<ReconcileResult | void> {
    const obj = this.plans.get(`${req.namespace}/${req.name}`);
    if (!obj) {
      this.vetoesIgnored.delete(`${req.namespace}/${req.name}`);
      this.intents.delete(`${req.namespace}/${req.name}`);
      this.statusWrites.delete(`${req.namespace}/${req.name}`);
      return forgetPlan(this.ctx.metrics, req.namespace, req.name); // gone: so is its RTO series
    }
    if (obj.metadata.deletionTimestamp) return;
    const generation = obj.metadata.generation ?? 1;
    const status: RollbackPlanStatus = structuredClone(obj.status ?? {});
    if (status.startedAt) this.reportIgnoredVeto(obj, status);
    // A finished plan is done, except for what its annotations ask afterwards (rearm, unnecessary) and its
    // notifications still being delivered.
    const rearm = rearmRequest(obj, status);
    const review = reviewRequest(obj, status);
    const finished = TERMINAL_PHASES.has(status.phase ?? '') && status.observedGeneration === generation;
    // A finished plan that still holds a GitOps owner suspended is reconciled until it resumes it.
    const suspended = suspendedOwners(status).length > 0;
    if (finished && rearm === undefined && review === undefined && !Notifier.pending(status) && !suspended)
      return;

    let resourceVersion = obj.metadata.resourceVersion;
    const events: [EventType, string, string][] = [];
    const now = () => new Date();
    const key = `${req.namespace}/${req.name}`;
    let written = JSON.stringify(obj.status ?? {});
    let writtenStatus: RollbackPlanStatus = obj.status ?? {};
    /**
     * Writes status (and then the Events of what it records). `progress`: a waiting plan's write, which is
     * held back when it only changes progress notes and this process wrote the plan less than
     * PROGRESS_WRITE_INTERVAL_MS ago; returns then in how many ms the note is due (the caller requeues).
     */
    const persist = async (progress: boolean): Promise<number | undefined> => {
      status.observedGeneration = generation;
      this.notifier?.sync(obj, status, now(), (type, reason, message) =>
        events.push([type, reason, message]),
      );
      const body = JSON.stringify(status);
      if (body === written) return; // nothing new: no write, no resourceVersion churn for other reconciles
      if (progress) {
        const last = this.statusWrites.get(key);
        const decision = progressWrite(
          writtenStatus,
          status,
          last?.uid === obj.metadata.uid ? last?.at : undefined,
          Date.now(),
          events.length > 0,
        );
        if (!decision.write) return decision.retryInMs;
      }
      const updated = await patchStatusOrReport(
        this.ctx.client,
        { ...PLAN_RESOURCE, namespace: req.namespace, name: req.name },
        resourceVersion,
        status,
        // A status the API server refuses (422) would be refused forever: the plan fails, saying so.
        (message) => ({
          phase: 'Failed',
          observedGeneration: generation,
          conditions: statusRejectedConditions(obj.status?.conditions, message, generation, now()),
        }),
      );
      resourceVersion = updated.metadata.resourceVersion;
      written = body;
      writtenStatus = structuredClone(status);
      if (TERMINAL_PHASES.has(status.phase ?? '')) this.statusWrites.delete(key);
      else this.statusWrites.set(key, { uid: obj.metadata.uid, at: Date.now() });
      for (const [type, reason, message] of events.splice(0))
        void this.ctx.events.record(obj, type, reason, message);
      return undefined;
    };
    const write = async () => void (await persist(false));
    const writeProgress = () => persist(true);
    const cond = (c: Omit<ConditionInput, 'observedGeneration'>) => {
      status.conditions = setCondition(status.conditions, { ...c, observedGeneration: generation }, now());
    };
    // Only notifications to deliver: record them and stop.
    if (finished && rearm === undefined && review === undefined && !suspended) return void (await write());

    const parsed = parseRollbackPlan({
      ...obj,
      apiVersion: obj.apiVersion ?? API_VERSION,
      kind: obj.kind ?? ROLLBACK_PLAN_KIND,
    });
    if (!parsed.ok) {
      const msg = parsed.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
      status.phase = 'Failed';
      cond({ type: ConditionType.Ready, status: 'False', reason: 'InvalidSpec', message: msg });
      cond({ type: ConditionType.Stalled, status: 'True', reason: 'InvalidSpec', message: msg });
      cond({ type: ConditionType.Reconciling, status: 'False', reason: 'InvalidSpec', message: '' });
      events.push(['Warning', 'InvalidSpec', msg]);
      await write();
      return;
    }
    const spec = withRollbackPlanDefaults(parsed.value.spec);
    if (finished && rearm === undefined && review === undefined) {
      const again = await resumeOwners({
        plan: obj,
        spec,
        status,
        client: this.ctx.client,
        settings: gitOpsSettings(this.ctx.config),
        watch: (kind, namespace) => this.sourceWatches.ensure(kind, namespace),
        now,
        event: (type, reason, message) => events.push([type, reason, message]),
      });
      await write();
      return again === undefined ? undefined : { requeueAfterMs: again };
    }
    if (review !== undefined) {
      status.review = reviewOf(review, now());
      events.push([
        'Normal',
        'MarkedUnnecessary',
        `marked unnecessary${status.review.reason ? `: ${status.review.reason}` : ''}`,
      ]);
      await write();
      this.ctx.metrics.rollbackUnnecessary.inc({ trigger: triggerLabel(spec, status) });
      return;
    }
    if (rearm !== undefined) {
      const window = spec.trigger.watchWindow ? parseDuration(spec.trigger.watchWindow) : undefined;
      const blocking = applyRearm(obj, status, rearm, now(), window);
      if (blocking) {
        events.push([
          'Warning',
          'RearmRefused',
          `the plan still carries ${blocking}${blocking === Annotation.ApprovedBy ? ' (an approval of an earlier firing must not run the next one)' : ''}: remove it, then set ${Annotation.Rearm} to a new value`,
        ]);
        await write();
        return;
      }
      events.push(['Normal', 'Rearmed', `armed again by ${Annotation.Rearm}=${rearm.slice(0, 63)}`]);
    }
    const steps = stepsFor(spec);

    if (spec.dryRun) {
      const report = await buildDryRunReport(
        this.ctx.client,
        req.namespace,
        spec,
        steps,
        (n) => this.informers.schedules.get(`${req.namespace}/${n}`),
        this.ctx.config.clusterId,
      );
      status.phase = 'DryRunComplete';
      status.dryRunReport = report;
      cond({ type: ConditionType.Ready, status: 'True', reason: 'DryRunComplete', message: report.summary });
      cond({ type: ConditionType.Reconciling, status: 'False', reason: 'DryRunComplete', message: '' });
      cond({ type: ConditionType.Stalled, status: 'False', reason: 'DryRunComplete', message: '' });
      events.push(['Normal', 'DryRunComplete', report.summary]);
      await write();
      rc.log.info('dry run complete', { summary: report.summary });
      return;
    }

    const run: PlanRun = {
      plan: obj,
      namespace: req.namespace,
      spec,
      status,
      client: this.ctx.client,
      log: rc.log,
      now,
      allPlans: () => this.plansWithIntents(req.namespace),
      event: (type, reason, message) => events.push([type, reason, message]),
      checkpoint: write,
      cache: {
        schedule: (name) => this.informers.schedules.get(`${req.namespace}/${name}`),
        job: (name) => this.informers.jobs.get(`${req.namespace}/${name}`),
        podsOfJob: (name) =>
          this.informers.pods.list(req.namespace).filter((p) => p.metadata.labels?.[JOB_NAME_LABEL] === name),
        deployment: (name) => this.informers.deployments.get(`${req.namespace}/${name}`),
      },
      runnerImage: this.ctx.config.OPERATOR_IMAGE,
      runnerPolicy: runnerPolicyOf(this.ctx.config),
      jobConflictTimeoutMs: this.ctx.config.JOB_NAME_CONFLICT_TIMEOUT,
      gitops: gitOpsSettings(this.ctx.config),
      access: this.access,
      histories: new Map(),
      patched: new Map(),
      checks: this.checks.forPlan(obj),
    };
    if (spec.validateOnly) return this.validateOnly(run, spec.validateOnly, write, writeProgress, cond);

    if (!status.startedAt) {
      const t: TriggerContext = {
        plan: obj,
        namespace: req.namespace,
        spec,
        status,
        now,
        cond,
        event: run.event,
        write,
        deployment: run.cache.deployment,
        client: this.ctx.client,
        monitors: this.monitors,
        alerts: this.ctx.alerts,
        metrics: this.ctx.metrics,
        wake: () => this.enqueue(`${req.namespace}/${req.name}`),
      };
      if (spec.trigger.mode === 'auto') {
        const armed = await reconcileArmed(t);
        if (armed.kind === 'stop') return armed.result;
      }
      if (spec.trigger.mode === 'onRevert') {
        const armed = await reconcileRevertArmed(t, () => this.plansWithIntents(req.namespace));
        if (armed.kind === 'stop') return armed.result;
      }
      // onRevert: the app is already rolled back by GitOps; only database and flag steps change anything, and
      // only they wait for the severity matrix (post-validation of the revert runs at once).
      const onRevertChecksOnly = spec.trigger.mode === 'onRevert' && !scopeChanges(spec);
      const gated = onRevertChecksOnly ? ({ kind: 'execute' } as const) : await passGate(t);
      if (gated.kind === 'stop') return gated.result;
    }

    if (!status.startedAt) {
      status.startedAt = timestamp(now());
      status.phase = 'Running';
      cond({
        type: ConditionType.Ready,
        status: 'False',
        reason: 'Running',
        message: `rolling back (scope ${spec.scope})`,
      });
      cond({
        type: ConditionType.Reconciling,
        status: 'True',
        reason: 'Running',
        message: 'executing the plan',
      });
      cond({ type: ConditionType.Stalled, status: 'False', reason: 'Running', message: '' });
      events.push([
        'Normal',
        'Started',
        `rollback started (scope ${spec.scope})${spec.reason ? `: ${spec.reason}` : ''}`,
      ]);
      // The start is visible to the other reconciles of this process at once (the cache lags our own writes):
      // of two plans on one target, whichever starts second sees the first (locks.ts, goesFirst).
      this.intents.set(key, { ...obj, status: structuredClone(status) });
      if (status.trigger) {
        // It fired or was approved: until now the lock ignored it (Armed, AwaitingApproval). Its start is
        // durable before its pre-validation meets the lock. (A plan applied to run at once is known to the lock
        // from its creation: no extra round trip on its emergency path.)
        try {
          await write();
        } catch (e) {
          this.intents.delete(key);
          throw e;
        }
      }
    }

    // Steps finished in this reconcile whose results are not written yet (they go with the next write).
    const unwritten = new Set<string>();
    for (const step of steps) {
      const entry = findStep(status.steps, step.name);
      if (isFinished(entry)) {
        if (entry!.result === 'Failed')
          return this.fail(run, step, 'StepFailed', entry!.message ?? '', write, cond);
        continue;
      }
      if (!entry) {
        // The start of every step is durable before it acts: after a crash the journal shows the step that
        // was in flight, and the step itself checks what already happened (steps are idempotent). This one
        // write also carries the previous step's result. Pre-validation changes nothing, so its start is
        // not written separately (one round trip less on the emergency path).
        status.steps = startStep(status.steps, step.name, now());
        cond({
          type: ConditionType.Reconciling,
          status: 'True',
          reason: step.name,
          message: `step ${step.name}`,
        });
        // Nor is PostValidation's (read-only too): its first wait, its result, or a failure writes it in this
        // same reconcile, one write instead of two per plan, while a burst of plans waits for the workers.
        // Unless an irreversible step's result is still unwritten: that is made durable before anything else.
        const irreversibleUnwritten = unwritten.has('DatabaseRestore') || unwritten.has('SafetyBackup');
        if (step.name !== 'PreValidation' && (step.name !== 'PostValidation' || irreversibleUnwritten)) {
          await write();
          unwritten.clear();
        }
      }
      let outcome: StepOutcome;
      try {
        outcome = await step.run(run);
      } catch (e) {
        await write().catch(() => {});
        throw e; // transient (API errors, timeouts): retried with backoff, the journal says where we are
      }
      if (outcome.kind === 'wait') {
        cond({
          type: ConditionType.Reconciling,
          status: 'True',
          reason: outcome.reason ?? step.name,
          message: outcome.message,
        });
        // A wait with a reason is waiting on a problem (a failing check, a Job name held by someone else):
        // Ready names it, so the object never sits at a generic "Running" while something is wrong.
        if (outcome.reason)
          cond({
            type: ConditionType.Ready,
            status: 'False',
            reason: outcome.reason,
            message: outcome.message,
          });
        // A note that only tells progress waits for the interval (a Deployment's every status change would
        // otherwise be a write); a skipped one is written by the retry unless the plan moved on first.
        const due = await writeProgress();
        return { requeueAfterMs: Math.min(outcome.requeueAfterMs, due ?? Infinity) };
      }
      if (outcome.kind === 'failed')
        return this.fail(run, step, outcome.reason, outcome.message, write, cond);
      status.steps = finishStep(
        status.steps,
        step.name,
        outcome.skipped ? 'Skipped' : 'Succeeded',
        outcome.message,
        outcome.finishedAt ?? now(),
      );
      if (step.condition) {
        cond({
          type: step.condition,
          status: outcome.skipped ? 'False' : 'True',
          reason: outcome.skipped ? `${step.name}Skipped` : `${step.name}Succeeded`,
          message: outcome.message,
        });
      }
      // Events for decisions and changes; a read-only step's success, or a step whose own Events already
      // named every change, is in its condition and the journal only (fewer API writes in a burst of plans).
      if (!step.quiet && !outcome.reported) events.push(['Normal', `${step.name}Succeeded`, outcome.message]);
      // Written with the next step's start (or the final result), not here.
      unwritten.add(step.name);
    }
    return this.succeed(run, write, cond);
  }

  /**
   * spec.validateOnly: the checks of one stage against the current state, nothing changed; ends like a dry run
   * (DryRunComplete, Ready=True) with the report in status.dryRunReport.validation and the stage's condition.
   * `post` waits by requeue while rollouts or HTTP checks are undecided (the checks run in the background).
   */
  private async validateOnly(
    run: PlanRun,
    stage: ValidationStage,
    write: () => Promise<void>,
    writeProgress: () => Promise<number | undefined>,
    cond: (c: Omit<ConditionInput, 'observedGeneration'>) => void,
  ): Promise<ReconcileResult | void> {
    const { status } = run;
    let checks: ValidationCheck[];
    if (stage === 'pre') checks = await validatePre(run);
    else {
      const post = await validatePost(run);
      if (post.kind === 'wait') {
        if (status.phase !== 'Running')
          run.event('Normal', 'ValidationStarted', 'post-validation checks started');
        status.phase = 'Running';
        status.steps = noteStep(status.steps, POST_STEP, post.message);
        cond({ type: ConditionType.Ready, status: 'False', reason: 'Validating', message: post.message });
        cond({
          type: ConditionType.Reconciling,
          status: 'True',
          reason: 'Validating',
          message: post.message,
        });
        cond({ type: ConditionType.Stalled, status: 'False', reason: 'Validating', message: '' });
        const due = await writeProgress();
        return { requeueAfterMs: Math.min(post.requeueAfterMs, due ?? Infinity) };
      }
      checks = post.checks;
    }
    const { report, summary, reason } = validationReport(stage, checks);
    const end = run.now();
    if (stage === 'post')
      status.steps = finishStep(
        status.steps,
        POST_STEP,
        report.passed ? 'Succeeded' : 'Failed',
        summary,
        end,
      );
    status.phase = 'DryRunComplete';
    status.completedAt = timestamp(end);
    status.dryRunReport = { summary, wouldSucceed: report.passed, validation: report };
    cond({
      type: stage === 'pre' ? ConditionType.PreValidationPassed : ConditionType.PostValidationPassed,
      status: report.passed ? 'True' : 'False',
      reason,
      message: summary,
    });
    cond({ type: ConditionType.Ready, status: 'True', reason: 'DryRunComplete', message: summary });
    cond({ type: ConditionType.Reconciling, status: 'False', reason: 'DryRunComplete', message: '' });
    cond({ type: ConditionType.Stalled, status: 'False', reason: 'DryRunComplete', message: '' });
    run.event(
      report.passed ? 'Normal' : 'Warning',
      report.passed ? 'ValidationPassed' : 'ValidationFailed',
      summary,
    );
    await write();
    run.log.info('validation complete', { stage, passed: report.passed });
  }

  private async succeed(
    run: PlanRun,
    write: () => Promise<void>,
    cond: (c: Omit<ConditionInput, 'observedGeneration'>) => void,
  ) {
    const { status, spec } = run;
    const end = run.now();
    status.phase = 'Succeeded';
    status.completedAt = timestamp(end);
    status.durationSeconds = secondsBetween(status.startedAt!, end);
    status.recoverySeconds = secondsBetween(status.trigger?.firedAt ?? status.startedAt!, end);
    const rtoS = parseDuration(spec.objectives.rto) / 1000;
    const msg = `rolled back in ${status.durationSeconds}s`;
    cond({ type: ConditionType.Succeeded, status: 'True', reason: 'Succeeded', message: msg });
    const met = status.recoverySeconds <= rtoS;
    cond({
      type: ConditionType.RTOMet,
      status: met ? 'True' : 'False',
      reason: met ? 'WithinObjective' : 'ObjectiveMissed',
      message: `recovery took ${status.recoverySeconds}s${status.trigger ? ` from the trigger (${status.trigger.condition})` : ''}; objective ${spec.objectives.rto}`,
    });
    cond({ type: ConditionType.Ready, status: 'True', reason: 'Succeeded', message: msg });
    cond({ type: ConditionType.Reconciling, status: 'False', reason: 'Succeeded', message: '' });
    cond({ type: ConditionType.Stalled, status: 'False', reason: 'Succeeded', message: '' });
    run.event(
      'Normal',
      'Succeeded',
      succeededEventMessage(status, msg, spec.objectives.rto, spec.trigger.mode === 'onRevert'),
    );
    await write();
    this.observe(run, 'succeeded');
  }

  private async fail(
    run: PlanRun,
    step: StepDefinition,
    reason: string,
    message: string,
    write: () => Promise<void>,
    cond: (c: Omit<ConditionInput, 'observedGeneration'>) => void,
  ) {
    const { status } = run;
    const end = run.now();
    status.steps = finishStep(status.steps, step.name, 'Failed', message, end);
    status.phase = 'Failed';
    status.completedAt = timestamp(end);
    status.durationSeconds = secondsBetween(status.startedAt ?? status.completedAt, end);
    status.recoverySeconds = secondsBetween(
      status.trigger?.firedAt ?? status.startedAt ?? status.completedAt,
      end,
    );
    const msg = `step ${step.name} failed: ${message}`;
    if (step.condition) cond({ type: step.condition, status: 'False', reason, message });
    cond({ type: ConditionType.Succeeded, status: 'False', reason, message: msg });
    cond({ type: ConditionType.Ready, status: 'False', reason, message: msg });
    cond({ type: ConditionType.Stalled, status: 'True', reason, message: msg });
    cond({ type: ConditionType.Reconciling, status: 'False', reason, message: '' });
    run.event('Warning', 'Failed', `${msg}${touchedSummary(status)}`);
    await write();
    this.observe(run, 'failed');
  }

  private observe(run: PlanRun, result: 'succeeded' | 'failed') {
    const m = this.ctx.metrics;
    const trigger = triggerLabel(run.spec, run.status);
    const recovery = run.status.recoverySeconds ?? run.status.durationSeconds ?? 0;
    m.rollbackTotal.inc({ scope: run.spec.scope, trigger, result });
    m.rollbackDuration.observe({ scope: run.spec.scope, result }, run.status.durationSeconds ?? 0);
    m.rollbackRecovery.observe({ scope: run.spec.scope, trigger, result }, recovery);
    m.rtoSeconds.set(
      { namespace: run.namespace, plan: run.plan.metadata.name, scope: run.spec.scope },
      recovery,
    );
  }

  /** A veto that arrives once the plan executes changes nothing: say so, once per value. */
  private reportIgnoredVeto(obj: KubeObject, status: RollbackPlanStatus) {
    const by = obj.metadata.annotations?.[Annotation.VetoedBy]?.trim();
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const seen = `${obj.metadata.uid}\u0000${by}`;
    if (!by || status.veto || this.vetoesIgnored.get(key) === seen) return;
    this.vetoesIgnored.set(key, seen);
    void this.ctx.events.record(
      obj,
      'Warning',
      'VetoIgnored',
      `veto by ${by.slice(0, 253)} ignored: the rollback was already executing (started ${status.startedAt})`,
    );
  }
}

/** The trigger label of the rollback metrics: the fired condition's type, `manual` or `onRevert`. */
function triggerLabel(spec: EffectiveRollbackPlanSpec, status: RollbackPlanStatus): string {
  if (spec.trigger.mode === 'onRevert') return 'onRevert';
  const type = status.trigger?.type;
  if (type && type !== 'Manual') return type;
  return spec.trigger.mode === 'auto' ? 'auto' : spec.trigger.mode;
}

/** What a failed plan left changed, for the Failed event and condition: the documented consistent state. */
export function touchedSummary(status: RollbackPlanStatus): string {
  const changed: string[] = [];
  const db = status.database;
  const restore = findStep(status.steps, 'DatabaseRestore');
  if ((restore?.result === 'Succeeded' || db?.restoreApplied) && db?.backupId) {
    changed.push(
      `database restored from ${db.backupId}${db.safetyBackupId ? ` (undo: restore safety backup ${db.safetyBackupId})` : ''}${db.previousDatabase ? ` (previous database kept as ${db.previousDatabase})` : ''}`,
    );
  } else if (
    status.conditions?.some(
      (c) => c.type === ConditionType.DatabaseRestored && RESTORE_OUTCOME_UNKNOWN_REASONS.includes(c.reason),
    )
  ) {
    changed.push(
      `database: unknown, the restore of ${db?.backupId} may have run partly or fully (check it)${db?.safetyBackupId ? `; safety backup ${db.safetyBackupId} holds the state before` : ''}`,
    );
  } else if (db?.safetyBackupId) {
    changed.push(`safety backup ${db.safetyBackupId} taken; database not changed`);
  } else if (
    db?.safetyBackupJobUID &&
    findStep(status.steps, 'SafetyBackup')?.result === 'Skipped' &&
    !findStep(status.steps, 'DatabaseRestore')
  ) {
    // Started alongside the verify Job; pre-validation failed (settleSafetyBackup): stopped, or left to finish.
    const said = findStep(status.steps, 'SafetyBackup')?.message ?? '';
    const how = said.startsWith('stopped:')
      ? 'stopped (not needed)'
      : said.includes('had finished')
        ? 'had finished (a backup nothing restores: harmless)'
        : 'left to finish on its own (a backup nothing restores: harmless)';
    changed.push(`database not changed; safety backup Job ${db.safetyBackupJob} ${how}`);
  }
  const rolled = (status.deployments ?? []).filter((d) => d.result === 'RolledBack').map((d) => d.name);
  if (rolled.length) changed.push(`Deployment ${rolled.join(', ')} rolled back`);
  if (findStep(status.steps, 'FeatureFlags')?.result === 'Succeeded') {
    changed.push(
      `flags ${(status.featureFlags ?? []).map((f) => f.key).join(', ')} disabled (previous values in status.featureFlags)`,
    );
  }
  return changed.length ? `; changed: ${changed.join('; ')}` : '; nothing was changed';
}
