// What the docs test reads from the Markdown: every fenced block of README.md and docs/**/*.md with its
// language, the line it starts on and the `<!-- docs-test: ... -->` marker before it; the simple commands of a
// shell block (a small word splitter: quotes, `$(...)`, heredocs, continuation lines, && || | ; &); and the
// check of an `nxt-rollback` command line against the CLI's real commander parser with every action replaced.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { CommanderError, type Command } from 'commander';
import { buildProgram } from '../../operator/cli/main.js';

export const REPO = resolve(import.meta.dirname, '..', '..');

export const YAML_LANGS = new Set(['yaml', 'yml']);
export const SHELL_LANGS = new Set(['sh', 'bash', 'console', 'shell']);

export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  text: string;
  /** `<!-- docs-test: skip (reason) -->`: the reason; '' when the marker has no reason (an error). */
  skip?: string;
  /** `<!-- docs-test: fragment Kind -->`: the block is part of a Kind's object (merged into a minimal one). */
  fragment?: string;
  /** Any other docs-test marker (an error: a typo must not silently skip). */
  badMarker?: string;
}

/** README.md and every docs/**\/*.md, repository-relative, sorted. */
export function docFiles(root = REPO): string[] {
  const out = ['README.md'];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) out.push(p);
    }
  };
  walk('docs');
  return out.sort();
}

const MARKER = /^<!--\s*docs-test:\s*(.*?)\s*-->\s*$/;

/** The fenced blocks of one Markdown text (``` and ~~~ fences; nested fences inside a block are content). */
export function blocksOf(file: string, text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!;
      if (l.trim().startsWith(fence) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(indent && l.startsWith(indent) ? l.slice(indent.length) : l);
    }
    const block: Block = { file, line: i + 1, lang: lang.toLowerCase(), text: body.join('\n') + '\n' };
    // The marker is the nearest non-blank line before the fence.
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const m = k >= 0 ? MARKER.exec(lines[k]!.trim()) : null;
    if (m) {
      const what = m[1]!;
      const skip = /^skip\b\s*(?:\((.*)\))?\s*$/.exec(what);
      const fragment = /^fragment\s+([A-Z]\w*)$/.exec(what);
      if (skip) block.skip = (skip[1] ?? '').trim();
      else if (fragment) block.fragment = fragment[1];
      else block.badMarker = what;
    }
    blocks.push(block);
    i = j;
  }
  return blocks;
}

export function allBlocks(root = REPO): Block[] {
  return docFiles(root).flatMap((f) =>
    blocksOf(relative(root, join(root, f)), readFileSync(join(root, f), 'utf8')),
  );
}

/** A console block's commands: the `$ ` lines and their continuation lines; the rest is output. */
export function consoleCommands(text: string): string {
  const out: string[] = [];
  let cont = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('$ ')) {
      out.push(line.slice(2));
      cont = line.endsWith('\\');
    } else if (cont) {
      out.push(line);
      cont = line.endsWith('\\');
    }
  }
  return out.join('\n') + '\n';
}

/** A transcript: a block without a shell language whose lines include `$ ` commands (a console session). */
export const isTranscript = (b: Block) => (b.lang === '' || b.lang === 'text') && /^\$ /m.test(b.text);

/** Shell blocks, and transcripts (whose `$ ` commands are checked like a console block's). */
export const isShell = (b: Block) => SHELL_LANGS.has(b.lang) || isTranscript(b);

/** The script of a shell block as bash would read it. */
export const scriptOf = (b: Block) =>
  b.lang === 'console' || isTranscript(b) ? consoleCommands(b.text) : b.text;

// --- a small shell word splitter ---------------------------------------------------------------------------

const OPERATORS = ['&&', '||', ';;', '|', ';', '&', '(', ')', '{', '}'];
const KEYWORDS = new Set([
  'if',
  'then',
  'else',
  'elif',
  'fi',
  'do',
  'done',
  'while',
  'until',
  'for',
  '!',
  'time',
]);

/**
 * The simple commands of a shell script, each as its words (quotes removed; `$(...)` and `$VAR` left as
 * written inside the word). Commands inside `$(...)` are returned too. Heredoc bodies and comments are
 * dropped, continuation lines joined; leading `VAR=value` assignments and shell keywords are removed.
 */
