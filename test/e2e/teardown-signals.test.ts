// Interrupting an e2e run tears its environment down: a nested `vitest run` of the e2e project
// (test/e2e/fixtures/hold.vitest.config.ts: the e2e global setup and one test holding a pod on the real node)
// gets Ctrl-C (SIGINT to its whole process group, as a terminal sends it) or SIGTERM to the vitest process
// alone (a CI timeout; test/env/run-tests.ts forwards it so). vitest's own signal listener exits the process
// 1 ms later, so only the synchronous teardown (test/env/exit-teardown.ts) can remove anything. Afterwards
// nothing of the run is left: no process, mount, network link, cgroup, work dir, kernel setting or iptables
// rule, and the machine record of real nodes is as before.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../env/binaries.js';
import {
  iptablesRules,
  mountsUnder,
  nodeLeftovers,
  readMachineRecord,
  readNodeState,
  readSysctls,
} from '../env/node-sweep.js';
import { WORKDIR_PREFIX } from '../env/processes.js';
import { realNodeUnsupportedReason } from '../env/real-node.js';

const skipReason = realNodeUnsupportedReason();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Harness work dirs (/tmp/nxt-env-*) whose owner.pid is `pid`. */
function workDirsOwnedBy(pid: number): string[] {
  return readdirSync(tmpdir())
    .filter((n) => n.startsWith(WORKDIR_PREFIX))
    .map((n) => join(tmpdir(), n))
    .filter((d) => {
      try {
        return Number(readFileSync(join(d, 'owner.pid'), 'utf8')) === pid;
      } catch {
        return false;
      }
    });
}

/** Command lines of processes naming `dir`, or in process group `pgid`. */
function processesOf(dir: string | undefined, pgid: number | undefined): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x) && Number(x) !== process.pid)) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      if ((dir && cmd.includes(dir + '/')) || (pgid !== undefined && Number(fields[2]) === pgid))
        out.push(`${p}: ${cmd.slice(0, 160)}`);
    } catch {
      // gone
    }
  }
  return out;
}

async function until<T>(what: string, f: () => T | undefined | false, ms: number, fail?: () => string) {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    const why = fail?.();
    if (why) throw new Error(`${what}: ${why}`);
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(500);
  }
}

describe.skipIf(!!skipReason)(
  `interrupting an e2e run${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it.each([
      ['Ctrl-C (SIGINT to the process group)', 'SIGINT', true],
      ['SIGTERM to the vitest process alone (a CI timeout)', 'SIGTERM', false],
    ] as const)('%s removes everything the run started', async (_what, signal, group) => {
      const tmp = mkdtempSync(join(tmpdir(), 'nxt-e2e-hold-'));
      const holdFile = join(tmp, 'hold.json');
      const sysctlsBefore = readSysctls();
      const rulesBefore = iptablesRules();
      const recordBefore = readMachineRecord();
      // the nested run must not think it is a worker of this one
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
      const child = spawn(
        process.execPath,
        [
          join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs'),
          'run',
          '--config',
          'test/e2e/fixtures/hold.vitest.config.ts',
          '--project',
          'e2e',
        ],
        {
          cwd: REPO_ROOT,
          env: { ...env, NXT_E2E_HOLD_FILE: holdFile },
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const pid = child.pid!;
      try {
        await until(
          'the nested e2e run to hold a pod on its real node',
          () => existsSync(holdFile),
          480_000,
          () => (child.exitCode !== null ? `exited ${child.exitCode}:\n${out.slice(-4000)}` : ''),
        );
        const { nodeWorkDir } = JSON.parse(readFileSync(holdFile, 'utf8')) as { nodeWorkDir: string };
        const state = readNodeState(nodeWorkDir);
        const dirs = workDirsOwnedBy(pid);
        // what must go is really there: the control plane's, PostgreSQL's and the node's work dirs, the pod's
        // container and mounts, the node in the machine record
        expect(
          dirs.map((d) => d.slice(tmpdir().length + 1 + WORKDIR_PREFIX.length).split('-')[0]).sort(),
        ).toEqual(['k8s', 'node', 'pg']);
        expect(mountsUnder(nodeWorkDir).some((m) => m.endsWith('/rootfs'))).toBe(true);
        expect(nodeLeftovers(nodeWorkDir, state).some((l) => l.startsWith('process '))).toBe(true);
        expect(readMachineRecord()?.users).toContain(nodeWorkDir);

        process.kill(group ? -pid : pid, signal);
        const code = await Promise.race([exited, sleep(90_000).then(() => 'timeout' as const)]);
        expect(code, out.slice(-4000)).toBe(128 + (signal === 'SIGINT' ? 2 : 15));
        expect(out).toContain(`${signal}: tearing the environment down synchronously`);
        // the workers and every child of the run are gone too
        await until(
          'the run process group to be gone',
          () => processesOf(undefined, pid).length === 0,
          30_000,
        );

        expect(nodeLeftovers(nodeWorkDir, state)).toEqual([]);
        for (const d of dirs) {
          expect(existsSync(d), d).toBe(false);
          expect(processesOf(d, undefined)).toEqual([]);
        }
        expect(workDirsOwnedBy(pid)).toEqual([]);
        expect(readSysctls()).toEqual(sysctlsBefore);
        expect(iptablesRules()).toEqual(rulesBefore);
        expect(readMachineRecord()).toEqual(recordBefore);
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  },
);
