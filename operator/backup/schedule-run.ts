import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'winston';
import { API_VERSION } from '../api/v1alpha1/common.js';
import {
  BACKUP_SCHEDULE_KIND,
  SCHEDULE_RESOURCE,
  type BackupScheduleStatus,
  type EffectiveBackupScheduleSpec,
} from '../api/v1alpha1/backupschedule.js';
import { findCondition, setCondition } from '../kube/conditions.js';
import type { ReconcileResult, Request } from '../kube/controller.js';
import { TerminalError } from '../kube/errors.js';
import type { EventType } from '../kube/events.js';
import type { KubeObject } from '../kube/rest.js';
import { mergePatchFor, patchStatusOrReport, statusRejectedConditions } from '../kube/status.js';
import type { ManagerContext } from '../manager.js';
import type { SecretShape } from './pod-builders.js';
import type { ScheduleCondition } from './schedule-conditions.js';

/**
 * One reconcile's view of a BackupSchedule (the BackupSchedule twin of rollback's PlanRun): the object, a
 * working copy of its status, what the phases learned so far, and the one way status is written.
 */
export class ScheduleRun {
  readonly req: Request;
  /** The schedule with apiVersion and kind set (informer objects may lack them): owner of children, events. */
  readonly owner: KubeObject;
  readonly generation: number;
  readonly before: BackupScheduleStatus;
  readonly status: BackupScheduleStatus;
  readonly now = new Date();
  private readonly events: [EventType, string, string][] = [];

  // Filled in by the phases, in order.
  spec!: EffectiveBackupScheduleSpec;
  secret!: SecretShape;
  /** The claim of a persistentVolumeClaim location; undefined for S3. */
  claimName?: string;
  /** S3: resourceVersion of each Secret the location names (checkS3Secrets), for the storage probe's hash. */
  storageSecretVersions?: Record<string, string>;
  cronJob!: KubeObject;
  /** The test-restore CronJob, when spec.verify.testRestoreSchedule asks for one. */
  verifyCronJob?: KubeObject;
  /** Runs on the working status just before every write (the notifications bookkeeping). */
  beforeWrite?: (run: ScheduleRun) => void;

  constructor(
    private readonly ctx: Pick<ManagerContext, 'client' | 'events'>,
    readonly obj: KubeObject,
    readonly log: Logger,
  ) {
    this.req = { namespace: obj.metadata.namespace!, name: obj.metadata.name };
    this.owner = {
      ...obj,
      apiVersion: obj.apiVersion ?? API_VERSION,
      kind: obj.kind ?? BACKUP_SCHEDULE_KIND,
    };
    this.generation = obj.metadata.generation ?? 1;
    this.before = obj.status ?? {};
    this.status = structuredClone(this.before);
  }

  /** Sets conditions on the working status (written by writeStatus). */
  set(...conditions: ScheduleCondition[]): void {
    for (const c of conditions) {
      this.status.conditions = setCondition(
        this.status.conditions,
        { ...c, observedGeneration: this.generation },
        this.now,
      );
    }
  }

  /** The condition of `type` as it was before this reconcile. */
  previous(type: string) {
    return findCondition(this.before.conditions, type);
  }

  /** An Event, recorded once the status that explains it is written. */
  event(type: EventType, reason: string, message: string): void {
    this.events.push([type, reason, message]);
  }

  /**
   * The one path by which status reaches the API server: skipped when nothing changed, sent as the merge
   * patch from `before` to `status`, guarded by the resourceVersion `before` was read at (a 409 requeues and
   * decides again), then the Events.
   * A status the API server refuses (422) is reported as Stalled/StatusRejected instead (patchStatusOrReport).
   */
  async writeStatus(): Promise<void> {
    this.status.observedGeneration = this.generation;
    this.beforeWrite?.(this);
    if (!isDeepStrictEqual(this.status, this.before)) {
      try {
        await patchStatusOrReport(
          this.ctx.client,
          { ...SCHEDULE_RESOURCE, ...this.req },
          this.obj.metadata.resourceVersion,
          // A patch from what was read to what is wanted: an object replaced in the working status (a new
          // lastSuccessfulBackup, a new request record) loses the old one's keys, which a plain merge keeps.
          mergePatchFor(this.before, this.status),
          (message) => ({
            observedGeneration: this.generation,
            conditions: statusRejectedConditions(this.before.conditions, message, this.generation, this.now),
          }),
        );
      } catch (e) {
        if (e instanceof TerminalError) {
          this.events.splice(0); // they explain a status that was not written
          void this.ctx.events.record(this.owner, 'Warning', 'StatusRejected', e.message);
        }
        throw e;
      }
    }
    for (const [t, r, m] of this.events.splice(0)) void this.ctx.events.record(this.owner, t, r, m);
  }

  /** A phase asks to be run again within `ms` (a Job's result is still on its way); finish honours it. */
  recheckWithin(ms: number): void {
    this.recheckMs = Math.min(this.recheckMs ?? ms, ms);
  }
  private recheckMs: number | undefined;

  /** Writes status and ends the reconcile, coming back after `requeueAfterMs` (or a recheck) if given. */
  async finish(requeueAfterMs?: number): Promise<ReconcileResult> {
    await this.writeStatus();
    const after = Math.min(requeueAfterMs || Infinity, this.recheckMs ?? Infinity);
    return Number.isFinite(after) ? { requeueAfterMs: after } : {};
  }
}
