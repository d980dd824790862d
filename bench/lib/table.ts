// Markdown tables and number formatting for benchmark output (stdout is meant to be pasted into docs).
import type { Summary } from './stats.js';

export type Align = 'left' | 'right';

/** A GitHub-flavoured Markdown table; columns after the first are right-aligned unless `align` says otherwise. */
export function markdownTable(headers: string[], rows: (string | number)[][], align?: Align[]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, 3, ...cells.map((r) => (r[i] ?? '').length)));
  const al = (i: number): Align => align?.[i] ?? (i === 0 ? 'left' : 'right');
  const pad = (s: string, i: number) => (al(i) === 'left' ? s.padEnd(widths[i]!) : s.padStart(widths[i]!));
  const line = (r: string[]) => `| ${r.map((c, i) => pad(c, i)).join(' | ')} |`;
  const sep = `| ${widths.map((w, i) => (al(i) === 'left' ? ':' + '-'.repeat(w - 1) : '-'.repeat(w - 1) + ':')).join(' | ')} |`;
  return [line(headers), sep, ...cells.map(line)].join('\n');
}

/** Milliseconds with a precision that suits their size: 0.84 ms, 12.3 ms, 412 ms, 2.41 s, 73.1 s. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  if (ms < 100_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a';
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export const SUMMARY_HEADERS = ['n', 'median', 'p90', 'p99', 'min', 'max'];

/** The SUMMARY_HEADERS cells of one sample set, in milliseconds. */
export function summaryCells(s: Summary): string[] {
  return [String(s.n), fmtMs(s.median), fmtMs(s.p90), fmtMs(s.p99), fmtMs(s.min), fmtMs(s.max)];
}
