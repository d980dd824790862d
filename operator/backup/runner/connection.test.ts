import { describe, expect, it } from 'vitest';
import { ConnectionConfigError, connectionFromEnv, parseDatabaseUrl, toolEnv } from './connection.js';

describe('parseDatabaseUrl', () => {
  it('reads every part, percent-decoding user, password and database', () => {
    const { settings, ignoredParams } = parseDatabaseUrl(
      'postgresql://app%40x:s%3Acr%2Fet@db.example.svc:6543/my%20db?sslmode=require&application_name=a',
    );
    expect(settings).toEqual({
      host: 'db.example.svc',
      port: 6543,
      user: 'app@x',
      password: 's:cr/et',
      database: 'my db',
      sslmode: 'require',
    });
    expect(ignoredParams, 'expected unknown parameters to be reported by name').toEqual(['application_name']);
  });

  it('accepts postgres:// and IPv6 hosts', () => {
    expect(parseDatabaseUrl('postgres://u@[::1]/d').settings).toEqual({
      host: '::1',
      user: 'u',
      database: 'd',
    });
  });

  it.each([
    ['not a url', 'not-a-url-hunter2'],
    ['wrong scheme', 'mysql://u:hunter2@h/d'],
    ['bad sslmode', 'postgresql://u:hunter2@h/d?sslmode=always'],
    ['several hosts', 'postgresql://u:hunter2@h1:5432,h2:5432/d'],
  ])('rejects %s without echoing the password', (_case, url) => {
    let err: unknown;
    try {
      parseDatabaseUrl(url);
    } catch (e) {
      err = e;
    }
    expect(err, `expected ${_case} to be rejected`).toBeInstanceOf(ConnectionConfigError);
    expect((err as Error).message, 'expected the error message to leave the password out').not.toContain(
      'hunter2',
    );
  });
});

describe('connectionFromEnv', () => {
  it('lets PG* variables override the parts of DATABASE_URL', () => {
    const { settings } = connectionFromEnv({
      DATABASE_URL: 'postgresql://app:pw@db:5432/app',
      PGDATABASE: 'app_restore',
      PGPORT: '5433',
    });
    expect(settings).toEqual({
      host: 'db',
      port: 5433,
      user: 'app',
      password: 'pw',
      database: 'app_restore',
    });
  });

  it('defaults the port to 5432 and names every missing variable', () => {
    expect(connectionFromEnv({ PGHOST: 'h', PGDATABASE: 'd', PGUSER: 'u' }).settings.port).toBe(5432);
    expect(() => connectionFromEnv({ PGHOST: 'h' })).toThrow(/PGDATABASE, PGUSER/);
  });
});

describe('toolEnv', () => {
  const settings = {
    host: 'h',
    port: 5432,
    database: 'd',
    user: 'u',
    password: 'pw',
    sslmode: 'require' as const,
  };

  it('passes the connection in PG* variables and drops DATABASE_URL', () => {
    const env = toolEnv(
      settings,
      { PATH: '/bin', DATABASE_URL: 'postgresql://u:pw@h/d', PGSSLMODE: 'disable' },
      'other',
    );
    expect(env).toMatchObject({
      PATH: '/bin',
      PGHOST: 'h',
      PGPORT: '5432',
      PGDATABASE: 'other',
      PGUSER: 'u',
      PGPASSWORD: 'pw',
      PGSSLMODE: 'require',
      PGCONNECT_TIMEOUT: '10',
    });
    expect(env.DATABASE_URL, 'expected DATABASE_URL not to reach child processes').toBeUndefined();
  });

  it('does not pass a stale PGPASSWORD when the settings have none', () => {
    const { password: _pw, ...noPassword } = settings;
    expect(toolEnv(noPassword, { PGPASSWORD: 'stale' }).PGPASSWORD).toBeUndefined();
  });
});
