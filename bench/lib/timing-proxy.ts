// A pass-through HTTP proxy that stamps each request's arrival and the upstream's answer (Date.now()), e.g.
// between Alertmanager and the operator's webhook receiver: when the operator was told, measured outside it.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { freePort } from '../../test/env/processes.js';

export interface ProxiedPost {
  arrivedAt: number;
  answeredAt: number;
  status: number;
  payload: any;
}

/**
 * Alertmanager -> this proxy -> the operator's receiver. Stamps each POST when its headers arrive and when the
 * receiver's answer comes back, and keeps the payload: that is the moment the operator was told, measured
 * outside the operator, without debug logging in it. Costs one loopback hop (reported as receiver time).
 */
export class TimingProxy {
  readonly posts: ProxiedPost[] = [];
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<TimingProxy> {
    const port = await freePort();
    const self: { p?: TimingProxy } = {};
    const server = createServer((req, res) => {
      const arrivedAt = Date.now();
      void (async () => {
        try {
          const body = await readAll(req);
          const r = await fetch(target, {
            method: req.method,
            headers: {
              'content-type': req.headers['content-type'] ?? 'application/json',
              ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
            },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          const text = await r.text();
          const answeredAt = Date.now();
          let payload: unknown;
          try {
            payload = JSON.parse(body.toString('utf8'));
          } catch {
            payload = undefined;
          }
          self.p!.posts.push({ arrivedAt, answeredAt, status: r.status, payload });
          for (const l of self.p!.listeners) l();
          res.writeHead(r.status, { 'content-type': 'text/plain' }).end(text);
        } catch (e) {
          res.writeHead(502).end((e as Error).message);
        }
      })();
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    self.p = new TimingProxy(server, `http://127.0.0.1:${port}/alertmanager`);
    return self.p;
  }

  /** Resolves with the first POST (already received or later) for which `pred` holds. */
  waitFor(pred: (p: ProxiedPost) => boolean, timeoutMs: number, what: string): Promise<ProxiedPost> {
    const p = new Promise<ProxiedPost>((resolve, reject) => {
      const check = () => {
        const hit = this.posts.find(pred);
        if (!hit) return false;
        this.listeners.delete(check);
        clearTimeout(t);
        resolve(hit);
        return true;
      };
      const t = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      if (!check()) this.listeners.add(check);
    });
    p.catch(() => {});
    return p;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
