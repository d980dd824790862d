#!/usr/bin/env node
// The operator image's entrypoint: `manager` (default) runs the controllers; the runner subcommands
// (backup, verify, restore, test-restore, prune) run inside the Job pods the operator creates.
import { KubeConfig } from '@kubernetes/client-node';
import { setupBackupScheduleController } from './backup/controller.js';
import { runnerMain } from './backup/runner/cli.js';
import { loadConfig } from './config.js';
import { describeError } from './kube/errors.js';
import { createLogger } from './log.js';
import { Manager } from './manager.js';
import { createMetrics } from './metrics.js';
import { setupRollbackPlanController } from './rollback/controller.js';

const RUNNER_COMMANDS = new Set(['backup', 'verify', 'restore', 'test-restore', 'prune']);

async function runManager(argv: string[]): Promise<number> {
  let config;
  try {
    config = loadConfig(process.env, argv);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const log = createLogger(config.LOG_LEVEL, { identity: config.identity });
  process.on('unhandledRejection', (e) => log.error('unhandled rejection', { err: describeError(e) }));
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const manager = new Manager(config, kc, log, createMetrics())
    .add(setupRollbackPlanController)
    .add(setupBackupScheduleController);
  // The first signal drains (the lease is renewed until the drain is over, then released); a second one
  // exits at once without releasing, so the lease runs out and no standby starts while work is in flight.
  let signalled = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (signalled) {
        log.warn('second signal: exiting without finishing the drain', { signal: sig });
        process.exit(1);
      }
      signalled = true;
      log.info('received signal, shutting down', { signal: sig });
      void manager.stop();
    });
  }
  // Leadership lost or caches not synced in time: exit 1 so Kubernetes restarts the pod as a candidate.
  const outcome = await manager.start();
  return outcome === 'stopped' ? 0 : 1;
}

const [command = 'manager', ...rest] = process.argv.slice(2);
let code: number;
if (command === 'manager') code = await runManager(rest);
else if (RUNNER_COMMANDS.has(command)) code = await runnerMain([command, ...rest], process.env);
else if (command.startsWith('--')) code = await runManager([command, ...rest]);
else {
  console.error(`unknown command ${command}: use manager | ${[...RUNNER_COMMANDS].join(' | ')}`);
  code = 2;
}
process.exit(code);
