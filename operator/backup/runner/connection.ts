/**
 * Connection settings of the database a runner works on. They come only from the environment (a Secret
 * mounted as env vars), never from flags, so the password is never in a pod spec's args or in `ps`.
 */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface ConnectionSettings {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  sslmode?: SslMode;
}

/** A configuration mistake; its message never contains the password or the URL. */
export class ConnectionConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionConfigError';
  }
}

export interface ParsedDatabaseUrl {
  settings: Partial<ConnectionSettings>;
  /** Query parameters we do not pass on (names only: values may be secret). */
  ignoredParams: string[];
}

function parseSslMode(value: string, from: string): SslMode {
  if ((SSL_MODES as readonly string[]).includes(value)) return value as SslMode;
  throw new ConnectionConfigError(
    `${from} must be one of ${SSL_MODES.join(', ')}; got ${JSON.stringify(value)}`,
  );
}

function parsePort(value: string, from: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConnectionConfigError(`${from} must be a TCP port (1-65535); got ${JSON.stringify(value)}`);
  }
  return port;
}

/** Parses `postgres[ql]://user:password@host:port/database?sslmode=...` (the `uri` key of a Secret). */
export function parseDatabaseUrl(url: string): ParsedDatabaseUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Do not echo the value: it contains the password.
    throw new ConnectionConfigError(
      'DATABASE_URL is not a valid URL (expected postgresql://user:password@host:port/db)',
    );
  }
  if (u.protocol !== 'postgresql:' && u.protocol !== 'postgres:') {
    throw new ConnectionConfigError(
      `DATABASE_URL must start with postgresql:// or postgres://; got ${u.protocol}//`,
    );
  }
  if (u.host.includes(','))
    throw new ConnectionConfigError('DATABASE_URL with several hosts is not supported');
  const settings: Partial<ConnectionSettings> = {};
  const decode = (s: string) => decodeURIComponent(s);
  if (u.hostname) settings.host = decode(u.hostname.replace(/^\[(.*)\]$/, '$1'));
  if (u.port) settings.port = parsePort(u.port, 'the port of DATABASE_URL');
  if (u.username) settings.user = decode(u.username);
  if (u.password) settings.password = decode(u.password);
  const db = u.pathname.replace(/^\//, '');
  if (db) settings.database = decode(db);
  const ignoredParams: string[] = [];
  for (const [key, value] of u.searchParams) {
    if (key === 'sslmode') settings.sslmode = parseSslMode(value, 'sslmode in DATABASE_URL');
    else if (key === 'host') settings.host = value;
    else if (key === 'port') settings.port = parsePort(value, 'port in DATABASE_URL');
    else if (key === 'user') settings.user = value;
    else if (key === 'dbname') settings.database = value;
    else ignoredParams.push(key);
  }
  return { settings, ignoredParams };
}

/**
 * Reads DATABASE_URL first, then lets each PG* variable override its part: the operator sets PGDATABASE to
 * point a restore at another database while the Secret's `uri` stays as the application uses it.
 */
export function connectionFromEnv(
  env: NodeJS.ProcessEnv,
): ParsedDatabaseUrl & { settings: ConnectionSettings } {
  const fromUrl = env.DATABASE_URL ? parseDatabaseUrl(env.DATABASE_URL) : { settings: {}, ignoredParams: [] };
  const s: Partial<ConnectionSettings> = { ...fromUrl.settings };
  if (env.PGHOST) s.host = env.PGHOST;
  if (env.PGPORT) s.port = parsePort(env.PGPORT, 'PGPORT');
  if (env.PGDATABASE) s.database = env.PGDATABASE;
  if (env.PGUSER) s.user = env.PGUSER;
  if (env.PGPASSWORD) s.password = env.PGPASSWORD;
  if (env.PGSSLMODE) s.sslmode = parseSslMode(env.PGSSLMODE, 'PGSSLMODE');
  const missing = [!s.host && 'PGHOST', !s.database && 'PGDATABASE', !s.user && 'PGUSER'].filter(
    (m): m is string => Boolean(m),
  );
  if (missing.length) {
    throw new ConnectionConfigError(
      `missing connection settings: set ${missing.join(', ')} (or DATABASE_URL) from the database Secret`,
    );
  }
  return {
    settings: { port: 5432, ...s, host: s.host!, database: s.database!, user: s.user! },
    ignoredParams: fromUrl.ignoredParams,
  };
}

/** `user@host:port/database`, safe for logs and manifests. */
export function describeConnection(s: ConnectionSettings, database = s.database): string {
  return `${s.user}@${s.host}:${s.port}/${database}`;
}

/**
 * Environment for pg_dump/pg_restore: the connection goes in PG* variables (libpq reads them), never in
 * argv. DATABASE_URL is dropped so no child sees the URL with its password.
 */
export function toolEnv(
  s: ConnectionSettings,
  base: NodeJS.ProcessEnv,
  database = s.database,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  delete env.DATABASE_URL;
  delete env.PGPASSWORD;
  delete env.PGSSLMODE;
  Object.assign(env, {
    PGHOST: s.host,
    PGPORT: String(s.port),
    PGDATABASE: database,
    PGUSER: s.user,
    // Fail fast on an unreachable host instead of waiting for the kernel's TCP timeout.
    PGCONNECT_TIMEOUT: base.PGCONNECT_TIMEOUT ?? '10',
    PGAPPNAME: base.PGAPPNAME ?? 'nxt-rollback-runner',
  });
  if (s.password !== undefined) env.PGPASSWORD = s.password;
  if (s.sslmode) env.PGSSLMODE = s.sslmode;
  return env;
}
