// bench:backup — wall time of our backup runner against a raw `pg_dump -Fc -f FILE` of the same database, on
// one local PostgreSQL, plus our restore (newDatabaseSwap) against raw `createdb` + `pg_restore`.
//
//   npm run bench:backup                     # pgbench scale 10 and 50 + a 10,000-row table, 3 reps each
//   npm run bench:backup -- --quick          # smoke test: pgbench scale 1 + the 10,000-row table, 1 rep
//   npm run bench:backup -- --reps 5 --scales 10,50,100 --restore-scale 10
//
// Our runner runs in-process (runnerMain, exactly what `operator/main.ts backup ...` calls in a Job pod), so
// neither side pays a Node start-up; both call the same pg_dump/pg_restore binaries (PG_BIN_DIR). Ours does
// more than the baseline by design: exports a snapshot, counts rows in it, streams the dump through a
// SHA-256, fsyncs + renames, re-reads the file to check the hash, runs `pg_restore --list`, writes a manifest.
// Raw and ours alternate order per repetition. The Markdown report goes to stdout, progress to stderr.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { databaseUrl, LocalPostgres, type PostgresInfo } from '../test/env/postgres.js';
import { progress, runBenchmark } from './lib/lifecycle.js';
import { pgEnv, runnerInProcess, runTool } from './lib/pg.js';
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
  },
});
const REPS = Number(flags.reps ?? (flags.quick ? 1 : 3));
const SCALES = (flags.scales ?? (flags.quick ? '1' : '10,50')).split(',').filter(Boolean).map(Number);
const RECORDS = Number(flags.records);
const RESTORE_SCALE = Number(flags['restore-scale'] ?? (flags.quick ? SCALES[0] : 10));
for (const [name, v, min] of [
  ['reps', REPS, 1],
  ['records', RECORDS, 0],
  ['restore-scale', RESTORE_SCALE, 0],
  ...SCALES.map((x) => ['scales', x, 1] as const),
] as const)
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be whole numbers >= ${min}; got ${v}`);
/** The seed's objective for the 10,000-record database. */
const RECORDS_OBJECTIVE_MS = 30_000;

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
  seedMs: number;
}

interface RawRun {
  ms: number;
  bytes: number;
}
interface OurBackupRun {
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
  log(`reps=${REPS} scales=${SCALES.join(',')} records=${RECORDS} restore-scale=${RESTORE_SCALE}`);
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
    await admin.query(`create database ${database}`);
    log(`pgbench -i -s ${scale}`);
    const t0 = performance.now();
    await runTool(join(info.binDir, 'pgbench'), ['-i', '-q', '-s', String(scale)], pgEnv(info, database));
    const d = await describe(admin, info, database, `pgbench scale ${scale}`, performance.now() - t0);
    datasets.push({ ...d, pgbenchScale: scale });
    log(`pgbench scale ${scale}: ${d.rows} rows, ${fmtBytes(d.sizeBytes)} in ${fmtMs(d.seedMs)}`);
  }

  // --- backups -----------------------------------------------------------------------------------------
  const results: { ds: Dataset; raw: RawRun[]; ours: OurBackupRun[] }[] = [];
  let restoreSource: { ds: Dataset; rawFile: string; storageDir: string; id: string } | undefined;
  for (const ds of datasets) {
    const env = pgEnv(info, ds.database);
    // Warm-up, one per side (discarded): the first dump of a database pays for cold caches, the first
    // in-process runner call for lazy initialisation.
    const warm = join(work, 'warm.dump');
    await runTool(join(info.binDir, 'pg_dump'), ['-Fc', '-f', warm], env);
    rmSync(warm, { force: true });
    const warmDir = mkdtempSync(join(work, 'warm-'));
    await ourBackup(warmDir, 'warm', work, env);
    rmSync(warmDir, { recursive: true, force: true });
    const raw: RawRun[] = [];
    const ours: OurBackupRun[] = [];
    const keepForRestore = ds.pgbenchScale !== undefined && ds.pgbenchScale === RESTORE_SCALE;
    for (let rep = 0; rep < REPS; rep++) {
      const last = rep === REPS - 1;
      const rawFile = join(work, `raw-${ds.database}-${rep}.dump`);
      const storageDir = mkdtempSync(join(work, `ours-${ds.database}-${rep}-`));
      const id = `bench-${rep}`;
      const doRaw = async () => {
        const t0 = performance.now();
        await runTool(join(info.binDir, 'pg_dump'), ['-Fc', '-f', rawFile], env);
        raw.push({ ms: performance.now() - t0, bytes: statSync(rawFile).size });
      };
      const doOurs = async () => ours.push(await ourBackup(storageDir, id, work, env));
      if (rep % 2 === 0) {
        await doRaw();
        await doOurs();
      } else {
        await doOurs();
        await doRaw();
      }
      log(`${ds.label} rep ${rep + 1}/${REPS}: raw ${fmtMs(raw.at(-1)!.ms)}, ours ${fmtMs(ours.at(-1)!.ms)}`);
      if (keepForRestore && last) restoreSource = { ds, rawFile, storageDir, id };
      else {
        rmSync(rawFile, { force: true });
        rmSync(storageDir, { recursive: true, force: true });
      }
    }
    results.push({ ds, raw, ours });
  }

  // --- restore -----------------------------------------------------------------------------------------
  let restore: { ds: Dataset; raw: number[]; ours: OurRestoreRun[] } | undefined;
  if (restoreSource) {
    const { ds, rawFile, storageDir, id } = restoreSource;
    const target = `${ds.database}_restored`;
    await admin.query(`create database ${target}`);
    const raw: number[] = [];
    const ours: OurRestoreRun[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const rawDb = `${ds.database}_raw_restore_${rep}`;
      const doRaw = async () => {
        const env = pgEnv(info, 'postgres');
        const t0 = performance.now();
        await runTool(join(info.binDir, 'createdb'), ['-T', 'template0', rawDb], env);
        await runTool(join(info.binDir, 'pg_restore'), ['--no-owner', '-d', rawDb, rawFile], env);
        raw.push(performance.now() - t0);
        await admin.query(`drop database ${rawDb}`);
      };
      const doOurs = async () => {
        const r = await ourRestore(storageDir, id, work, pgEnv(info, target));
        ours.push(r);
        if (r.previousDatabase) await admin.query(`drop database if exists "${r.previousDatabase}"`);
      };
      if (rep % 2 === 0) {
        await doRaw();
        await doOurs();
      } else {
        await doOurs();
        await doRaw();
      }
      log(
        `restore ${ds.label} rep ${rep + 1}/${REPS}: raw ${fmtMs(raw.at(-1)!)}, ours ${fmtMs(ours.at(-1)!.ms)}`,
      );
    }
    restore = { ds, raw, ours };
  }

  console.log(
    report({
      machine: machineMarkdown(machine, {
        code: `commit ${revision}`,
        PostgreSQL: `${info.version} (local, fsync=off, synchronous_commit=off, full_page_writes=off); ${pgDumpVersion}`,
        storage: `dumps written to ${tmpdir()} (${fsType(tmpdir())})`,
      }),
      results,
      restore,
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

/** Runs a runner command in-process, timing it and every log event (performance.now() at each line). */
async function ourBackup(
  storageDir: string,
  id: string,
  work: string,
  env: NodeJS.ProcessEnv,
): Promise<OurBackupRun> {
  const r = await runnerInProcess(
    ['backup', '--storage-dir', storageDir, '--id', id, '--termination-log', join(work, 'termination-log')],
    env,
  );
  if (r.code !== 0 || !r.result?.success)
    throw new Error(`our backup failed (exit ${r.code}): ${JSON.stringify(r.result).slice(0, 2000)}`);
  return {
    ms: r.ms,
    bytes: Number(r.result.bytes),
    success: Boolean(r.result.success),
    verified: Boolean(r.result.verified),
    message: String(r.result.message ?? ''),
    phases: {
      // start -> dumped: pg_dump --version, connect, export snapshot, pg_dump streamed through SHA-256, fsync, rename
      dump: r.between('backup.start', 'backup.dumped'),
      // dumped -> verified: count rows in the snapshot, then re-read + hash the file and `pg_restore --list`
      verify: r.between('backup.dumped', 'backup.verified'),
      other:
        r.ms - r.between('backup.start', 'backup.dumped') - r.between('backup.dumped', 'backup.verified'),
    },
  };
}

interface OurRestoreRun {
  ms: number;
  previousDatabase?: string;
  phases: Record<string, number>;
}

async function ourRestore(
  storageDir: string,
  id: string,
  work: string,
  env: NodeJS.ProcessEnv,
): Promise<OurRestoreRun> {
  const r = await runnerInProcess(
    [
      'restore',
      '--storage-dir',
      storageDir,
      '--id',
      id,
      '--mode',
      'newDatabaseSwap',
      '--termination-log',
      join(work, 'termination-log'),
    ],
    env,
  );
  if (r.code !== 0 || !r.result?.success)
    throw new Error(`our restore failed (exit ${r.code}): ${JSON.stringify(r.result).slice(0, 2000)}`);
  return {
    ms: r.ms,
    previousDatabase: r.result.previousDatabase,
    phases: {
      // verify the archive (hash + pg_restore --list) before touching anything
      verify: r.between(undefined, 'restore.start'),
      // create the replacement database, pg_restore --single-transaction into it
      restore: r.between('restore.start', 'restore.restored'),
      // validate row counts against the manifest, then rename target <-> replacement
      validateAndSwap: r.between('restore.restored', 'restore.swapped'),
    },
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

function report(r: {
  machine: string;
  results: { ds: Dataset; raw: RawRun[]; ours: OurBackupRun[] }[];
  restore: { ds: Dataset; raw: number[]; ours: OurRestoreRun[] } | undefined;
}): string {
  const out: string[] = [`## bench:backup`, '', `Command: \`${commandLine}\``, '', r.machine, ''];
  out.push(
    `### Backup (median of ${REPS} rep(s) per side, alternating order, after one discarded warm-up per side)`,
    '',
    markdownTable(
      [
        'database',
        'rows',
        'size on disk',
        'raw `pg_dump -Fc -f`',
        'ours `backup`',
        'ours / raw',
        'raw bytes',
        'ours bytes',
        'verified',
      ],
      r.results.map(({ ds, raw, ours }) => {
        const rawMs = median(raw.map((x) => x.ms));
        const oursMs = median(ours.map((x) => x.ms));
        return [
          ds.label,
          ds.rows.toLocaleString('en-US'),
          fmtBytes(ds.sizeBytes),
          fmtMs(rawMs),
          fmtMs(oursMs),
          fmtRatio(ratio(oursMs, rawMs)),
          fmtBytes(median(raw.map((x) => x.bytes))),
          fmtBytes(median(ours.map((x) => x.bytes))),
          `${ours.filter((x) => x.verified).length}/${ours.length}`,
        ];
      }),
    ),
    '',
    'Where our time goes (medians): dump = `pg_dump --version`, connect, export snapshot, pg_dump streamed through ' +
      'SHA-256 into the storage, fsync + rename; verify = row counts in the snapshot, re-read + hash the file, ' +
      '`pg_restore --list`; other = manifest, argument parsing, reuse check.',
    '',
    markdownTable(
      [
        'database',
        'all raw reps',
        'all ours reps',
        'ours: dump',
        'ours: verify',
        'ours: other',
        'dump / raw',
      ],
      r.results.map(({ ds, raw, ours }) => {
        const dump = median(ours.map((x) => x.phases.dump!));
        return [
          ds.label,
          raw.map((x) => fmtMs(x.ms)).join(', '),
          ours.map((x) => fmtMs(x.ms)).join(', '),
          fmtMs(dump),
          fmtMs(median(ours.map((x) => x.phases.verify!))),
          fmtMs(median(ours.map((x) => x.phases.other!))),
          fmtRatio(ratio(dump, median(raw.map((x) => x.ms)))),
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
  if (r.restore) {
    const { ds, raw, ours } = r.restore;
    const rawMs = median(raw);
    const oursMs = median(ours.map((x) => x.ms));
    out.push(
      `### Restore of ${ds.label} (median of ${REPS} rep(s) per side, alternating order)`,
      '',
      'Raw: `createdb -T template0` + `pg_restore --no-owner -d` (one job, autocommit). Ours: `restore --mode newDatabaseSwap` ' +
        '(verify archive, create a replacement database, `pg_restore --single-transaction --exit-on-error`, check row counts ' +
        'against the manifest, swap names); the dropped previous database is not timed.',
      '',
      markdownTable(
        ['side', 'median', 'all reps', 'ours: verify', 'ours: restore', 'ours: validate + swap'],
        [
          ['raw `createdb` + `pg_restore`', fmtMs(rawMs), raw.map(fmtMs).join(', '), '', '', ''],
          [
            'ours `restore --mode newDatabaseSwap`',
            fmtMs(oursMs),
            ours.map((x) => fmtMs(x.ms)).join(', '),
            fmtMs(median(ours.map((x) => x.phases.verify!))),
            fmtMs(median(ours.map((x) => x.phases.restore!))),
            fmtMs(median(ours.map((x) => x.phases.validateAndSwap!))),
          ],
          ['ratio ours / raw', fmtRatio(ratio(oursMs, rawMs)), '', '', '', ''],
        ],
      ),
      '',
    );
  }
  return out.join('\n');
}
