import type { BackupManifest } from './manifest.js';

// Every restore and verify reads a manifest, and BackupManifestSchema costs a zod load at start-up. A manifest
// as the runner writes it passes this hand check and skips zod; anything else (older, odd, broken) is left to
// the schema, which stays the definition and words the error. This check may only accept what the schema
// accepts, and returns what the schema would (unknown keys dropped): manifest-check.test.ts compares both.

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isCount = (v: unknown): v is number => isInt(v) && v >= 0;
/** What `Date.toISOString()` writes (the runner's timestamps): always a valid `z.iso.datetime()`. */
const isIsoTimestamp = (v: unknown): v is string =>
  isString(v) && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(v) && toIso(v) === v;
const toIso = (s: string) => {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
};

/** Own keys of `o` limited to `keys`, each present one passing `ok`; undefined when any fails. */
function pick(o: Json, keys: Record<string, (v: unknown) => boolean>, required: string[]): Json | undefined {
  const out: Json = {};
  for (const [k, ok] of Object.entries(keys)) {
    if (!Object.prototype.hasOwnProperty.call(o, k) || o[k] === undefined) {
      if (required.includes(k)) return undefined;
      continue;
    }
    if (!ok(o[k])) return undefined;
    out[k] = o[k];
  }
  return out;
}

const nameUid = (requireUid: boolean) => (v: unknown) =>
  isObject(v) &&
  isString(v.name) &&
  (requireUid ? isString(v.uid) : v.uid === undefined || isString(v.uid)) &&
  Object.keys(v).every((k) => k === 'name' || k === 'uid');

/**
 * `json` as a BackupManifest when it plainly is one (every field of the right type, no extra keys anywhere
 * nested); undefined otherwise, which means "ask BackupManifestSchema", not "invalid". Pure.
 */
export function plainManifest(json: unknown): BackupManifest | undefined {
  if (!isObject(json)) return undefined;
  const m = pick(
    json,
    {
      manifestVersion: (v) => v === 1,
      id: isString,
      database: isString,
      host: isString,
      port: isInt,
      user: isString,
      serverVersion: isString,
      pgDumpVersion: isString,
      startedAt: isIsoTimestamp,
      finishedAt: isIsoTimestamp,
      durationSeconds: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0,
      bytes: isCount,
      sha256: (v) => isString(v) && /^[0-9a-f]{64}$/.test(v),
      tables: (v) => isObject(v) && Object.values(v).every(isCount),
      rowCountsFromDumpSnapshot: (v) => typeof v === 'boolean',
      format: (v) => v === 'custom',
      verified: (v) => typeof v === 'boolean',
      verifyMessage: isString,
      archive: (v) =>
        isObject(v) &&
        Object.keys(v).every((k) => k === 'etag' || k === 'versionId') &&
        (v.etag === undefined || (isString(v.etag) && v.etag.length >= 1 && v.etag.length <= 256)) &&
        (v.versionId === undefined ||
          (isString(v.versionId) && v.versionId.length >= 1 && v.versionId.length <= 1024)),
      origin: (v) =>
        isObject(v) &&
        Object.keys(v).every((k) => ['purpose', 'namespace', 'schedule', 'plan', 'job'].includes(k)) &&
        ['scheduled', 'emergency', 'safety'].includes(v.purpose as string) &&
        (v.namespace === undefined || isString(v.namespace)) &&
        (v.schedule === undefined || nameUid(true)(v.schedule)) &&
        (v.plan === undefined || nameUid(true)(v.plan)) &&
        (v.job === undefined || nameUid(false)(v.job)),
    },
    [
      'manifestVersion',
      'id',
      'database',
      'host',
      'port',
      'user',
      'serverVersion',
      'pgDumpVersion',
      'startedAt',
      'finishedAt',
      'durationSeconds',
      'bytes',
      'sha256',
      'tables',
      'rowCountsFromDumpSnapshot',
      'format',
      'verified',
      'verifyMessage',
    ],
  );
  if (!m || Object.keys(json).some((k) => !Object.hasOwn(m, k) && json[k] !== undefined)) return undefined;
  // Copies, as zod's parse returns: the caller may not share objects with the input.
  if (m.tables) m.tables = { ...(m.tables as Json) };
  if (m.archive) m.archive = { ...(m.archive as Json) };
  if (m.origin) m.origin = structuredClone(m.origin);
  return m as unknown as BackupManifest;
}
