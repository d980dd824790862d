// The project image's OCI archive (~180 MB a run) lives in a harness work dir of the run that built it
// (test/env/images.ts imageWorkDir), never in the cache: removed when that process exits, also through
// process.exit(); after a SIGKILL it stays, marked with the dead owner's pid, which is what a later run's
// reapStaleRuns (test/env/processes.ts) removes.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../env/binaries.js';
import { WORKDIR_PREFIX } from '../env/processes.js';

/** A node process that makes an image work dir with a file in it, prints the dir, then does `then`. */
function child(then: string) {
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import('${join(REPO_ROOT, 'test', 'env', 'images.ts')}').then((m) => {
        const { dir } = m.imageWorkDir();
        require('node:fs').writeFileSync(dir + '/project.oci.tar', 'x');
        console.log(dir);
        ${then}
      });`,
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const dir = new Promise<string>((res, rej) => {
    p.stdout.on('data', () => out.includes('\n') && res(out.split('\n')[0]!));
    p.on('exit', () => rej(new Error(`child exited before printing its dir: ${out}`)));
  });
  const exited = new Promise<void>((res) => p.on('exit', () => res()));
  return { p, dir, exited };
}

describe('the image archive work dir', () => {
  it('is a harness work dir of this process, removed when it exits (process.exit too)', async () => {
    const c = child('setTimeout(() => process.exit(3), 200);');
    const dir = await c.dir;
    expect(dirname(dir)).toBe(tmpdir());
    expect(basename(dir).startsWith(`${WORKDIR_PREFIX}image-`)).toBe(true);
    expect(readFileSync(join(dir, 'owner.pid'), 'utf8')).toBe(String(c.p.pid));
    expect(existsSync(join(dir, 'project.oci.tar'))).toBe(true);
    await c.exited;
    expect(existsSync(dir)).toBe(false);
  }, 60_000);

  it('stays after a SIGKILL, owned by the dead pid (what reapStaleRuns removes)', async () => {
    const c = child('setInterval(() => {}, 1000);');
    const dir = await c.dir;
    try {
      c.p.kill('SIGKILL');
      await c.exited;
      expect(existsSync(join(dir, 'project.oci.tar'))).toBe(true);
      const owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
      expect(owner).toBe(c.p.pid);
      expect(() => process.kill(owner, 0)).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
