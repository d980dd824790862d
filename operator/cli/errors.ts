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

/** What a user needs from an API error: not found, forbidden (verb and resource), or unavailable. */
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
    if (e.code >= 400 && e.code < 500) return new CliError(ExitCode.Failed, `${what}: ${e.statusMessage}`);
    return new CliError(ExitCode.Unavailable, `${what}: ${e.code} ${e.reason}: ${e.statusMessage}`);
  }
  const msg = (e as Error)?.message ?? String(e);
  return new CliError(ExitCode.Unavailable, `${what}: ${msg}`);
}
