// Forced, synchronous clean-up of a real test node's work dir (test/env/real-node.ts): what is left when the
// kubelet and containerd are gone but their containers, shims, mounts, bridge and cgroups are not (a normal
// stop, Ctrl-C, or a run killed with -9 whose work dir processes.ts's reapStaleRuns finds later). It needs
// neither the kubelet nor containerd, only the state file the node writes before it creates anything.
// No imports from the rest of the harness, so processes.ts can use it.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

/** File in a real node's work dir that names what the node creates outside it. */
export const NODE_STATE_FILE = 'real-node.json';

export interface NodeState {
  /** Name of the node's cgroup (a child of the root of every cgroup hierarchy): the kubelet's cgroupRoot. */
  cgroupName: string;
  /** The Linux bridge the pods' CNI network uses. */
  bridge: string;
  /** Name of the CNI network (prefix of containerd's CNI cache files in /var/lib/cni/results). */
  cniNetwork: string;
  /** containerd's socket (its shims' sockets in /run/containerd/s are named after it). */
  containerdAddress: string;
  /** containerd's state dir (its task dirs name every container and sandbox). */
  containerdState: string;
  /**
   * The kernel settings the kubelet changes at start (KUBELET_SYSCTLS), as they were before the first real
   * node on this machine started (a copy of the machine record's, see MachineRecord); the last node to stop
   * (stop() or the sweep after a crash) writes them back.
   */
  sysctls?: Record<string, string>;
  /**
   * Host paths the harness owns (KUBELET_HOST_PATHS that did not exist before the first node, or marked by
   * HOST_PATH_MARKER): the last node's sweep removes them, deepest first, and nothing that was there before.
   */
  createdHostPaths?: string[];
  /**
   * True when the node registered in the machine record (MachineRecord): then the last node writes sysctls
   * back and removes the host paths; state files of older harness versions restore their own copies.
   */
  machineRecord?: boolean;
}

/**
 * What the kubelet makes outside its --root-dir: the device manager's socket, whose directory is fixed in the
 * kubelet (pluginapi.DevicePluginPath, not configurable). Parents first.
 */
export const KUBELET_HOST_PATHS = [
  '/var/lib/kubelet',
  '/var/lib/kubelet/device-plugins',
  '/var/lib/kubelet/device-plugins/kubelet.sock',
];

/** The paths of `paths` that do not exist now. */
export function absentPaths(paths: readonly string[]): string[] {
  return paths.filter((p) => !existsSync(p));
}

/**
 * Removes `created` (paths this node's kubelet made), deepest first: files and sockets, and directories once
 * empty (another node's socket, or anything put there since, keeps them). Returns what is still there.
 */
export function removeCreatedPaths(created: readonly string[] | undefined): string[] {
  const list = [...(created ?? [])].sort((a, b) => b.length - a.length);
  for (const p of list) {
    try {
      if (statSync(p).isDirectory()) rmdirSync(p);
      else unlinkSync(p);
    } catch {
      // absent, or a directory that is not empty
    }
  }
  return list.filter((p) => existsSync(p));
}

/**
 * Kernel settings the kubelet sets when it starts with protectKernelDefaults unset (its container manager's
 * setupKernelTunables): kernel.panic=10, kernel.panic_on_oops=1, vm.overcommit_memory=1, vm.panic_on_oom=0,
 * kernel.keys.root_maxkeys=1000000, kernel.keys.root_maxbytes=25000000. protectKernelDefaults: true would make
 * the kubelet refuse to start on a machine with the kernel's defaults instead, so the first node records them
 * before its kubelet starts and the last one puts them back (MachineRecord: real nodes of overlapping runs
 * share one record, so the machine's own values are the ones written back, whatever the order of the stops).
 */
export const KUBELET_SYSCTL_VALUES = {
  'kernel.panic': '10',
  'kernel.panic_on_oops': '1',
  'vm.overcommit_memory': '1',
  'vm.panic_on_oom': '0',
  'kernel.keys.root_maxkeys': '1000000',
  'kernel.keys.root_maxbytes': '25000000',
} as const satisfies Record<string, string>;
export const KUBELET_SYSCTLS = Object.keys(KUBELET_SYSCTL_VALUES) as (keyof typeof KUBELET_SYSCTL_VALUES)[];

