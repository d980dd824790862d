import { describe, expect, it } from 'vitest';
import { createRedactor } from './redact.js';

describe('createRedactor', () => {
  const secret = 'p@ss w"rd/1';
  const redact = createRedactor([secret, undefined, '']);

  it.each([
    ['plain', `auth failed for ${secret}`],
    ['percent-encoded', `url postgresql://app:${encodeURIComponent(secret)}@db:5432/app`],
    ['JSON-escaped', JSON.stringify({ message: `x ${secret} y` })],
  ])('removes the secret in its %s spelling', (_kind, text) => {
    const out = redact(text);
    expect(out, `expected no trace of the secret in ${out}`).not.toContain(secret);
    expect(out).not.toContain(encodeURIComponent(secret));
    expect(out).toContain('***');
  });

  it('masks credentials of connection URLs and conninfo strings it was not told about', () => {
    expect(redact('connect postgres://u:other-secret@h/db failed')).toBe(
      'connect postgres://u:***@h/db failed',
    );
    expect(redact("host=h password='a b' dbname=x")).toBe('host=h password=*** dbname=x');
    expect(redact('host=h password=abc dbname=x')).toBe('host=h password=*** dbname=x');
  });

  it('leaves text without secrets unchanged', () => {
    expect(redact('pg_dump: error: connection to server failed')).toBe(
      'pg_dump: error: connection to server failed',
    );
  });
});
