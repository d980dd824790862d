// bench:backup — wall time of our backup runner against a raw `pg_dump -Fc -f FILE` of the same database, on
// one local PostgreSQL, plus our restore (newDatabaseSwap) against raw `createdb` + `pg_restore`.
//
//   npm run bench:backup                     # pgbench scale 10 and 50 + a 10,000-row table, 3 reps each
//   npm run bench:backup -- --quick          # smoke test: pgbench scale 1 + the 10,000-row table, 1 rep
//   npm run bench:backup -- --reps 5 --scales 10,50,100 --restore-scale 10,50
//   (each restore scale is restored twice: plain pgbench, and pgbench plus 4 tables of its size with indexes,
//   the shape where pg_restore --jobs has work to overlap; --no-multi-table skips the second)
//
// Our runner runs twice per repetition: as a whole process (`node dist/bundle/main.js backup ...`, the image's
// entry point, what a Job pod runs, Node start-up and module loading included; dist/ is built first unless
// --no-build) and in-process (runnerMain, no start-up, to show where the rest goes). All sides call the same
// pg_dump/pg_restore binaries (PG_BIN_DIR). `--baseline-entry OTHER/dist/bundle/main.js` adds a fourth side,
// another build of the runner as a whole process (a before/after in one run: `git worktree add` the old commit,
// `npm run build` there); `--baseline-entry tsc` makes it this commit's tsc build (dist/operator/main.js, one
// module per file), which shows what the bundle saves. Ours does
// more than the baseline by design: exports a snapshot, counts rows in it, streams the dump through a
// SHA-256, fsyncs + renames, re-reads the file to check the hash, runs `pg_restore --list`, writes a manifest.
// The sides rotate order per repetition. The Markdown report goes to stdout, progress to stderr.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { databaseUrl, LocalPostgres, type PostgresInfo } from '../test/env/postgres.js';
import { progress, runBenchmark } from './lib/lifecycle.js';
import { pgEnv, runnerInProcess, runTool } from './lib/pg.js';
import { buildRunner, runnerProcess, TSC_ENTRY } from './lib/runner-process.js';
import { codeRevision, machineInfo, machineMarkdown } from './lib/machine.js';
import { median, ratio } from './lib/stats.js';
import { fmtBytes, fmtMs, fmtRatio, markdownTable } from './lib/table.js';

