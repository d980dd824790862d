import { execFileSync } from 'node:child_process';

/**
 * Installs Debian packages the harness needs (PostgreSQL, Prometheus, Alertmanager) when we are root, as a
 * fresh CI machine is; otherwise throws with the command to run. `.ci/run` installs the same packages up front.
 */
export function installDebianPackages(packages: string[], log: (m: string) => void = () => {}): void {
  const command = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages: run 'sudo ${command}' and re-run`);
  log(`installing Debian packages ${packages.join(' ')}`);
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
    // wait for a concurrent apt/dpkg (another test run installing its packages) instead of failing
    execFileSync(
      'apt-get',
      ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '-qq', '--no-install-recommends', ...packages],
      {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      },
    );
  } catch (e) {
    throw new Error(
      `could not install ${packages.join(', ')} (${(e as Error).message}): run '${command}' by hand`,
    );
  }
}
