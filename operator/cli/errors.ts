// Exit codes and the one error type the CLI's commands throw; main.ts turns it into a message and a code.
import { KubeApiError } from '../kube/errors.js';

/** Documented in docs/cli.md; scripts (CI gates) read them. */
export const ExitCode = {
  /** The command did what it was asked, and what it reports is good (plan Succeeded, ready, healthy). */
  Ok: 0,
  /** The command ran, and the answer is "no": the plan failed, not ready, a check failed, unhealthy. */
  Failed: 1,
  /** Bad usage: unknown command or flag, a missing or invalid argument. */
  Usage: 2,
  /** An object the command needs does not exist (plan, schedule, backup, Deployment). */
  NotFound: 3,
  /** The API server refused: the current user lacks a permission (the message names verb and resource). */
  Forbidden: 4,
  /** The command waited longer than --timeout. */
  Timeout: 5,
  /** The cluster could not be reached or answered with an unexpected error; the kubeconfig is unusable. */
  Unavailable: 6,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the CLI reports as one line (`error: ...`) and an exit code. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCodeValue,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * A bug in the CLI (a TypeError, an unexpected shape): exit 1, never "the cluster could not be reached". main.ts
 * prints the stack when DEBUG is set.
 */
export class InternalCliError extends CliError {
  constructor(
    what: string,
    readonly original: unknown,
  ) {
    super(
      ExitCode.Failed,
      `${what}: internal error: ${(original as Error)?.message ?? String(original)} (set DEBUG=1 for the stack)`,
    );
    this.name = 'InternalCliError';
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The connection failed (refused, reset, timed out, name not resolved, TLS): the cluster is unreachable. */
export function isNetworkError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  const msg = (e as Error)?.message;
  return (
    typeof msg === 'string' && /socket hang up|timed out after|fetch failed|ECONNREFUSED|ECONNRESET/.test(msg)
  );
}

/**
 * What a user needs from an API error: not found (3), forbidden (4, verb and resource), a spec the server
 * refuses (422: 2), unavailable (429, 5xx, network: 6). Anything else is a bug of the CLI: exit 1.
 */
export function fromApiError(e: unknown, what: string): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof KubeApiError) {
    if (e.code === 404) return new CliError(ExitCode.NotFound, `${what}: not found (${e.statusMessage})`);
    if (e.code === 403) return new CliError(ExitCode.Forbidden, `${what}: forbidden: ${e.statusMessage}`);
    if (e.code === 401)
      return new CliError(
        ExitCode.Forbidden,
        `${what}: unauthorized: the kubeconfig's credentials were refused`,
      );
    if (e.code === 422)
      return new CliError(ExitCode.Usage, `${what}: the API server refused it: ${e.statusMessage}`);
    if (e.code === 429)
      return new CliError(
        ExitCode.Unavailable,
        `${what}: the API server is overloaded (429): ${e.statusMessage}`,
      );
    if (e.code >= 400 && e.code < 500) return new CliError(ExitCode.Failed, `${what}: ${e.statusMessage}`);
    return new CliError(ExitCode.Unavailable, `${what}: ${e.code} ${e.reason}: ${e.statusMessage}`);
  }
  if (isNetworkError(e))
    return new CliError(
      ExitCode.Unavailable,
      `${what}: the cluster could not be reached: ${(e as Error)?.message ?? String(e)}`,
    );
  return new InternalCliError(what, e);
}
