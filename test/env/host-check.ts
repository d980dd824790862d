/**
 * What the test harness may leave on the host, as a snapshot to compare before and after a test run. .ci/run
 * saves one before `npm test` and compares after it: anything new (a harness work dir, a mount or process
 * naming one, a real node's bridge or cgroup, kernel settings, kubelet host paths, the real-node machine
 * record, iptables rules) fails CI even when every test passed.
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

export function hostSnapshot(): HostSnapshot {
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
    sysctls: readSysctls(),
    iptables: iptablesRules(),
  };
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
  for (const [k, v] of Object.entries(before.sysctls))
    if (after.sysctls[k] !== undefined && after.sysctls[k] !== v)
      out.push(`kernel setting ${k} = ${after.sysctls[k]} (was ${v})`);
  if (before.iptables !== after.iptables) {
    const b = new Set((before.iptables ?? '').split('\n'));
    const a = new Set((after.iptables ?? '').split('\n'));
    for (const l of a) if (!b.has(l)) out.push(`iptables rule added: ${l}`);
    for (const l of b) if (!a.has(l)) out.push(`iptables rule removed: ${l}`);
  }
  return out;
}

if (process.argv[1]?.endsWith('host-check.ts')) {
  const [cmd, file] = process.argv.slice(2);
  if (cmd === 'save' && file) {
    writeFileSync(file, JSON.stringify(hostSnapshot(), null, 2));
  } else if (cmd === 'compare' && file) {
    const left = hostLeftovers(JSON.parse(readFileSync(file, 'utf8')) as HostSnapshot, hostSnapshot());
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
