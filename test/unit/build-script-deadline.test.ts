import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBuildScript } from '../env/binaries.js';

describe('runBuildScript deadline (a stuck image build fails the set-up)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'build-script-deadline-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stops a script past its deadline and says so', async () => {
    const script = join(dir, 'stuck.sh');
    // a step that never ends; the trap is what build-image.sh does on SIGTERM
    writeFileSync(
      script,
      `trap 'echo "[x] stopping" >&2; kill $!; exit 130' TERM\necho "[x] step" >&2\nsleep 60 & wait\n`,
    );
    const t = Date.now();
    await expect(
      runBuildScript(script, '[x] ', '', () => {}, 'the thing', { timeoutMs: 500 }),
    ).rejects.toThrow(
      /could not provide the thing: .*stuck\.sh did not finish in 1 s \(stopped[^]*\[x\] step/,
    );
    expect(Date.now() - t).toBeLessThan(5_000);
  });

  it('no deadline hit: the script result', async () => {
    const script = join(dir, 'ok.sh');
    writeFileSync(script, 'echo done\n');
    await expect(
      runBuildScript(script, '[x] ', '', () => {}, 'the thing', { timeoutMs: 5_000 }),
    ).resolves.toBe('done');
  });
});
