import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { databaseSize, DATABASE_SIZE_TIMEOUT_MS, KEEPALIVE_IDLE_MS, pgClientConfig } from './database.js';

/** A client that records its queries and answers pg_database_size with `size` (or fails it with `fail`). */
const recording = (answer: { size?: string; fail?: Error }) => {
  const queries: string[] = [];
  const client = {
    query: async (text: string) => {
      queries.push(text);
      if (text.includes('pg_database_size')) {
        if (answer.fail) throw answer.fail;
        return { rows: [{ b: answer.size }] };
      }
      return { rows: [] };
    },
  };
  return { client: client as unknown as pg.Client, queries };
};

describe('databaseSize', () => {
  it('bounds pg_database_size with a statement_timeout of its own transaction', async () => {
    const { client, queries } = recording({ size: '12345' });
    expect(await databaseSize(client)).toBe(12345);
    expect(queries).toEqual([
      'begin',
      `set local statement_timeout = ${DATABASE_SIZE_TIMEOUT_MS}`,
      'select pg_database_size(current_database())::text as b',
      'commit',
    ]);
  });

  it('rolls its transaction back when the size query fails (the timeout cancelled it)', async () => {
    const cancelled = Object.assign(new Error('canceling statement due to statement timeout'), {
      code: '57014',
    });
    const { client, queries } = recording({ fail: cancelled });
    await expect(databaseSize(client, 500)).rejects.toThrow('statement timeout');
    expect(queries).toEqual([
      'begin',
      'set local statement_timeout = 500',
      'select pg_database_size(current_database())::text as b',
      'rollback',
    ]);
  });
});

describe('pgClientConfig', () => {
  it('turns TCP keepalives on, probing well within load balancer and NAT idle timeouts', () => {
    const c = pgClientConfig({ host: 'db', port: 5432, database: 'app', user: 'app' }, 'app', {});
    expect(c).toMatchObject({ keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS });
    // AWS NLB reaps idle flows after 350 s, Azure's load balancer after 4 minutes.
    expect(KEEPALIVE_IDLE_MS).toBeLessThan(240_000);
  });
});

describe('loading pg', () => {
  // Each module that imports pg itself, loaded first: whichever a command happens to load first must not bring it.
  it.each(['./database.ts', './database-admin.ts'])(
    "%s does not load Node's bundled undici (pg's Cloudflare check would, on Node 20)",
    (module) => {
      // A fresh process: this one has loaded whatever vitest needs.
      const path = fileURLToPath(new URL(module, import.meta.url));
      const out = execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `await import(${JSON.stringify(path)}); ` +
            "console.log(JSON.stringify(process.moduleLoadList.filter((m) => m.includes('undici'))))",
        ],
        { encoding: 'utf8' },
      );
      expect(JSON.parse(out)).toEqual([]);
    },
  );
});
