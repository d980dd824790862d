// The scale benchmark's smoke test (`bench/scale.ts --quick`, on the shared control plane): it must run end to
// end and print both parts of its report. It asserts that the benchmark works, not any number.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { REPO_ROOT } from '../env/binaries.js';
import { binPath } from '../support/kube.js';

describe('bench:scale --quick', () => {
  it('bursts RollbackPlans against kubectl rollout undo and measures the operator RSS', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'bench', 'scale.ts'),
        '--quick',
        '--plans',
        '10',
        '--rss-deployments',
        '100',
        '--timeout',
        '240',
        `--kubeconfig=${inject('kubeconfigPath')}`,
        `--kubectl=${binPath('kubectl')}`,
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code, `exit code; stderr tail:\n${err.slice(-3000)}`).toBe(0);
    expect(out).toContain('### Part A: 10 RollbackPlans at once on 10 Deployments');
    expect(out).toMatch(/ours: RollbackPlans created at once +\|.*\| +10\/10 \|.*\| +10\/10 \|/);
    expect(out).toMatch(/ratio ours \/ kubectl, all templates restored <= 1\.0 \| +\d+\.\d\dx/);
    expect(out).toMatch(/\| all +\| +\d+ \| +\d+\.\d \|/); // API requests: total and per plan
    expect(out).toContain('### Part B: operator memory with 100 Deployments and 100 ReplicaSets');
    expect(out).toMatch(/per 1,000 objects/);
  }, 600_000);
});
