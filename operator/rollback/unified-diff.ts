// A small line-based unified diff (Myers' O((N+M)·D) algorithm) for dry-run reports, in the format
// `diff -u` and `git diff` print, so reviewers read it with the tools they already know.

type Op = { kind: ' ' | '-' | '+'; line: string };

function splitLines(text: string): string[] {
  if (text === '') return [];
  return (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
}

/** Shortest edit script from `a` to `b` as a sequence of kept, deleted and inserted lines. */
function editScript(a: string[], b: string[]): Op[] {
  // Common prefix and suffix never take part in the search; trimming them keeps D (and memory) small.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  const x0 = a.slice(head, a.length - tail);
  const y0 = b.slice(head, b.length - tail);
  const keep = (lines: string[]): Op[] => lines.map((line) => ({ kind: ' ', line }));
  return [...keep(a.slice(0, head)), ...middle(x0, y0), ...keep(a.slice(a.length - tail))];
}

function middle(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = max === 0;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x =
        k === -d || (k !== d && v[off + k - 1]! < v[off + k + 1]!) ? v[off + k + 1]! : v[off + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
  }
  // Walk the recorded frontiers backwards from (n, m) to recover the path.
  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const vd = trace[d]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && vd[off + k - 1]! < vd[off + k + 1]!) ? k + 1 : k - 1;
    const prevX = vd[off + prevK]!;
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ kind: ' ', line: a[--x]! });
      y--;
    }
    if (d > 0) {
      if (x === prevX) ops.push({ kind: '+', line: b[--y]! });
      else ops.push({ kind: '-', line: a[--x]! });
    }
  }
  return ops.reverse();
}

// GNU diff prints a one-line range without its length, and an empty range at the line before it.
function range(start: number, count: number): string {
  if (count === 0) return `${start},0`;
  return count === 1 ? `${start + 1}` : `${start + 1},${count}`;
}

/**
 * Unified diff of two texts with `context` lines around each change; changes closer than 2·context lines
 * share a hunk. Returns '' when the texts are equal.
 */
export function unifiedDiff(
  before: string,
  after: string,
  fromFile: string,
  toFile: string,
  context = 3,
): string {
  const ops = editScript(splitLines(before), splitLines(after));
  const changed = ops.flatMap((op, i) => (op.kind === ' ' ? [] : [i]));
  if (changed.length === 0) return '';
  // Line positions (0-based) in each file before every op, for hunk headers.
  const oldAt: number[] = [];
  const newAt: number[] = [];
  let o = 0;
  let n = 0;
  for (const op of ops) {
    oldAt.push(o);
    newAt.push(n);
    if (op.kind !== '+') o++;
    if (op.kind !== '-') n++;
  }
  const out = [`--- ${fromFile}`, `+++ ${toFile}`];
  for (let i = 0; i < changed.length;) {
    let j = i;
    while (j + 1 < changed.length && changed[j + 1]! - changed[j]! - 1 <= 2 * context) j++;
    const start = Math.max(0, changed[i]! - context);
    const end = Math.min(ops.length, changed[j]! + context + 1);
    const hunk = ops.slice(start, end);
    const oldCount = hunk.filter((op) => op.kind !== '+').length;
    const newCount = hunk.filter((op) => op.kind !== '-').length;
    out.push(`@@ -${range(oldAt[start]!, oldCount)} +${range(newAt[start]!, newCount)} @@`);
    for (const op of hunk) out.push(op.kind + op.line);
    i = j + 1;
  }
  return out.join('\n') + '\n';
}
