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
