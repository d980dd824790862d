import { createHash } from 'node:crypto';

// Values copied into status must fit the schema's maxLength, or the API server rejects the whole status
// write (422) and the object stops reporting anything. The API server counts characters (code points);
// these count UTF-16 units, which are never fewer, so a value that fits here fits there.

/** `s` cut to at most `max` characters, ending in "..." when cut, never splitting a surrogate pair. */
export function boundText(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = Math.max(0, max - 3);
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // a high surrogate whose pair would be cut off
  return s.slice(0, end) + '...';
}

/**
 * `s` itself when it fits in `max` characters; otherwise its start plus a marker with its SHA-256, so that
 * two long values that share a prefix stay distinct (e.g. a handled annotation value compared later).
 */
export function boundIdentity(s: string, max: number): string {
  if (s.length <= max) return s;
  const marker = `...sha256:${createHash('sha256').update(s).digest('hex').slice(0, 32)}`;
  return boundText(s, max - marker.length + 3).slice(0, -3) + marker;
}
