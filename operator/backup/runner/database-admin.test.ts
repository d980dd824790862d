import { describe, expect, it } from 'vitest';
import {
  derivedDatabaseName,
  isPreviousDatabaseOf,
  MAX_IDENTIFIER_BYTES,
  newShortId,
} from './database-admin.js';

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

describe('isPreviousDatabaseOf', () => {
  it.each([
    ['shop_pre_a1b2c3', 'shop', true],
    ['shop_pre_it1', 'shop', true],
    ['shop_pre_a1b2c3', 'shop2', false],
    ['shop2_pre_a1b2c3', 'shop', false],
    ['shop_pre_a1b2c3_copy', 'shop', false],
    ['shop_pre_', 'shop', false],
    ['shop_pre_ABC', 'shop', false],
    ['shop_restore_a1b2c3', 'shop', false],
    ['shop', 'shop', false],
    ['x_pre_shop_pre_a1', 'shop', false],
  ])('%s of %s: %s', (name, db, expected) => {
    expect(isPreviousDatabaseOf(name, db)).toBe(expected);
  });

  it('recognises the shortened name of a long database', () => {
    const db = 'd'.repeat(63);
    expect(isPreviousDatabaseOf(derivedDatabaseName(db, 'pre', 'a1b2c3'), db)).toBe(true);
  });
});
