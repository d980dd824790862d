// The synchronous teardown (exit-teardown.ts runExitCleanups) signals every ProcessGroup first and waits on one
// shared grace time, instead of 5 s of SIGTERM grace plus 2 s per group in turn.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pendingExitCleanups, runExitCleanups } from '../env/exit-teardown.js';
import { ProcessGroup } from '../env/processes.js';

const hasSetpriv = spawnSync('bash', ['-c', 'command -v setpriv']).status === 0;
const gone = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z';
  } catch {
    return true;
  }
};

describe.skipIf(!hasSetpriv)('synchronous teardown of several process groups', () => {
  it('SIGTERM to all groups at once, then one shared grace time before SIGKILL', async () => {
    const groups = [1, 2, 3].map(() => new ProcessGroup(mkdtempSync(join(tmpdir(), 'exit-grace-test-'))));
    // children that ignore SIGTERM: each group must escalate to SIGKILL
    const pids = groups.map(
      (g) => g.start('stubborn', 'bash', ['-c', 'trap "" TERM; while :; do sleep 0.1; done']).pid!,
    );
    await new Promise((r) => setTimeout(r, 300)); // the children run and their log files are open
    expect(pendingExitCleanups()).toHaveLength(3);
    const t = Date.now();
    runExitCleanups(() => {});
    const took = Date.now() - t;
    // one grace time (3 s) for all, not 3 x (5 s + SIGKILL)
    expect(took).toBeGreaterThanOrEqual(2_900);
    expect(took).toBeLessThan(6_000);
    expect(pids.every(gone)).toBe(true);
    for (const g of groups) expect(existsSync(g.workDir)).toBe(false);
  }, 30_000);
});
