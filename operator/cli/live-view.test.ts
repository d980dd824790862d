import { describe, expect, it } from 'vitest';
import { LiveView, terminalSize } from './live-view.js';

describe('LiveView', () => {
  it('draws the first frame as plain lines, then moves up and overwrites it', () => {
    let out = '';
    const v = new LiveView((s) => (out += s));
    v.render(['a', 'b']);
    expect(out).toBe('\r\x1b[2Ka\n\r\x1b[2Kb\n');
    out = '';
    v.render(['a', 'c']);
    expect(out, 'cursor up 2, then both lines cleared and rewritten').toBe('\x1b[2A\r\x1b[2Ka\n\r\x1b[2Kc\n');
  });
  it('clears what is left below when a frame is shorter, and skips identical frames', () => {
    let out = '';
    const v = new LiveView((s) => (out += s));
    v.render(['a', 'b', 'c']);
    out = '';
    v.render(['a', 'b', 'c']);
    expect(out).toBe('');
    v.render(['x']);
    expect(out).toBe('\x1b[3A\r\x1b[2Kx\n\x1b[J');
  });
  it('draws cluster text without its control characters (one frame line stays one row)', () => {
    let out = '';
    new LiveView((s) => (out += s)).render(['step x: \x1b[5Aup\nand down']);
    expect(out).toBe('\r\x1b[2Kstep x: up and down\n');
  });
  it('reads the terminal size on every frame (a resized window)', () => {
    const stdout = { columns: 100, rows: 30 };
    expect(terminalSize(stdout)).toEqual({ width: 99, height: 30 });
    stdout.columns = 60;
    stdout.rows = 20;
    expect(terminalSize(stdout)).toEqual({ width: 59, height: 20 });
  });
});
