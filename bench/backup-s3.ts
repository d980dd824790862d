// bench:backup-s3 — backup throughput to S3-compatible object storage: our runner as a whole process
// (`node dist/bundle/main.js backup --storage-url s3://BUCKET/PREFIX --id ID`, what a Job pod runs) against
// raw `pg_dump -Fc | node bench/lib/s3-upload-stdin.mjs BUCKET KEY` (one multipart Upload of stdin with the
// same SDK, part size and parallelism, nothing else), both writing to the same real local S3 server
// (SeaweedFS, test/env/seaweedfs.ts) from one local PostgreSQL in the same run.
//
//   npm run bench:backup-s3                  # pgbench scale 10 and 50 + ~300 MiB of random hex text, 3 reps each
//   npm run bench:backup-s3 -- --quick       # smoke test: pgbench scale 1 + ~8 MiB of random text, 1 rep
//   npm run bench:backup-s3 -- --reps 5 --scales 10,100 --random-mib 1024
//
// pgbench tables compress ~100:1 in `pg_dump -Fc` (a scale-50 archive is a few MiB), so the random-text table
// (md5 hex, compressing about 2:1) is what gives an archive over 100 MiB: the multipart path at size.
//
// Ours does more than the baseline by design: it exports a snapshot, counts rows in it, hashes the stream
// (SHA-256), reads the archive back to check the hash and `pg_restore --list` it, and writes a manifest after
// the archive. The sides rotate order per repetition; one discarded warm-up per side per database. dist/ is
// built first unless --no-build. The Markdown report goes to stdout, progress to stderr.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { S3_PART_BYTES, S3_QUEUE_SIZE } from '../operator/backup/runner/s3-storage.js';
import { databaseUrl, LocalPostgres } from '../test/env/postgres.js';
import { startS3Server, type S3Server } from '../test/env/seaweedfs.js';
import { createBucket, emptyBucket, listMultipartUploads, listObjects } from '../test/support/s3.js';
import { progress, runBenchmark } from './lib/lifecycle.js';
import { codeRevision, machineInfo, machineMarkdown } from './lib/machine.js';
import { pgEnv, runTool } from './lib/pg.js';
import { buildRunner, REPO_ROOT, runnerProcess } from './lib/runner-process.js';
import { median, ratio } from './lib/stats.js';
import { fmtBytes, fmtMs, fmtRatio, markdownTable } from './lib/table.js';

