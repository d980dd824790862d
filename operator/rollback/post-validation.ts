import { createHash } from 'node:crypto';
import { parseDuration, type HTTPCheck } from '../api/v1alpha1/common.js';
import type { TaskState } from '../kube/background-tasks.js';
import type { MultiInformer } from '../kube/informer.js';
import type { KubeObject } from '../kube/rest.js';
import type { ManagerContext } from '../manager.js';
import { addressPolicy } from './address-policy.js';
import { BodyMatcher, bodyMatchProblem } from './body-match.js';
import type { RawDeployment } from './deployment-undo.js';
import {
  deniedUrl,
  parseCheckUrl,
  FIRST_ATTEMPT,
  hasFailedAttempt,
  NOT_ATTEMPTED,
  runHttpCheck,
  type HttpCheckResult,
  type HttpProbeOptions,
} from './http-check.js';
import { findStep, finishStep, noteStep } from './journal.js';
import { postValidationMessage } from './outcome-messages.js';
import type { PlanRun, StepOutcome } from './plan-run.js';
import { rolloutProgress } from './rollout.js';

/** One plan's HTTP checks, as post-validation sees them: started once, read on every reconcile. */
export interface PlanChecks {
  /** The check's state; starts it in the background on first call. Deadline: epoch ms. */
  http(
    index: number,
    check: HTTPCheck,
    deadline: { at: number; timeout: string },
  ): TaskState<HttpCheckResult>;
  /** Why a check can never pass (invalid pattern, unparsable URL, denied address literal), for pre-validation. */
  problem(check: HTTPCheck): { reason: string; message: string } | undefined;
  /** Aborts this plan's probes still running (the step has decided). */
  settle(): void;
}

/** The bounds and address policy of every HTTP probe the operator makes (post-validation and triggers). */
export function httpProbeOptions(config: ManagerContext['config']): HttpProbeOptions {
  return {
    policy: addressPolicy({
      denyLinkLocal: config.HTTP_CHECK_DENY_LINK_LOCAL,
      denyLoopback: config.HTTP_CHECK_DENY_LOOPBACK,
      deniedCidrs: config.HTTP_CHECK_DENIED_CIDRS,
    }),
    requestTimeoutMs: 5000,
    maxBodyBytes: 64 * 1024,
    matcher: new BodyMatcher({ timeoutMs: 2000, maxConcurrent: 2 }),
  };
}

/** Phases after which a plan never runs a check again: its results are dropped. */
const FINISHED_PHASES = new Set(['Succeeded', 'Failed', 'DryRunComplete', 'Expired', 'Vetoed']);

/**
 * The HTTP checks of all plans, run as background tasks of the manager (ctx.tasks) keyed by plan UID and
 * check, so they never hold a reconcile worker. A result wakes the plan through `enqueue`; deleting a plan
 * or its reaching a terminal phase aborts its probes.
 */
export class HttpChecks {
  private readonly opts: HttpProbeOptions;

  constructor(
    private readonly ctx: ManagerContext,
    plans: MultiInformer<KubeObject>,
    private readonly enqueue: (key: string) => void,
  ) {
    this.opts = httpProbeOptions(ctx.config);
    const forget = (p: KubeObject) => p.metadata.uid && ctx.tasks.forget(p.metadata.uid);
    plans.addHandler({
      onUpdate: (_old, p) => FINISHED_PHASES.has(p.status?.phase) && forget(p),
      onDelete: forget,
    });
  }

  forPlan(plan: KubeObject): PlanChecks {
    const owner = plan.metadata.uid ?? `${plan.metadata.namespace}/${plan.metadata.name}`;
    const key = `${plan.metadata.namespace}/${plan.metadata.name}`;
    return {
      http: (index, check, deadline) => {
        // The check's content is part of the key: a different check is a different task.
        const id = createHash('sha256').update(JSON.stringify(check)).digest('hex').slice(0, 12);
        return this.ctx.tasks.ensure(
          owner,
          `http/${index}/${id}`,
          (task) => runHttpCheck(check, this.opts, task, deadline),
          () => this.enqueue(key),
        );
      },
      problem: (check) => {
        const pattern = check.bodyMatch !== undefined ? bodyMatchProblem(check.bodyMatch) : undefined;
        if (pattern) return { reason: 'InvalidBodyMatch', message: `${check.url}: ${pattern}` };
        const parsed = parseCheckUrl(check.url);
        if (typeof parsed === 'string') return { reason: 'InvalidURL', message: `${check.url}: ${parsed}` };
        const denied = deniedUrl(this.opts.policy, check.url);
        if (denied) return { reason: 'HTTPCheckDenied', message: `${check.url}: ${denied}` };
        return undefined;
      },
      settle: () => this.ctx.tasks.abort(owner),
    };
  }
}

/**
 * Pre-validation of the HTTP checks: a bodyMatch RE2 cannot compile, a URL Node cannot parse (InvalidURL), or
 * a URL whose host is a denied address,
 * fails the plan before anything is touched rather than after the rollback.
 */
export async function preValidateHttpChecks(run: PlanRun): Promise<StepOutcome> {
  const checks = run.spec.validation.http ?? [];
  for (const c of checks) {
    const p = run.checks.problem(c);
    if (p) {
      run.status.steps = finishStep(run.status.steps, 'CheckHTTPChecks', 'Failed', p.message, run.now());
      return { kind: 'failed', reason: p.reason, message: p.message };
    }
  }
  const msg = `${checks.length} HTTP check(s): patterns valid, no denied address`;
  run.status.steps = finishStep(run.status.steps, 'CheckHTTPChecks', 'Succeeded', msg, run.now());
  return { kind: 'done', message: msg };
}

