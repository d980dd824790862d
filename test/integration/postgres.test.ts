import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, runPgTool, tableChecksum, withClient } from '../support/postgres.js';

describe('local PostgreSQL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nxt-pgtest-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips a table through pg_dump -Fc and pg_restore with equal counts and checksums', async () => {
    const src = await createTestDatabase('src');
    await withClient(src.url, async (c) => {
      await c.query(
        'create table orders (id bigint primary key, customer text not null, total numeric(12,2), placed timestamptz)',
      );
      await c.query(
        `insert into orders select g, 'customer-' || (g % 97), (g * 7 % 1000) / 3.0, timestamptz '2026-01-01' + g * interval '1 minute'
         from generate_series(1, 10000) g`,
      );
    });
    const before = await tableChecksum(src.url, 'orders');
    expect(before.rows).toBe(10000);

    const file = join(dir, 'orders.dump');
    await runPgTool('pg_dump', ['-Fc', '-d', src.name, '-f', file]);
    expect(statSync(file).size).toBeGreaterThan(1000);
    expect(await runPgTool('pg_restore', ['--list', file])).toMatch(/TABLE DATA public orders/);

    const dst = await createTestDatabase('dst');
    await runPgTool('pg_restore', ['--exit-on-error', '--no-owner', '-d', dst.name, file]);
    expect(await tableChecksum(dst.url, 'orders')).toEqual(before);
  });

  it('has pgbench from the same install', async () => {
    const db = await createTestDatabase('bench');
    await runPgTool('pgbench', ['-i', '-s', '1', '-q', db.name]);
    const accounts = await tableChecksum(db.url, 'pgbench_accounts');
    expect(accounts.rows).toBe(100000);
  });
});