const { values: flags } = parseArgs({
  options: {
    reps: { type: 'string' },
    scales: { type: 'string' },
    'random-mib': { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
  },
});
const REPS = Number(flags.reps ?? (flags.quick ? 1 : 3));
const SCALES = (flags.scales ?? (flags.quick ? '1' : '10,50')).split(',').filter(Boolean).map(Number);
const RANDOM_MIB = Number(flags['random-mib'] ?? (flags.quick ? 8 : 300));
for (const [name, v, min] of [
  ['reps', REPS, 1],
  ['random-mib', RANDOM_MIB, 0],
  ...SCALES.map((x) => ['scales', x, 1] as const),
] as const)
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be whole numbers >= ${min}; got ${v}`);
/** The runner's multipart settings; the baseline uses the same. */
const PART_SIZE = S3_PART_BYTES;
const QUEUE_SIZE = S3_QUEUE_SIZE;
const UPLOADER = join(REPO_ROOT, 'bench', 'lib', 's3-upload-stdin.mjs');

const log = progress('bench:backup-s3');
const commandLine =
  process.env.npm_lifecycle_event === 'bench:backup-s3'
    ? `npm run bench:backup-s3${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`
    : `npx tsx bench/backup-s3.ts ${process.argv.slice(2).join(' ')}`.trim();

interface Run {
  ms: number;
  /** Bytes of the archive object in the bucket. */
  bytes: number;
}
interface OurRun extends Run {
  verified: boolean;
  startup: number;
  dump: number;
}
interface Result {
  label: string;
  rows: number;
  sizeBytes: number;
  raw: Run[];
  ours: OurRun[];
}

await runBenchmark(async (cleanup) => {
  const machine = machineInfo();
  const revision = codeRevision();
  log(`reps=${REPS} scales=${SCALES.join(',')}`);
  if (!flags['no-build']) await buildRunner(log);
  const [pgsql, s3] = await Promise.all([
    LocalPostgres.start((m) => log(`postgres: ${m}`)),
    startS3Server({ log: (m) => log(`s3: ${m}`) }),
  ]);
  cleanup.add('postgres', () => pgsql.stop());
  cleanup.add('s3', () => s3.stop());
  const info = pgsql.info;
  const work = mkdtempSync(join(tmpdir(), 'nxt-bench-backup-s3-'));
  cleanup.add('work dir', () => rmSync(work, { recursive: true, force: true }));
  const pgDumpVersion = (await runTool(join(info.binDir, 'pg_dump'), ['--version'], {})).stdout.trim();
  log(`${info.version}; ${pgDumpVersion}; ${s3.version} (started in ${fmtMs(s3.startMs)})`);
  const bucket = await createBucket(s3, { name: 'bench-backups' });

  const admin = new pg.Client({ connectionString: info.url });
  await admin.connect();
  cleanup.add('admin connection', () => admin.end());

  const datasets: { database: string; label: string; seed: () => Promise<unknown> }[] = SCALES.map(
    (scale) => {
      const database = `bench_pgbench_s${scale}`;
      return {
        database,
        label: `pgbench scale ${scale}`,
        seed: () =>
          runTool(join(info.binDir, 'pgbench'), ['-i', '-q', '-s', String(scale)], pgEnv(info, database)),
      };
    },
  );
  if (RANDOM_MIB > 0) {
    const database = 'bench_random_text';
    // rows of 256 hex characters from md5(): RANDOM_MIB MiB of table text
    const rows = Math.ceil((RANDOM_MIB * 1024 * 1024) / 256);
    datasets.push({
      database,
      label: `random hex text, ${RANDOM_MIB} MiB`,
      seed: () =>
        withDatabase(info, database, async (c) => {
          await c.query('create table blobs (id int primary key, payload text not null)');
          await c.query(
            `insert into blobs select i, (select string_agg(md5(random()::text || i || j), '') from generate_series(1, 8) j)
             from generate_series(1, $1::int) i`,
            [rows],
          );
        }),
    });
  }

  const results: Result[] = [];
  for (const { database, label, seed } of datasets) {
    await admin.query(`create database ${database}`);
    log(`seeding ${label}`);
    await seed();
    const sizeBytes = Number(
      (await admin.query<{ s: string }>('select pg_database_size($1) as s', [database])).rows[0]!.s,
    );
    const rows = await countRows(info, database);
    const env = pgEnv(info, database);
    log(`${label}: ${rows} rows, ${fmtBytes(sizeBytes)}`);

    const rawSide = (prefix: string) => rawBackup(s3, bucket, `${prefix}/raw.dump`, env, info.binDir);
    const oursSide = (prefix: string, id: string) => ourBackup(s3, bucket, prefix, id, env, work);
    await rawSide(`warm-${database}`);
    await oursSide(`warm-${database}`, 'warm');
    const raw: Run[] = [];
    const ours: OurRun[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const sides = [
        async () => raw.push(await rawSide(`raw-${database}-${rep}`)),
        async () => ours.push(await oursSide(`ours-${database}-${rep}`, `bench-${rep}`)),
      ];
      for (const side of rep % 2 ? sides.reverse() : sides) await side();
      log(`${label} rep ${rep + 1}/${REPS}: raw ${fmtMs(raw.at(-1)!.ms)}, ours ${fmtMs(ours.at(-1)!.ms)}`);
    }
    const leftovers = await listMultipartUploads(s3, bucket);
    if (leftovers.length) throw new Error(`unfinished multipart uploads left: ${JSON.stringify(leftovers)}`);
    await emptyBucket(s3, bucket);
    results.push({ label, rows, sizeBytes, raw, ours });
  }

  console.log(
    report(
      machineMarkdown(machine, {
        code: `commit ${revision}`,
        PostgreSQL: `${info.version} (local, fsync=off, synchronous_commit=off, full_page_writes=off); ${pgDumpVersion}`,
        'S3 server': `${s3.version}, one \`weed server -s3\` process on 127.0.0.1 (data in ${tmpdir()}), plain HTTP, path-style`,
      }),
      results,
    ),
  );
});

// -------------------------------------------------------------------------------------------------------

