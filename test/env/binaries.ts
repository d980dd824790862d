import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

/** Every binary the harness runs, built by hack/build-test-bins.sh and cached outside the repo. */
export const REQUIRED_BINARIES = [
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'etcd',
  'kwok',
  'helm',
] as const;

export interface Binaries {
  dir: string;
  path(name: (typeof REQUIRED_BINARIES)[number]): string;
  kwokStages: string;
}

/**
 * Returns the directory with the Kubernetes test binaries, building them on first use.
 * `K8S_BIN_DIR` points at a prebuilt directory. The build script exits with a message that names what is
 * missing (Go, the module proxy) instead of a stack trace; that message is what we rethrow.
 */
export async function ensureBinaries(log: (m: string) => void = () => {}): Promise<Binaries> {
  const script = join(REPO_ROOT, 'hack', 'build-test-bins.sh');
  log('checking Kubernetes test binaries (first run builds them from the Go module proxy: ~20-30 min)');
  let dir: string;
  try {
    const { stdout } = await run('bash', [script], { maxBuffer: 64 * 1024 * 1024, env: process.env });
    dir = stdout.trim().split('\n').pop() ?? '';
  } catch (err) {
    const e = err as { stderr?: string; code?: number };
    const lines = (e.stderr ?? '').trim().split('\n');
    const reason = lines.filter((l) => l.includes('ERROR')).join('\n') || lines.slice(-15).join('\n');
    throw new Error(
      `could not provide the Kubernetes test binaries (hack/build-test-bins.sh failed):\n${reason}`,
    );
  }
  for (const b of REQUIRED_BINARIES) {
    if (!existsSync(join(dir, b))) throw new Error(`binary ${b} missing in ${dir}; re-run 'npm run bins'`);
  }
  return { dir, path: (name) => join(dir, name), kwokStages: join(dir, 'kwok-stages.yaml') };
}
