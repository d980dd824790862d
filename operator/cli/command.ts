// The glue between commander and a command's implementation: global flags → CliContext, errors → exit codes.
import type { Command } from 'commander';
import { refuseNpmSwallowedFlags } from './args.js';
import { cliContext, type CliContext, type GlobalOptions } from './context.js';
import { CliError, ExitCode, fromApiError, type ExitCodeValue } from './errors.js';

/** A command's body: returns the exit code (Ok or Failed); throws CliError for the other outcomes. */
export type CommandBody<A extends unknown[]> = (ctx: CliContext, ...args: A) => Promise<ExitCodeValue | void>;

/** The exit code the program ends with (set by the action; main.ts exits with it). */
export const outcome: { code: ExitCodeValue } = { code: ExitCode.Ok };

/**
 * Wraps a command body for commander's .action(): the last two arguments commander passes are the options
 * object and the Command; positional arguments come first.
 */
export function action<A extends unknown[]>(body: CommandBody<A>) {
  return async (...all: unknown[]) => {
    const cmd = all[all.length - 1] as Command;
    refuseNpmSwallowedFlags(cmd);
    const globals = cmd.optsWithGlobals() as GlobalOptions;
    const ctx = cliContext(globals);
    try {
      const code = await body(ctx, ...(all.slice(0, -1) as A));
      outcome.code = code ?? ExitCode.Ok;
    } catch (e) {
      throw e instanceof CliError ? e : fromApiError(e, cmd.name());
    }
  };
}