async function withDatabase<T>(
  info: LocalPostgres['info'],
  database: string,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const c = new pg.Client({ connectionString: databaseUrl(info, database) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function countRows(info: LocalPostgres['info'], database: string): Promise<number> {
  const c = new pg.Client({ connectionString: databaseUrl(info, database) });
  await c.connect();
  try {
    const tables = await c.query<{ t: string }>(
      `select quote_ident(schemaname) || '.' || quote_ident(relname) as t from pg_stat_user_tables`,
    );
    let rows = 0;
    for (const { t } of tables.rows)
      rows += Number((await c.query(`select count(*) as n from ${t}`)).rows[0].n);
    return rows;
  } finally {
    await c.end();
  }
}

function s3Env(s3: S3Server): NodeJS.ProcessEnv {
  return {
    AWS_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

/** `pg_dump -Fc | node s3-upload-stdin.mjs BUCKET KEY`: two processes in a pipe, timed from spawn to exit. */
async function rawBackup(
  s3: S3Server,
  bucket: string,
  key: string,
  env: NodeJS.ProcessEnv,
  binDir: string,
): Promise<Run> {
  const t0 = performance.now();
  const dump = spawn(join(binDir, 'pg_dump'), ['-Fc'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const upload = spawn(process.execPath, [UPLOADER, bucket, key], {
    env: {
      PATH: process.env.PATH,
      ...s3Env(s3),
      S3_ENDPOINT: s3.endpoint,
      S3_PART_SIZE: String(PART_SIZE),
      S3_QUEUE_SIZE: String(QUEUE_SIZE),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  dump.stdout.pipe(upload.stdin);
  let err = '';
  dump.stderr.on('data', (d: Buffer) => (err += d));
  upload.stderr.on('data', (d: Buffer) => (err += d));
  const exit = (p: ReturnType<typeof spawn>) =>
    new Promise<number | null>((res, rej) => {
      p.on('error', rej);
      p.on('close', res);
    });
  const [dumpCode, uploadCode] = await Promise.all([exit(dump), exit(upload)]);
  const ms = performance.now() - t0;
  if (dumpCode !== 0 || uploadCode !== 0)
    throw new Error(`raw backup failed (pg_dump ${dumpCode}, upload ${uploadCode}): ${err.slice(-2000)}`);
  const [obj] = await listObjects(s3, bucket, key);
  if (!obj) throw new Error(`raw backup: no object ${key} after the upload`);
  return { ms, bytes: obj.size };
}

async function ourBackup(
  s3: S3Server,
  bucket: string,
  prefix: string,
  id: string,
  env: NodeJS.ProcessEnv,
  work: string,
): Promise<OurRun> {
  const r = await runnerProcess(
    ['backup', '--storage-url', `s3://${bucket}/${prefix}`, '--id', id],
    { ...env, ...s3Env(s3), NXT_S3_ENDPOINT: s3.endpoint, NXT_S3_FORCE_PATH_STYLE: 'true' },
    join(work, 'termination-log'),
  );
  if (r.code !== 0 || !r.result?.success)
    throw new Error(
      `our backup failed (exit ${r.code}): ${JSON.stringify(r.result).slice(0, 2000)}\n${r.lastLines.join('\n')}`,
    );
  const objects = await listObjects(s3, bucket, `${prefix}/`);
  const archive = objects.reduce((a, b) => (b.size > a.size ? b : a), { key: '', size: 0 });
  if (archive.size !== Number(r.result.bytes))
    throw new Error(
      `our backup reported ${r.result.bytes} bytes; the largest object under ${prefix}/ has ${archive.size}`,
    );
  const startup = r.between(undefined, 'backup.start');
  return {
    ms: r.ms,
    bytes: archive.size,
    verified: Boolean(r.result.verified),
    startup,
    dump: r.between('backup.start', 'backup.dumped'),
  };
}

function report(machine: string, results: Result[]): string {
  const med = (xs: { ms: number }[]) => median(xs.map((x) => x.ms));
  const mibps = (bytes: number, ms: number) => `${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(1)} MiB/s`;
  return [
    '## bench:backup-s3',
    '',
    `Command: \`${commandLine}\``,
    '',
    machine,
    '',
    `### Backup to S3 (median of ${REPS} rep(s) per side, order alternated per rep, after one discarded warm-up per side)`,
    '',
    "Raw = `pg_dump -Fc | node bench/lib/s3-upload-stdin.mjs BUCKET KEY` (the SDK's multipart `Upload` of " +
      `stdin, ${PART_SIZE / 1024 / 1024} MiB parts, ${QUEUE_SIZE} in flight, nothing else). Ours = ` +
      '`node dist/bundle/main.js backup --storage-url s3://BUCKET/PREFIX --id ID` as a child process (Node ' +
      'start-up included), same part size and parallelism. Throughput = archive bytes / wall time.',
    '',
    markdownTable(
      [
        'database',
        'rows',
        'size on disk',
        'archive',
        'raw: pg_dump piped to upload',
        'raw throughput',
        'ours, whole process',
        'ours throughput',
        '**ours / raw**',
        'ours: start-up',
        'ours: dump + upload',
        'verified',
        'all reps (raw; ours)',
      ],
      results.map(({ label, rows, sizeBytes, raw, ours }) => {
        const rawMs = med(raw);
        const oursMs = med(ours);
        const bytes = median(ours.map((x) => x.bytes));
        return [
          label,
          rows.toLocaleString('en-US'),
          fmtBytes(sizeBytes),
          fmtBytes(bytes),
          fmtMs(rawMs),
          mibps(median(raw.map((x) => x.bytes)), rawMs),
          fmtMs(oursMs),
          mibps(bytes, oursMs),
          `**${fmtRatio(ratio(oursMs, rawMs))}**`,
          fmtMs(median(ours.map((x) => x.startup))),
          fmtMs(median(ours.map((x) => x.dump))),
          `${ours.filter((x) => x.verified).length}/${ours.length}`,
          `${raw.map((x) => fmtMs(x.ms)).join(', ')}; ${ours.map((x) => fmtMs(x.ms)).join(', ')}`,
        ];
      }),
    ),
    '',
  ].join('\n');
}
