// The glue between commander and a command's implementation: global flags → CliContext, errors → exit codes,
// and each command's checks of its own command line, run before anything reaches the cluster.
import type { Command } from 'commander';
import { ACTION, checkOnlyProgram, refuseNpmSwallowedFlags } from './args.js';
import { checkGlobalOptions, cliContext, type CliContext, type GlobalOptions } from './context.js';
import { CliError, ExitCode, fromApiError, type ExitCodeValue } from './errors.js';

/** A command's body: returns the exit code (Ok or Failed); throws CliError for the other outcomes. */
export type CommandBody<A extends unknown[]> = (ctx: CliContext, ...args: A) => Promise<ExitCodeValue | void>;

/**
 * A command's checks of its arguments and options that commander cannot make (combinations, values read
 * after parsing): pure, throws CliError(Usage). Returns the object the command would create when it creates
 * one from its flags alone (emergency's plan), so the docs test can dry-run it. The docs test runs the checks
 * on every documented command line.
 */
export type CommandCheck<A extends unknown[]> = (...args: A) => object | void;

/** The exit code the program ends with (set by the action; main.ts exits with it). */
export const outcome: { code: ExitCodeValue } = { code: ExitCode.Ok };

/**
 * Wraps a command body for commander's .action(): the last two arguments commander passes are the options
 * object and the Command; positional arguments come first. `check` sees the same arguments (without the
 * context) and runs before the cluster connection is made.
 */
export function action<A extends unknown[]>(body: CommandBody<A>, check?: CommandCheck<A>) {
  const run = async (...all: unknown[]) => {
    const cmd = all[all.length - 1] as Command;
    const args = all.slice(0, -1) as A;
    const globals = cmd.optsWithGlobals() as GlobalOptions;
    const checkOnly = checkOnlyProgram(cmd);
    // npm's swallowed flags depend on how this process was started, not on the command line.
    if (!checkOnly) refuseNpmSwallowedFlags(cmd);
    checkGlobalOptions(globals);
    const made = check?.(...args);
    if (checkOnly) {
      if (made) checkOnly.wouldCreate.push(made);
      return;
    }
    const ctx = cliContext(globals);
    try {
      const code = await body(ctx, ...args);
      outcome.code = code ?? ExitCode.Ok;
    } catch (e) {
      throw e instanceof CliError ? e : fromApiError(e, cmd.name());
    }
  };
  return Object.assign(run, { [ACTION]: true as const });
}
