// How the CLI prints: human tables by default, JSON or YAML for scripts (-o), colour and live redraws only
// on a terminal (and never with NO_COLOR).
import { stringify } from 'yaml';
import { CliError, ExitCode } from './errors.js';

export const OutputFormats = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OutputFormats)[number];

export function parseOutputFormat(v: string | undefined): OutputFormat {
  const f = v ?? 'table';
  if ((OutputFormats as readonly string[]).includes(f)) return f as OutputFormat;
  if (f === 'wide') return 'table';
  throw new CliError(ExitCode.Usage, `unknown output format "${f}": use one of ${OutputFormats.join(', ')}`);
}

export interface Out {
  readonly format: OutputFormat;
  /** stdout is a terminal: live updates (cursor movement) are allowed. */
  readonly tty: boolean;
  /** Colour allowed (a terminal, and NO_COLOR not set). */
  readonly color: boolean;
  write(s: string): void;
  line(s?: string): void;
  /** Diagnostics: stderr, so -o json stays parseable. */
  warn(s: string): void;
  /** Prints `data` as JSON/YAML, or calls `human` for the table format. */
  result(data: unknown, human: () => void): void;
}

export function makeOut(
  format: OutputFormat,
  stream: NodeJS.WriteStream = process.stdout,
  errStream: NodeJS.WriteStream = process.stderr,
): Out {
  // A dumb terminal (TERM=dumb: Emacs shells, some CI logs) cannot move the cursor: no live redraws there.
  const tty = stream.isTTY === true && process.env.TERM !== 'dumb';
  const color = tty && !process.env.NO_COLOR;
  return {
    format,
    tty,
    color,
    write: (s) => void stream.write(s),
    line: (s = '') => void stream.write(`${printable(s)}\n`),
    warn: (s) => void errStream.write(`${printable(s)}\n`),
    result(data, human) {
      if (format === 'json') stream.write(`${JSON.stringify(data, null, 2)}\n`);
      else if (format === 'yaml') stream.write(stringify(data, { lineWidth: 0 }));
      else human();
    },
  };
}

/* eslint-disable no-control-regex -- control characters are what these expressions are about */
/** The colours paint() writes: the only escape sequences printable() keeps. */
const OWN_SGR = /^\x1b\[(?:0|1|31|32|33|34|90)m/;
/** Escape sequences (CSI, OSC, other ESC x) and every other C0/C1 control character except \n. */
const CONTROL =
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|[\x00-\x09\x0b-\x1a\x1c-\x1f\x7f-\x9f]/g;

/**
 * Unicode bidirectional controls (embeddings, overrides, isolates, marks): text from the cluster could reorder
 * what a terminal shows, e.g. make "Failed" read as "deliaF" or move a name to the other end of a line.
 */
const BIDI_CONTROL = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A string safe to print on a terminal: a plan's reason, a status message or a name comes from the cluster, and
 * anyone who can write it could otherwise move the cursor, retitle the window or hide lines. Keeps \n (a
 * multi-line message prints line by line) and the colours paint() adds; tabs become spaces; bidirectional
 * controls are dropped.
 */
export function printable(s: string): string {
  return s.replace(CONTROL, (m) => (OWN_SGR.test(m) ? m : m === '\t' ? ' ' : '')).replace(BIDI_CONTROL, '');
}
/* eslint-enable no-control-regex */

// eslint-disable-next-line no-control-regex -- the escape character is what an ANSI sequence starts with
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
/** Visible width of a string (ANSI colour codes do not count). */
export const visibleWidth = (s: string) => s.replace(ANSI, '').length;

/** A plain table like kubectl's: upper-case headers, columns separated by three spaces, no borders. */
export function table(headers: string[], rows: (string | number | undefined | null)[][]): string {
  const cells = rows.map((r) =>
    headers.map((_, i) => (r[i] === undefined || r[i] === null ? '' : String(r[i]))),
  );
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => visibleWidth(r[i]!))));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - visibleWidth(c))))
      .join('   ')
      .trimEnd();
  return [fmt(headers.map((h) => h.toUpperCase())), ...cells.map(fmt)].join('\n');
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, gray: 90, bold: 1 } as const;
/** Colours `s` when the output allows it. */
export const paint = (out: Pick<Out, 'color'>, c: keyof typeof CODES, s: string) =>
  out.color ? `\x1b[${CODES[c]}m${s}\x1b[0m` : s;

/** "3m12s", "45s", "1.2s": short durations for tables. */
export function formatDuration(seconds: number | undefined | null): string {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return '';
  if (seconds < 10) return `${Math.round(seconds * 10) / 10}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ''}`;
}

/** kubectl's AGE column: time since `iso`. */
export const age = (iso: string | undefined, now = Date.now()) =>
  iso ? formatDuration(Math.max(0, (now - Date.parse(iso)) / 1000)) : '';
