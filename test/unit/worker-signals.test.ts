// test/env/worker-signals.ts: a vitest worker (no signal listener of its own) that gets SIGTERM (the pool's
// fork.kill()) or SIGINT (Ctrl-C) runs the clean-ups its test files registered, then exits 128 + n.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../env/binaries.js';

const hasSetpriv = spawnSync('bash', ['-c', 'command -v setpriv']).status === 0;
const alive = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
};

const script = `
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  await import(${JSON.stringify(join(REPO_ROOT, 'test/env/worker-signals.ts'))});
  const { ProcessGroup } = await import(${JSON.stringify(join(REPO_ROOT, 'test/env/processes.ts'))});
  const dir = mkdtempSync(join(tmpdir(), 'worker-signals-test-'));
  const procs = new ProcessGroup(dir);
  const child = procs.start('server', 'bash', ['-c', 'while :; do sleep 0.1; done']);
  setTimeout(() => console.log(JSON.stringify({ dir, pid: child.pid })), 200);
  setInterval(() => {}, 1000);
`;

describe.skipIf(!hasSetpriv)('clean-ups of a vitest worker on a signal (worker-signals.ts)', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s',
    async (signal) => {
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const code = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
      const end = Date.now() + 30_000;
      while (!out.includes('{"dir"')) {
        if (Date.now() > end || p.exitCode !== null) throw new Error(`no start line:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const info = JSON.parse(/\{"dir".*\}/.exec(out)![0]) as { dir: string; pid: number };
      try {
        p.kill(signal);
        expect(await code, out).toBe(signal === 'SIGINT' ? 130 : 143);
        expect(alive(info.pid)).toBe(false);
        expect(existsSync(info.dir)).toBe(false);
      } finally {
        spawnSync('rm', ['-rf', info.dir]);
        if (alive(info.pid)) process.kill(info.pid, 'SIGKILL');
      }
    },
    30_000,
  );
});
