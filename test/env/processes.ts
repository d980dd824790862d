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
import { onExitSync } from './exit-teardown.js';
import { mountsUnder, NODE_STATE_FILE, procStartTime, sweepNodeDir } from './node-sweep.js';

/** Prefix of every harness work dir in the system temp dir; used to reap leftovers of killed runs. */
export const WORKDIR_PREFIX = 'nxt-env-';

/** Ports this process has handed out; never handed out twice. */
const handedOut = new Set<number>();

/** The kernel's ephemeral range: ports the kernel gives to outgoing connections and `listen(0)`. */
function ephemeralRange(): [number, number] {
  try {
    const [lo = NaN, hi = NaN] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi) && lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux: fall through
  }
  return [32768, 60999];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A loopback port that is free now and stays free until its user binds it: chosen at random *below* the
 * kernel's ephemeral range, so the kernel does not hand it to an outgoing connection (to the API server, to
 * PostgreSQL) in the window between this check and the child's bind. `listen(0)` would pick from the ephemeral
 * range, and CI once lost the operator's health port that way (EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  const [ephemeralLo] = ephemeralRange();
  const lo = 15000;
  const hi = Math.max(lo + 1000, ephemeralLo - 1);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lo + Math.floor(Math.random() * (hi - lo));
    if (handedOut.has(port)) continue;
    handedOut.add(port); // before the await: concurrent callers must not pick it too
    if (await canListen(port)) return port;
    handedOut.delete(port);
  }
  throw new Error(`no free loopback port in ${lo}-${hi}`);
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
      for (const pid of recordedChildrenAlive(dir, readFileSync(pidsFile, 'utf8'))) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    if (existsSync(join(dir, NODE_STATE_FILE))) {
      // a real node (test/env/real-node.ts): its containers, shims, mounts, bridge and cgroups outlive it
      try {
        sweepNodeDir(dir);
      } catch {
        continue; // something stayed mounted: never delete through a mount
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The pids in a dead run's children.pids (`dir`/children.pids: "pid starttime" a line) that are still the
 * processes the run started: same pid and same start time (/proc/<pid>/stat field 22), so a pid reused by
 * anything else since (another run's etcd, hours later) is never killed. A line without a start time (a file
 * written before they were recorded) counts only when the process's command line names `dir`.
 */
export function recordedChildrenAlive(dir: string, text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const [pidText, start] = line.trim().split(/\s+/);
    const pid = Number(pidText);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !alive(pid)) continue;
    if (start !== undefined) {
      if (procStartTime(pid) === start) out.push(pid);
      continue;
    }
    try {
      if (
        readFileSync(`/proc/${pid}/cmdline`, 'utf8')
          .split('\0')
          .some((a) => a.endsWith(dir) || a.includes(`${dir}/`))
      )
        out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

/** True while `pid` exists and is not a zombie (a child this process has not reaped counts as gone). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** How long the synchronous teardown gives processes after SIGTERM before SIGKILL. */
const SIGTERM_GRACE_MS = 3000;

export class ProcessGroup {
  readonly children = new Map<string, ChildProcess>();
  private stopping = false;
  private unregisterExit: (() => void) | undefined;

  constructor(readonly workDir: string) {
    writeFileSync(join(workDir, 'owner.pid'), String(process.pid));
    // If this process ends before stopAll() (a signal, process.exit), kill what we started and remove the work
    // dir synchronously, as reapStaleRuns() would for a dead owner (test/env/exit-teardown.ts).
    this.registerExit();
  }

  private registerExit(): void {
    this.unregisterExit ??= onExitSync(
      `work dir ${this.workDir}`,
      () => this.removeSync(),
      () => this.signalAll(),
    );
  }

  private releaseExit(): void {
    this.unregisterExit?.();
    this.unregisterExit = undefined;
  }

  /** When the children got SIGTERM from signalAll, the time they get SIGKILL (removeSync). */
  private killAt: number | undefined;

  private runningPids(): number[] {
    return [...this.children.values()]
      .filter((c) => c.exitCode === null && c.signalCode === null && c.pid)
      .map((c) => c.pid!);
  }

  /**
   * SIGTERM to every child still running, once; removeSync sends SIGKILL `graceMs` later. The exit teardown
   * calls this for every group before the first removeSync, so all groups share one grace time.
   */
  signalAll(graceMs = SIGTERM_GRACE_MS): void {
    if (this.killAt !== undefined) return;
    this.stopping = true;
    this.killAt = Date.now() + graceMs;
    for (const pid of this.runningPids()) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
  }

  /**
   * Synchronous teardown: SIGTERM to every child still running (unless signalAll did already), SIGKILL at the
   * end of the grace time, then the work dir (a real node's by node-sweep.ts's sweep: containers, mounts,
   * bridge, cgroups, kernel settings). Throws if something stayed (then the directory is kept).
   */
  removeSync(graceMs = SIGTERM_GRACE_MS): void {
    this.signalAll(graceMs);
    const pids = this.runningPids();
    while (pids.some(running) && Date.now() < this.killAt!) sleepSync(50);
    for (const pid of pids.filter(running)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    const killDeadline = Date.now() + 2000;
    while (pids.some(running) && Date.now() < killDeadline) sleepSync(20);
    this.releaseExit();
    if (existsSync(join(this.workDir, NODE_STATE_FILE))) {
      sweepNodeDir(this.workDir, (m) => console.error(`[exit-teardown] ${m}`));
      return;
    }
    if (process.env.NXT_KEEP_WORKDIR === 'true' || !existsSync(this.workDir)) return;
    const mounts = mountsUnder(this.workDir);
    if (mounts.length) throw new Error(`${this.workDir} still has mounts: ${mounts.join(', ')}`);
    rmSync(this.workDir, { recursive: true, force: true });
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
    this.registerExit();
    const child = spawn(bin, argv as string[], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    // Both streams into one file, which is ended once the child has exited and both are drained ('close'):
    // with pipe()'s default the first stream to end ended the file, and the exit note below then threw
    // ERR_STREAM_WRITE_AFTER_END in the harness process (seen when Ctrl-C hit the whole process group).
    child.stdout?.pipe(out, { end: false });
    child.stderr?.pipe(out, { end: false });
    child.on('exit', (code, signal) => {
      if (!this.stopping && this.children.get(name) === child && !out.writableEnded) {
        out.write(`\n[harness] ${name} exited unexpectedly: code=${code} signal=${signal}\n`);
      }
    });
    child.on('close', () => out.end());
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

  /**
   * Stops every child (newest first). The owner removes the work dir right after (in the same tick), so the
   * exit-time clean-up is no longer needed.
   */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const names = [...this.children.keys()].reverse();
    for (const n of names) await this.stopOne(n);
    this.releaseExit();
  }

  private recordPids(): void {
    // with each pid its start time: reapStaleRuns kills a listed pid only while it is still that process
    const pids = [...this.children.values()]
      .map((c) => c.pid)
      .filter((p): p is number => Boolean(p))
      .map((p) => `${p} ${procStartTime(p) ?? ''}`.trim());
    // the work dir is gone when the synchronous teardown (removeSync) ran while an async stop was under way
    if (existsSync(this.workDir)) writeFileSync(join(this.workDir, 'children.pids'), pids.join('\n'));
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
