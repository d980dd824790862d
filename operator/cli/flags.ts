// Parsers for the CLI's flags (a bad value is a usage error): lists and durations, the same for every command.
import { Option } from 'commander';
import { parseDuration } from '../api/v1alpha1/common.js';
import { CliError, ExitCode } from './errors.js';

/** A repeatable flag (`--http a --http b`) → ['a', 'b']. */
export const repeatable = (v: string, prev: string[] = []) => [...prev, v];

/** `a,b, c` → ['a','b','c']; a repeated flag adds to the list. */
export const commaList = (v: string, prev: string[] = []) => [
  ...prev,
  ...v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

/**
 * Milliseconds in a duration flag such as --timeout: a Go duration (`90s`, `5m`, `1h30m`), whole days (`7d`) or
 * plain seconds (`30`). Throws a usage error naming the flag otherwise.
 */
export function parseDurationFlag(flag: string, v: string): number {
  const s = v.trim();
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(s)) ms = Number(s) * 1000;
  else if (/^\d+d$/.test(s)) ms = Number(s.slice(0, -1)) * 86_400_000;
  else ms = goDurationMs(s);
  if (ms === undefined || !(ms > 0))
    throw new CliError(
      ExitCode.Usage,
      `${flag} must be a duration such as 90s, 5m, 1h30m or 7d (got "${v}")`,
    );
  return ms;
}

/** parseDurationFlag as a commander option parser. */
export const durationFlag = (flag: string) => (v: string) => parseDurationFlag(flag, v);

/**
 * A duration the CLI writes into a spec field (e.g. --validation-timeout → spec.validation.timeout): a Go
 * duration only, checked like the schema checks it (30s, 5m, 1h30m), so the API server does not refuse it.
 */
export function specDurationFlag(flag: string, value: string): number {
  const ms = goDurationMs(value);
  if (ms === undefined || !(ms > 0))
    throw new CliError(
      ExitCode.Usage,
      `${flag} "${value}" is not a duration: use e.g. 30s, 5m or 1h30m (units h, m, s, ms)`,
    );
  return ms;
}

const goDurationMs = (v: string) => {
  try {
    return parseDuration(v);
  } catch {
    return undefined;
  }
};

/** A duration option whose help shows the default as written (`10m`), not as milliseconds. */
export function durationOption(flags: string, description: string, defaultValue?: string): Option {
  const flag = flags.split(/[ ,]/)[0]!;
  const parse = durationFlag(flag);
  const o = new Option(flags, description).argParser(parse);
  return defaultValue ? o.default(parse(defaultValue), defaultValue) : o;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A namespace (DNS-1123 label) before it goes into a URL: `-n ..` must not reach another path. */
export function checkNamespace(flag: string, v: string): string {
  if (v.length > 63 || !DNS1123_LABEL.test(v))
    throw new CliError(
      ExitCode.Usage,
      `${flag} "${v}" is not a namespace name (lower-case letters, digits and "-", at most 63)`,
    );
  return v;
}

/** An object name (DNS-1123 subdomain) before it goes into a URL: "..", "a/b" and "A" are refused. */
export function checkObjectName(what: string, v: string): string {
  if (v.length > 253 || !DNS1123_SUBDOMAIN.test(v))
    throw new CliError(
      ExitCode.Usage,
      `${what} "${v}" is not an object name (lower-case letters, digits, "-" and ".", at most 253)`,
    );
  return v;
}

/** checkObjectName as a commander parser, for an option or a single argument. */
export const objectName = (what: string) => (v: string) => checkObjectName(what, v);
/** checkObjectName for a variadic argument (`[deployments...]`): commander hands each value and the list so far. */
export const objectNames =
  (what: string) =>
  (v: string, prev: string[] = []) => [...prev, checkObjectName(what, v)];
/** A comma-separated list of object names (--deployments a,b). */
export const objectNameList =
  (what: string) =>
  (v: string, prev: string[] = []) => [...prev, ...commaList(v).map((n) => checkObjectName(what, n))];
