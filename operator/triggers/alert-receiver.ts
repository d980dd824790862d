import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Logger } from 'winston';
import { z } from 'zod';
import type { AlertStore, ReceivedAlert } from './alert-store.js';

/** The path Alertmanager's webhook_config url points at (docs/alertmanager.md). */
export const RECEIVER_PATH = '/alertmanager';
export const MAX_BODY_BYTES = 1024 * 1024;
/** A token file is read again at most this often, so a rotated Secret takes effect without a restart. */
const TOKEN_REFRESH_MS = 10_000;
const MAX_TOKEN_BYTES = 4096;
/** How often the TLS files are checked for a renewed certificate (cert-manager renews well before expiry). */
const CERT_REFRESH_MS = 60_000;

const labelSet = z.record(z.string().max(1024), z.string().max(16 * 1024));
/** Alertmanager's webhook payload, version 4 (research §8); only what the store uses is required. */
export const WebhookPayload = z.object({
  version: z.literal('4'),
  status: z.string().max(64).optional(),
  receiver: z.string().max(1024).optional(),
  groupKey: z.string().optional(),
  alerts: z
    .array(
      z.object({
        status: z.string().max(64),
        labels: labelSet,
        annotations: labelSet.optional(),
        startsAt: z.iso
          .datetime({ offset: true })
          .refine((s) => !Number.isNaN(Date.parse(s)), 'not a time JavaScript can read'),
        endsAt: z.string().optional(),
        fingerprint: z.string().min(1).max(128).optional(),
      }),
    )
    .max(10_000),
});

/** Alertmanager's fingerprint is a hash of the label set; one is derived the same way if it is missing. */
function fingerprintOf(labels: Record<string, string>): string {
  const h = createHash('sha256');
  for (const k of Object.keys(labels).sort()) h.update(`${k}\xff${labels[k]}\xff`);
  return h.digest('hex').slice(0, 16);
}

/** The alerts of a valid payload the store applies: firing and resolved ones (any other status is skipped). */
export function receivedAlerts(payload: z.infer<typeof WebhookPayload>): ReceivedAlert[] {
  const out: ReceivedAlert[] = [];
  for (const a of payload.alerts) {
    if (a.status !== 'firing' && a.status !== 'resolved') continue;
    out.push({
      status: a.status,
      fingerprint: a.fingerprint ?? fingerprintOf(a.labels),
      labels: a.labels,
      annotations: a.annotations ?? {},
      startsAt: new Date(a.startsAt),
    });
  }
  return out;
}

export interface AlertReceiverOptions {
  /** host:port, or :port for all interfaces. */
  address: string;
  tokenFile: string;
  tls?: { certFile: string; keyFile: string };
  store: AlertStore;
  /** False while leader election is on and this replica does not lead: answer 503 so Alertmanager retries. */
  isLeader: () => boolean;
  log: Logger;
  /** Counts each answer by status code (nxt_alert_receiver_requests_total). */
  observe?: (code: number) => void;
  /** Bound of one request, headers and body included. */
  requestTimeoutMs?: number;
}

/** The bearer token, trimmed (a Secret written with `echo` ends in a newline; Alertmanager trims too). */
async function readToken(file: string): Promise<string> {
  const raw = await readFile(file);
  if (raw.length > MAX_TOKEN_BYTES)
    throw new Error(`token file ${file} is larger than ${MAX_TOKEN_BYTES} bytes`);
  const token = raw.toString('utf8').trim();
  if (!token) throw new Error(`token file ${file} is empty`);
  return token;
}

