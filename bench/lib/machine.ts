// The machine a benchmark ran on, printed with every report.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  date: string;
  nproc: number;
  cpu: string;
  memGiB: number;
  kernel: string;
  node: string;
  /** 1/5/15-minute load averages when the benchmark started. */
  loadStart: string;
}

export const loadAverage = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

export function machineInfo(): MachineInfo {
  let nproc = os.availableParallelism();
  try {
    nproc = Number(execFileSync('nproc').toString().trim());
  } catch {
    /* keep availableParallelism */
  }
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch {
    /* not Linux */
  }
  return {
    date: new Date().toISOString(),
    nproc,
    cpu,
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadStart: loadAverage(),
  };
}

/** A Markdown bullet list of the machine and any extra facts (versions of the software under test). */
export function machineMarkdown(m: MachineInfo, extra: Record<string, string> = {}): string {
  const rows: [string, string][] = [
    ['date', m.date],
    ['CPUs (`nproc`)', `${m.nproc} (${m.cpu})`],
    ['memory', `${m.memGiB} GiB`],
    ['kernel', m.kernel],
    ['node', m.node],
    ['load average 1/5/15 min', `${m.loadStart} at start, ${loadAverage()} at end`],
    ...Object.entries(extra),
  ];
  return rows.map(([k, v]) => `- ${k}: ${v}`).join('\n');
}

/**
 * The commit the benchmark ran against, e.g. "0ad93e9" or "0ad93e9 + uncommitted changes in operator/":
 * results describe the code that was loaded, which in a busy repository is not always HEAD a minute later.
 */
export function codeRevision(paths: string[] = ['operator']): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', ...paths])
      .toString()
      .trim();
    return dirty ? `${head} + uncommitted changes in ${paths.join(', ')}` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}
