import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommanderError } from 'commander';
import { CliCommand } from './args.js';
import { CliError, ExitCode } from './errors.js';
import { buildProgram } from './main.js';

/** Parses argv with the real program; the error it ends with (no cluster: nothing may get that far). */
async function parseError(argv: string[]): Promise<CliError> {
  const program = buildProgram();
  program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    return e as CliError;
  }
  throw new Error(`expected ${argv.join(' ')} to fail`);
}

describe('the command line', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    // No kubeconfig: a command that gets past parsing fails with "no kubeconfig found" (exit 6).
    process.env.HOME = mkdtempSync(join(tmpdir(), 'nxt-args-'));
    delete process.env.KUBECONFIG;
    for (const k of Object.keys(process.env))
      if (k.startsWith('npm_config_') || k.startsWith('npm_lifecycle_')) delete process.env[k];
  });
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it.each([
    [['emergency', '--scope', 'app', '--name', '--dry-run', 'web'], '--name'],
    [['emergency', '--scope', 'app', 'web', '--reason', '--dry-run'], '--reason'],
    [['approve', 'p1', '--reason', '--wait'], '--reason'],
    [['-n', '--context', 'status'], '-n'],
  ])('refuses a flag as the value of an option: %j', async (argv, flag) => {
    const e = await parseError(argv);
    expect(e).toBeInstanceOf(CliError);
    expect(e.exitCode).toBe(ExitCode.Usage);
    expect(e.message).toContain(`${flag} needs a value`);
  });

  it('leaves a global flag after an option that needs a value to commander: a usage error too', async () => {
    // The program takes `-n shop` as the namespace; --reason is left without a value.
    expect(await parseError(['approve', 'p1', '--reason', '-n', 'shop'])).toBeInstanceOf(CommanderError);
  });

  it('takes a value starting with "-" when given as --opt=-value', async () => {
    const e = await parseError(['emergency', '--scope', 'app', 'web', '--reason=-bad deploy', '--dry-run']);
    expect(e.message).toContain('no kubeconfig found');
  });

  it("refuses to run under npm when npm swallowed one of the command's flags (given before --)", async () => {
    // `npm run rollback:emergency-app web --dry-run`: npm keeps --dry-run and passes only `web`.
    process.env.npm_lifecycle_event = 'rollback:emergency-app';
    process.env.npm_lifecycle_script = 'bin/nxt-rollback emergency --scope app';
    process.env.npm_config_dry_run = 'true';
    process.env.npm_config_cache = '/home/u/.npm';
    const e = await parseError(['emergency', '--scope', 'app', 'web']);
    expect(e.exitCode).toBe(ExitCode.Usage);
    expect(e.message).toContain('--dry-run');
    expect(e.message).toContain('npm run rollback:emergency-app -- ');
  });

  it('notices a short flag npm kept (-o json before --)', async () => {
    process.env.npm_lifecycle_event = 'rollback:emergency-app';
    process.env.npm_lifecycle_script = 'bin/nxt-rollback emergency --scope app';
    process.env.npm_config_o = 'true';
    const e = await parseError(['emergency', '--scope', 'app', 'json', 'web']);
    expect(e.exitCode).toBe(ExitCode.Usage);
    expect(e.message).toContain('-o');
  });

  it('leaves a CLI started by another npm script alone (npm run demo --keep sets npm_config_keep)', async () => {
    process.env.npm_lifecycle_event = 'demo';
    process.env.npm_lifecycle_script = 'tsx hack/demo.ts';
    process.env.npm_config_dry_run = 'true';
    const e = await parseError(['emergency', '--scope', 'app', 'web']);
    expect(e.message).toContain('no kubeconfig found');
  });

  it("runs a command's own checks before it reads the kubeconfig (a usage error, exit 2, not exit 6)", async () => {
    const e = await parseError(['emergency', '--scope', 'database']);
    expect(e.exitCode).toBe(ExitCode.Usage);
    expect(e.message).toContain('needs --schedule');
  });

  it('refuses an action not made by action() (it would skip the checks and the exit codes)', () => {
    expect(() => new CliCommand('x').action(() => {})).toThrow(/action\(\) from command\.ts/);
  });

  it("runs under npm when only npm's own settings are set", async () => {
    process.env.npm_lifecycle_event = 'rollback:emergency-app';
    process.env.npm_config_cache = '/home/u/.npm';
    process.env.npm_config_scope = '@myorg';
    const e = await parseError(['emergency', '--scope', 'app', 'web']);
    expect(e.message).toContain('no kubeconfig found');
  });
});

describe('names that would escape their place in a URL', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    process.env.HOME = mkdtempSync(join(tmpdir(), 'nxt-args-'));
    delete process.env.KUBECONFIG;
  });
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it.each([
    [['status', '..'], 'plan name ".."'],
    [['approve', '../../secrets'], 'plan name'],
    [['backup', 'now', 'A_B'], 'BackupSchedule name'],
    [['emergency', '--scope', 'app', 'web', '..'], 'Deployment ".."'],
    [['emergency', '--scope', 'app', '--name', 'x/y', 'web'], '--name'],
    [['health', '--deployments', 'web,..'], '--deployments'],
  ])('refuses %j before any request (exit 2)', async (argv, what) => {
    const e = await parseError(argv);
    expect(e.exitCode).toBe(ExitCode.Usage);
    expect(e.message).toContain(what);
  });

  it('refuses -n .. before any request (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nxt-args-'));
    const kubeconfig = join(dir, 'config');
    writeFileSync(
      kubeconfig,
      'apiVersion: v1\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\n' +
        'users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n' +
        'current-context: x\n',
    );
    const e = await parseError([`--kubeconfig=${kubeconfig}`, '-n', '..', 'status', 'p1']);
    expect(e.exitCode).toBe(ExitCode.Usage);
    expect(e.message).toContain('--namespace ".."');
  });
});