const sysctlPath = (key: string) => join('/proc/sys', ...key.split('.'));

/** The current values of KUBELET_SYSCTLS (those this kernel has). */
export function readSysctls(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of KUBELET_SYSCTLS) {
    try {
      out[k] = readFileSync(sysctlPath(k), 'utf8').trim();
    } catch {
      // not on this kernel
    }
  }
  return out;
}

/** Settings whose current value differs from `saved`, as `key = now (was before)`. */
export function changedSysctls(
  saved: Record<string, string> | undefined,
  now: Record<string, string> = readSysctls(),
): string[] {
  return Object.entries(saved ?? {})
    .filter(([k, v]) => now[k] !== undefined && now[k] !== v)
    .map(([k, v]) => `${k} = ${now[k]} (was ${v})`);
}

/** Writes `saved` back; returns the settings it could not write. */
export function restoreSysctls(
  saved: Record<string, string> | undefined,
  log: (m: string) => void = () => {},
) {
  const failed: string[] = [];
  const changed = changedSysctls(saved);
  if (changed.length) log(`restoring kernel settings the kubelet changed: ${changed.join(', ')}`);
  for (const [k, v] of Object.entries(saved ?? {})) {
    try {
      if (readFileSync(sysctlPath(k), 'utf8').trim() !== v) writeFileSync(sysctlPath(k), v);
    } catch (e) {
      failed.push(`${k}: ${(e as Error).message}`);
    }
  }
  return failed;
}

/**
 * A marker file the harness puts in a /var/lib/kubelet it creates: a /var/lib/kubelet that holds it is the
 * harness's (left by a run that crashed), so its paths are removed by the last node even though they existed
 * before; one without it belongs to something else on the machine and only what was absent is removed.
 */
export const HOST_PATH_MARKER = '/var/lib/kubelet/.nxt-test-real-node';

/** Machine-wide record of the real nodes running on this machine (tmpfs: it goes with a reboot, as sysctls do). */
export const MACHINE_RECORD_DIR = '/run/nxt-real-node';

/**
 * What real nodes share on one machine: the kernel settings and host paths as they were before the first of
 * them started, and the work dirs of those still running (a refcount). The first node to acquire it saves the
 * machine's values; the last to release it writes them back and removes the harness's host paths. Nodes of two
 * runs that overlap in any order (A starts, B starts, A stops, B stops) so never write a kubelet's values back.
 */
export interface MachineRecord {
  users: string[];
  sysctls: Record<string, string>;
  createdHostPaths: string[];
}

/** The machine's side effects, injectable so the refcount logic is unit-tested without root. */
export interface MachineIo {
  recordFile: string;
  lockFile: string;
  readSysctls(): Record<string, string>;
  restoreSysctls(saved: Record<string, string>): string[];
  /** Host paths the harness owns from now on (creating the marked /var/lib/kubelet if absent). */
  claimHostPaths(): string[];
  removeHostPaths(paths: string[]): string[];
  /** False for a user whose work dir is gone (removed by hand): it no longer counts. */
  userExists(dir: string): boolean;
}

export const realMachineIo: MachineIo = {
  recordFile: join(MACHINE_RECORD_DIR, 'state.json'),
  lockFile: join(MACHINE_RECORD_DIR, 'lock'),
  readSysctls,
  restoreSysctls: (saved) => restoreSysctls(saved),
  claimHostPaths: () => {
    const marked = existsSync(HOST_PATH_MARKER);
    const created = marked ? [...KUBELET_HOST_PATHS] : absentPaths(KUBELET_HOST_PATHS);
    if (!existsSync(KUBELET_HOST_PATHS[0]!) || marked) {
      mkdirSync(KUBELET_HOST_PATHS[0]!, { recursive: true });
      writeFileSync(
        HOST_PATH_MARKER,
        'made by the nxt-rollback-operator test harness (test/env/node-sweep.ts)\n',
      );
      created.push(HOST_PATH_MARKER);
    }
    return [...new Set(created)];
  },
  removeHostPaths: (paths) => removeCreatedPaths(paths),
  userExists: (dir) => existsSync(dir),
};

function alivePid(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The start time of process `pid` (field 22 of /proc/<pid>/stat, clock ticks since boot): with the pid it
 * names one process, not whichever process reuses the pid later. Undefined when the process is gone.
 */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name (which may hold spaces and parentheses) start at field 3
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
  } catch {
    return undefined;
  }
}