/** Constant-time comparison of the presented credentials with the token (digests: equal length always). */
function sameToken(presented: string, token: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/**
 * Alertmanager's webhook_config target: POST /alertmanager with a bearer token, a JSON payload of at most
 * 1 MiB, firing alerts stored and resolved ones removed (AlertStore). Only the leader accepts: a standby
 * answers 503 and closes the connection, so Alertmanager's retry (with backoff) opens a new one, which the
 * Service may send to the leader.
 */
export class AlertReceiver {
  private server: http.Server | https.Server | undefined;
  private token = '';
  private tokenReadAt = 0;
  private certificate: { cert: Buffer; key: Buffer } | undefined;

  constructor(private readonly opts: AlertReceiverOptions) {}

  /** Listens; throws when the token or TLS files cannot be read or the address is taken. */
  async start(): Promise<http.Server | https.Server> {
    const { opts } = this;
    this.token = await readToken(opts.tokenFile).catch((e: Error) => {
      throw new Error(`ALERT_RECEIVER_TOKEN_FILE: ${e.message}`);
    });
    this.tokenReadAt = Date.now();
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    let server: http.Server | https.Server;
    if (opts.tls) {
      const [cert, key] = await Promise.all([readFile(opts.tls.certFile), readFile(opts.tls.keyFile)]).catch(
        (e: Error) => {
          throw new Error(`ALERT_RECEIVER_TLS_CERT_FILE / ALERT_RECEIVER_TLS_KEY_FILE: ${e.message}`);
        },
      );
      this.certificate = { cert, key };
      server = https.createServer({ cert, key }, handler);
      // A timer, not a request: with an expired certificate no request would ever get through to trigger it.
      const renew = setInterval(() => void this.reloadCertificate(), CERT_REFRESH_MS);
      renew.unref();
      server.once('close', () => clearInterval(renew));
    } else server = http.createServer(handler);
    const timeout = opts.requestTimeoutMs ?? 10_000;
    server.requestTimeout = timeout;
    server.headersTimeout = Math.min(timeout, 5000);
    const i = opts.address.lastIndexOf(':');
    const host = opts.address.slice(0, i) || '0.0.0.0';
    const port = Number(opts.address.slice(i + 1));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    opts.log.info('alert receiver listening', {
      address: opts.address,
      path: RECEIVER_PATH,
      tls: Boolean(opts.tls),
    });
    return server;
  }

  /** The port actually bound (for :0 in tests). */
  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  /**
   * Serves a renewed certificate from the next connection on, when the TLS files changed. A half-written
   * pair (which setSecureContext refuses) keeps the current one until the next check. Returns whether it changed.
   */
  async reloadCertificate(): Promise<boolean> {
    const { tls, log } = this.opts;
    const server = this.server;
    if (!tls || !(server instanceof https.Server) || !this.certificate) return false;
    try {
      const [cert, key] = await Promise.all([readFile(tls.certFile), readFile(tls.keyFile)]);
      if (cert.equals(this.certificate.cert) && key.equals(this.certificate.key)) return false;
      server.setSecureContext({ cert, key });
      this.certificate = { cert, key };
      log.info('alert receiver: TLS certificate reloaded');
      return true;
    } catch (e) {
      log.warn('alert receiver: cannot load the TLS certificate files; keeping the current certificate', {
        err: (e as Error).message,
      });
      return false;
    }
  }

  private async currentToken(): Promise<string> {
    if (Date.now() - this.tokenReadAt < TOKEN_REFRESH_MS) return this.token;
    this.tokenReadAt = Date.now();
    try {
      this.token = await readToken(this.opts.tokenFile);
    } catch (e) {
      // Keep the last good token: a Secret update swaps the file through a symlink, briefly absent.
      this.opts.log.warn('alert receiver: cannot re-read the token file; keeping the previous token', {
        err: (e as Error).message,
      });
    }
    return this.token;
  }

  private answer(res: ServerResponse, code: number, message: string, headers: Record<string, string> = {}) {
    this.opts.observe?.(code);
    if (res.headersSent) return;
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${message}\n`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path !== RECEIVER_PATH) return this.refuse(res, 404, 'not found');
      if (req.method !== 'POST') return this.refuse(res, 405, 'use POST', { allow: 'POST' });
      const auth = req.headers.authorization ?? '';
      const m = /^Bearer[ \t]+(.+)$/i.exec(auth);
      if (!m || !sameToken(m[1]!.trim(), await this.currentToken()))
        return this.refuse(res, 401, 'a valid bearer token is required', {
          'www-authenticate': 'Bearer realm="nxt-rollback-operator"',
        });
      if (!this.opts.isLeader())
        return this.refuse(res, 503, 'not the leader; retry', { 'retry-after': '1' });
      const declared = Number(req.headers['content-length'] ?? '0');
      if (declared > MAX_BODY_BYTES)
        return this.refuse(res, 413, `the payload is larger than ${MAX_BODY_BYTES} bytes`);
      const body = await readBody(req, MAX_BODY_BYTES);
      if (body === undefined)
        return this.refuse(res, 413, `the payload is larger than ${MAX_BODY_BYTES} bytes`);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        return this.answer(res, 400, 'the body is not JSON');
      }
      const parsed = WebhookPayload.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const message = `not an Alertmanager webhook payload (version 4): ${issue.path.join('.') || '(root)'}: ${issue.message}`;
        return this.answer(res, 400, message.slice(0, 300));
      }
      // Leadership may have gone while the body arrived; only the leader's store matters.
      if (!this.opts.isLeader())
        return this.refuse(res, 503, 'not the leader; retry', { 'retry-after': '1' });
      const r = this.opts.store.apply(receivedAlerts(parsed.data));
      this.opts.log.debug('alert receiver: payload applied', {
        receiver: parsed.data.receiver,
        groupKey: parsed.data.groupKey?.slice(0, 256),
        ...r,
        firing: this.opts.store.size,
      });
      this.answer(res, 200, `stored ${r.stored}, removed ${r.removed}`);
    } catch (e) {
      this.opts.log.error('alert receiver: request failed', { err: (e as Error).message });
      this.answer(res, 500, 'internal error');
    }
  }

  /** Answers without reading the body, and closes the connection so an unread body cannot linger. */
  private refuse(res: ServerResponse, code: number, message: string, headers: Record<string, string> = {}) {
    this.answer(res, code, message, { connection: 'close', ...headers });
  }

  /** The server, for the manager's bounded shutdown. */
  get httpServer(): http.Server | https.Server | undefined {
    return this.server;
  }
}

/** The body, or undefined once it passes `max` bytes (reading stops there). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
