/**
 * What the test harness may leave on the host, as a snapshot to compare before and after a test run. .ci/run
 * saves one before `npm test` and compares after it: anything new (a harness work dir, a mount or process
 * naming one, a real node's bridge or cgroup, kernel settings, kubelet host paths, the real-node machine
 * record, iptables rules) fails CI even when every test passed. Only what the harness does counts: a kernel
 * setting changed to the kubelet's value, an added iptables rule; never a false red for something that went.
 *
 *   npx tsx test/env/host-check.ts save .tmp/host-before.json
 *   npx tsx test/env/host-check.ts compare .tmp/host-before.json     # exit 1 and a list when something is left
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cgroupHierarchies,
  HOST_PATH_MARKER,
  iptablesRules,
  KUBELET_HOST_PATHS,
  KUBELET_SYSCTL_VALUES,
  type MachineRecord,
  readMachineRecord,
  realMachineIo,
  readSysctls,
} from './node-sweep.js';
import { WORKDIR_PREFIX } from './processes.js';

export interface HostSnapshot {
  workDirs: string[];
  mounts: string[];
  processes: string[];
  links: string[];
  cgroups: string[];
  hostPaths: string[];
  machineRecord: boolean;
  /** The work dirs of the real nodes the machine record lists (running now, on this run or another). */
  machineUsers?: string[];
  sysctls: Record<string, string>;
  iptables: string | undefined;
}

const list = (dir: string) => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

export function hostSnapshot(warn: (m: string) => void = () => {}): HostSnapshot {
  const marker = `/${WORKDIR_PREFIX}`;
  const processes: string[] = [];
  for (const p of list('/proc').filter((x) => /^\d+$/.test(x) && Number(x) !== process.pid)) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd.includes(marker)) processes.push(cmd.slice(0, 200));
    } catch {
      // gone
    }
  }
  return {
    workDirs: list(tmpdir()).filter((n) => n.startsWith(WORKDIR_PREFIX)),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m.includes(marker)),
    processes,
    links: list('/sys/class/net').filter((n) => n.startsWith('nxtbr')),
    cgroups: cgroupHierarchies().flatMap((h) =>
      list(h)
        .filter((n) => n.startsWith('nxt-node-'))
        .map((n) => join(h, n)),
    ),
    hostPaths: [...KUBELET_HOST_PATHS, HOST_PATH_MARKER].filter((p) => existsSync(p)),
    machineRecord: existsSync(realMachineIo.recordFile),
    machineUsers: readMachineRecord()?.users ?? [],
    sysctls: readSysctls(),
    iptables: iptablesRules(undefined, warn),
  };
}

/**
 * The snapshot `save` keeps: when a machine record exists (real nodes running, or left by a crashed run), the
 * kernel settings are the machine's own values it saved, not the kubelet's current ones, so a crashed earlier
 * run's values that this run's reapStaleRuns puts back do not count as a change.
 */
export function baselineSnapshot(snap: HostSnapshot, record: MachineRecord | undefined): HostSnapshot {
  return record ? { ...snap, sysctls: { ...snap.sysctls, ...record.sysctls } } : snap;
}

/** What `after` has that `before` did not (new entries, changed settings), one line each. */
export function hostLeftovers(before: HostSnapshot, after: HostSnapshot): string[] {
  const out: string[] = [];
  const added = (what: string, b: string[], a: string[]) => {
    for (const x of a.filter((x) => !b.includes(x))) out.push(`${what} ${x}`);
  };
  added(
    'harness work dir',
    before.workDirs.map((d) => join(tmpdir(), d)),
    after.workDirs.map((d) => join(tmpdir(), d)),
  );
  added('mount', before.mounts, after.mounts);
  added('process', before.processes, after.processes);
  added('network link', before.links, after.links);
  added('cgroup', before.cgroups, after.cgroups);
  added('kubelet host path', before.hostPaths, after.hostPaths);
  if (after.machineRecord && !before.machineRecord)
    out.push(`real-node machine record ${realMachineIo.recordFile}`);
  // a setting counts only when it now differs from the baseline and holds the kubelet's value: something else
  // on the machine may change these settings too. While the machine record lists real nodes (another run's,
  // or this run's: then its work dir is reported above) the kubelet's values are theirs.
  const kubelet: Record<string, string> = KUBELET_SYSCTL_VALUES;
  if (!after.machineUsers?.length)
    for (const [k, v] of Object.entries(before.sysctls)) {
      const now = after.sysctls[k];
      if (now !== undefined && now !== v && now === kubelet[k])
        out.push(`kernel setting ${k} = ${now} (was ${v})`);
    }
  // added rules only: a rule removed during the run is someone else's change (the nodes add none)
  if (before.iptables !== undefined && after.iptables !== undefined) {
    const b = new Set(before.iptables.split('\n'));
    for (const l of new Set(after.iptables.split('\n')))
      if (l && !b.has(l)) out.push(`iptables rule added: ${l}`);
  }
  return out;
}

if (process.argv[1]?.endsWith('host-check.ts')) {
  const [cmd, file] = process.argv.slice(2);
  if (cmd === 'save' && file) {
    const warn = (m: string) => console.error(`host check: ${m}`);
    writeFileSync(file, JSON.stringify(baselineSnapshot(hostSnapshot(warn), readMachineRecord()), null, 2));
  } else if (cmd === 'compare' && file) {
    const warn = (m: string) => console.error(`host check: ${m}`);
    const before = JSON.parse(readFileSync(file, 'utf8')) as HostSnapshot;
    const after = hostSnapshot(warn);
    if (before.iptables === undefined || after.iptables === undefined)
      console.error('host check: iptables rules not compared (not recorded before or after)');
    const left = hostLeftovers(before, after);
    if (left.length) {
      console.error(`the test run left on this host:\n  ${left.join('\n  ')}`);
      process.exit(1);
    }
    console.log('host check: the test run left nothing behind');
  } else {
    console.error('usage: host-check.ts save|compare FILE');
    process.exit(2);
  }
}
