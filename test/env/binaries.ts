import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
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
 * Runs a hack/build-*.sh script and returns the last line of its stdout (the directory it built into). Its
 * progress lines on stderr (those starting with `prefix`) are passed to `log` as they come, so a first run shows
 * what is being built and how far it is; a failure throws with the script's ERROR lines (or its last lines).
 */
export async function runBuildScript(
  script: string,
  prefix: string,
  label: string,
  log: (m: string) => void,
  what: string,
  options: {
    args?: string[];
    env?: Record<string, string>;
    dieWithParent?: boolean;
    /** Deadline: SIGTERM then (the script's trap cleans up) SIGKILL 30 s later, and a clear error. */
    timeoutMs?: number;
  } = {},
): Promise<string> {
  // dieWithParent: like the harness's long-running processes (processes.ts), the script gets a signal when
  // this process dies (also by SIGKILL): SIGTERM, so its trap stops its own children and cleans up.
  const [bin, argv] = options.dieWithParent
    ? ['setpriv', ['--pdeathsig', 'TERM', '--', 'bash', script, ...(options.args ?? [])]]
    : ['bash', [script, ...(options.args ?? [])]];
  const child = spawn(bin, argv, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const tail: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 200) tail.shift();
    if (line.startsWith(prefix)) log(label + line.slice(prefix.length));
  });
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const deadline = options.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      }, options.timeoutMs)
    : undefined;
  const code = await new Promise<number>((res, rej) => {
    child.on('error', rej);
    child.on('close', (c) => res(c ?? 1));
    // past the deadline the script's exit is enough (a grandchild may still hold its output pipes)
    child.on('exit', (c) => timedOut && res(c ?? 1));
  }).finally(() => {
    clearTimeout(deadline);
    clearTimeout(killTimer);
  });
  const name = script.split('/').slice(-2).join('/');
  if (timedOut)
    throw new Error(
      `could not provide ${what}: ${name} did not finish in ${Math.round(options.timeoutMs! / 1000)} s ` +
        `(stopped; a stuck step? its last lines:)\n${tail.slice(-15).join('\n')}`,
    );
  if (code !== 0) {
    const reason = tail.filter((l) => l.includes('ERROR')).join('\n') || tail.slice(-15).join('\n');
    throw new Error(`could not provide ${what} (${name} failed):\n${reason}`);
  }
  return stdout.trim().split('\n').pop() ?? '';
}

/**
 * Returns the directory with the Kubernetes test binaries, building them on first use.
 * `K8S_BIN_DIR` points at a prebuilt directory. The build script exits with a message that names what is
 * missing (Go, the module proxy) instead of a stack trace; that message is what we rethrow.
 */
export async function ensureBinaries(log: (m: string) => void = () => {}): Promise<Binaries> {
  const script = join(REPO_ROOT, 'hack', 'build-test-bins.sh');
  log(
    'checking Kubernetes test binaries (a first run builds them from the Go module proxy: ~8 min on 2 cores)',
  );
  const dir = await runBuildScript(
    script,
    '[build-test-bins] ',
    'binaries: ',
    log,
    'the Kubernetes test binaries',
  );
  for (const b of REQUIRED_BINARIES) {
    if (!existsSync(join(dir, b))) throw new Error(`binary ${b} missing in ${dir}; re-run 'npm run bins'`);
  }
  return { dir, path: (name) => join(dir, name), kwokStages: join(dir, 'kwok-stages.yaml') };
}
