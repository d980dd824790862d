// What the docs test reads from the Markdown: every fenced block of README.md and docs/**/*.md with its
// language, the line it starts on and the `<!-- docs-test: ... -->` marker before it (fences inside list items
// and blockquotes too); which languages the test checks and which it knows to be not executable (any other
// fails); the simple commands of a shell block and its heredocs (a small word splitter: quotes, `$(...)`,
// heredocs, continuation lines, && || | ; &); and the check of an `nxt-rollback` command line by the CLI's own
// program in check-only mode (commander's parsing and each command's own checks, no cluster).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { CommanderError, type Command } from 'commander';
import { Annotation, GROUP, Label } from '../../operator/api/v1alpha1/common.js';
import { RECORDED_ANNOTATION } from '../../operator/backup/record.js';
import { REQUEST_VALUE_ANNOTATION } from '../../operator/backup/schedule-jobs.js';
import type { CliCommand } from '../../operator/cli/args.js';
import { REQUEST_ID_ANNOTATION } from '../../operator/cli/commands/emergency.js';
import { DRILL_LABEL, DRILL_SOURCE_LABEL } from '../../operator/cli/drill-objects.js';
import { CREATED_BY_LABEL } from '../../operator/cli/health-report.js';
import { buildProgram } from '../../operator/cli/main.js';
import { SUSPENDED_BY } from '../../operator/gitops/owner-pause.js';
import { BACKUP_ID_ANNOTATION } from '../../operator/rollback/runner-jobs.js';

export const REPO = resolve(import.meta.dirname, '..', '..');

export const YAML_LANGS = new Set(['yaml', 'yml']);
/** Scripts as written (sh, bash, shell), and shell sessions: `$ ` commands with their output (console). */
export const SHELL_LANGS = new Set(['sh', 'bash', 'console', 'shell']);
/**
 * The languages of blocks that are not run, each for a reason; any other language (an untagged fence too) fails
 * the docs test, so a block in a new language cannot slip by unchecked.
 */
export const NOT_EXECUTABLE_LANGS: Record<string, string> = {
  text: 'output, usage synopses and directory trees: nothing to run',
  json: 'payloads the operator sends (webhook bodies); parsed as JSON',
  mermaid: 'a diagram',
  promql: 'a query pasted into Prometheus; its rules are checked where they are YAML (promtool)',
  sql: 'statements run inside PostgreSQL by a person following a runbook, not on a shell',
};

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
  /** `<!-- docs-test: expect-error -->`: a shell block showing a refusal; each nxt-rollback line must fail. */
  expectError?: boolean;
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

/** Commands whose lines the docs test checks (or that a reader runs as written): not to be hidden in text. */
const COMMAND_WORDS =
  /^(kubectl|helm|npm|npx|nxt-rollback|bin\/\S+|psql|pg_dump|pg_restore|curl|flux|kind|docker|podman|git|make)$/;

/**
 * A line that is a command a reader would run: a known command, also after `$ `, `sudo`, `env`, `VAR=x`
 * assignments and the like, and with a trailing comment; a usage synopsis (`[--flag]`, `<value>`, `a|b`) is not.
 */
export function isBareCommand(line: string): boolean {
  const code = line
    .replace(/\s#\s.*$/, '')
    .trim()
    .replace(/^\$\s+/, '');
  const argv = simpleCommands(code)[0];
  if (!argv?.length || !COMMAND_WORDS.test(argv[0]!)) return false;
  // Words that only a synopsis has: an optional [part], a <placeholder>, choices a|b.
  const synopsis = /(^|\s)\[[^\]]*\]|<[\w-]+>|\w\|\w|\.\.\./.test(code);
  return !synopsis;
}

const MARKER = /^<!--\s*docs-test:\s*(.*?)\s*-->\s*$/;

/**
 * The fenced blocks of one Markdown text (``` and ~~~ fences; nested fences inside a block are content). A fence
 * inside a list item (indented) or a blockquote (`> `) is found too; its body loses that indent or those `>`.
 */
