import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { deniedReason, type AddressPolicy } from '../rollback/address-policy.js';
import { DeniedAddressError, deniedUrl, guardedLookup } from '../rollback/http-check.js';
import { boundText } from '../kube/bounded.js';
import { sleep } from '../kube/timers.js';

// Delivery of one notification: a POST with a bounded timeout, the HTTP checks' address policy judged on the
// address actually connected to, and retries with backoff. Runs in a background task (ctx.tasks), never in a
// reconcile worker. The URL comes from a Secret and often carries a token: it never appears in a message.

export interface SendOptions {
  policy: AddressPolicy;
  /** Bound of one request, from connect to the end of the (bounded) response read. */
  requestTimeoutMs: number;
  /** Bytes of the response read (for the error message); the rest is not downloaded. */
  maxResponseBytes: number;
}

export interface RetryOptions {
  /** Attempts in all, the first included (default 5). */
  maxAttempts: number;
  /** First backoff; doubled after each attempt (1s, 2s, 4s, 8s). */
  baseDelayMs: number;
  /** A Retry-After longer than this is cut to it, so one receiver cannot park the task for hours. */
  maxRetryAfterMs: number;
  /** [0, 1): the jitter source (tests pin it). */
  random: () => number;
}

export const DEFAULT_RETRY: RetryOptions = {
  maxAttempts: 5,
  baseDelayMs: 1000,
  maxRetryAfterMs: 60_000,
  random: Math.random,
};

export type AttemptResult =
  | { kind: 'delivered'; message: string }
  | { kind: 'permanent'; message: string }
  | { kind: 'retry'; message: string; retryAfterMs?: number };

/** The parts of a URL that may carry a secret (path tokens, query signatures, user info), for redaction. */
function secretParts(url: URL): string[] {
  return [
    url.href,
    url.pathname.length > 1 ? url.pathname : '',
    url.search,
    url.username,
    url.password,
  ].filter((s) => s.length >= 4);
}

/** `text` with every secret part of `url` replaced, single-line and bounded. */
export function redact(text: string, url: URL | undefined, max = 300): string {
  let out = text.replace(/\s+/g, ' ').trim();
  if (url) for (const p of secretParts(url)) out = out.split(p).join('[redacted]');
  return boundText(out, max);
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** How a status is handled: 2xx delivered; 408, 429 and 5xx retried; any other answer is final. */
export function classifyStatus(code: number): AttemptResult['kind'] {
  if (code >= 200 && code < 300) return 'delivered';
  if (code === 408 || code === 429 || code >= 500) return 'retry';
  return 'permanent';
}

/** One POST of `body` to `url`. Never throws; the result says whether to try again. */
export function postOnce(
  url: URL,
  body: string,
  headers: Record<string, string>,
  opts: SendOptions,
  signal: AbortSignal,
): Promise<AttemptResult> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return Promise.resolve({ kind: 'permanent', message: 'the URL is not http(s)' });
  const denied = deniedUrl(opts.policy, url.href);
  if (denied) return Promise.resolve({ kind: 'permanent', message: redact(denied, url) });
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    const finish = (r: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const fail = (e: Error) =>
      finish(
        e instanceof DeniedAddressError
          ? { kind: 'permanent', message: redact(e.message, url) }
          : { kind: 'retry', message: redact(`request failed: ${e.message}`, url) },
      );
    const timer = setTimeout(
      () => fail(new Error(`no answer within ${opts.requestTimeoutMs} ms`)),
      opts.requestTimeoutMs,
    );
    // No keep-alive agent (every connection is judged by the policy) and no redirects followed.
    const req = transport.request(url, {
      method: 'POST',
      agent: false,
      lookup: guardedLookup(opts.policy),
      signal,
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'nxt-rollback-operator notifications',
        ...headers,
      },
    });
    req.on('socket', (socket: Socket) =>
      socket.once('connect', () => {
        const why = socket.remoteAddress ? deniedReason(opts.policy, socket.remoteAddress) : undefined;
        if (why) fail(new DeniedAddressError(`connected to ${why}`));
      }),
    );
    req.on('error', fail);
    req.on('response', (res) => {
      const code = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        const kind = classifyStatus(code);
        const snippet = boundText(
          Buffer.concat(chunks).subarray(0, opts.maxResponseBytes).toString('utf8').replace(/\s+/g, ' '),
          200,
        );
        const message = redact(`HTTP ${code}${snippet.trim() ? `: ${snippet}` : ''}`, url);
        if (kind === 'retry')
          finish({
            kind,
            message,
            retryAfterMs: parseRetryAfter(res.headers['retry-after'] as string | undefined),
          });
        else finish({ kind, message });
      };
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= opts.maxResponseBytes) done();
      });
      res.on('end', done);
      res.on('error', (e) => fail(e));
    });
    req.end(body);
  });
}

