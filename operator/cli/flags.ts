// Parsers for the flags of health, readiness and drill (commander option parsers: a bad value is a usage error).
import { Option } from 'commander';
import { parseDuration } from '../api/v1alpha1/common.js';
import { CliError, ExitCode } from './errors.js';

/** `a,b, c` → ['a','b','c']; a repeated flag adds to the list. */
export const commaList = (v: string, prev: string[] = []) => [
  ...prev,
  ...v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

/**
 * Milliseconds in a duration flag: a Go duration (`90s`, `5m`, `1h30m`), whole days (`7d`) or plain seconds
 * (`30`). Throws a usage error naming the flag otherwise.
 */
export function durationFlag(flag: string) {
  return (v: string): number => {
    const s = v.trim();
    let ms: number | undefined;
    if (/^\d+(\.\d+)?$/.test(s)) ms = Number(s) * 1000;
    else if (/^\d+d$/.test(s)) ms = Number(s.slice(0, -1)) * 86_400_000;
    else {
      try {
        ms = parseDuration(s);
      } catch {
        ms = undefined;
      }
    }
    if (ms === undefined || !(ms > 0))
      throw new CliError(
        ExitCode.Usage,
        `${flag} must be a duration such as 90s, 5m, 1h30m or 7d (got "${v}")`,
      );
    return ms;
  };
}

/** A duration option whose help shows the default as written (`10m`), not as milliseconds. */
export function durationOption(flags: string, description: string, defaultValue?: string): Option {
  const flag = flags.split(/[ ,]/)[0]!;
  const parse = durationFlag(flag);
  const o = new Option(flags, description).argParser(parse);
  return defaultValue ? o.default(parse(defaultValue), defaultValue) : o;
}
