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

  it('masks the user info of any other URL (an S3 endpoint with keys in it)', () => {
    expect(redact('PUT https://AKIAEXAMPLE:s3cr3t@minio:9000/b/k failed')).toBe(
      'PUT https://***@minio:9000/b/k failed',
    );
    expect(redact('endpoint http://AKIAEXAMPLE@127.0.0.1:8333')).toBe('endpoint http://***@127.0.0.1:8333');
    expect(redact('see https://example.com/a@b')).toBe('see https://example.com/a@b');
  });

  it('leaves text without secrets unchanged', () => {
    expect(redact('pg_dump: error: connection to server failed')).toBe(
      'pg_dump: error: connection to server failed',
    );
  });
});