export function simpleCommands(script: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  const heredocs: string[] = [];
  const end = () => {
    while (words.length && (KEYWORDS.has(words[0]!) || /^[A-Za-z_]\w*=/.test(words[0]!))) words.shift();
    if (words.length) commands.push(words);
    words = [];
  };
  const s = script.replace(/\\\n/g, ' ');
  let i = 0;
  /** Reads `$( ... )` starting at s[i] === '$' && s[i+1] === '(', returns the inner text, advances i. */
  const readSubst = (): string => {
    let depth = 0;
    const start = i + 2;
    let q: string | undefined;
    for (i += 1; i < s.length; i++) {
      const c = s[i]!;
      if (q) {
        if (c === q) q = undefined;
        else if (c === '\\' && q === '"') i++;
        continue;
      }
      if (c === "'" || c === '"') q = c;
      else if (c === '(') depth++;
      else if (c === ')' && --depth === 0) break;
    }
    const inner = s.slice(start, i);
    i++;
    commands.push(...simpleCommands(inner));
    return `$(${inner})`;
  };
  while (i < s.length) {
    const c = s[i]!;
    if (c === '\n') {
      end();
      i++;
      // Skip heredoc bodies that started on the line just ended.
      while (heredocs.length) {
        const delim = heredocs.shift()!;
        while (i < s.length) {
          const nl = s.indexOf('\n', i);
          const line = s.slice(i, nl < 0 ? s.length : nl);
          i = nl < 0 ? s.length : nl + 1;
          if (line.trim() === delim) break;
        }
      }
      continue;
    }
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < s.length && s[i] !== '\n') i++;
      continue;
    }
    const op = OPERATORS.find((o) => s.startsWith(o, i));
    if (op) {
      end();
      i += op.length;
      continue;
    }
    const heredoc = /^<<-?\s*(['"]?)(\w+)\1/.exec(s.slice(i));
    if (heredoc) {
      heredocs.push(heredoc[2]!);
      i += heredoc[0].length;
      continue;
    }
    // A redirection with its target is not a word of the command.
    const redirect = /^(\d?>&\d|&>>?|\d?>>?|\d?<)\s*/.exec(s.slice(i));
    if (redirect) {
      i += redirect[0].length;
      if (/^\d?>&\d/.test(redirect[0])) continue;
      readWord();
      continue;
    }
    words.push(readWord());
  }
  end();
  return commands;

  function readWord(): string {
    let w = '';
    while (i < s.length) {
      const c = s[i]!;
      if (c === "'") {
        const j = s.indexOf("'", i + 1);
        w += s.slice(i + 1, j < 0 ? s.length : j);
        i = j < 0 ? s.length : j + 1;
      } else if (c === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) {
            w += s[i + 1];
            i += 2;
          } else if (s[i] === '$' && s[i + 1] === '(') w += readSubst();
          else w += s[i++];
        }
        i++;
      } else if (c === '\\') {
        w += s[i + 1] ?? '';
        i += 2;
      } else if (c === '$' && s[i + 1] === '(') {
        w += readSubst();
      } else if (/[\s;&|()<>]/.test(c)) {
        break;
      } else {
        w += c;
        i++;
      }
    }
    return w;
  }
}

// --- the CLI's own parser ------------------------------------------------------------------------------------

/**
 * Parses `args` (what follows `nxt-rollback`) with the CLI's real commander program, every action replaced by
 * a no-op, nothing printed. Returns undefined when commander accepts the line (--help included), else the error.
 */
export async function cliUsageError(args: string[]): Promise<string | undefined> {
  const program = buildProgram();
  let out = '';
  const quiet = (c: Command) => {
    c.configureOutput({ writeOut: () => {}, writeErr: (s) => (out += s) });
    c.exitOverride();
    // A group (`backup`, `backups`) has no action of its own; a leaf's is replaced.
    if (c.commands.length === 0) c.action(() => {});
    c.commands.forEach(quiet);
  };
  quiet(program);
  try {
    await program.parseAsync(args, { from: 'user' });
    return undefined;
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode === 0) return undefined;
    return (out || (e as Error).message).trim();
  }
}

/** The nxt-rollback argument list of a command, or undefined when it is not an nxt-rollback invocation. */
export function nxtRollbackArgs(argv: string[], scripts: Record<string, string>): string[] | undefined {
  const [cmd, ...rest] = argv;
  if (!cmd) return undefined;
  if (/(^|\/)nxt-rollback$/.test(cmd) || /(^|\/)kubectl-nxt_rollback$/.test(cmd)) return rest;
  if (cmd === 'kubectl' && rest[0] === 'nxt-rollback') return rest.slice(1);
  if (cmd === 'npm' && rest[0] === 'run' && rest[1]) {
    const script = scripts[rest[1]];
    const m = script ? /^bin\/nxt-rollback\b(.*)$/.exec(script) : null;
    if (!m) return undefined;
    const after = rest.indexOf('--');
    return [...(simpleCommands(m[1]!)[0] ?? []), ...(after < 0 ? [] : rest.slice(after + 1))];
  }
  return undefined;
}

// --- links ---------------------------------------------------------------------------------------------------

/** The text of a Markdown file outside its fenced blocks (headings and links in code are not the page's). */
export function withoutFences(text: string): string {
  let inFence: string | undefined;
  return text
    .split('\n')
    .map((l) => {
      const f = /^\s*(`{3,}|~{3,})/.exec(l);
      if (f && (!inFence || f[1]!.startsWith(inFence))) {
        inFence = inFence ? undefined : f[1]!;
        return '';
      }
      return inFence ? '' : l;
    })
    .join('\n');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to `-`, `-1`, `-2` for repeats. */
export function markdownAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of withoutFences(text).matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\-_ ]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n ? `${slug}-${n}` : slug);
  }
  // Explicit anchors: <a id="..."></a>.
  for (const m of withoutFences(text).matchAll(/<a (?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

/** Relative links of a Markdown file (outside code): `[text](path#anchor)`, and the line they are on. */
export function relativeLinks(text: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  withoutFences(text)
    .split('\n')
    .forEach((l, i) => {
      // Inline code spans are not links.
      for (const m of l.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/i.test(target)) continue;
        out.push({ target, line: i + 1 });
      }
    });
  return out;
}
