import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { WORKDIR_PREFIX } from './processes.js';

const execFileP = promisify(execFile);
export const GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

/**
 * Every `git` the harness runs ignores the user's and the system's configuration (a global
 * commit.gpgsign or url.insteadOf would change what a test does) and never prompts for credentials.
 */
const GIT_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_TERMINAL_PROMPT: '0',
};

async function git(cwd: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP('git', args, { cwd, env: GIT_ENV });
    return stdout.trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`git ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/**
 * A local Git server over smart HTTP on 127.0.0.1, serving the bare repositories in a temp dir, as a Git
 * host does for Flux: every request runs the real `git-http-backend` as a CGI program (RFC 3875), with
 * the request body on its stdin and its response (CGI headers, blank line, body) streamed back.
 * Anonymous read and push; nothing listens beyond loopback.
 */
export class LocalGitServer {
  private constructor(
    private readonly server: Server,
    readonly root: string,
    readonly baseUrl: string,
    private readonly log: (m: string) => void,
  ) {}

  static async start(opts: { log?: (m: string) => void } = {}): Promise<LocalGitServer> {
    const log = opts.log ?? (() => {});
    // Named and owned like the other harness work dirs, so reapStaleRuns() removes it after a killed run.
    const root = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX + 'git-'));
    writeFileSync(join(root, 'owner.pid'), String(process.pid));
    const repos = join(root, 'repos');
    mkdirSync(repos);
    const server = createServer((req, res) => serveCgi(repos, req, res, log));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    return new LocalGitServer(server, root, `http://127.0.0.1:${port}`, log);
  }

  /** The clone URL of repository `name` (`<name>.git` on disk). */
  url(name: string): string {
    return `${this.baseUrl}/${name}.git`;
  }

  /** Creates an empty bare repository (default branch `main`, push allowed) and a working clone of it. */
  async createRepo(name: string): Promise<GitRepo> {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`bad repository name ${name}`);
    const bare = join(this.root, 'repos', `${name}.git`);
    await git(this.root, 'init', '--quiet', '--bare', '--initial-branch=main', bare);
    // git-http-backend refuses anonymous pushes unless the repository allows them.
    await git(bare, 'config', 'http.receivepack', 'true');
    const work = join(this.root, 'work', name);
    mkdirSync(work, { recursive: true });
    await git(work, 'init', '--quiet', '--initial-branch=main');
    await git(work, 'config', 'user.name', 'nxt test');
    await git(work, 'config', 'user.email', 'test@nxt.invalid');
    await git(work, 'remote', 'add', 'origin', this.url(name));
    this.log(`git: created ${this.url(name)}`);
    return new GitRepo(this.url(name), work);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A working clone whose commits are pushed to the server with the real git CLI. */
export class GitRepo {
  constructor(
    readonly url: string,
    readonly workDir: string,
  ) {}

  /** Writes `files` (paths relative to the repository root), commits them and pushes; returns the commit. */
  async commit(files: Record<string, string>, message: string, opts: { push?: boolean } = {}) {
    for (const [path, content] of Object.entries(files)) {
      const abs = join(this.workDir, path);
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, content);
    }
    await git(this.workDir, 'add', '--all');
    await git(this.workDir, 'commit', '--quiet', '-m', message);
    if (opts.push ?? true) await this.push();
    return this.head();
  }

  /** `git revert` of `commit` (a new commit that undoes it) and a push; returns the revert commit. */
  async revert(commit: string, opts: { push?: boolean } = {}): Promise<string> {
    await git(this.workDir, 'revert', '--no-edit', commit);
    if (opts.push ?? true) await this.push();
    return this.head();
  }

  async push(): Promise<void> {
    await git(this.workDir, 'push', '--quiet', 'origin', 'main');
  }

  head(): Promise<string> {
    return git(this.workDir, 'rev-parse', 'HEAD');
  }
}

/** Runs git-http-backend for one request (CGI/1.1) and streams its answer back. */
function serveCgi(
  projectRoot: string,
  req: IncomingMessage,
  res: ServerResponse,
  log: (m: string) => void,
): void {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_PROJECT_ROOT: projectRoot,
    GIT_HTTP_EXPORT_ALL: '1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    SERVER_SOFTWARE: 'nxt-test-git-server',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.replace(/^\?/, ''),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
  };
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  // Every request header as HTTP_*: git-http-backend reads Content-Encoding (gzip'ed request bodies) and
  // Git-Protocol (protocol v2) from there.
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) env[`HTTP_${k.toUpperCase().replace(/-/g, '_')}`] = String(v);
  }
  const child = spawn(GIT_HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on(
    'data',
    (d: Buffer) => (stderr += d.toString()).length > 8192 && (stderr = stderr.slice(-4096)),
  );
  child.on('error', (e) => {
    log(`git: ${GIT_HTTP_BACKEND} could not start: ${e.message}`);
    if (!res.headersSent) res.writeHead(500).end('git-http-backend could not start');
  });
  req.pipe(child.stdin);
  child.stdin.on('error', () => {}); // the backend may answer (e.g. 403) without reading the body

  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const name = line.slice(0, i).trim();
      const value = line.slice(i + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    const rest = head.subarray(end);
    if (rest.length) res.write(rest);
  });
  child.on('close', (code) => {
    if (!headersDone) {
      log(`git: ${req.method} ${url.pathname} -> no CGI headers (exit ${code}): ${stderr.trim()}`);
      if (!res.headersSent) res.writeHead(502).end('git-http-backend sent no headers');
      return;
    }
    if (code !== 0) log(`git: ${req.method} ${url.pathname} -> exit ${code}: ${stderr.trim()}`);
    res.end();
  });
}
