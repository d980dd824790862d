/** Pure parts of `npm test`'s sharding (test/env/run-tests.ts, test/env/sequencer.ts). */
import { basename } from 'node:path';

// Seconds each slow integration file took in a full run (the .tmp/vitest-results.json `bash .ci/run` writes;
// `npx tsx hack/test-weights.ts` prints a fresh table from it). Files not listed count as DEFAULT_WEIGHT. Only used to
// balance shards: a stale table costs balance, never a test.
export const WEIGHTS: Record<string, number> = {
  'rollbackplan-triggers': 162,
  // measured alone or estimated, not yet in a full run
  'backup-s3': 120,
  'backupschedule-s3': 100,
  'backupschedule-s3-probe': 90,
  'probe-storage-s3': 36,
  's3-server': 40,
  'bench-restore': 162,
  'bench-backup': 73,
  'cli-plans': 130,
  'operator-runtime': 100,
  'operator-leadership': 74,
  'cli-drill': 72,
  'bench-scale': 66,
  'rollbackplan-exactly-once': 60,
  'gitops-revert': 59,
  'docs-examples': 58,
  'gitops-flux': 56,
  'gitops-suspend': 56,
  'cli-backups': 55,
  invariant: 54,
  'cli-health': 53,
  'rollbackplan-full': 53,
  'silent-inputs': 48,
  'backupschedule-runs': 42,
  'monitoring-package': 40,
  'triggers-monitoring': 40,
  'operator-liveness': 39,
  'rollbackplan-resume': 39,
  notifications: 38,
  'cli-validate': 37,
  backupschedule: 34,
  'cli-emergency-scopes': 28,
  'alertmanager-receiver': 25,
  'operator-rbac': 25,
  'backup-retention': 22,
  'rollbackplan-app': 19,
  'runner-overrides': 16,
};
const DEFAULT_WEIGHT = 8;
/** Unit files run in parallel in well under a second each. */
const UNIT_WEIGHT = 0.2;

export function weightOf(project: string, file: string): number {
  if (project === 'unit') return UNIT_WEIGHT;
  return WEIGHTS[basename(file).replace(/\.test\.ts$/, '')] ?? DEFAULT_WEIGHT;
}

/**
 * Longest-first greedy split of `files` into `count` shards by weight; returns the files of shard `index`
 * (1-based). Deterministic: ties are broken by path, so every shard process computes the same split.
 */
export function weightedShard<T>(
  files: T[],
  key: (f: T) => { project: string; path: string },
  index: number,
  count: number,
): T[] {
  const items = files
    .map((f) => ({ f, ...key(f) }))
    .map((i) => ({ ...i, weight: weightOf(i.project, i.path) }))
    .sort((a, b) => b.weight - a.weight || (a.project + a.path).localeCompare(b.project + b.path));
  const shards = Array.from({ length: count }, () => ({ items: [] as T[], total: 0 }));
  for (const i of items) {
    const lightest = shards.reduce((min, s) => (s.total < min.total ? s : min));
    lightest.items.push(i.f);
    lightest.total += i.weight;
  }
  return shards[index - 1]?.items ?? [];
}

/** Reporter options belong to the merged report; everything else (filters, --project, …) to each shard. */
const isReporterArg = (a: string) => /^--(reporter|outputFile)([.=]|$)/.test(a);
export function splitArgs(all: string[]): { reporter: string[]; rest: string[] } {
  const reporter: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < all.length; i++) {
    const a = all[i]!;
    if (isReporterArg(a)) {
      reporter.push(a);
      // `--reporter json` (value as the next argument)
      if (!a.includes('=') && all[i + 1] !== undefined && !all[i + 1]!.startsWith('-'))
        reporter.push(all[++i]!);
    } else rest.push(a);
  }
  return { reporter, rest };
}

/** Projects that run alone after the sharded ones (each brings its own heavy environment). */
export const RUN_AFTER = ['e2e'];
/** Projects `npm test` runs when none is named. */
export const DEFAULT_PROJECTS = ['unit', 'integration', ...RUN_AFTER];

/** Takes `--project X` / `--project=X` out of the arguments. */
export function splitProjects(all: string[]): { projects: string[]; rest: string[] } {
  const projects: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < all.length; i++) {
    const a = all[i]!;
    if (a.startsWith('--project=')) projects.push(a.slice('--project='.length));
    else if (a === '--project' && all[i + 1] !== undefined) projects.push(all[++i]!);
    else rest.push(a);
  }
  return { projects, rest };
}

/** Which of the named projects (all when none) run as shards, and which alone afterwards, in order. */
export function phasesOf(projects: string[]): { sharded: string[]; after: string[] } {
  const named = projects.length ? projects : DEFAULT_PROJECTS;
  return {
    sharded: named.filter((p) => !RUN_AFTER.includes(p)),
    after: RUN_AFTER.filter((p) => named.includes(p)),
  };
}
