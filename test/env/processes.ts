import { spawn, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Prefix of every harness work dir in the system temp dir; used to reap leftovers of killed runs. */
export const WORKDIR_PREFIX = 'nxt-env-';

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolvePort(port));
    });
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Removes work dirs (and kills the processes recorded in them) of earlier runs whose owner process is gone,
 * e.g. after `kill -9` of a test run. Children also die with their parent through PR_SET_PDEATHSIG
 * (`setpriv --pdeathsig`), so this is a second line of defence.
 */
export function reapStaleRuns(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(WORKDIR_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const ownerFile = join(dir, 'owner.pid');
    if (!existsSync(ownerFile)) continue;
    const owner = Number(readFileSync(ownerFile, 'utf8'));
    if (alive(owner)) continue;
    const pidsFile = join(dir, 'children.pids');
    if (existsSync(pidsFile)) {
      for (const pid of readFileSync(pidsFile, 'utf8').split('\n').map(Number).filter(Boolean)) {
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export class ProcessGroup {
  readonly children = new Map<string, ChildProcess>();
  private stopping = false;

  constructor(readonly workDir: string) {
    writeFileSync(join(workDir, 'owner.pid'), String(process.pid));
  }

  /**
   * Starts a long-running process with its output in `<workDir>/logs/<name>.log`. `asUser` runs it as another
   * user (PostgreSQL refuses to run as root). The child gets SIGKILL when this process dies.
   */
  start(name: string, cmd: string, args: string[], opts: { asUser?: string; env?: NodeJS.ProcessEnv } = {}) {
    const logs = join(this.workDir, 'logs');
    mkdirSync(logs, { recursive: true });
    const out = createWriteStream(join(logs, `${name}.log`), { flags: 'a' });
    const wrapped = ['--pdeathsig', 'KILL', '--', cmd, ...args];
    const [bin, argv] =
      opts.asUser && process.getuid?.() === 0
        ? // runuser forks, so both links get a parent-death signal: runuser dies with us, the server with runuser.
          [
            'setpriv',
            ['--pdeathsig', 'KILL', '--', 'runuser', '-u', opts.asUser, '--', 'setpriv', ...wrapped],
          ]
        : ['setpriv', wrapped];
    const child = spawn(bin, argv as string[], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    child.on('exit', (code, signal) => {
      if (!this.stopping && this.children.get(name) === child) {
        out.write(`\n[harness] ${name} exited unexpectedly: code=${code} signal=${signal}\n`);
      }
    });
    this.children.set(name, child);
    this.recordPids();
    return child;
  }

  logTail(name: string, lines = 30): string {
    const f = join(this.workDir, 'logs', `${name}.log`);
    if (!existsSync(f)) return '';
    return readFileSync(f, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  }

  async stopOne(name: string, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    const child = this.children.get(name);
    this.children.delete(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((done) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('exit', () => {
        clearTimeout(t);
        done();
      });
      child.kill(signal);
    });
    this.recordPids();
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    const names = [...this.children.keys()].reverse();
    for (const n of names) await this.stopOne(n);
  }

  private recordPids(): void {
    const pids = [...this.children.values()].map((c) => c.pid).filter(Boolean);
    writeFileSync(join(this.workDir, 'children.pids'), pids.join('\n'));
  }
}

/** Polls `check` until it resolves true; throws with `describe()` (e.g. a log tail) on timeout. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string = () => '',
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      lastErr = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}` +
      (lastErr ? ` (last error: ${String((lastErr as Error).message ?? lastErr)})` : '') +
      (describe() ? `\n--- log tail ---\n${describe()}` : ''),
  );
}
