import { boundText } from './bounded.js';

/** A failure of a Kubernetes API call, carrying only the parsed metav1.Status fields (never headers). */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
    readonly details?: unknown,
  ) {
    super(`${method} ${path}: ${code} ${reason}: ${message}`);
    this.name = 'KubeApiError';
  }
  /** The server's message alone, e.g. for a status condition. */
  get statusMessage(): string {
    return this.message.replace(`${this.method} ${this.path}: ${this.code} ${this.reason}: `, '');
  }
}

/**
 * An error the reconciler cannot fix by retrying (bad spec, missing permission that needs a human, ...):
 * the controller records it and does not requeue, like controller-runtime's reconcile.TerminalError.
 */
export class TerminalError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'TerminalError';
  }
}

const codeOf = (e: unknown): number | undefined => {
  if (e instanceof KubeApiError) return e.code;
  const any = e as { code?: unknown; statusCode?: unknown };
  if (typeof any?.code === 'number') return any.code;
  if (typeof any?.statusCode === 'number') return any.statusCode;
  return undefined;
};

export const isNotFound = (e: unknown) => codeOf(e) === 404;
export const isConflict = (e: unknown) => codeOf(e) === 409;
export const isAlreadyExists = (e: unknown) =>
  codeOf(e) === 409 && (e as KubeApiError).reason === 'AlreadyExists';
export const isGone = (e: unknown) => codeOf(e) === 410;
export const isForbidden = (e: unknown) => codeOf(e) === 403;
export const isInvalid = (e: unknown) => codeOf(e) === 422;

/** A log-safe description of any error: name, message and API status, without headers, bodies or stacks of secrets. */
export function describeError(e: unknown): Record<string, unknown> {
  if (e instanceof KubeApiError) return { name: e.name, code: e.code, reason: e.reason, message: e.message };
  if (e instanceof Error) return { name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
  return { message: String(e) };
}

/**
 * The API server refused what we sent: the request itself is wrong (invalid, too large, forbidden by policy),
 * so sending it again cannot help. Built from a KubeApiError by userFixableRejection.
 */
export interface Rejection {
  code: number;
  reason: string;
  /** The server's message, bounded (it quotes the rejected values, which can be long). */
  message: string;
  /**
   * True when only a change to what is sent can help (400, 413, 422: the spec must change). False for
   * 403, which a change outside the spec can lift (RBAC, quota, admission policy): worth a slow retry.
   */
  permanent: boolean;
}

/** 4xx codes that mean "the request is wrong": bad request, too large, invalid. */
const PERMANENT_CODES = new Set([400, 413, 422]);
export const REJECTION_MESSAGE_MAX = 1024;

/**
 * Classifies a failed write of a child object (CronJob apply, PVC create, ConfigMap patch): a Rejection
 * when the user must fix their input, undefined when it is transient (5xx, timeouts, network errors, 409
 * conflicts, 429 throttling) and the caller should let the work queue retry with backoff.
 */
export function userFixableRejection(e: unknown): Rejection | undefined {
  const code = codeOf(e);
  if (code === undefined || !(PERMANENT_CODES.has(code) || code === 403)) return undefined;
  const api = e instanceof KubeApiError ? e : undefined;
  const raw = api?.statusMessage ?? (e instanceof Error ? e.message : String(e));
  return {
    code,
    reason: api?.reason || (code === 403 ? 'Forbidden' : 'Invalid'),
    message: boundText(raw, REJECTION_MESSAGE_MAX),
    permanent: code !== 403,
  };
}

/** A child object's write was rejected (see userFixableRejection): the reconcile reports it and stops. */
export class ChildRejectedError extends Error {
  constructor(
    /** e.g. CronJob */
    readonly kind: string,
    readonly childName: string,
    readonly rejection: Rejection,
  ) {
    super(
      `the API server rejected ${kind} ${childName} (${rejection.code} ${rejection.reason}): ${rejection.message}`,
    );
    this.name = 'ChildRejectedError';
  }
}
