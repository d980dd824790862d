import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../env/binaries.js';

const run = promisify(execFile);
const script = join(REPO_ROOT, 'hack', 'build-test-bins.sh');

// When Go or the module proxy is unavailable, the harness says what is missing and how to fix it, instead of
// a stack trace. The script runs against an empty binary directory so it really tries to build.
describe('hack/build-test-bins.sh error messages', () => {
  const empty = mkdtempSync(join(tmpdir(), 'nxt-bins-'));
  afterAll(() => rmSync(empty, { recursive: true, force: true }));

  const failure = async (env: NodeJS.ProcessEnv) => {
    try {
      await run('/bin/bash', [script], { env: { ...process.env, K8S_BIN_DIR: empty, ...env } });
    } catch (e) {
      return e as { code: number; stderr: string };
    }
    throw new Error('the build script succeeded where it should have failed');
  };

  // Only meaningful where Go is not on the basic PATH (here it lives in /usr/local/go/bin).
  it.skipIf(existsSync('/usr/bin/go') || existsSync('/bin/go'))(
    'names Go when it is not installed',
    async () => {
      const e = await failure({ PATH: '/usr/bin:/bin' });
      expect(e.code).toBe(1);
      expect(e.stderr).toMatch(/ERROR: Go is not installed\. Install Go >= 1\.26/);
      expect(e.stderr).not.toMatch(/at .*\(.*:\d+:\d+\)/); // no stack trace
    },
  );

  it('names the module proxy when it cannot be reached', async () => {
    const e = await failure({ GOPROXY: 'off', GOMODCACHE: join(empty, 'modcache') });
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(
      /ERROR: cannot reach the Go module proxy \(off\) for k8s\.io\/kubernetes@v1\.36\.3/,
    );
  });
});
