// How the CLI reads its command line beyond commander's defaults: an option that takes a value never takes the
// next flag as that value, and flags npm swallowed (given before `--`) stop the command instead of being lost.
import { Command } from 'commander';
import { CliError, ExitCode } from './errors.js';

/**
 * commander's Command, with the check that `--name --dry-run web` is a usage error instead of a plan named
 * "--dry-run" that is not a dry run. Every subcommand is one too (createCommand). The check sits in
 * parseOptions because an option's argParser cannot tell `--name -x` from `--name=-x` (both hand it "-x"),
 * and the second form is how a value starting with "-" is still given.
 */
export class CliCommand extends Command {
  /** Only check the command line: actions stop after their checks, before any kubeconfig is read (checkOnly). */
  checkOnly = false;
  /** In checkOnly mode: the objects the checked command would create (its check returns them). */
  readonly wouldCreate: unknown[] = [];
  override createCommand(name?: string): Command {
    return new CliCommand(name);
  }
  /** Every action is made by command.ts's action(): the checks and exit codes are there. */
  override action(fn: Parameters<Command['action']>[0]): this {
    if (!(fn as { [ACTION]?: true })[ACTION])
      throw new Error(`command ${this.name()}: wrap the action with action() from command.ts`);
    return super.action(fn);
  }
  override parseOptions(argv: string[]) {
    rejectFlagsAsValues(this, argv);
    return super.parseOptions(argv);
  }
}

/** The brand of a function made by command.ts's action(). */
export const ACTION = Symbol('nxt-rollback action');

/** The program `cmd` belongs to when it only checks its command line (the docs test), else undefined. */
export function checkOnlyProgram(cmd: Command): CliCommand | undefined {
  let root = cmd;
  while (root.parent) root = root.parent;
  return root instanceof CliCommand && root.checkOnly ? root : undefined;
}

/** Throws CliError(Usage) when an option of `cmd` that needs a value is followed by a flag instead. */
export function rejectFlagsAsValues(cmd: Command, argv: string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return;
    const opt = cmd.options.find((o) => o.long === arg || o.short === arg);
    if (!opt?.required) continue;
    const value = argv[i + 1];
    if (value !== undefined && value.length > 1 && value.startsWith('-')) {
      const name = opt.long ?? arg;
      throw new CliError(
        ExitCode.Usage,
        `${arg} needs a value, but the next argument is the flag ${value}: give the value ` +
          `(if it does start with "-", write ${name}=${value})`,
      );
    }
    i++;
  }
}

/**
 * The flags of `cmd` (and its parents) that npm took for itself: `npm run rollback:emergency-app web --dry-run`
 * passes only `web` to the CLI and sets npm_config_dry_run, so the rollback would be real. Only when an npm
 * script runs the CLI (npm_lifecycle_script names bin/nxt-rollback).
 */
export function flagsNpmSwallowed(cmd: Command, env: NodeJS.ProcessEnv = process.env): string[] {
  // Only when an npm script runs this CLI itself (the seed's scripts): a program started by another script
  // (the demo, a user's own tooling) passes its arguments to us directly.
  if (!env.npm_lifecycle_event || !/\bnxt-rollback\b/.test(env.npm_lifecycle_script ?? '')) return [];
  const found = new Set<string>();
  for (let c: Command | null = cmd; c; c = c.parent) {
    for (const o of c.options) {
      // A short flag npm does not know becomes npm_config_<letter> (`-o json` → npm_config_o=true, and `json`
      // reaches us as an argument). `-n` cannot be told apart: npm reads it as its own --no-yes.
      if (o.short && o.short !== '-n' && env[`npm_config_${o.short.slice(1)}`] !== undefined)
        found.add(o.short);
      if (!o.long) continue;
      const name = o.long.replace(/^--(no-)?/, '');
      const value = env[`npm_config_${name.replace(/-/g, '_')}`];
      if (value === undefined) continue;
      // npm's own `scope` setting (an @org in .npmrc) is not our --scope.
      if (name === 'scope' && value.startsWith('@')) continue;
      found.add(`--${name}`);
    }
  }
  return [...found];
}

/** Refuses to run (exit 2) when npm swallowed some of the command's flags. */
export function refuseNpmSwallowedFlags(cmd: Command, env: NodeJS.ProcessEnv = process.env): void {
  const flags = flagsNpmSwallowed(cmd, env);
  if (!flags.length) return;
  throw new CliError(
    ExitCode.Usage,
    `npm kept ${flags.join(', ')} for itself (given before --), so nxt-rollback never saw ` +
      `${flags.length === 1 ? 'it' : 'them'}: put the command's arguments after --, e.g. ` +
      `npm run ${env.npm_lifecycle_event} -- <arguments> ${flags.join(' ')}`,
  );
}
