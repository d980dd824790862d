import { describe, expect, it } from 'vitest';
import { fakeManifest } from '../../../test/support/runner-fixtures.js';
import { BackupManifestSchema } from './manifest.js';
import { plainManifest } from './manifest-check.js';
import { parseManifestText } from './storage.js';

const full = {
  ...fakeManifest('b1', '2026-11-28T01:00:00.000Z', {
    sha256: 'a'.repeat(64),
    tables: { 'public.t': 3, 'public.u': 0 },
    archive: { etag: '"abc"', versionId: 'v1' },
    origin: {
      purpose: 'safety',
      namespace: 'ns',
      schedule: { name: 's', uid: 'u1' },
      plan: { name: 'p', uid: 'u2' },
      job: { name: 'j' },
    },
  }),
  durationSeconds: 1.25,
};

/** One change to `full` per case: the hand check must never accept what the schema refuses. */
const variants: [string, unknown][] = [
  ['as written', full],
  ['the minimal manifest', fakeManifest('b1', '2026-11-28T01:00:00.000Z')],
  ['an extra key', { ...full, extra: 1 }],
  ['manifestVersion 2', { ...full, manifestVersion: 2 }],
  ['a port as text', { ...full, port: '5432' }],
  ['a fractional port', { ...full, port: 5432.5 }],
  ['a negative byte count', { ...full, bytes: -1 }],
  ['negative seconds', { ...full, durationSeconds: -0.5 }],
  ['an upper-case sha256', { ...full, sha256: 'A'.repeat(64) }],
  ['a short sha256', { ...full, sha256: 'a'.repeat(63) }],
  ['a fractional row count', { ...full, tables: { 'public.t': 1.5 } }],
  ['a row count as text', { ...full, tables: { 'public.t': '3' } }],
  ['tables as a list', { ...full, tables: [1] }],
  ['month 13', { ...full, finishedAt: '2026-13-28T01:00:00.000Z' }],
  ['a timestamp without milliseconds', { ...full, startedAt: '2026-11-28T01:00:00Z' }],
  ['a timestamp with an offset', { ...full, startedAt: '2026-11-28T01:00:00.000+01:00' }],
  ['format plain', { ...full, format: 'plain' }],
  ['verified as text', { ...full, verified: 'true' }],
  ['no verifyMessage', { ...full, verifyMessage: undefined }],
  ['an empty etag', { ...full, archive: { etag: '' } }],
  ['an extra archive key', { ...full, archive: { etag: 'e', x: 1 } }],
  ['an unknown purpose', { ...full, origin: { purpose: 'manual' } }],
  ['a plan without uid', { ...full, origin: { purpose: 'safety', plan: { name: 'p' } } }],
  ['a job without uid', { ...full, origin: { purpose: 'scheduled', job: { name: 'j' } } }],
  ['an extra origin key', { ...full, origin: { purpose: 'scheduled', x: 1 } }],
  ['null', null],
  ['a list', [full]],
];

describe('plainManifest', () => {
  it.each(variants)(
    '%s: accepted only when BackupManifestSchema accepts, with the same result',
    (_, json) => {
      const plain = plainManifest(json);
      const schema = BackupManifestSchema.safeParse(json);
      if (plain) {
        expect(schema.success, 'the hand check accepted what the schema refuses').toBe(true);
        expect(plain).toEqual(schema.data);
      }
    },
  );

  it('accepts the manifests the runner writes (so a restore does not load zod for them)', () => {
    expect(plainManifest(full)).toEqual(full);
    expect(
      plainManifest(JSON.parse(JSON.stringify(fakeManifest('b2', '2026-11-28T01:00:00.000Z')))),
    ).toBeDefined();
  });

  it('leaves a manifest with an extra key to the schema, which drops the key', async () => {
    expect(plainManifest({ ...full, extra: 1 })).toBeUndefined();
    const m = await parseManifestText('b1', JSON.stringify({ ...full, extra: 1 }));
    expect(m).toEqual(full);
  });

  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__'])(
    'counts a key named like an Object.prototype member (%s) as an extra key',
    (key) => {
      // JSON.parse makes even "__proto__" an own key, as a manifest read from storage has it.
      const json = JSON.parse(JSON.stringify(full).replace(/^\{/, `{"${key}":1,`)) as Record<string, unknown>;
      expect(Object.hasOwn(json, key)).toBe(true);
      expect(plainManifest(json)).toBeUndefined();
    },
  );

  it('still names the other backup a manifest belongs to', async () => {
    await expect(parseManifestText('b9', JSON.stringify(full))).rejects.toThrow(/names backup b1/);
  });
});