const { values: flags } = parseArgs({
  options: {
    reps: { type: 'string' },
    scales: { type: 'string' },
    records: { type: 'string', default: '10000' },
    'restore-scale': { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'baseline-entry': { type: 'string' },
    'no-multi-table': { type: 'boolean', default: false },
  },
});
/** Also restore pgbench plus MULTI_TABLE_EXTRA tables of its size (see seedMultiTable). */
const MULTI_TABLE = !flags['no-multi-table'];
const MULTI_TABLE_EXTRA = 4;
const REPS = Number(flags.reps ?? (flags.quick ? 1 : 3));
const SCALES = (flags.scales ?? (flags.quick ? '1' : '10,50')).split(',').filter(Boolean).map(Number);
const RECORDS = Number(flags.records);
const RESTORE_SCALES = (flags['restore-scale'] ?? (flags.quick ? String(SCALES[0]) : '10,50'))
  .split(',')
  .filter(Boolean)
  .map(Number);
for (const [name, v, min] of [
  ['reps', REPS, 1],
  ['records', RECORDS, 0],
  ...RESTORE_SCALES.map((x) => ['restore-scale', x, 0] as const),
  ...SCALES.map((x) => ['scales', x, 1] as const),
] as const)
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be whole numbers >= ${min}; got ${v}`);
/** The seed's objective for the 10,000-record database. */
const RECORDS_OBJECTIVE_MS = 30_000;

const BASELINE_ENTRY = flags['baseline-entry'] === 'tsc' ? TSC_ENTRY : flags['baseline-entry'];
/** The sides of ours: 'baseline' is another build (--baseline-entry) run as a whole process. */
type How = 'process' | 'inProcess' | 'baseline';
const OUR_SIDES: How[] = ['process', 'inProcess', ...(BASELINE_ENTRY ? (['baseline'] as const) : [])];

const log = progress('bench:backup');
const commandLine =
  process.env.npm_lifecycle_event === 'bench:backup'
    ? `npm run bench:backup${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`
    : `npx tsx bench/backup-throughput.ts ${process.argv.slice(2).join(' ')}`.trim();

interface Dataset {
  label: string;
  database: string;
  rows: number;
  sizeBytes: number;
  pgbenchScale?: number;
  /** The multi-table restore shape (seedMultiTable), restored beside plain pgbench. */
  multiTable?: boolean;
  seedMs: number;
}

interface RawRun {
  ms: number;
  bytes: number;
}
interface OurBackupRun {
  /** 'process': node dist/bundle/main.js as a child; 'inProcess': runnerMain in this process. */
  how: How;
  ms: number;
  bytes: number;
  success: boolean;
  verified: boolean;
  message: string;
  /** Time between runner events (see phases()). */
  phases: Record<string, number>;
}

await runBenchmark(async (cleanup) => {
  const machine = machineInfo();
  const revision = codeRevision();
  log(`reps=${REPS} scales=${SCALES.join(',')} records=${RECORDS} restore-scale=${RESTORE_SCALES.join(',')}`);
  if (!flags['no-build']) await buildRunner(log);
  const pgsql = await LocalPostgres.start((m) => log(`postgres: ${m}`));
  cleanup.add('postgres', () => pgsql.stop());
  const info = pgsql.info;
  const work = mkdtempSync(join(tmpdir(), 'nxt-bench-backup-'));
  cleanup.add('work dir', () => rmSync(work, { recursive: true, force: true }));
  const pgDumpVersion = (await runTool(join(info.binDir, 'pg_dump'), ['--version'], {})).stdout.trim();
  log(`${info.version}; ${pgDumpVersion}`);

  const admin = new pg.Client({ connectionString: info.url });
  await admin.connect();
  cleanup.add('admin connection', () => admin.end());

  // --- datasets ----------------------------------------------------------------------------------------
  const datasets: Dataset[] = [];
  if (RECORDS > 0) {
    const database = 'bench_records';
    const t0 = performance.now();
    await admin.query(`create database ${database}`);
    const c = new pg.Client({ connectionString: databaseUrl(info, database) });
    await c.connect();
    try {
      await c.query(`create table records (
        id bigint primary key,
        customer text not null,
        amount numeric(12,2) not null,
        note text,
        created_at timestamptz not null default now())`);
      await c.query(
        `insert into records (id, customer, amount, note)
         select i, 'customer-' || (i % 997), (i * 7919 % 100000) / 100.0, md5(i::text)
         from generate_series(1, $1::int) i`,
        [RECORDS],
      );
      await c.query('analyze records');
    } finally {
      await c.end();
    }
    datasets.push(
      await describe(
        admin,
        info,
        database,
        `${RECORDS.toLocaleString('en-US')}-row table`,
        performance.now() - t0,
      ),
    );
  }
  for (const scale of SCALES) {
    const database = `bench_pgbench_s${scale}`;
    const multi = MULTI_TABLE && RESTORE_SCALES.includes(scale);
    await admin.query(`create database ${database}`);
    log(`pgbench -i -s ${scale}`);
    const t0 = performance.now();
    await runTool(join(info.binDir, 'pgbench'), ['-i', '-q', '-s', String(scale)], pgEnv(info, database));
    const d = await describe(admin, info, database, `pgbench scale ${scale}`, performance.now() - t0);
    datasets.push({ ...d, pgbenchScale: scale });
    log(`pgbench scale ${scale}: ${d.rows} rows, ${fmtBytes(d.sizeBytes)} in ${fmtMs(d.seedMs)}`);
    if (multi) {
      const m = await seedMultiTable(admin, info, scale);
      datasets.push(m);
      log(`${m.label}: ${m.rows} rows, ${fmtBytes(m.sizeBytes)} in ${fmtMs(m.seedMs)}`);
    }
  }

  // --- backups -----------------------------------------------------------------------------------------
  const results: BackupResults[] = [];
  const restoreSources: { ds: Dataset; rawFile: string; storageDir: string; id: string }[] = [];
  for (const ds of datasets) {
    const env = pgEnv(info, ds.database);
    // Warm-up, one per side (discarded): the first dump of a database pays for cold caches, the first
    // in-process runner call for lazy initialisation, the first process for reading dist/ from disk.
    const warm = join(work, 'warm.dump');
    await runTool(join(info.binDir, 'pg_dump'), ['-Fc', '-f', warm], env);
    rmSync(warm, { force: true });
    for (const how of OUR_SIDES) {
      const warmDir = mkdtempSync(join(work, 'warm-'));
      await ourBackup(how, warmDir, 'warm', work, env);
      rmSync(warmDir, { recursive: true, force: true });
    }
    const raw: RawRun[] = [];
    const ours: OurBackupRun[] = [];
    const keepForRestore =
      (ds.pgbenchScale !== undefined && RESTORE_SCALES.includes(ds.pgbenchScale)) || ds.multiTable === true;
    for (let rep = 0; rep < REPS; rep++) {
      const last = rep === REPS - 1;
      const rawFile = join(work, `raw-${ds.database}-${rep}.dump`);
      const dirs: string[] = [];
      const sides: (() => Promise<unknown>)[] = [
        async () => {
          const t0 = performance.now();
          await runTool(join(info.binDir, 'pg_dump'), ['-Fc', '-f', rawFile], env);
          raw.push({ ms: performance.now() - t0, bytes: statSync(rawFile).size });
        },
        ...OUR_SIDES.map((how) => async () => {
          const storageDir = mkdtempSync(join(work, `ours-${how}-${ds.database}-${rep}-`));
          dirs.push(storageDir);
          ours.push(await ourBackup(how, storageDir, `bench-${rep}`, work, env));
        }),
      ];
      for (const side of rotate(sides, rep)) await side();
      const lastOf = (how: How) => fmtMs(ours.filter((x) => x.how === how).at(-1)!.ms);
      log(
        `${ds.label} rep ${rep + 1}/${REPS}: raw ${fmtMs(raw.at(-1)!.ms)}, ` +
          OUR_SIDES.map((h) => `${h} ${lastOf(h)}`).join(', '),
      );
      // The restore reads the archive the whole-process runner wrote.
      const processDir = dirs.find((d) => d.includes('ours-process-'))!;
      if (keepForRestore && last)
        restoreSources.push({ ds, rawFile, storageDir: processDir, id: `bench-${rep}` });
      else rmSync(rawFile, { force: true });
      for (const d of dirs)
        if (!(keepForRestore && last && d === processDir)) rmSync(d, { recursive: true, force: true });
    }
    results.push({ ds, raw, ours });
  }

  // --- restore -----------------------------------------------------------------------------------------
  const restores: RestoreResults[] = [];
  for (const { ds, rawFile, storageDir, id } of restoreSources) {
    const target = `${ds.database}_restored`;
    await admin.query(`create database ${target}`);
    const raw: number[] = [];
    const ours: OurRestoreRun[] = [];
    const rawSide = async (rep: number) => {
      const rawDb = `${ds.database}_raw_restore_${rep}`;
      const env = pgEnv(info, 'postgres');
      const t0 = performance.now();
      await runTool(join(info.binDir, 'createdb'), ['-T', 'template0', rawDb], env);
      await runTool(join(info.binDir, 'pg_restore'), ['--no-owner', '-d', rawDb, rawFile], env);
      raw.push(performance.now() - t0);
      await admin.query(`drop database ${rawDb}`);
    };
    const oursSide = (how: OurRestoreRun['how']) => async () => {
      const r = await ourRestore(how, storageDir, id, work, pgEnv(info, target));
      ours.push(r);
      if (r.previousDatabase) await admin.query(`drop database if exists "${r.previousDatabase}"`);
    };
    // Warm-up (discarded): the first restore of an archive reads it from disk.
    await rawSide(REPS);
    raw.length = 0;
    for (let rep = 0; rep < REPS; rep++) {
      const sides = [() => rawSide(rep), ...OUR_SIDES.map(oursSide)];
      for (const side of rotate(sides, rep)) await side();
      const lastOf = (how: How) => fmtMs(ours.filter((x) => x.how === how).at(-1)!.ms);
      log(
        `restore ${ds.label} rep ${rep + 1}/${REPS}: raw ${fmtMs(raw.at(-1)!)}, ` +
          OUR_SIDES.map((h) => `${h} ${lastOf(h)}`).join(', '),
      );
    }
    restores.push({ ds, raw, ours });
    rmSync(rawFile, { force: true });
    rmSync(storageDir, { recursive: true, force: true });
  }

  console.log(
    report({
      machine: machineMarkdown(machine, {
        code: `commit ${revision}`,
        PostgreSQL: `${info.version} (local, fsync=off, synchronous_commit=off, full_page_writes=off); ${pgDumpVersion}`,
        storage: `dumps written to ${tmpdir()} (${fsType(tmpdir())})`,
      }),
      results,
      restores,
    }),
  );
});

// -------------------------------------------------------------------------------------------------------

async function describe(
  admin: pg.Client,
  info: PostgresInfo,
  database: string,
  label: string,
  seedMs: number,
): Promise<Dataset> {
  const size = await admin.query<{ s: string }>('select pg_database_size($1) as s', [database]);
  const c = new pg.Client({ connectionString: databaseUrl(info, database) });
  await c.connect();
  try {
    const tables = await c.query<{ t: string }>(
      `select quote_ident(schemaname) || '.' || quote_ident(relname) as t from pg_stat_user_tables`,
    );
    let rows = 0;
    for (const { t } of tables.rows)
      rows += Number((await c.query(`select count(*) as n from ${t}`)).rows[0].n);
    return { label, database, rows, sizeBytes: Number(size.rows[0]!.s), seedMs };
  } finally {
    await c.end();
  }
}

/**
 * pgbench at `scale` plus MULTI_TABLE_EXTRA tables of pgbench_accounts' row count, each with a primary key and
 * a secondary index: pgbench alone is one big table and its key, which leaves pg_restore --jobs nothing to
 * run side by side; this shape has several table loads and index builds that can overlap.
 */
async function seedMultiTable(admin: pg.Client, info: PostgresInfo, scale: number): Promise<Dataset> {
  const database = `bench_multi_s${scale}`;
  await admin.query(`create database ${database}`);
  const t0 = performance.now();
  await runTool(join(info.binDir, 'pgbench'), ['-i', '-q', '-s', String(scale)], pgEnv(info, database));
  const c = new pg.Client({ connectionString: databaseUrl(info, database) });
  await c.connect();
  try {
    for (let i = 1; i <= MULTI_TABLE_EXTRA; i++) {
      await c.query(`create table extra_${i} (
        id bigint primary key,
        customer int not null,
        amount numeric(12,2) not null,
        note text not null)`);
      await c.query(
        `insert into extra_${i} (id, customer, amount, note)
         select g, (g::bigint * 7919 % 50000)::int, (g::bigint * 31 % 100000) / 100.0, md5((g + ${i})::text)
         from generate_series(1, $1::int) g`,
        [scale * 100_000],
      );
      await c.query(`create index extra_${i}_customer on extra_${i} (customer)`);
    }
    await c.query('analyze');
  } finally {
    await c.end();
  }
  const d = await describe(
    admin,
    info,
    database,
    `pgbench scale ${scale} + ${MULTI_TABLE_EXTRA} tables`,
    performance.now() - t0,
  );
  return { ...d, multiTable: true };
}

interface BackupResults {
  ds: Dataset;
  raw: RawRun[];
  ours: OurBackupRun[];
}

interface RestoreResults {
  ds: Dataset;
  raw: number[];
  ours: OurRestoreRun[];
}

/** The sides in a different order each repetition, so no side always runs first (or last) on a warm cache. */
function rotate<T>(sides: T[], rep: number): T[] {
  const k = rep % sides.length;
  const order = [...sides.slice(k), ...sides.slice(0, k)];
  return Math.floor(rep / sides.length) % 2 === 1 ? order.reverse() : order;
}

/** Runs the runner, as a child process or in-process, timing it and its log events. */
function runOurs(how: How, argv: string[], work: string, env: NodeJS.ProcessEnv) {
  const terminationLog = join(work, `termination-log-${how}`);
  if (how === 'process') return runnerProcess(argv, env, terminationLog);
  if (how === 'baseline') return runnerProcess(argv, env, terminationLog, BASELINE_ENTRY);
  return runnerInProcess([...argv, '--termination-log', terminationLog], env);
}

async function ourBackup(
  how: OurBackupRun['how'],
  storageDir: string,
  id: string,
  work: string,
  env: NodeJS.ProcessEnv,
): Promise<OurBackupRun> {
  const r = await runOurs(how, ['backup', '--storage-dir', storageDir, '--id', id], work, env);
  if (r.code !== 0 || !r.result?.success)
    throw new Error(
      `our backup (${how}) failed (exit ${r.code}): ${JSON.stringify(r.result).slice(0, 2000)}\n${r.lastLines.join('\n')}`,
    );
  const startup = r.between(undefined, 'backup.start');
  const dump = r.between('backup.start', 'backup.dumped');
  return {
    how,
    ms: r.ms,
    bytes: Number(r.result.bytes),
    success: Boolean(r.result.success),
    verified: Boolean(r.result.verified),
    message: String(r.result.message ?? ''),
    phases: { startup, dump, after: r.ms - startup - dump },
  };
}

interface OurRestoreRun {
  how: How;
  ms: number;
  previousDatabase?: string;
  phases: Record<string, number>;
}

async function ourRestore(
  how: OurRestoreRun['how'],
  storageDir: string,
  id: string,
  work: string,
  env: NodeJS.ProcessEnv,
): Promise<OurRestoreRun> {
  const r = await runOurs(
    how,
    ['restore', '--storage-dir', storageDir, '--id', id, '--mode', 'newDatabaseSwap'],
    work,
    env,
  );
  if (r.code !== 0 || !r.result?.success)
    throw new Error(
      `our restore (${how}) failed (exit ${r.code}): ${JSON.stringify(r.result).slice(0, 2000)}\n${r.lastLines.join('\n')}`,
    );
  const startup = r.between(undefined, 'restore.start');
  const restore = r.between('restore.start', 'restore.restored');
  const validateAndSwap = r.between('restore.restored', 'restore.swapped');
  return {
    how,
    ms: r.ms,
    previousDatabase: r.result.previousDatabase,
    phases: { startup, restore, validateAndSwap, after: r.ms - startup - restore - validateAndSwap },
  };
}

function fsType(dir: string): string {
  try {
    return execFileSync('stat', ['-f', '-c', '%T', dir]).toString().trim();
  } catch {
    return 'unknown filesystem';
  }
}

// -------------------------------------------------------------------------------------------------------

function report(r: { machine: string; results: BackupResults[]; restores: RestoreResults[] }): string {
  const out: string[] = [`## bench:backup`, '', `Command: \`${commandLine}\``, '', r.machine, ''];
  const of = <T extends { how: string }>(xs: T[], how: string) => xs.filter((x) => x.how === how);
  const med = (xs: { ms: number }[]) => median(xs.map((x) => x.ms));
  const phase = (xs: { phases: Record<string, number> }[], k: string) =>
    fmtMs(median(xs.map((x) => x.phases[k]!)));
  out.push(
    `### Backup (median of ${REPS} rep(s) per side, order rotated per rep, after one discarded warm-up per side)`,
    '',
    'Whole process = `node dist/bundle/main.js backup --storage-dir DIR --id ID` as a child process, what a Job ' +
      'pod runs (Node start-up and module loading included). In-process = `runnerMain` called in the benchmark ' +
      'process (no start-up). Raw = `pg_dump -Fc -f FILE`.' +
      (BASELINE_ENTRY ? ` Baseline build = \`node ${BASELINE_ENTRY} backup ...\` (--baseline-entry).` : ''),
    '',
    markdownTable(
      [
        'database',
        'rows',
        'size on disk',
        'raw `pg_dump -Fc -f`',
        'ours, whole process',
        '**whole process / raw**',
        'ours, in-process',
        'in-process / raw',
        ...(BASELINE_ENTRY ? ['baseline build, whole process', 'baseline / raw'] : []),
        'archive bytes (raw / ours)',
        'verified',
      ],
      r.results.map(({ ds, raw, ours }) => {
        const rawMs = med(raw);
        const proc = of(ours, 'process');
        const inProc = of(ours, 'inProcess');
        return [
          ds.label,
          ds.rows.toLocaleString('en-US'),
          fmtBytes(ds.sizeBytes),
          fmtMs(rawMs),
          fmtMs(med(proc)),
          `**${fmtRatio(ratio(med(proc), rawMs))}**`,
          fmtMs(med(inProc)),
          fmtRatio(ratio(med(inProc), rawMs)),
          ...(BASELINE_ENTRY
            ? [fmtMs(med(of(ours, 'baseline'))), fmtRatio(ratio(med(of(ours, 'baseline')), rawMs))]
            : []),
          `${fmtBytes(median(raw.map((x) => x.bytes)))} / ${fmtBytes(median(ours.map((x) => x.bytes)))}`,
          `${ours.filter((x) => x.verified).length}/${ours.length}`,
        ];
      }),
    ),
    '',
    'Where the whole-process time goes (medians, from the arrival of its log lines): start-up = spawn to ' +
      '`backup.start` (Node, module loading, arguments, the reuse check); dump = `backup.start` to `backup.dumped` ' +
      '(pg_dump streamed through SHA-256 into the storage, committed); after = the rest (row counts, archive ' +
      'check, manifest, result, exit).',
    '',
    markdownTable(
      ['database', 'all raw reps', 'all whole-process reps', 'start-up', 'dump', 'after', 'dump / raw'],
      r.results.map(({ ds, raw, ours }) => {
        const proc = of(ours, 'process');
        return [
          ds.label,
          raw.map((x) => fmtMs(x.ms)).join(', '),
          proc.map((x) => fmtMs(x.ms)).join(', '),
          phase(proc, 'startup'),
          phase(proc, 'dump'),
          phase(proc, 'after'),
          fmtRatio(ratio(median(proc.map((x) => x.phases.dump!)), med(raw))),
        ];
      }),
    ),
    '',
  );
  const records = r.results.find((x) => x.ds.database === 'bench_records');
  if (records) {
    const worst = Math.max(...records.ours.map((x) => x.ms));
    out.push(
      `Objective "backup < 30 s for 10,000 records": ${worst < RECORDS_OBJECTIVE_MS ? 'met' : 'MISSED'} ` +
        `(slowest of ${records.ours.length}: ${fmtMs(worst)}, verified).`,
      '',
    );
  }
  for (const { ds, raw, ours } of r.restores) {
    const rawMs = median(raw);
    const row = (how: string, label: string) => {
      const xs = of(ours, how);
      return [
        label,
        fmtMs(med(xs)),
        xs.map((x) => fmtMs(x.ms)).join(', '),
        fmtRatio(ratio(med(xs), rawMs)),
        phase(xs, 'startup'),
        phase(xs, 'restore'),
        phase(xs, 'validateAndSwap'),
        phase(xs, 'after'),
      ];
    };
    out.push(
      `### Restore of ${ds.label} (median of ${REPS} rep(s) per side, order rotated per rep, after one discarded raw warm-up)`,
      '',
      'Raw: `createdb -T template0` + `pg_restore --no-owner -d DB FILE`. Ours: `restore --mode newDatabaseSwap` ' +
        '(verify the archive, create a replacement database, pg_restore into it, check row counts against the ' +
        'manifest, swap names) as a whole process (`node dist/bundle/main.js restore ...`) and in-process; the ' +
        "dropped previous database is not timed. Phases from the runner's log events: start-up + verify = spawn " +
        'to `restore.start`; restore = to `restore.restored` (createdb + pg_restore); validate + swap = to ' +
        '`restore.swapped`; after = the rest (previous-database retention, result, exit).',
      '',
      markdownTable(
        [
          'side',
          'median',
          'all reps',
          'ours / raw',
          'start-up + verify',
          'restore',
          'validate + swap',
          'after',
        ],
        [
          ['raw `createdb` + `pg_restore`', fmtMs(rawMs), raw.map(fmtMs).join(', '), '', '', '', '', ''],
          row('process', 'ours, whole process'),
          row('inProcess', 'ours, in-process'),
          ...(BASELINE_ENTRY ? [row('baseline', 'baseline build, whole process')] : []),
        ],
      ),
      '',
    );
  }
  return out.join('\n');
}
