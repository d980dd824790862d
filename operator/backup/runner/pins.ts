import { randomBytes } from 'node:crypto';
import type { BackupPin } from './pin-schema.js';
import { RunnerFailure } from './failure.js';

/**
 * A pin keeps one backup from being pruned while a RollbackPlan uses it: the plan's verify Job writes it
 * before it reads the dump, the plan's restore Job renews it before and removes it after the restore.
 * Between the two run the plan's safety backup and restore Jobs, each bounded by activeDeadlineSeconds
 * 3600, so three hours cover a plan that is not stuck; a plan that failed or vanished half-way releases
 * its pin by expiry instead of holding the backup forever.
 */
export const PIN_TTL_MS = 3 * 3_600_000;
/** Whatever a pin file claims, it holds for at most this long after it was written (a bounded pin). */
export const PIN_MAX_TTL_MS = 24 * 3_600_000;

/** A holder becomes part of a file name: a Kubernetes UID (lower-case hex and dashes) fits. */
export const PIN_HOLDER_PATTERN = /^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/;

export type { BackupPin } from './pin-schema.js';

/** A pin file as found in storage; `pin` is undefined when the file does not parse. */
export interface StoredPin {
  id: string;
  holder: string;
  pin?: BackupPin;
  /** The file's modification time, as the volume reports it. */
  modifiedAt: Date;
}

/**
 * When a pin stops holding: its own expiry, but never later than PIN_MAX_TTL_MS after the file was written
 * (a clock or a writer gone wrong cannot pin forever). An unreadable pin (a torn or foreign file) holds
 * for the default TTL after it was written: an unknown pin is treated as a pin, not as nothing.
 */
export function pinExpiry(p: StoredPin): Date {
  const written = p.modifiedAt.getTime();
  const own = p.pin ? Date.parse(p.pin.expiresAt) : written + PIN_TTL_MS;
  return new Date(Math.min(Number.isNaN(own) ? written : own, written + PIN_MAX_TTL_MS));
}

export const isPinLive = (p: StoredPin, now: Date): boolean => now.getTime() < pinExpiry(p).getTime();

/**
 * The pin a plan's runner Job holds, from the environment the operator sets on plan Jobs (NXT_PLAN_UID,
 * NXT_PLAN_NAME, NXT_JOB_NAME); undefined outside a plan (no NXT_PLAN_UID).
 */
export function planPinFromEnv(
  env: NodeJS.ProcessEnv,
  id: string,
  now: Date,
  ttlMs = PIN_TTL_MS,
): BackupPin | undefined {
  const uid = env.NXT_PLAN_UID?.trim().toLowerCase();
  if (!uid) return undefined;
  if (!PIN_HOLDER_PATTERN.test(uid)) {
    throw new RunnerFailure(
      'InvalidArguments',
      `NXT_PLAN_UID must be a Kubernetes UID (lower-case letters, digits and "-", at most 64); got ${JSON.stringify(uid.slice(0, 80))}`,
    );
  }
  const name = env.NXT_PLAN_NAME?.trim();
  const job = env.NXT_JOB_NAME?.trim();
  return {
    pinVersion: 1,
    id,
    holder: uid,
    ...(name ? { plan: { name, uid } } : {}),
    ...(job ? { job } : {}),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
  };
}

/**
 * The pin a read command (verify, test restore, restore) holds while it reads: the plan's (planPinFromEnv),
 * else one held by this Job (NXT_JOB_UID), else, for a runner started by hand, by this process (`run-<hex>`).
 * `plan` says which: only a plan's pin may outlive the command.
 */
export function readPinFromEnv(
  env: NodeJS.ProcessEnv,
  id: string,
  now: Date,
  random: () => string = () => randomBytes(6).toString('hex'),
): { pin: BackupPin; plan: boolean } {
  const planPin = planPinFromEnv(env, id, now);
  if (planPin) return { pin: planPin, plan: true };
  const jobUid = env.NXT_JOB_UID?.trim().toLowerCase();
  const holder = jobUid && PIN_HOLDER_PATTERN.test(jobUid) ? jobUid : `run-${random()}`;
  const job = env.NXT_JOB_NAME?.trim();
  return {
    pin: {
      pinVersion: 1,
      id,
      holder,
      ...(job ? { job } : {}),
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + PIN_TTL_MS).toISOString(),
    },
    plan: false,
  };
}