/** A lock file as a waiter saw it (its identity). */
export interface LockSeen {
  ino: number;
  mtimeMs: number;
  content: string;
}

/** How long an unreadable (empty, partly written) lock file may exist before it is broken. */
const LOCK_UNREADABLE_GRACE_MS = 2_000;

/**
 * True when the lock whose content is `content` and whose file is `ageMs` old no longer protects anything: no
 * valid holder written after the grace time (its holder died between creating and writing it), a holder that
 * is dead, or a live pid whose start time differs from the one recorded (the pid was reused).
 */
export function lockIsStale(content: string, ageMs: number): boolean {
  const [pidText, start] = content.trim().split(/\s+/);
  const holder = Number(pidText);
  if (!Number.isInteger(holder) || holder <= 0) return ageMs > LOCK_UNREADABLE_GRACE_MS;
  if (!alivePid(holder)) return true;
  const now = procStartTime(holder);
  return start !== undefined && now !== undefined && now !== start;
}

/**
 * Breaks the stale lock file `lockFile` as it was when judged stale (`seen`: inode, mtime, content; an inode
 * alone is reused at once on tmpfs): renames it to a unique name (so a second waiter that judged the same file
 * cannot remove the lock a first one created meanwhile), and when the file renamed turns out to be another (a
 * fresh lock), links it back. True when broken.
 */
