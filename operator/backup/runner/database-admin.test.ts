import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  derivedDatabaseName,
  dropOldPreviousDatabases,
  isPreviousDatabaseOf,
  MAX_IDENTIFIER_BYTES,
  newShortId,
  previousDatabaseMarker,
  SHORT_ID_PATTERN,
} from './database-admin.js';
import { silentLog } from './log.js';

describe('derivedDatabaseName', () => {
  it('appends tag and short id', () => {
    expect(derivedDatabaseName('shop', 'pre', 'a1b2c3')).toBe('shop_pre_a1b2c3');
  });

  it.each([
    ['x'.repeat(63), 'restore'],
    ['ü'.repeat(31), 'verify'],
  ] as const)('shortens the database part of %s to fit 63 bytes and keeps the suffix', (db, tag) => {
    const name = derivedDatabaseName(db, tag, 'abcdef');
    expect(
      Buffer.byteLength(name),
      `expected ${name} to fit PostgreSQL's identifier limit`,
    ).toBeLessThanOrEqual(MAX_IDENTIFIER_BYTES);
    expect(name.endsWith(`_${tag}_abcdef`), `expected ${name} to keep its suffix`).toBe(true);
    expect(name).not.toContain('\uFFFD');
  });

  it('makes short ids of six hex characters', () => {
    expect(newShortId()).toMatch(/^[0-9a-f]{6}$/);
  });
});

const marked = (db: string) => `${previousDatabaseMarker(db)}\nswapped out by the restore of backup b-1`;

describe('isPreviousDatabaseOf', () => {
  it.each([
    ['shop_pre_a1b2c3', 'shop', true],
    ['shop_pre_a1b2c3', 'shop2', false],
    ['shop2_pre_a1b2c3', 'shop', false],
    ['shop_pre_a1b2c3_copy', 'shop', false],
    ['shop_pre_', 'shop', false],
    ['shop_pre_ABCDEF', 'shop', false],
    ['shop_restore_a1b2c3', 'shop', false],
    ['shop', 'shop', false],
    ['x_pre_shop_pre_a1b2c3', 'shop', false],
    // Not a generated short id (6 hex): a user's archive named like a leftover.
    ['shop_pre_2024', 'shop', false],
    ['shop_pre_a1', 'shop', false],
    ['shop_pre_a1b2c3d4', 'shop', false],
  ])('%s of %s, marked for it: %s', (name, db, expected) => {
    expect(isPreviousDatabaseOf({ name, comment: marked(db) }, db)).toBe(expected);
  });

  it.each([
    ['no comment', null],
    ['a user comment', 'last copy before the 2025 migration'],
    ['the marker of another database', marked('shop2')],
    ['the marker as a later line', `notes\n${marked('shop')}`],
    ['a marker with a longer name', `${previousDatabaseMarker('shop')}x`],
  ])('a generated name with %s is not one', (_, comment) => {
    expect(isPreviousDatabaseOf({ name: 'shop_pre_a1b2c3', comment }, 'shop')).toBe(false);
  });

  it('recognises the shortened name of a long database', () => {
    const db = 'd'.repeat(63);
    const name = derivedDatabaseName(db, 'pre', 'a1b2c3');
    expect(isPreviousDatabaseOf({ name, comment: marked(db) }, db)).toBe(true);
  });

  // Two long names with a common 52-byte prefix shorten to the same _pre_ name: only the marker, which names
  // the database in full, tells whose undo copy it is.
  it("never takes another long-named database's _pre_ copy for one of its own", () => {
    const a = 'tenant_billing_production_eu_west_1_primary_ledger_db_a';
    const b = 'tenant_billing_production_eu_west_1_primary_ledger_db_b';
    const bsUndo = { name: derivedDatabaseName(b, 'pre', 'c0ffee'), comment: marked(b) };
    expect(bsUndo.name).toBe(derivedDatabaseName(a, 'pre', 'c0ffee'));
    expect(isPreviousDatabaseOf(bsUndo, a), `${bsUndo.name} is taken for a leftover of ${a}`).toBe(false);
    expect(isPreviousDatabaseOf(bsUndo, b)).toBe(true);
  });

  it('accepts exactly what newShortId makes', () => {
    expect(SHORT_ID_PATTERN.test(newShortId())).toBe(true);
  });
});

/** Answers the two queries dropOldPreviousDatabases makes; records every statement. */
function adminWith(databases: { datname: string; oid: number; comment?: string }[]) {
  const sent: string[] = [];
  const client = {
    query: async (text: string) => {
      sent.push(text);
      if (text.startsWith('select datname'))
        return { rows: databases.map((d) => ({ ...d, oid: String(d.oid), comment: d.comment ?? null })) };
      if (text.startsWith('show server_version_num')) return { rows: [{ v: '170002' }] };
      return { rows: [], rowCount: 0 };
    },
  } as unknown as pg.Client;
  return { client, sent };
}

describe('dropOldPreviousDatabases', () => {
  it('keeps the newest marked copy, drops older marked ones and leaves a user archive named alike', async () => {
    const { client, sent } = adminWith([
      { datname: 'orders', oid: 30000 },
      { datname: 'orders_pre_2024', oid: 16500 }, // a human's archive of last year's orders
      { datname: 'orders_pre_fedcba', oid: 16600, comment: 'kept by hand' }, // unmarked: not ours
      { datname: 'orders_pre_0a0b0c', oid: 18000, comment: marked('orders') },
      { datname: 'orders_pre_a1b2c3', oid: 20000, comment: marked('orders') }, // the swap just made
    ]);
    const r = await dropOldPreviousDatabases(client, 'orders', 'orders_pre_a1b2c3', 1, silentLog);
    expect(r).toEqual({ kept: ['orders_pre_a1b2c3'], dropped: ['orders_pre_0a0b0c'], failed: [] });
    expect(sent.filter((q) => q.startsWith('drop database'))).toEqual([
      'drop database if exists "orders_pre_0a0b0c" with (force)',
    ]);
  });
});
