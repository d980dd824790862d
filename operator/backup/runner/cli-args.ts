import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidBackupIdError, LATEST_BACKUP_ID, validateBackupId } from './backup-id.js';
import { SHORT_ID_PATTERN } from './database-admin.js';
import type { SqlAssertion } from './restore-validation.js';
import type { RetentionPolicy } from './retention.js';
import type { RestoreMode } from './restore.js';

export const RUNNER_COMMANDS = [
  'backup',
  'verify',
  'restore',
  'test-restore',
  'prune',
  'probe-storage',
] as const;
export type RunnerCommand = (typeof RUNNER_COMMANDS)[number];

export const DEFAULT_TERMINATION_LOG = '/dev/termination-log';
/** Where the termination message goes when no --termination-log is given, if set. */
export const TERMINATION_LOG_ENV = 'TERMINATION_LOG_PATH';

export const USAGE = `usage (connection only from env: PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGSSLMODE or DATABASE_URL;
tools from PG_BIN_DIR or PATH; every command also takes --termination-log PATH, default $TERMINATION_LOG_PATH
or else /dev/termination-log; --storage-url s3://BUCKET[/PREFIX] instead of --storage-dir DIR stores in S3, configured by
AWS_REGION NXT_S3_ENDPOINT NXT_S3_FORCE_PATH_STYLE NXT_S3_SSE NXT_S3_SSE_KMS_KEY_ID NXT_S3_CA_FILE NXT_S3_OBJECT_LOCK_MODE
NXT_S3_OBJECT_LOCK_DAYS and the AWS SDK's credentials: AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY [AWS_SESSION_TOKEN] or its chain):
  backup        --storage-dir DIR --id ID [--keep-last N] [--keep-daily N] [--keep-weekly N]
  verify        --storage-dir DIR --id ID|latest
  restore       --storage-dir DIR --id ID|latest --mode inPlace|newDatabaseSwap [--sql-assertions-json JSON]
                [--maintenance-db NAME] [--short-id 6HEX] [--keep-previous-databases N (default 1)]
  test-restore  --storage-dir DIR --id ID|latest [--sql-assertions-json JSON] [--maintenance-db NAME]
                [--short-id 6HEX]
  prune         --storage-dir DIR [--keep-last N] [--keep-daily N] [--keep-weekly N] [--dry-run]
                [--leftovers-older-than-seconds N (default 7200)]
  probe-storage --storage-url s3://BUCKET[/PREFIX]   (S3 only; no database: checks the bucket, credentials, listing,
                a write and delete of <prefix>.nxt-probe.json, the owner object read-only, and Object Lock when asked)
--id latest: the newest backup whose manifest says verified (by finishedAt, then id); "latest" is no valid
backup id. backup --keep-*: after a verified backup, prune as prune does, never the new backup; a failed
prune is reported but does not fail the backup. Without any --keep-* nothing is pruned.
Environment set by the operator: NXT_SCHEDULE_NAME/NXT_SCHEDULE_UID (prune, backup --keep-* and --id latest
consider only that schedule's backups; --id latest never picks a safety backup), NXT_PLAN_UID/NXT_PLAN_NAME (verify and restore pin the backup for the plan),
NXT_NAMESPACE/NXT_CLUSTER_ID (an S3 prefix's owner: NXT_S3_FOREIGN_CLUSTER_ID/_ALLOW let another cluster's be read).`;

interface Common {
  /** Exactly one of storageDir (a mounted volume) and storageUrl (`s3://bucket/prefix`) is set. */
  storageDir?: string;
  storageUrl?: string;
  terminationLog: string;
}
interface RestoreLike extends Common {
  /** A validated backup id, or LATEST_BACKUP_ID for the newest verified backup. */
  id: string;
  sqlAssertions: SqlAssertion[];
  maintenanceDb?: string;
  shortId?: string;
}
export type RunnerArgs =
  /** `policy` is present only when at least one --keep-* flag was given. */
  | (Common & { command: 'backup'; id: string; policy?: RetentionPolicy })
  /** `id` may be LATEST_BACKUP_ID. */
  | (Common & { command: 'verify'; id: string })
  | (RestoreLike & { command: 'restore'; mode: RestoreMode; keepPreviousDatabases?: number })
  | (RestoreLike & { command: 'test-restore' })
  /** S3 only: storageUrl is set. */
  | (Common & { command: 'probe-storage' })
  | (Common & {
      command: 'prune';
      policy: RetentionPolicy;
      dryRun: boolean;
      /** Age after which partial dumps (unfinished multipart uploads) count as leftovers; default 2 h. */
      leftoversOlderThanSeconds?: number;
    });

