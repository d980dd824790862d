// test/env/exit-teardown.ts: a harness process that gets SIGINT/SIGTERM while vitest's own listener is
// installed (it calls process.exit() 1 ms later, so an async teardown never finishes) still kills what its
// ProcessGroups started and removes their work dirs, synchronously. The child script installs a listener like
// vitest's first (its Logger does so before any global setup runs), as the e2e and integration setups see it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../env/binaries.js';

const hasSetpriv = spawnSync('bash', ['-c', 'command -v setpriv']).status === 0;

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const script = (withTeardown: boolean) => `
  // what vitest's Logger registers (vitest/dist/chunks/cli-api.*.js addCleanupListeners)
  for (const s of ['SIGINT', 'SIGTERM']) process.once(s, () => setTimeout(() => process.exit(), 1));
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { ProcessGroup, WORKDIR_PREFIX } = await import(${JSON.stringify(join(REPO_ROOT, 'test/env/processes.ts'))});
  const { tearDownOnSignals } = await import(${JSON.stringify(join(REPO_ROOT, 'test/env/exit-teardown.ts'))});
  if (${withTeardown}) tearDownOnSignals((m) => console.log(m));
  const dir = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX + 'unit-exit-'));
  const procs = new ProcessGroup(dir);
  // a child that ignores SIGTERM: the teardown must escalate to SIGKILL
  const child = procs.start('stubborn', 'bash', ['-c', 'trap "" TERM; while :; do sleep 0.1; done']);
  // the async teardown a global setup would run on the signal: it never gets past its first await
  for (const s of ['SIGINT', 'SIGTERM']) process.once(s, () => void procs.stopAll());
  console.log(JSON.stringify({ dir, pid: child.pid }));
  setInterval(() => {}, 1000);
`;

async function runAndSignal(signal: NodeJS.Signals, withTeardown: boolean) {
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(withTeardown)], {
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
  p.kill(signal);
  return { ...info, code: await code, out: () => out };
}

describe.skipIf(process.platform !== 'linux' || !hasSetpriv)('synchronous teardown on a signal', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s: the children are killed (SIGKILL after the grace period) and the work dir removed before the process exits',
    async (signal) => {
      const r = await runAndSignal(signal, true);
      expect(r.code, r.out()).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(r.out()).toContain(`${signal}: tearing the environment down synchronously`);
      expect(alive(r.pid)).toBe(false);
      expect(existsSync(r.dir)).toBe(false);
    },
    30_000,
  );

  it('without the signal listener, process.exit() (vitest calls it 1 ms after the signal) still runs the exit hook', async () => {
    const r = await runAndSignal('SIGINT', false);
    try {
      expect(alive(r.pid)).toBe(false);
      expect(existsSync(r.dir), r.out()).toBe(false);
    } finally {
      spawnSync('rm', ['-rf', r.dir]);
    }
  }, 30_000);
});
