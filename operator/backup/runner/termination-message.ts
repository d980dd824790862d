import { writeFile } from 'node:fs/promises';
import type { AssertionOutcome, RunnerResult } from './result.js';

// Without zod on purpose: every runner command writes its result, and the runner starts in every Job pod,
// so what it loads is paid on each run. The schemas that parse these results live in result.ts.

/**
 * Longest `objectLockUnknown` (the redacted error of reading a dump's Object Lock retention) in a backup result.
 * Here and not in result.ts: the backup writes it, and result.ts loads zod.
 */
export const OBJECT_LOCK_ERROR_MAX = 256;

/** Kubernetes keeps 4096 bytes of a termination message; stay clear of it. */
export const TERMINATION_MESSAGE_MAX_BYTES = 3584;

const size = (r: unknown) => Buffer.byteLength(JSON.stringify(r), 'utf8');
const cut = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

/**
 * Shrinks a result to at most `maxBytes` of JSON, dropping detail in the order the operator misses it
 * least: the per-table map (tableCount stays), then long lists (failures first), then long strings.
 */
export function boundResult(result: RunnerResult, maxBytes = TERMINATION_MESSAGE_MAX_BYTES): RunnerResult {
  if (size(result) <= maxBytes) return result;
  const r: Record<string, unknown> = { ...result, truncated: true };
  delete r.tables;
  if (size(r) <= maxBytes) return r as RunnerResult;

  const keep = 5;
  if (Array.isArray(r.mismatches)) r.mismatches = r.mismatches.slice(0, keep);
  if (Array.isArray(r.assertions)) {
    r.assertions = (r.assertions as AssertionOutcome[])
      .slice()
      .sort((a, b) => Number(a.passed) - Number(b.passed))
      .slice(0, keep)
      .map((a) => ({
        ...a,
        name: cut(a.name, 100),
        ...(a.expect === undefined ? {} : { expect: cut(a.expect, 100) }),
      }));
  }
  for (const k of [
    'deleted',
    'orphans',
    'pruned',
    'pinned',
    'stalePartialsRemoved',
    'orphanDumpsRemoved',
    'previousDatabasesKept',
    'previousDatabasesDropped',
  ] as const) {
    if (Array.isArray(r[k])) r[k] = (r[k] as string[]).slice(0, keep).map((s) => cut(s, 253));
  }
  if (typeof r.pruneError === 'string') r.pruneError = cut(r.pruneError, 500);
  r.message = cut(String(r.message), 1000);
  if (size(r) <= maxBytes) return r as RunnerResult;

  // Last resort: the fields every parser needs, with short strings; always small enough.
  const minimal: Record<string, unknown> = {};
  for (const k of [
    'resultVersion',
    'operation',
    'success',
    'reason',
    'startedAt',
    'finishedAt',
    'durationSeconds',
  ]) {
    if (k in r) minimal[k] = r[k];
  }
  if (typeof r.id === 'string') minimal.id = cut(r.id, 253);
  minimal.truncated = true;
  let message = String(r.message);
  minimal.message = message;
  while (size(minimal) > maxBytes && message.length > 0) {
    message = message.slice(0, Math.floor(message.length / 2));
    minimal.message = message + '…';
  }
  return minimal as RunnerResult;
}

/** Writes the bounded result where the kubelet picks it up as the container's termination message. */
export async function writeTerminationMessage(
  result: RunnerResult,
  path = '/dev/termination-log',
): Promise<void> {
  await writeFile(path, JSON.stringify(boundResult(result)), 'utf8');
}

/** The timing fields every result carries, from a start time to now. */
export function timing(startedAt: Date, finishedAt: Date) {
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: Math.max(0, (finishedAt.getTime() - startedAt.getTime()) / 1000),
  };
}
