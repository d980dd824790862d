import type { Command } from 'commander';
import { CliError, ExitCode } from '../errors.js';

/** A command that is declared but not built yet (kept until its file lands). */
export function stub(program: Command, name: string, description: string) {
  program
    .command(name)
    .description(description)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new CliError(ExitCode.Usage, `${name}: not implemented yet`);
    });
}