export function breakStaleLock(lockFile: string, seen: LockSeen): boolean {
  const aside = `${lockFile}.stale-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  try {
    renameSync(lockFile, aside);
  } catch {
    return false; // gone meanwhile: retry
  }
  try {
    const st = statSync(aside);
    if (st.ino === seen.ino && st.mtimeMs === seen.mtimeMs && readFileSync(aside, 'utf8') === seen.content)
      return true;
    // not the file judged stale: someone's fresh lock; put it back unless yet another lock is there
    try {
      linkSync(aside, lockFile);
    } catch {
      // EEXIST: a newer lock; the one moved aside was broken by someone else's mistake too, nothing to restore
    }
    return false;
  } finally {
    rmSync(aside, { force: true });
  }
}

/**
 * Runs `fn` holding the machine record's lock: an exclusively created lock file naming its holder as
 * "pid starttime" (Node has no flock(2); the section is short and synchronous). A stale lock (lockIsStale:
 * holder dead, reused pid, or never written) is broken with breakStaleLock.
 */
export function withMachineLock<T>(io: MachineIo, fn: () => T, waitMs = 60_000): T {
  mkdirSync(dirname(io.lockFile), { recursive: true });
  const deadline = Date.now() + waitMs;
  const mine = `${process.pid} ${procStartTime(process.pid) ?? ''}`.trim();
  for (;;) {
    try {
      const fd = openSync(io.lockFile, 'wx');
      writeSync(fd, mine);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let seen: LockSeen;
      try {
        const st = statSync(io.lockFile);
        seen = { ino: st.ino, mtimeMs: st.mtimeMs, content: readFileSync(io.lockFile, 'utf8') };
      } catch {
        continue; // released meanwhile
      }
      const content = seen.content;
      if (lockIsStale(content, Date.now() - seen.mtimeMs)) {
        breakStaleLock(io.lockFile, seen);
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`${io.lockFile} held by pid ${content || '(none written)'} for ${waitMs / 1000} s`);
      sleepSync(20);
    }
  }
  try {
    return fn();
  } finally {
    // only our own lock: a waiter that wrongly broke it may have created another meanwhile
    try {
      if (readFileSync(io.lockFile, 'utf8') === mine) rmSync(io.lockFile, { force: true });
    } catch {
      // gone
    }
  }
}

export function readMachineRecord(io: MachineIo = realMachineIo): MachineRecord | undefined {
  try {
    return JSON.parse(readFileSync(io.recordFile, 'utf8')) as MachineRecord;
  } catch {
    return undefined;
  }
}

function writeMachineRecord(io: MachineIo, rec: MachineRecord | undefined): void {
  if (!rec) {
    rmSync(io.recordFile, { force: true });
    return;
  }
  mkdirSync(dirname(io.recordFile), { recursive: true });
  writeFileSync(io.recordFile + '.tmp', JSON.stringify(rec, null, 2));
  renameSync(io.recordFile + '.tmp', io.recordFile);
}

/**
 * Registers the node in `dir` as a user of the machine record, before its kubelet starts; the first user saves
 * the kernel settings and claims the host paths. Returns the record (its values go in the node's state file).
 */
export function acquireMachine(dir: string, io: MachineIo = realMachineIo): MachineRecord {
  return withMachineLock(io, () => {
    const prev = readMachineRecord(io);
    const users = (prev?.users ?? []).filter((u) => u !== dir && io.userExists(u));
    const rec: MachineRecord =
      prev && users.length
        ? { ...prev, users: [...users, dir] }
        : // the first node (or the first after nodes whose dirs vanished): the machine's own values now.
          // A record left with no live users by a crash keeps its saved values: the kubelet's are current.
          {
            users: [dir],
            sysctls: prev?.sysctls ?? io.readSysctls(),
            createdHostPaths: [...new Set([...(prev?.createdHostPaths ?? []), ...io.claimHostPaths()])],
          };
    writeMachineRecord(io, rec);
    return rec;
  });
}

/**
 * Removes the node in `dir` from the machine record (after its kubelet is gone). The last user writes the
 * kernel settings back, removes the harness's host paths and deletes the record. Returns what could not be
 * put back (settings, paths); [] when done or when other nodes still run.
 */
export function releaseMachine(dir: string, io: MachineIo = realMachineIo): string[] {
  return withMachineLock(io, () => {
    const rec = readMachineRecord(io);
    if (!rec) return [];
    const users = rec.users.filter((u) => u !== dir && io.userExists(u));
    if (users.length) {
      writeMachineRecord(io, { ...rec, users });
      return [];
    }
    const failed = [
      ...io.restoreSysctls(rec.sysctls).map((f) => `kernel setting ${f}`),
      ...io.removeHostPaths(rec.createdHostPaths).map((p) => `host path ${p}`),
    ];
    // kept (with no users) when something could not be put back: the next node starts from its values
    writeMachineRecord(io, failed.length ? { ...rec, users: [] } : undefined);
    return failed;
  });
}

/** Where the kubelet links container logs; fixed in the kubelet (not configurable). */
const CONTAINER_LOG_LINKS = '/var/log/containers';
const CNI_RESULTS = '/var/lib/cni/results';
/**
 * Directories outside the work dir that containerd (shim sockets), the CNI cache and the kubelet create; a
 * sweep removes them when they are empty, children first.
 */
const SHARED_DIRS = [
  '/run/containerd/s',
  '/run/containerd',
  CNI_RESULTS,
  '/var/lib/cni',
  CONTAINER_LOG_LINKS,
];

export function readNodeState(dir: string): NodeState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, NODE_STATE_FILE), 'utf8')) as NodeState;
  } catch {
    return undefined;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Mount points from /proc/self/mountinfo, in mount order, with the kernel's octal escapes decoded. */
function mountinfo(): { mountPoint: string; fsType: string }[] {
  const decode = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const sep = f.indexOf('-');
      return { mountPoint: decode(f[4] ?? ''), fsType: f[sep + 1] ?? '' };
    });
}

/** Every mount point that is `dir` or below it, in mount order. */
export function mountsUnder(dir: string): string[] {
  return mountinfo()
    .map((m) => m.mountPoint)
    .filter((m) => m === dir || m.startsWith(dir + '/'));
}

/** Mount points of every cgroup hierarchy (v1 controllers, name=systemd, and the v2 tree). */
export function cgroupHierarchies(): string[] {
  return [
    ...new Set(
      mountinfo()
        .filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2')
        .map((m) => m.mountPoint),
    ),
  ];
}

function cgroupDirs(state: NodeState): string[] {
  return cgroupHierarchies()
    .map((h) => join(h, state.cgroupName))
    .filter((d) => existsSync(d));
}

function walkDirs(dir: string): string[] {
  let out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    try {
      if (statSync(p).isDirectory()) out = out.concat(walkDirs(p), [p]);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Processes of the node: those whose command line names its work dir (the kubelet, containerd, the
 * containerd shims, runc) and every process in its cgroups (the containers).
 */
export function nodeProcesses(dir: string, state: NodeState | undefined): { pid: number; cmd: string }[] {
  const pids = new Map<number, string>();
  const cmdline = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      return '';
    }
  };
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cmd = cmdline(pid);
    if (cmd.includes(dir + '/')) pids.set(pid, cmd);
  }
  if (state) {
    for (const root of cgroupDirs(state)) {
      for (const d of [root, ...walkDirs(root)]) {
        try {
          for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
            const pid = Number(p);
            if (pid !== process.pid && !pids.has(pid)) pids.set(pid, cmdline(pid) || `pid ${pid}`);
          }
        } catch {
          // not readable or gone
        }
      }
    }
  }
  return [...pids].map(([pid, cmd]) => ({ pid, cmd }));
}

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

function containerLogLinks(dir: string): string[] {
  if (!existsSync(CONTAINER_LOG_LINKS)) return [];
  return readdirSync(CONTAINER_LOG_LINKS)
    .map((f) => join(CONTAINER_LOG_LINKS, f))
    .filter((f) => {
      try {
        return readlinkSync(f).startsWith(dir + '/');
      } catch {
        return false;
      }
    });
}

/** IDs of the node's containers and sandboxes, from containerd's task dirs. */
function containerIds(state: NodeState): string[] {
  const d = join(state.containerdState, 'io.containerd.runtime.v2.task', 'k8s.io');
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

/** containerd's CNI cache files of the node's sandboxes (its network's and the loopback's). */
function cniCacheFiles(state: NodeState, ids = containerIds(state)): string[] {
  if (!existsSync(CNI_RESULTS)) return [];
  return readdirSync(CNI_RESULTS)
    .filter((f) => f.startsWith(state.cniNetwork + '-') || ids.some((id) => f.includes(`-${id}-`)))
    .map((f) => join(CNI_RESULTS, f));
}

/** Sockets of the node's containerd shims (containerd 1.6 names them sha256(address/namespace/id)). */
function shimSockets(state: NodeState, ids = containerIds(state)): string[] {
  return ids
    .map((id) =>
      join(
        '/run/containerd/s',
        createHash('sha256').update(`${state.containerdAddress}/k8s.io/${id}`).digest('hex'),
      ),
    )
    .filter((f) => existsSync(f));
}

/**
 * What of the node is still there outside its work dir's plain files: processes, mounts, the bridge, cgroups,
 * kubelet log links, CNI cache files, kernel settings not back to what they were before its kubelet started,
 * and the work dir itself. Empty once the node is fully gone.
 */
export function nodeLeftovers(dir: string, state: NodeState | undefined = readNodeState(dir)): string[] {
  const out: string[] = [];
  for (const p of nodeProcesses(dir, state)) out.push(`process ${p.pid}: ${p.cmd.slice(0, 160)}`);
  for (const m of mountsUnder(dir)) out.push(`mount ${m}`);
  if (state) {
    if (linkExists(state.bridge)) out.push(`network link ${state.bridge}`);
    for (const c of cgroupDirs(state)) out.push(`cgroup ${c}`);
    for (const f of cniCacheFiles(state)) out.push(`CNI cache file ${f}`);
    for (const f of shimSockets(state)) out.push(`shim socket ${f}`);
    const rec = state.machineRecord ? readMachineRecord() : undefined;
    if (rec?.users.includes(dir)) out.push(`machine record ${realMachineIo.recordFile} still lists ${dir}`);
    // kernel settings and host paths are shared: they are back only once the last node is gone
    if (!rec?.users.some((u) => u !== dir && existsSync(u))) {
      for (const c of changedSysctls(state.sysctls)) out.push(`kernel setting ${c}`);
      for (const p of (state.createdHostPaths ?? []).filter((f) => existsSync(f)))
        out.push(`path made by the kubelet ${p}`);
    }
  }
  for (const l of containerLogLinks(dir)) out.push(`log link ${l}`);
  if (existsSync(dir)) out.push(`directory ${dir}`);
  return out;
}

/**
 * Removes everything of the node in `dir`: kills its processes (containers, shims, containerd, kubelet),
 * unmounts what is mounted below `dir` (container root filesystems, /dev/shm of pods, network namespaces,
 * kubelet volumes), deletes its bridge, cgroups, log links and CNI cache files, writes back the kernel
 * settings its kubelet changed, then the directory. Throws if
 * something could not be removed (and then leaves the directory, so nothing is deleted through a mount).
 */
export function sweepNodeDir(dir: string, log: (m: string) => void = () => {}): void {
  const state = readNodeState(dir);
  for (let i = 0; i < 100; i++) {
    const procs = nodeProcesses(dir, state);
    if (!procs.length) break;
    if (i === 0) log(`killing ${procs.length} process(es) of the real node`);
    for (const p of procs) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    sleepSync(100);
  }
  for (let pass = 0; pass < 5; pass++) {
    const mounts = mountsUnder(dir).reverse();
    if (!mounts.length) break;
    if (pass === 0) log(`unmounting ${mounts.length} mount(s) below ${dir}`);
    for (const m of mounts) {
      try {
        execFileSync('umount', [m], { stdio: 'ignore' });
      } catch {
        try {
          execFileSync('umount', ['--lazy', m], { stdio: 'ignore' });
        } catch {
          // reported below if it stays
        }
      }
    }
  }
  if (state) {
    if (linkExists(state.bridge)) {
      try {
        execFileSync('ip', ['link', 'delete', state.bridge], { stdio: 'ignore' });
      } catch {
        // reported below
      }
    }
    for (const root of cgroupDirs(state)) {
      for (const d of [...walkDirs(root), root]) {
        for (let i = 0; i < 20; i++) {
          try {
            rmdirSync(d);
            break;
          } catch (e) {
            // rmdir of a cgroup fails with EBUSY until its last (zombie) process is reaped
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
            sleepSync(100);
          }
        }
      }
    }
    for (const f of [...cniCacheFiles(state), ...shimSockets(state)]) rmSync(f, { force: true });
    // after the kubelet is gone (it sets them only when it starts); the last node on the machine does it
    if (state.machineRecord) {
      for (const f of releaseMachine(dir)) log(`could not put back ${f}`);
    } else {
      for (const f of restoreSysctls(state.sysctls, log)) log(`could not restore kernel setting ${f}`);
      removeCreatedPaths(state.createdHostPaths);
    }
  }
  for (const l of containerLogLinks(dir)) {
    try {
      unlinkSync(l);
    } catch {
      // gone
    }
  }
  // directories containerd, the CNI plugins and the kubelet create outside the work dir, once empty
  for (const d of SHARED_DIRS) {
    try {
      rmdirSync(d);
    } catch {
      // not empty (another node, or a system containerd), or absent
    }
  }
  const left = nodeLeftovers(dir, state).filter((l) => !l.startsWith('directory '));
  if (left.length) throw new Error(`the real node left behind:\n${left.join('\n')}`);
  if (process.env.NXT_KEEP_WORKDIR !== 'true') rmSync(dir, { recursive: true, force: true });
}

/** The iptables dumps compared: nft and, when the host has them, legacy tables (iptables-nft only warns of those). */
export const IPTABLES_SAVE_COMMANDS = [
  'iptables-save',
  'ip6tables-save',
  'iptables-legacy-save',
  'ip6tables-legacy-save',
] as const;

const runSave = (cmd: string) =>
  execFileSync(cmd, [], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 }).toString();

/**
 * The host's iptables and ip6tables rules (nft and legacy: IPTABLES_SAVE_COMMANDS), without comments and
 * packet counters, to compare before and after a node: the kubelet runs with makeIPTablesUtilChains: false and
 * the pods' network has no NAT, so a node must leave them as it found them. A command that is not installed is
 * skipped (legacy lines are prefixed with their command); undefined when none is installed, or when one fails
 * otherwise (ip6tables-save without IPv6 netfilter, say): never throws, `warn` says why.
 */
export function iptablesRules(
  run: (cmd: string) => string = runSave,
  warn: (m: string) => void = () => {},
): string | undefined {
  const out: string[] = [];
  let found = false;
  for (const cmd of IPTABLES_SAVE_COMMANDS) {
    let text: string;
    try {
      text = run(cmd);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      warn(`${cmd} failed, iptables rules not recorded: ${(e as Error).message.split('\n')[0]}`);
      return undefined;
    }
    found = true;
    const prefix = cmd === 'iptables-save' ? '' : `[${cmd}] `;
    out.push(
      ...text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => prefix + l.replace(/\[\d+:\d+\]/g, '[0:0]')),
    );
  }
  return found ? out.join('\n') : undefined;
}