export interface DeliveryResult {
  delivered: boolean;
  attempts: number;
  lastAttemptAt?: string;
  deliveredAt?: string;
  message: string;
}

/** What delivery needs first: the URL (read from a Secret at send time), or why there is none. */
export type UrlSource = () => Promise<{ url: string } | { permanent: string } | { retry: string }>;

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * Delivers one notification: up to maxAttempts POSTs, backing off (base·2^n, ±20% jitter, at least the
 * receiver's Retry-After up to maxRetryAfterMs) after a 5xx, 408, 429 or a network error; any other answer
 * ends it. The URL is read once, at the first attempt. Never throws.
 */
export async function deliver(
  source: UrlSource,
  body: string,
  headers: Record<string, string>,
  opts: SendOptions & { retry?: RetryOptions },
  task: { signal: AbortSignal; progress(message: string): void },
): Promise<DeliveryResult> {
  const retry = opts.retry ?? DEFAULT_RETRY;
  let url: URL | undefined;
  let attempts = 0;
  let last = 'no attempt made';
  let lastAttemptAt: string | undefined;
  for (let i = 1; i <= retry.maxAttempts; i++) {
    if (task.signal.aborted) break;
    let result: AttemptResult | undefined;
    if (!url) {
      const got = await source().catch((e: unknown) => ({
        retry: e instanceof Error ? e.message : String(e),
      }));
      if ('permanent' in got) return { delivered: false, attempts, message: got.permanent };
      if ('retry' in got) {
        // The Secret could not be read (an API error): retried like a 5xx.
        result = { kind: 'retry', message: `reading the URL from its Secret failed: ${got.retry}` };
      } else {
        try {
          url = new URL(got.url);
        } catch {
          return { delivered: false, attempts, message: 'the value in the Secret is not a URL' };
        }
      }
    }
    if (url) {
      attempts++;
      lastAttemptAt = iso(Date.now());
      result = await postOnce(url, body, headers, opts, task.signal);
    }
    result ??= { kind: 'retry', message: last };
    last = result.message;
    if (result.kind === 'delivered')
      return { delivered: true, attempts, lastAttemptAt, deliveredAt: iso(Date.now()), message: last };
    if (result.kind === 'permanent')
      return { delivered: false, attempts, lastAttemptAt, message: `${last} (not retried)` };
    if (i === retry.maxAttempts) break;
    const backoff = retry.baseDelayMs * 2 ** (i - 1) * (0.8 + 0.4 * retry.random());
    const wait = Math.max(backoff, Math.min(result.retryAfterMs ?? 0, retry.maxRetryAfterMs));
    task.progress(`attempt ${i} of ${retry.maxAttempts}: ${last}; next in ${Math.round(wait / 100) / 10}s`);
    await sleep(wait, task.signal);
  }
  if (task.signal.aborted) return { delivered: false, attempts, lastAttemptAt, message: 'aborted' };
  return { delivered: false, attempts, lastAttemptAt, message: `${last} (after ${attempts} attempts)` };
}
