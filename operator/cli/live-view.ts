// A block of lines redrawn in place on a terminal (ANSI cursor-up and clear-line), like `kubectl rollout
// status` or docker's progress: the previous frame is overwritten, nothing scrolls.
import { printable } from './output.js';

/** ESC [ n A: cursor up n lines; ESC [ 2 K: clear the whole line; ESC [ J: clear to the end of the screen. */
const up = (n: number) => (n > 0 ? `\x1b[${n}A` : '');
const CLEAR_LINE = '\x1b[2K';
const CLEAR_BELOW = '\x1b[J';

/** The terminal's size now: read on every frame, so a resized window gets frames that fit. */
export function terminalSize(stream: { columns?: number; rows?: number } = process.stdout) {
  return { width: Math.max(40, (stream.columns || 120) - 1), height: stream.rows || 50 };
}

export class LiveView {
  private drawn = 0;
  private lastFrame = '';

  constructor(private readonly write: (s: string) => void) {}

  /** Replaces the previous frame with `lines`; lines must fit the terminal's width (no wrapping). */
  render(lines: string[]): void {
    const frame = lines.join('\n');
    if (frame === this.lastFrame && this.drawn) return;
    let s = up(this.drawn);
    // A line is one terminal row: control characters from the cluster would move the cursor (printable).
    for (const l of lines) s += `\r${CLEAR_LINE}${printable(l).replace(/\n/g, ' ')}\n`;
    if (lines.length < this.drawn) s += CLEAR_BELOW;
    this.write(s);
    this.drawn = lines.length;
    this.lastFrame = frame;
  }
}
