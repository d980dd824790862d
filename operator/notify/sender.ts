import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { deniedReason, type AddressPolicy } from '../rollback/address-policy.js';
import { DeniedAddressError, deniedUrl, guardedLookup } from '../rollback/http-check.js';

// One delivery attempt of one notification: a POST with a bounded timeout, the HTTP checks' address policy
// judged on the address actually connected to. Runs in a background task (ctx.tasks), never in a reconcile
// worker; the retry schedule between attempts is the Notifier's (kept in status, so it survives restarts).
// The URL comes from a Secret and often carries a token, and a response body could show a plan author what an
// internal service answers: messages are built from status codes and error codes only, never from the URL,
// the host name, an error's own message or the response body.

export interface SendOptions {
  policy: AddressPolicy;
  /** Bound of one attempt, from its start (DNS lookup included) to the response's status line. */
  requestTimeoutMs: number;
}

export interface RetryOptions {
  /** First backoff; doubled after each attempt (1s, 2s, 4s, ...). */
  baseDelayMs: number;
  /** The longest backoff between two attempts. */
  maxDelayMs: number;
  /** No attempt starts later than this after the first one: then the record is Failed. */
  spanMs: number;
  /** A Retry-After longer than this is cut to it, so one receiver cannot park a record for hours. */
  maxRetryAfterMs: number;
  /** [0, 1): the jitter source (tests pin it). */
  random: () => number;
}

/** About 15 minutes of attempts (13 or so: 1s, 2s, 4s, ... 64s, then every 2 min): outlasts a short outage. */
export const DEFAULT_RETRY: RetryOptions = {
  baseDelayMs: 1000,
  maxDelayMs: 120_000,
  spanMs: 15 * 60_000,
  maxRetryAfterMs: 120_000,
  random: Math.random,
};

export type AttemptResult =
  | { kind: 'delivered'; message: string }
  | { kind: 'permanent'; message: string }
  | { kind: 'retry'; message: string; retryAfterMs?: number };

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

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host name not found (DNS)',
  EAI_AGAIN: 'host name lookup failed for now (DNS)',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed while sending',
  ERR_INVALID_URL: 'the URL cannot be used',
  ERR_INVALID_CHAR: 'the URL cannot be used',
  ERR_UNESCAPED_CHARACTERS: 'the URL cannot be used',
};

/**
 * A request error as a fixed text from its code: Node's own messages name the host (`getaddrinfo ENOTFOUND
 * hooks.example.com`), which may be a secret or an internal name.
 */
export function networkErrorMessage(e: unknown): string {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return 'request failed';
  if (NETWORK_ERRORS[code]) return NETWORK_ERRORS[code];
  if (/^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS_CERT|HOSTNAME_MISMATCH)/.test(code))
    return `TLS certificate not accepted (${code})`;
  if (/^ERR_SSL|^EPROTO$/.test(code)) return `TLS handshake failed (${code})`;
  return /^[A-Z][A-Z0-9_]{1,40}$/.test(code) ? `request failed (${code})` : 'request failed';
}

/**
 * The address policy's reason without the host or the address: deniedReason and guardedLookup say
 * `<host> resolves to <address> is <what> (<cidr>), which ...`; only what follows ` is ` is kept.
 */
export function policyMessage(reason: string): string {
  const i = reason.indexOf(' is ');
  return `the address connected to${i >= 0 ? reason.slice(i) : ' is denied by the address policy'}`;
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
  if (denied) return Promise.resolve({ kind: 'permanent', message: policyMessage(denied) });
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    let req: http.ClientRequest | undefined;
    // Declared before finish() uses it, assigned once the request exists.
    // eslint-disable-next-line prefer-const
    let timer: NodeJS.Timeout | undefined;
    const finish = (r: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req?.destroy();
      resolve(r);
    };
    const fail = (e: unknown) =>
      finish(
        e instanceof DeniedAddressError
          ? { kind: 'permanent', message: policyMessage(e.message) }
          : { kind: 'retry', message: networkErrorMessage(e) },
      );
    try {
      // No keep-alive agent (every connection is judged by the policy) and no redirects followed.
      req = transport.request(url, {
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
    } catch (e) {
      // Node refuses some URLs and headers synchronously: a final answer, not a crash.
      return finish({ kind: 'permanent', message: networkErrorMessage(e) });
    }
    // Started once the request exists, so its callback always has something to destroy. It covers the DNS
    // lookup, connect, TLS and the wait for the status line.
    timer = setTimeout(
      () => finish({ kind: 'retry', message: `no answer within ${opts.requestTimeoutMs} ms` }),
      opts.requestTimeoutMs,
    );
    req.on('socket', (socket: Socket) =>
      socket.once('connect', () => {
        const why = socket.remoteAddress ? deniedReason(opts.policy, socket.remoteAddress) : undefined;
        if (why) fail(new DeniedAddressError(`connected to ${why}`));
      }),
    );
    req.on('error', fail);
    req.on('response', (res) => {
      // The status line decides; the body is never read (nothing of it is shown, and a 2xx whose body is
      // slow or broken was delivered all the same). Tearing the connection down may make `res` emit an error.
      res.on('error', () => {});
      const code = res.statusCode ?? 0;
      const kind = classifyStatus(code);
      const message = `HTTP ${code}`;
      if (kind === 'retry')
        finish({
          kind,
          message,
          retryAfterMs: parseRetryAfter(res.headers['retry-after'] as string | undefined),
        });
      else finish({ kind, message });
    });
    req.end(body);
  });
}

/** What delivery needs first: the URL (read from a Secret at send time), or why there is none. */
export type UrlSource = () => Promise<{ url: string } | { permanent: string } | { retry: string }>;

/** One attempt: reads the URL, then POSTs. Never throws; messages carry no URL. */
export async function attemptOnce(
  source: UrlSource,
  body: string,
  headers: Record<string, string>,
  opts: SendOptions,
  signal: AbortSignal,
): Promise<AttemptResult> {
  let got: Awaited<ReturnType<UrlSource>>;
  try {
    got = await source();
  } catch {
    got = { retry: 'reading the URL from its Secret failed' };
  }
  if ('permanent' in got) return { kind: 'permanent', message: got.permanent };
  if ('retry' in got) return { kind: 'retry', message: got.retry };
  let url: URL;
  try {
    url = new URL(got.url);
  } catch {
    return { kind: 'permanent', message: 'the value in the Secret is not a URL' };
  }
  return postOnce(url, body, headers, opts, signal);
}

/**
 * When to try again after `attempts` attempts, the last at `lastAt` (epoch ms), the first at `firstAt`:
 * base·2^(n-1) capped at maxDelayMs, ±20% jitter, at least the receiver's Retry-After (up to its bound).
 * Undefined once that would be later than spanMs after the first attempt: give up.
 */
export function nextAttemptAt(
  attempts: number,
  firstAt: number,
  lastAt: number,
  retryAfterMs: number | undefined,
  retry: RetryOptions,
): number | undefined {
  const backoff =
    Math.min(retry.baseDelayMs * 2 ** Math.min(Math.max(attempts - 1, 0), 30), retry.maxDelayMs) *
    (0.8 + 0.4 * retry.random());
  const at = lastAt + Math.max(backoff, Math.min(retryAfterMs ?? 0, retry.maxRetryAfterMs));
  return at - firstAt > retry.spanMs ? undefined : Math.round(at);
}
