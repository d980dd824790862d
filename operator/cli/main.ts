// nxt-rollback: the command line for RollbackPlans and BackupSchedules, also the kubectl plugin
// `kubectl nxt-rollback` (bin/kubectl-nxt_rollback). It creates and reads the operator's objects and never
// does the operator's work itself. Exit codes: see errors.ts (ExitCode) and docs/cli.md.
import { CommanderError, Option, type Command } from 'commander';
import { CliCommand } from './args.js';
import { outcome } from './command.js';
import { CliError, ExitCode, InternalCliError } from './errors.js';
import { ownVersion } from './exit.js';
import { printable } from './output.js';
import { register as registerBackups } from './commands/backups.js';
import { register as registerDrill } from './commands/drill.js';
import { register as registerEmergency } from './commands/emergency.js';
import { register as registerGitOps } from './commands/gitops.js';
import { register as registerHealth } from './commands/health.js';
import { register as registerPlans } from './commands/plans.js';
import { register as registerReadiness } from './commands/readiness.js';
import { register as registerValidate } from './commands/validate.js';

/**
 * The nxt-rollback program. `checkOnly`: each command checks its command line (commander's parsing and the
 * command's own checks) and stops there, before any kubeconfig is read: what the docs test runs.
 */
export function buildProgram({ checkOnly = false }: { checkOnly?: boolean } = {}): Command {
  const program = new CliCommand('nxt-rollback')
    .description(
      'Rollbacks and PostgreSQL backups through the nxt-rollback-operator (RollbackPlan, BackupSchedule).',
    )
    .version(ownVersion())
    .option('-n, --namespace <namespace>', "namespace (default: the context's namespace, else default)")
    .option('--context <context>', 'kubeconfig context to use (default: the current context)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json', 'yaml'])
        .default('table'),
    )
    .option('--request-timeout <seconds>', 'timeout of each API request', '30')
    .showHelpAfterError('(run nxt-rollback --help for usage)')
    .exitOverride();
  program.checkOnly = checkOnly;
  // Order is the order of `--help`.
  registerEmergency(program);
  registerValidate(program);
  registerPlans(program);
  registerBackups(program);
  registerHealth(program);
  registerReadiness(program);
  registerDrill(program);
  registerGitOps(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // commander writes its own usage errors; exitOverride turns them into CommanderError.
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  outcome.code = ExitCode.Ok;
  try {
    await program.parseAsync(argv, { from: 'user' });
    return outcome.code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end with a CommanderError too, with exit code 0.
      return e.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    if (e instanceof CliError) {
      process.stderr.write(`error: ${printable(e.message)}\n`);
      if (e instanceof InternalCliError && process.env.DEBUG)
        process.stderr.write(`${stackOf(e.original)}\n`);
      return e.exitCode;
    }
    // A bug of the CLI: exit 1; the stack only when asked for (DEBUG), the message always.
    process.stderr.write(
      process.env.DEBUG
        ? `error: internal error: ${stackOf(e)}\n`
        : `error: internal error: ${(e as Error)?.message ?? String(e)} (set DEBUG=1 for the stack)\n`,
    );
    return ExitCode.Failed;
  }
}

const stackOf = (e: unknown) => (e as Error)?.stack ?? String(e);