/** Wrong invocation: exit code 2 and reason InvalidArguments. */
export class UsageError extends Error {
  constructor(
    readonly command: RunnerCommand | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Matches the RollbackPlan schema's maximum of spec.targets.database.keepPreviousDatabases. */
export const MAX_KEEP_PREVIOUS_DATABASES = 10;

const str = { type: 'string' } as const;
const RETENTION_OPTIONS = { 'keep-last': str, 'keep-daily': str, 'keep-weekly': str } as const;
const OPTIONS = {
  backup: { 'storage-dir': str, 'storage-url': str, id: str, ...RETENTION_OPTIONS },
  verify: { 'storage-dir': str, 'storage-url': str, id: str },
  restore: {
    'storage-dir': str,
    'storage-url': str,
    id: str,
    mode: str,
    'sql-assertions-json': str,
    'maintenance-db': str,
    'short-id': str,
    'keep-previous-databases': str,
  },
  'test-restore': {
    'storage-dir': str,
    'storage-url': str,
    id: str,
    'sql-assertions-json': str,
    'maintenance-db': str,
    'short-id': str,
  },
  prune: {
    'storage-dir': str,
    'storage-url': str,
    ...RETENTION_OPTIONS,
    'dry-run': { type: 'boolean' },
    'leftovers-older-than-seconds': str,
  },
  'probe-storage': { 'storage-url': str },
} as const;

const isCommand = (c: string | undefined): c is RunnerCommand =>
  (RUNNER_COMMANDS as readonly string[]).includes(c ?? '');

/** The termination log without --termination-log: $TERMINATION_LOG_PATH when set, else the kubelet's default. */
export function defaultTerminationLog(env: NodeJS.ProcessEnv = {}): string {
  return env[TERMINATION_LOG_ENV] || DEFAULT_TERMINATION_LOG;
}

/** Finds --termination-log even in an invocation that does not parse, so the failure still reaches it. */
export function findTerminationLog(argv: readonly string[], env: NodeJS.ProcessEnv = {}): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--termination-log=') && a.length > '--termination-log='.length)
      return a.slice('--termination-log='.length);
    if (a === '--termination-log' && argv[i + 1]) return argv[i + 1]!;
  }
  return defaultTerminationLog(env);
}

