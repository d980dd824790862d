// hack/build-image.sh under overlap and signals, without building anything: a test-held lock on a private
// cache dir (NXT_CACHE_DIR) keeps the script waiting, which is where a second run of it sits while the
// first one builds. Needs root and podman (the script checks both before it waits).
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../env/binaries.js';

const has = (c: string) => spawnSync('bash', ['-c', `command -v ${c}`]).status === 0;
const unsupported =
  process.getuid?.() !== 0 || !['podman', 'runc', 'debootstrap', 'npm', 'flock', 'setpriv'].every(has);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Pids of `bash .../build-image.sh <marker>` (not the test's own node processes that name the path). */
const scriptPids = (marker: string) =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return argv[0] === 'bash' && argv[1]?.endsWith('build-image.sh') && argv[2] === marker;
      } catch {
        return false;
      }
    });

async function until(what: string, f: () => boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe.skipIf(unsupported)('hack/build-image.sh: overlapping runs and signals', () => {
  let cache = '';
  let holder: ReturnType<typeof spawn> | undefined;
  beforeAll(async () => {
    cache = mkdtempSync(join(tmpdir(), 'nxt-unit-build-image-'));
    mkdirSync(join(cache, 'podman'), { recursive: true });
    // an earlier run holds the store's lock; in its own process group, so afterAll ends flock and its `sleep`
    // (which holds the lock too: killing flock alone left it running with the lock for 120 s)
    holder = spawn('flock', [join(cache, 'podman.lock'), 'sleep', '120'], {
      stdio: 'ignore',
      detached: true,
    });
    await until('the lock holder', () => existsSync(join(cache, 'podman.lock')));
    await sleep(300);
  });
  afterAll(() => {
    if (holder?.pid) {
      try {
        process.kill(-holder.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(cache, { recursive: true, force: true });
  });

  it('waits for the run holding the lock, and SIGTERM while waiting exits at once without touching the store', async () => {
    const out = join(cache, 'second.oci.tar');
    const p = spawn('bash', [join(REPO_ROOT, 'hack', 'build-image.sh'), out], {
      env: { ...process.env, NXT_CACHE_DIR: cache },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await until('the wait message', () => err.includes('waiting for another build-image.sh run'));
    // a marker in the store: a clean-up of "everything" would be one that is not this run's
    writeFileSync(join(cache, 'podman', 'marker'), '');
    const code = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    p.kill('SIGTERM');
    expect(await code).toBe(130);
    expect(existsSync(join(cache, 'podman', 'marker'))).toBe(true);
    expect(existsSync(out)).toBe(false);
  });

  it('dies with the test process (setpriv --pdeathsig, as test/env/images.ts runs it) when that is SIGKILLed', async () => {
    const out = join(cache, 'third.oci.tar');
    const parent = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `import('${join(REPO_ROOT, 'test', 'env', 'binaries.ts')}').then((b) => {
          void b.runBuildScript(${JSON.stringify(join(REPO_ROOT, 'hack', 'build-image.sh'))}, '[build-image] ', '',
            (m) => console.log(m), 'the image', { args: [${JSON.stringify(out)}], dieWithParent: true }).catch(() => {});
          setInterval(() => {}, 1000);
        });`,
      ],
      { cwd: REPO_ROOT, env: { ...process.env, NXT_CACHE_DIR: cache }, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let said = '';
    parent.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    try {
      await until('the script to wait for the lock', () => said.includes('waiting for another'), 60_000);
      expect(scriptPids(out)).toHaveLength(1);
      parent.kill('SIGKILL');
      await until('the script to die with its parent', () => scriptPids(out).length === 0, 10_000);
    } finally {
      parent.kill('SIGKILL');
      for (const pid of scriptPids(out)) process.kill(Number(pid), 'SIGTERM');
    }
  }, 90_000);
});