const apps = (namespace: string, name: string) => ({
  group: 'apps',
  version: 'v1',
  plural: 'deployments',
  namespace,
  name,
});

/**
 * Post-validation: every Deployment finished its rollout (observed generation, updated and available replicas,
 * no progress deadline exceeded), then the HTTP checks pass, all within spec.validation.timeout counted from
 * the step's durable start in status (so a restart or failover does not reset it).
 */
export async function postValidate(run: PlanRun, stepName: string): Promise<StepOutcome> {
  const started = Date.parse(findStep(run.status.steps, stepName)?.startedAt ?? run.now().toISOString());
  const timeoutMs = parseDuration(run.spec.validation.timeout);
  const deadline = started + timeoutMs;
  const remaining = deadline - run.now().getTime();
  const waiting: string[] = [];
  for (const d of run.status.deployments ?? []) {
    if (d.result === 'Failed') continue;
    // From the watch cache: a rollout event is what requeued us, so the cache already holds it; reading it
    // again from the API server on every event only slows a burst of plans down.
    // The cache is trusted only once it has caught up with our patch: right after it, the cache may still hold
    // the old, fully rolled-out Deployment, which would pass the check without the rollback having rolled out.
    // Right after our patch in this same reconcile, its response is that fresh read: the API server's state
    // after the patch, a generation the controller cannot have rolled out yet (the watch requeues us on its
    // next status change).
    const caughtUp = (o: RawDeployment | undefined): o is RawDeployment =>
      !!o &&
      d.generation !== undefined &&
      ((o.metadata as { generation?: number }).generation ?? 0) >= d.generation;
    const cached = run.cache.deployment(d.name) as RawDeployment | undefined;
    const patched = run.patched?.get(d.name);
    const dep = caughtUp(cached)
      ? cached
      : caughtUp(patched)
        ? patched
        : await run.client.get<RawDeployment>(apps(run.namespace, d.name));
    const p = rolloutProgress(dep);
    if (p.state === 'failed')
      return { kind: 'failed', reason: 'ProgressDeadlineExceeded', message: p.message };
    if (p.state === 'progressing') waiting.push(p.message);
  }
  if (waiting.length) {
    if (remaining <= 0) {
      return {
        kind: 'failed',
        reason: 'RolloutTimeout',
        message: `rollout not complete after ${run.spec.validation.timeout}: ${waiting.join('; ')}`,
      };
    }
    // A note only: the controller writes it at most every PROGRESS_WRITE_INTERVAL_MS (progress-writes.ts).
    run.status.steps = noteStep(run.status.steps, stepName, waiting.join('; '));
    // Deployment status changes requeue the plan through the watch; this only guards the timeout.
    return { kind: 'wait', message: waiting.join('; '), requeueAfterMs: Math.min(remaining, 30_000) };
  }
  const http = checkHttp(run, stepName, { at: deadline, timeout: run.spec.validation.timeout });
  if (http.kind !== 'done') return http;
  const rolled = (run.status.deployments ?? []).length;
  return { kind: 'done', message: postValidationMessage(rolled, http.message) };
}

/** The HTTP checks' verdict: all passed, one failed (the others are aborted), or still running (requeue). */
function checkHttp(run: PlanRun, stepName: string, deadline: { at: number; timeout: string }): StepOutcome {
  const checks = run.spec.validation.http ?? [];
  if (!checks.length) return { kind: 'done', message: '' };
  const states = checks.map((c, i) => run.checks.http(i, c, deadline));
  for (const s of states) {
    if (s.state === 'crashed') {
      run.checks.settle();
      return { kind: 'failed', reason: 'HTTPCheckFailed', message: `HTTP check failed: ${s.error}` };
    }
    if (s.state === 'done' && !s.result.passed) {
      run.checks.settle();
      return { kind: 'failed', reason: s.result.reason ?? 'HTTPCheckFailed', message: s.result.message };
    }
  }
  const pending = states.filter((s) => s.state === 'running');
  if (!pending.length) return { kind: 'done', message: `; ${checks.length} HTTP check(s) passed` };
  const remaining = deadline.at - run.now().getTime();
  // A task reports progress from its first attempt on: none past the deadline means it never began one.
  const notYet = remaining <= 0 ? NOT_ATTEMPTED : FIRST_ATTEMPT;
  const notes = pending.map((s) => s.progress ?? notYet);
  if (remaining <= 0) {
    // The tasks end themselves at the deadline; this covers a task that could not report in time.
    run.checks.settle();
    return {
      kind: 'failed',
      reason: 'HTTPCheckTimeout',
      message: `HTTP checks did not pass within validation.timeout ${deadline.timeout}: ${notes.join('; ')}`,
    };
  }
  const message = `${pending.length} of ${checks.length} HTTP check(s) running: ${notes.join('; ')}`;
  run.status.steps = noteStep(run.status.steps, stepName, message);
  // A finished check wakes the plan at once; this requeue only refreshes the progress note and guards the
  // deadline.
  // A check with a failed attempt behind it names that on Ready too (kstatus readers see the problem while
  // the attempts go on until validation.timeout).
  const failing = pending.some((s) => hasFailedAttempt(s.progress));
  return {
    kind: 'wait',
    message,
    requeueAfterMs: Math.min(remaining + 500, 30_000),
    ...(failing ? { reason: 'HTTPCheckFailing' } : {}),
  };
}