function count(command: RunnerCommand, flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new UsageError(command, `--${flag} must be a whole number >= 0; got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The --keep-* flags; a rule not given stays undefined (a policy without any rule prunes nothing). */
function retentionFrom(command: RunnerCommand, get: (flag: string) => string | undefined): RetentionPolicy {
  return {
    keepLast: count(command, 'keep-last', get('keep-last')),
    keepDaily: count(command, 'keep-daily', get('keep-daily')),
    keepWeekly: count(command, 'keep-weekly', get('keep-weekly')),
  };
}

const hasRule = (p: RetentionPolicy) => Object.values(p).some((n) => n !== undefined);

function assertionsFrom(command: RunnerCommand, json: string | undefined): SqlAssertion[] {
  if (json === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw new UsageError(command, `--sql-assertions-json is not JSON: ${(e as Error).message}`);
  }
  const issue = sqlAssertionsIssue(value);
  if (issue) {
    throw new UsageError(command, `--sql-assertions-json must be [{"name","query","expect"}]: ${issue}`);
  }
  return (value as SqlAssertion[]).map(({ name, query, expect }) => ({ name, query, expect }));
}

/**
 * What is wrong with a parsed --sql-assertions-json (`at 0.query: ...`), undefined when it is a list of
 * SqlAssertion objects (name and query not empty). By hand rather than with the schema: argument parsing runs in every runner
 * start, and zod costs more to load than the rest of the runner (see termination-message.ts).
 */
export function sqlAssertionsIssue(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'at (root): expected an array';
  for (const [i, a] of value.entries()) {
    if (typeof a !== 'object' || a === null || Array.isArray(a)) return `at ${i}: expected an object`;
    const o = a as Record<string, unknown>;
    for (const [key, nonEmpty] of [
      ['name', true],
      ['query', true],
      ['expect', false],
    ] as const) {
      const v = o[key];
      if (typeof v !== 'string') return `at ${i}.${key}: expected a string`;
      if (nonEmpty && v.length === 0) return `at ${i}.${key}: must not be empty`;
    }
  }
  return undefined;
}

/**
 * Parses `<command> --flag value ...`; throws UsageError naming the flag and what it wants. `env` supplies
 * only the termination log's default ($TERMINATION_LOG_PATH).
 */
export function parseRunnerArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): RunnerArgs {
  const [command, ...rest] = argv;
  if (!isCommand(command)) {
    throw new UsageError(
      undefined,
      `unknown command ${JSON.stringify(command ?? '')}: use ${RUNNER_COMMANDS.join(', ')}`,
    );
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    const config: ParseArgsConfig = {
      args: [...rest],
      options: { ...OPTIONS[command], 'termination-log': str },
      strict: true,
      allowPositionals: false,
    };
    values = parseArgs(config).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new UsageError(command, `${command}: ${(e as Error).message}`);
  }
  const get = (flag: string) => values[flag] as string | undefined;
  const required = (flag: string) => {
    const v = get(flag);
    if (!v) throw new UsageError(command, `${command} needs --${flag}`);
    return v;
  };
  const terminationLog = get('termination-log');
  if (terminationLog === '') throw new UsageError(command, `--termination-log needs a path`);
  const storageDir = get('storage-dir');
  const storageUrl = get('storage-url');
  if (!storageDir === !storageUrl)
    throw new UsageError(
      command,
      `${command} needs --storage-dir DIR or --storage-url s3://BUCKET[/PREFIX], exactly one`,
    );
  const common: Common = {
    ...(storageDir ? { storageDir } : { storageUrl: storageUrl! }),
    terminationLog: terminationLog ?? defaultTerminationLog(env),
  };
  if (command === 'probe-storage') {
    if (!storageUrl) throw new UsageError(command, 'probe-storage checks an S3 location: use --storage-url');
    return { command, ...common };
  }
  if (command === 'prune') {
    return {
      command,
      ...common,
      policy: retentionFrom(command, get),
      dryRun: values['dry-run'] === true,
      ...(get('leftovers-older-than-seconds') !== undefined
        ? {
            leftoversOlderThanSeconds: count(
              command,
              'leftovers-older-than-seconds',
              get('leftovers-older-than-seconds'),
            ),
          }
        : {}),
    };
  }
  const rawId = required('id');
  let id: string;
  try {
    // `latest` stays as it is, to be resolved against the storage; backup rejects it (a reserved id).
    id = rawId === LATEST_BACKUP_ID && command !== 'backup' ? rawId : validateBackupId(rawId);
  } catch (e) {
    if (e instanceof InvalidBackupIdError) throw new UsageError(command, e.message);
    throw e;
  }
  if (command === 'backup') {
    const policy = retentionFrom(command, get);
    return { command, ...common, id, ...(hasRule(policy) ? { policy } : {}) };
  }
  if (command === 'verify') return { command, ...common, id };

  const shortId = get('short-id');
  // Only names of this exact form are ever dropped as earlier swaps' leftovers (isPreviousDatabaseOf).
  if (shortId !== undefined && !SHORT_ID_PATTERN.test(shortId)) {
    throw new UsageError(
      command,
      `--short-id must be 6 lower-case hex characters; got ${JSON.stringify(shortId)}`,
    );
  }
  const restoreLike: RestoreLike = {
    ...common,
    id,
    sqlAssertions: assertionsFrom(command, get('sql-assertions-json')),
    ...(get('maintenance-db') ? { maintenanceDb: get('maintenance-db') } : {}),
    ...(shortId ? { shortId } : {}),
  };
  if (command === 'test-restore') return { command, ...restoreLike };
  const mode = required('mode');
  if (mode !== 'inPlace' && mode !== 'newDatabaseSwap') {
    throw new UsageError(command, `--mode must be inPlace or newDatabaseSwap; got ${JSON.stringify(mode)}`);
  }
  const keep = count(command, 'keep-previous-databases', get('keep-previous-databases'));
  if (keep !== undefined && keep > MAX_KEEP_PREVIOUS_DATABASES) {
    throw new UsageError(
      command,
      `--keep-previous-databases must be at most ${MAX_KEEP_PREVIOUS_DATABASES}; got ${keep}`,
    );
  }
  return { command, ...restoreLike, mode, ...(keep !== undefined ? { keepPreviousDatabases: keep } : {}) };
}
