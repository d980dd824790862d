import { execFileSync } from 'node:child_process';

/** How long an apt-get waits for another apt/dpkg (another test run installing its packages). */
const APT_LOCK_WAIT_S = 300;
/** Longest one apt-get may run (a stuck mirror): killed after it, so a test set-up fails instead of hanging. */
const APT_TIMEOUT_MS = 1_200_000;

/**
 * True when apt-get failed because another apt or dpkg holds one of its locks (the lists lock of
 * `apt-get update`, the dpkg frontend lock of `apt-get install`), not for a real error.
 */
export function isAptLockError(stderr: string): boolean {
  return /Could not get lock|Unable to lock directory|Unable to acquire the dpkg frontend lock|is held by process/i.test(
    stderr,
  );
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Runs apt-get with `args`; while it fails on a lock another apt/dpkg holds, retries for up to `waitS`
 * seconds. `apt-get update` takes the lists lock without waiting (DPkg::Lock::Timeout covers only the dpkg
 * lock of an install), so the retry is what makes two runs installing at once wait for each other.
 */
export function aptGet(
  args: string[],
  opts: { waitS?: number; run?: (args: string[]) => void; sleep?: (ms: number) => void } = {},
): void {
  const run =
    opts.run ??
    ((a: string[]) =>
      execFileSync('apt-get', ['-o', `DPkg::Lock::Timeout=${APT_LOCK_WAIT_S}`, ...a], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        timeout: APT_TIMEOUT_MS,
        killSignal: 'SIGTERM',
      }));
  const sleep = opts.sleep ?? sleepSync;
  const deadline = Date.now() + (opts.waitS ?? APT_LOCK_WAIT_S) * 1000;
  for (;;) {
    try {
      run(args);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ETIMEDOUT')
        throw new Error(`apt-get ${args.join(' ')} did not finish in ${APT_TIMEOUT_MS / 1000} s`);
      const stderr = String((e as { stderr?: unknown }).stderr ?? (e as Error).message);
      if (!isAptLockError(stderr) || Date.now() >= deadline) {
        throw new Error(`apt-get ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-3).join(' ')}`);
      }
      sleep(2000);
    }
  }
}

/**
 * Installs Debian packages the harness needs (PostgreSQL, Prometheus, Alertmanager) when we are root, as a
 * fresh CI machine is; otherwise throws with the command to run. `.ci/run` installs the same packages up front.
 * Both `apt-get update` and the install wait for a concurrent apt/dpkg instead of failing.
 */
export function installDebianPackages(packages: string[], log: (m: string) => void = () => {}): void {
  const command = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages: run 'sudo ${command}' and re-run`);
  log(`installing Debian packages ${packages.join(' ')}`);
  try {
    aptGet(['update', '-qq']);
    aptGet(['install', '-y', '-qq', '--no-install-recommends', ...packages]);
  } catch (e) {
    throw new Error(
      `could not install ${packages.join(', ')} (${(e as Error).message}): run '${command}' by hand`,
    );
  }
}
