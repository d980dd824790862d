export type Redact = (text: string) => string;

const MASK = '***';

/**
 * Builds a function that removes the given secrets from any text, in the spellings they can take in a
 * log line: as is, percent-encoded (inside a URL) and JSON-escaped. It also masks credentials of any
 * connection URL or conninfo string and the user info of any other URL, so a secret we were not told about does not leak through pg_dump's
 * stderr either.
 */
export function createRedactor(secrets: ReadonlyArray<string | undefined>): Redact {
  const variants = new Set<string>();
  for (const s of secrets) {
    if (!s) continue;
    variants.add(s);
    variants.add(encodeURIComponent(s));
    variants.add(JSON.stringify(s).slice(1, -1));
  }
  // Longest first, so a secret that contains another is masked whole.
  const ordered = [...variants].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text
      .replace(/(postgres(?:ql)?:\/\/[^:/?#@\s]*:)[^@\s]*@/gi, `$1${MASK}@`)
      .replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]+)/gi, `$1${MASK}`)
      // Any other URL: the whole user info (an S3 endpoint's user name is an access key id).
      .replace(/\b(?!postgres(?:ql)?:)([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi, `$1${MASK}@`);
    for (const v of ordered) out = out.split(v).join(MASK);
    return out;
  };
}