export function blocksOf(file: string, text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^((?:[ \t]*>)*)([ \t]*)(`{3,}|~{3,})[ \t]*([^\s`{]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, quotes, indent, fence, lang] = open as unknown as [string, string, string, string, string];
    const depth = (quotes.match(/>/g) ?? []).length;
    /** The line without the container's `>` markers and up to the fence's indent. */
    const inner = (l: string) => {
      for (let q = 0; q < depth; q++) l = l.replace(/^[ \t]*>[ \t]?/, '');
      // The `>` is followed by one optional space: the fence's own indent is what is left.
      const own = depth ? indent.replace(/^[ \t]/, '') : indent;
      let n = 0;
      while (n < own.length && (l[n] === ' ' || l[n] === '\t')) n++;
      return l.slice(n);
    };
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = inner(lines[j]!);
      if (l.trim().startsWith(fence) && l.trim().replace(/[`~]/g, '') === '' && l.trim()[0] === fence[0])
        break;
      body.push(l);
    }
    const block: Block = { file, line: i + 1, lang: lang.toLowerCase(), text: body.join('\n') + '\n' };
    // The marker is the nearest non-blank line before the fence (inside the same blockquote).
    let k = i - 1;
    while (k >= 0 && inner(lines[k]!).trim() === '') k--;
    const m = k >= 0 ? MARKER.exec(inner(lines[k]!).trim()) : null;
    if (m) {
      const what = m[1]!;
      const skip = /^skip\b\s*(?:\((.*)\))?\s*$/.exec(what);
      const fragment = /^fragment\s+([A-Z]\w*)$/.exec(what);
      if (skip) block.skip = (skip[1] ?? '').trim();
      else if (fragment) block.fragment = fragment[1];
      else if (/^expect-error\b\s*(\(.*\))?$/.test(what)) block.expectError = true;
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

export const isShell = (b: Block) => SHELL_LANGS.has(b.lang);

/** The script of a shell block as bash would read it: a console block's `$ ` commands, else the text. */
export const scriptOf = (b: Block) => (b.lang === 'console' ? consoleCommands(b.text) : b.text);

/**
 * What is wrong with a block's language or its shape, before anything runs: a language the test does not know,
 * an empty block, a prompt in a script or a shell session in a not-executable block. undefined when fine.
 */
export function blockProblem(b: Block): string | undefined {
  if (b.lang === '')
    return 'a fence without a language: console (a shell session: `$ ` commands and output), sh (commands), yaml, or text (output, a synopsis)';
  const known = YAML_LANGS.has(b.lang) || SHELL_LANGS.has(b.lang) || b.lang in NOT_EXECUTABLE_LANGS;
  if (!known)
    return (
      `language "${b.lang}" is not checked by the docs test: use sh or console for commands, yaml for ` +
      `objects, or one of ${Object.keys(NOT_EXECUTABLE_LANGS).join(', ')} (test/support/docs.ts)`
    );
  if (b.lang in NOT_EXECUTABLE_LANGS && /^\$ /m.test(b.text))
    return `a ${b.lang} block with \`$ \` commands: a shell session is a console block (its commands are checked)`;
  // A command line in a text block would go unchecked; a usage synopsis ([optional], <value>, a|b) is text.
  const command = b.lang === 'text' && b.text.split('\n').find(isBareCommand);
  if (command) return `"${command.trim()}" in a text block: a command goes in a sh or console block`;
  // A console line that is a command but not a `$ ` prompt would be taken for output and go unchecked.
  const hidden =
    b.lang === 'console' &&
    b.text
      .split('\n')
      .find((l) => /^(\$(?! )|# |#(?=\S))/.test(l) && isBareCommand(l.replace(/^[$#]\s*/, '')));
  if (hidden)
    return `"${hidden.trim()}" in a console block: a command is written after a \`$ \` prompt (with its space)`;
  const synopsis = b.lang === 'text' ? synopsisProblems(b.text) : [];
  if (synopsis.length) return `a usage synopsis that is not the CLI's: ${synopsis.join('; ')}`;
  if (isShell(b) && b.lang !== 'console' && /^\$ /m.test(b.text))
    return `a \`$ \` prompt in a ${b.lang} block: a session with prompts and output is a console block`;
  if (isShell(b) && scriptOf(b).trim() === '')
    return b.lang === 'console'
      ? 'a console block without a `$ ` command: nothing is checked (output alone is a text block)'
      : `an empty ${b.lang} block`;
  if (YAML_LANGS.has(b.lang) && b.text.trim() === '') return 'an empty yaml block';
  if (b.lang === 'json')
    try {
      JSON.parse(b.text);
    } catch (e) {
      return `invalid JSON: ${(e as Error).message}`;
    }
  if (b.expectError && !isShell(b)) return 'expect-error marks a shell block';
  // The tutorial runs such a block as `if (block); then fail`: set -e is off there, so only the last command's
  // failure would count, and each nxt-rollback line elsewhere is checked alone. One command per block.
  if (b.expectError && simpleCommands(scriptOf(b)).length !== 1)
    return 'an expect-error block holds one command (the refusal it shows); split the others into their own blocks';
  return undefined;
}

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
 * Commands that run the command after them (their own options skipped): `sudo kubectl ...` is a kubectl line.
 * The value: options that take a value; `positional` for timeout's duration.
 */
const WRAPPERS: Record<string, { values: string[]; positional?: number; script?: boolean }> = {
  sudo: { values: ['-u', '-g', '-C', '-D', '-h', '-p', '-U', '-r', '-t'] },
  env: { values: ['-u', '-C', '-S'] },
  xargs: { values: ['-I', '-n', '-P', '-L', '-d', '-a', '-E', '-s'] },
  watch: { values: ['-n', '--interval'], script: true },
  exec: { values: ['-a'] },
  command: { values: [] },
  nohup: { values: [] },
  nice: { values: ['-n'] },
  timeout: { values: ['-s', '-k', '--signal', '--kill-after'], positional: 1 },
  eval: { values: [], script: true },
};

/** A simple command's words without keywords, assignments and wrappers: the command(s) it really runs. */
function unwrap(words: string[]): string[][] {
  const w = [...words];
  for (;;) {
    while (w.length && (KEYWORDS.has(w[0]!) || /^[A-Za-z_]\w*=/.test(w[0]!))) w.shift();
    const wrapper = w[0] !== undefined ? WRAPPERS[w[0]] : undefined;
    if (!wrapper) break;
    w.shift();
    while (w[0]?.startsWith('-')) {
      const opt = w.shift()!;
      if (wrapper.values.includes(opt)) w.shift();
    }
    w.splice(0, wrapper.positional ?? 0);
    // eval and watch run their words as a shell script.
    if (wrapper.script && w.length) return parseShell(w.join(' ')).commands;
  }
  return w.length ? [w] : [];
}

/** A heredoc of a shell script: the command it is the input of, and its text. */
export interface Heredoc {
  argv: string[];
  body: string;
}

/**
 * The simple commands of a shell script, each as its words (quotes removed; `$(...)` and `$VAR` left as
 * written inside the word). Commands inside `$(...)` are returned too. Heredoc bodies and comments are
 * dropped, continuation lines joined; leading `VAR=value` assignments and shell keywords are removed.
 */
export const simpleCommands = (script: string): string[][] => parseShell(script).commands;

/** The heredocs of a shell script (those inside `$(...)` too), each with the command that reads it. */
export const heredocsOf = (script: string): Heredoc[] => parseShell(script).heredocs;

function parseShell(script: string): { commands: string[][]; heredocs: Heredoc[] } {
  const commands: string[][] = [];
  const found: Heredoc[] = [];
  let words: string[] = [];
  /** Heredocs opened on the current line; their bodies start on the next. */
  const heredocs: { delim: string; stripTabs: boolean; argv: string[] }[] = [];
  const end = () => {
    for (const w of unwrap(words)) commands.push(w);
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
    const parsed = parseShell(inner);
    commands.push(...parsed.commands);
    found.push(...parsed.heredocs);
    return `$(${inner})`;
  };
  while (i < s.length) {
    const c = s[i]!;
    if (c === '\n') {
      end();
      i++;
      // Read the heredoc bodies that started on the line just ended.
      while (heredocs.length) {
        const { delim, stripTabs, argv } = heredocs.shift()!;
        const body: string[] = [];
        while (i < s.length) {
          const nl = s.indexOf('\n', i);
          const line = s.slice(i, nl < 0 ? s.length : nl);
          i = nl < 0 ? s.length : nl + 1;
          if ((stripTabs ? line.replace(/^\t+/, '') : line) === delim) break;
          body.push(stripTabs ? line.replace(/^\t+/, '') : line);
        }
        found.push({ argv, body: body.length ? body.join('\n') + '\n' : '' });
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
    const heredoc = /^<<(-?)\s*(['"]?)(\w+)\2/.exec(s.slice(i));
    if (heredoc) {
      // `words` is the command's own array (end() pushes it): the heredoc's argv fills in as the line is read.
      heredocs.push({ delim: heredoc[3]!, stripTabs: heredoc[1] === '-', argv: words });
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
  return { commands, heredocs: found };

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
 * Runs `args` (what follows `nxt-rollback`) through the CLI's own program in check-only mode: commander's
 * parsing (commands, flags, choices, value parsers) and each command's own checks (operator/cli/command.ts's
 * action: flag combinations, durations), stopping before any kubeconfig is read; nothing printed. `error` is
 * the CLI's refusal (none: accepted, --help included); `wouldCreate` the objects the command would create from
 * its flags (emergency's RollbackPlan), for a server-side dry run.
 */
export async function cliCheck(args: string[]): Promise<{ error?: string; wouldCreate: unknown[] }> {
  const program = buildProgram({ checkOnly: true }) as CliCommand;
  let out = '';
  const quiet = (c: Command) => {
    c.configureOutput({ writeOut: () => {}, writeErr: (s) => (out += s) });
    c.exitOverride();
    c.commands.forEach(quiet);
  };
  quiet(program);
  // An unexpanded variable would be checked as its own name (`-n $NS`): the docs write the value.
  const variable = args.find((a) => a.includes('$'));
  if (variable)
    return {
      error: `"${variable}": a shell variable the check cannot expand; write the value in the example`,
      wouldCreate: [],
    };
  // Commander prints the help as soon as it sees --help, before it looks at the other options: `status --help
  // --bogus` would pass. So the line is parsed without the help flag (before a `--`), with the checks a help
  // request skips tolerated (a missing argument, a group without its subcommand) and no action run.
  const dd = args.indexOf('--');
  const before = dd < 0 ? args : args.slice(0, dd);
  const help = before.some((a) => a === '--help' || a === '-h');
  if (help) {
    args = [...before.filter((a) => a !== '--help' && a !== '-h'), ...(dd < 0 ? [] : args.slice(dd))];
    program.hook('preAction', () => {
      throw new CommanderError(0, 'docs.help', '(help)');
    });
  }
  const helpTolerates = new Set(['commander.missingArgument', 'commander.help', 'commander.helpDisplayed']);
  try {
    await program.parseAsync(args, { from: 'user' });
    return { wouldCreate: program.wouldCreate };
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode === 0) return { wouldCreate: [] };
    if (help && e instanceof CommanderError && helpTolerates.has(e.code)) return { wouldCreate: [] };
    return { error: (out || (e as Error).message).trim(), wouldCreate: [] };
  }
}

/** cliCheck's refusal only. */
export const cliUsageError = async (args: string[]) => (await cliCheck(args)).error;

/**
 * The flags a usage synopsis in a text block names (`nxt-rollback drill [--deployment d] [--keep]`, continued on
 * indented lines) that its command does not have; a synopsis of a command that does not exist.
 */
export function synopsisProblems(text: string): string[] {
  const program = buildProgram();
  const problems: string[] = [];
  let cmd: Command | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*nxt-rollback\s+(.*)$/.exec(line);
    let rest = line;
    if (m) {
      cmd = program;
      const words = m[1]!.split(/\s+/);
      let i = 0;
      for (; i < words.length; i++) {
        const sub: Command | undefined = cmd.commands.find((c) => c.name() === words[i]);
        if (!sub) break;
        cmd = sub;
      }
      if (cmd === program) {
        problems.push(`"${line.trim()}": no nxt-rollback command of that name`);
        cmd = undefined;
        continue;
      }
      rest = words.slice(i).join(' ');
    }
    if (!cmd) continue;
    const known = new Set(['--help', '-h']);
    for (let c: Command | null = cmd; c; c = c.parent)
      for (const o of c.options) for (const f of [o.long, o.short]) if (f) known.add(f);
    for (const [flag] of rest.matchAll(/(?<![\w-])--?[A-Za-z][\w-]*/g))
      if (!known.has(flag)) problems.push(`"${line.trim()}": nxt-rollback ${cmd.name()} has no ${flag}`);
  }
  return problems;
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

// --- kubectl command lines ------------------------------------------------------------------------------------

/** The operator's own annotation and label keys (operator/): a documented key must be one of them. */
export const OPERATOR_KEYS: ReadonlySet<string> = new Set([
  ...Object.values(Annotation),
  ...Object.values(Label),
  RECORDED_ANNOTATION,
  REQUEST_VALUE_ANNOTATION,
  BACKUP_ID_ANNOTATION,
  REQUEST_ID_ANNOTATION,
  SUSPENDED_BY,
  CREATED_BY_LABEL,
  DRILL_LABEL,
  DRILL_SOURCE_LABEL,
]);

/** kubectl flags that take the next word as their value (when not written `--flag=value`). */
const KUBECTL_VALUE_FLAGS = new Set(
  (
    '-n --namespace -o --output -f --filename -k --kustomize -p --patch --type --patch-file -l --selector ' +
    '--field-selector --for --timeout --context --kubeconfig -c --container --tail --replicas --to-revision ' +
    '--image --from-literal --from-file --clusterrole --role --serviceaccount --user --group --field-manager ' +
    '--template --dry-run --since -s --server --as --cluster'
  ).split(' '),
);
/** Verbs whose resources are `type name...` or `type/name...`. */
const RESOURCE_VERBS = new Set([
  'get',
  'describe',
  'delete',
  'annotate',
  'label',
  'patch',
  'wait',
  'scale',
  'edit',
]);
/** Verbs (first words) that change objects and that kubectl runs with --dry-run=server. */
const DRY_RUN_VERBS = new Set([
  'apply',
  'create',
  'annotate',
  'label',
  'patch',
  'delete',
  'scale',
  'set image',
  'rollout undo',
]);

export interface KubectlLine {
  /** The verb: one word, or two for rollout, set, auth, config, top. */
  verb: string;
  /** The resource types it names (`rbp`, `deployment`, `crd`), those with a shell variable left out. */
  types: string[];
  /** The rollback.nxtnewday.io/... keys it uses (annotate, label, jsonpath, selectors), escapes removed. */
  keys: string[];
  /** `-o` expressions (jsonpath=, custom-columns=, go-template=, template forms). */
  outputs: string[];
  /** The jsonpath expression of `wait --for=jsonpath=...` (without the `=value`). */
  waitJsonpath?: string;
  /** It reads objects from files or a kustomization (-f/-k): checked by what it would send. */
  fromFiles: boolean;
  /** kubectl can run it with --dry-run=server. */
  dryRunnable: boolean;
}

/** What a kubectl command line (the words after `kubectl`) names: verb, resource types, keys, expressions. */
export function kubectlLine(args: string[]): KubectlLine {
  const positional: string[] = [];
  const flags: [string, string | undefined][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) flags.push([a.slice(0, eq), a.slice(eq + 1)]);
    else if (KUBECTL_VALUE_FLAGS.has(a)) flags.push([a, args[++i]]);
    else if (/^-[a-z]\S/.test(a) && KUBECTL_VALUE_FLAGS.has(a.slice(0, 2)))
      flags.push([a.slice(0, 2), a.slice(2)]);
    else flags.push([a, undefined]);
  }
  const flag = (...names: string[]) => flags.filter(([f]) => names.includes(f)).map(([, v]) => v ?? '');
  const first = positional[0] ?? '';
  const two = ['rollout', 'set', 'auth', 'config', 'top'].includes(first);
  const verb = two ? `${first} ${positional[1] ?? ''}` : first;
  let rest = positional.slice(two ? 2 : 1);
  const types: string[] = [];
  const typeOf = (r: string) => r.split('/')[0]!;
  if (RESOURCE_VERBS.has(verb) || verb.startsWith('rollout ') || verb === 'set image') {
    // annotate/label: `key=value` and `key-` are changes; set image: `container=image`.
    rest = rest.filter((r) => !r.includes('=') && !(/-$/.test(r) && ['annotate', 'label'].includes(verb)));
    if (rest[0]?.includes('/')) types.push(...rest.filter((r) => r.includes('/')).map(typeOf));
    else if (rest[0]) types.push(...rest[0].split(','));
  } else if (['logs', 'exec', 'port-forward', 'attach'].includes(verb) && rest[0]?.includes('/'))
    types.push(typeOf(rest[0]));
  else if (verb === 'explain' && rest[0]) types.push(rest[0].split('.')[0]!);
  for (const f of flag('--for')) {
    const m = /^(?:condition|delete|create|jsonpath)/.test(f) ? undefined : /^([^/=]+)\//.exec(f);
    if (m) types.push(m[1]!);
  }
  const forJsonpath = flag('--for').find((f) => f.startsWith('jsonpath='));
  const keys = new Set<string>();
  for (const a of args)
    for (const m of a
      .replace(/\\\./g, '.')
      .matchAll(/(?<![\w-])rollback\.nxtnewday\.io\/([A-Za-z0-9._-]*[A-Za-z0-9])/g))
      if (!/^v\d/.test(m[1]!)) keys.add(`${GROUP}/${m[1]}`);
  return {
    verb,
    types: [...new Set(types.filter((t) => t && !t.includes('$')))],
    keys: [...keys],
    outputs: flag('-o', '--output').filter((o) => /^(jsonpath|custom-columns|go-template|template)/.test(o)),
    ...(forJsonpath ? { waitJsonpath: forJsonpath.slice('jsonpath='.length).replace(/\}=[^}]*$/, '}') } : {}),
    fromFiles: flag('-f', '--filename', '-k', '--kustomize').length > 0,
    dryRunnable: DRY_RUN_VERBS.has(verb) || (first === 'create' && positional.length > 1),
  };
}

/**
 * The object fields a jsonpath expression reads, as dot paths from the object (`status.conditions.type`):
 * `range` prefixes applied, indexes and filters dropped, a path into annotations or labels cut at the map.
 */
export function jsonpathFields(expr: string): string[] {
  const out: string[] = [];
  const prefixes: string[][] = [[]];
  const path = (p: string): string[] => {
    const segs = p
      .replace(/\\\./g, '\uE000')
      .replace(/\[[^\]]*\]/g, '')
      .replace(/^@/, '')
      .split('.')
      .filter(Boolean)
      .map((x) => x.replace(/\uE000/g, '.'));
    return segs;
  };
  for (const m of expr.matchAll(/\{([^{}]*)\}/g)) {
    const inner = m[1]!.trim();
    if (inner.startsWith('"') || inner === '') continue;
    if (inner === 'end') {
      if (prefixes.length > 1) prefixes.pop();
      continue;
    }
    const range = /^range\s+(.*)$/.exec(inner);
    const segs = [...prefixes[prefixes.length - 1]!, ...path(range ? range[1]! : inner)];
    if (segs[0] === 'metadata' && (segs[1] === 'annotations' || segs[1] === 'labels')) segs.length = 2;
    if (range) prefixes.push(segs);
    if (segs.length) out.push(segs.join('.'));
  }
  return [...new Set(out)];
}

/** custom-columns=NAME:.a.b,X:.c as the jsonpath expression of each column. */
export const customColumnExprs = (spec: string): string[] =>
  spec
    .split(',')
    .map((c) => c.slice(c.indexOf(':') + 1))
    .map((e) => (e.startsWith('{') ? e : `{${e}}`));

// --- links ---------------------------------------------------------------------------------------------------

/** The text of a Markdown file outside its fenced blocks (headings and links in code are not the page's). */
export function withoutFences(text: string): string {
  let inFence: string | undefined;
  return text
    .split('\n')
    .map((l) => {
      // Fences inside list items and blockquotes too, as blocksOf finds them.
      const f = /^(?:[ \t]*>)*[ \t]*(`{3,}|~{3,})/.exec(l);
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
