import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installDebianPackages } from './debian.js';
import pg from 'pg';
import { freePort, ProcessGroup, reapStaleRuns, waitUntil, WORKDIR_PREFIX } from './processes.js';

export interface PostgresInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Superuser connection string to the `postgres` database. */
  url: string;
  /** Directory with pg_dump, pg_restore, pgbench, psql of the same install as the server. */
  binDir: string;
  version: string;
}

const PG_LIB = '/usr/lib/postgresql';

/** Finds Debian's PostgreSQL server binaries, installing the packages when we are root and they are missing. */
export function findPostgresBinDir(log: (m: string) => void = () => {}): string {
  const find = () => {
    if (!existsSync(PG_LIB)) return undefined;
    const versions = readdirSync(PG_LIB)
      .filter((v) => existsSync(join(PG_LIB, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    return versions[0] ? join(PG_LIB, versions[0], 'bin') : undefined;
  };
  let dir = process.env.NXT_PG_BIN_DIR ?? find();
  if (dir) return dir;
  installDebianPackages(['postgresql', 'postgresql-contrib'], log);
  dir = find();
  if (!dir) throw new Error('apt-get installed postgresql but no initdb was found under /usr/lib/postgresql');
  return dir;
}

/**
 * A throwaway PostgreSQL cluster (initdb + postgres in the foreground) on a free port of 127.0.0.1 with
 * password authentication over TCP. Runs as the `postgres` user when the harness runs as root.
 */
export class LocalPostgres {
  private constructor(
    readonly info: PostgresInfo,
    private readonly procs: ProcessGroup,
    private readonly workDir: string,
  ) {}

  static async start(log: (m: string) => void = () => {}): Promise<LocalPostgres> {
    const binDir = findPostgresBinDir(log);
    reapStaleRuns();
    const workDir = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX + 'pg-'));
    const procs = new ProcessGroup(workDir);
    try {
      const asUser = process.getuid?.() === 0 ? 'postgres' : undefined;
      const dataDir = join(workDir, 'data');
      const sockDir = join(workDir, 'sock');
      mkdirSync(sockDir);
      mkdirSync(join(workDir, 'logs'));
      const password = randomBytes(16).toString('hex');
      const pwFile = join(workDir, 'pw');
      writeFileSync(pwFile, password + '\n', { mode: 0o600 });
      if (asUser) {
        const uid = Number(execFileSync('id', ['-u', asUser]).toString().trim());
        const gid = Number(execFileSync('id', ['-g', asUser]).toString().trim());
        for (const p of [workDir, sockDir, pwFile, join(workDir, 'logs')]) chownSync(p, uid, gid);
      }
      const initdb = [
        join(binDir, 'initdb'),
        '-D',
        dataDir,
        '-U',
        'postgres',
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        `--pwfile=${pwFile}`,
        '-E',
        'UTF8',
        '--locale=C.UTF-8',
        '--no-sync',
      ];
      execFileSync(
        asUser ? 'runuser' : initdb[0]!,
        asUser ? ['-u', asUser, '--', ...initdb] : initdb.slice(1),
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      rmSync(pwFile);
      const port = await freePort();
      procs.start(
        'postgres',
        join(binDir, 'postgres'),
        [
          '-D',
          dataDir,
          '-p',
          String(port),
          '-c',
          'listen_addresses=127.0.0.1',
          '-c',
          `unix_socket_directories=${sockDir}`,
          '-c',
          'fsync=off',
          '-c',
          'synchronous_commit=off',
          '-c',
          'full_page_writes=off',
          '-c',
          'max_connections=200',
        ],
        { asUser },
      );
      const url = `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`;
      await waitUntil(
        'postgres to accept connections',
        async () => {
          const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
          try {
            await c.connect();
            await c.query('select 1');
            return true;
          } finally {
            await c.end().catch(() => {});
          }
        },
        30_000,
        () => procs.logTail('postgres'),
        200,
      );
      const version = execFileSync(join(binDir, 'postgres'), ['--version']).toString().trim();
      return new LocalPostgres(
        { host: '127.0.0.1', port, user: 'postgres', password, url, binDir, version },
        procs,
        workDir,
      );
    } catch (e) {
      await procs.stopAll();
      rmSync(workDir, { recursive: true, force: true });
      throw new Error(`starting PostgreSQL failed: ${(e as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    await this.procs.stopAll();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** Connection string for another database on the same server. */
export function databaseUrl(info: PostgresInfo, database: string): string {
  return `postgresql://${info.user}:${info.password}@${info.host}:${info.port}/${database}`;
}
