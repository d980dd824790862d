import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import ipaddr from 'ipaddr.js';
import { parseDuration, type HTTPCheck } from '../api/v1alpha1/common.js';
import { sleep } from '../kube/timers.js';
import { deniedReason, type AddressPolicy } from './address-policy.js';
import type { BodyMatcher } from './body-match.js';

export interface HttpCheckResult {
  url: string;
  passed: boolean;
  attempts: number;
  /** Failure reason for the plan's condition: HTTPCheckFailed, HTTPCheckTimeout, HTTPCheckDenied or InvalidURL. */
  reason?: 'HTTPCheckFailed' | 'HTTPCheckTimeout' | 'HTTPCheckDenied' | 'InvalidURL';
  message: string;
}

export interface HttpProbeOptions {
  policy: AddressPolicy;
  /** Bound of one request, from connect to the last body byte read. */
  requestTimeoutMs: number;
  /** Bytes of the body read for bodyMatch; the rest is not downloaded. */
  maxBodyBytes: number;
  matcher: BodyMatcher;
}

type ProbeResult =
  { ok: true; message: string } | { ok: false; message: string; denied?: boolean; invalidUrl?: boolean };

/** A connection refused by the address policy (when resolving, or the peer actually connected to). */
export class DeniedAddressError extends Error {}

/**
 * The URL as Node (WHATWG) parses it, or why it cannot. The CRD's pattern and the API server's isURL (Go's
 * parser) let through hosts WHATWG refuses (`http://a<b/`, `http://1.2.3.4.5/`, `http://xn--a/`): such a
 * value is the plan author's to fix, never an exception inside a reconcile.
 */
export function parseCheckUrl(url: string): URL | string {
  try {
    return new URL(url);
  } catch {
    return 'not a URL that can be fetched (invalid host or syntax)';
  }
}

/**
 * Why `check.url` can never be fetched under `policy` (its host is a denied IP literal), or undefined. Host
 * names are judged when they resolve, at every attempt. An unparsable URL is parseCheckUrl's to report.
 */
export function deniedUrl(policy: AddressPolicy, url: string): string | undefined {
  const parsed = parseCheckUrl(url);
  if (typeof parsed === 'string') return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  return ipaddr.isValid(host) ? deniedReason(policy, host) : undefined;
}

/**
 * Resolves like dns.lookup, but fails when any address of the name is denied. Node connects to what this
 * returns, so a name that resolves to an allowed address for a check and to the metadata service a moment
 * later (DNS rebinding) is judged on the address actually used.
 */
export function guardedLookup(policy: AddressPolicy): LookupFunction {
  return ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err);
      for (const a of addresses) {
        const why = deniedReason(policy, a.address);
        if (why) return callback(new DeniedAddressError(`${hostname} resolves to ${why}`));
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(new Error(`${hostname}: no address`));
      callback(null, first.address, first.family);
    });
  }) as LookupFunction;
}

/**
 * Belt and braces for a request made with guardedLookup: judges the peer actually connected to, whatever
 * resolved it (an IP literal is never looked up), and calls `fail` with a DeniedAddressError if it is denied.
 */
export function guardConnectedPeer(
  req: http.ClientRequest,
  policy: AddressPolicy,
  hostname: string,
  fail: (e: Error) => void,
): void {
  req.on('socket', (socket: Socket) =>
    socket.once('connect', () => {
      const why = socket.remoteAddress ? deniedReason(policy, socket.remoteAddress) : undefined;
      if (why) fail(new DeniedAddressError(`${hostname}: connected to ${why}`));
    }),
  );
}

/**
 * One GET of the check's URL: status (expectStatus, or any 2xx when absent, as trigger conditions allow), then
 * (if asked) the first maxBodyBytes of the body against bodyMatch.
 */
export function probeOnce(
  check: Pick<HTTPCheck, 'url' | 'bodyMatch'> & { expectStatus?: number },
  opts: HttpProbeOptions,
  signal: AbortSignal,
): Promise<ProbeResult> {
  const url = parseCheckUrl(check.url);
  if (typeof url === 'string') return Promise.resolve({ ok: false, invalidUrl: true, message: url });
  const denied = deniedUrl(opts.policy, check.url);
  if (denied) return Promise.resolve({ ok: false, denied: true, message: denied });
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    // Once the body is in hand, tearing down the connection must not count as a failed request.
    let matching = false;
    let req: http.ClientRequest | undefined;
    // Declared before finish() uses it, assigned once the request exists.
    // eslint-disable-next-line prefer-const
    let timer: NodeJS.Timeout | undefined;
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req?.destroy();
      resolve(r);
    };
    const fail = (e: Error) =>
      !matching &&
      finish(
        e instanceof DeniedAddressError
          ? { ok: false, denied: true, message: e.message }
          : { ok: false, message: `request failed: ${e.message}` },
      );
    try {
      // No keep-alive agent (every request connects, so every connection is judged) and no redirects.
      req = transport.request(url, {
        method: 'GET',
        agent: false,
        lookup: guardedLookup(opts.policy),
        signal,
        headers: { 'user-agent': 'nxt-rollback-operator http-check', accept: '*/*' },
      });
    } catch (e) {
      // Node refuses some URLs synchronously: a failed probe, not a rejected promise with a live timer.
      return fail(e instanceof Error ? e : new Error(String(e)));
    }
    // Started once the request exists, so its callback always has something to destroy.
    timer = setTimeout(
      () => fail(new Error(`no complete answer within ${opts.requestTimeoutMs} ms`)),
      opts.requestTimeoutMs,
    );
    guardConnectedPeer(req, opts.policy, url.hostname, fail);
    req.on('error', fail);
    req.on('response', (res) => {
      const code = res.statusCode ?? 0;
      const expected =
        check.expectStatus === undefined ? code >= 200 && code < 300 : code === check.expectStatus;
      if (!expected) {
        return finish({
          ok: false,
          message: `got HTTP ${res.statusCode}, expected ${check.expectStatus ?? 'a 2xx status'}`,
        });
      }
      if (!check.bodyMatch) return finish({ ok: true, message: `HTTP ${res.statusCode} as expected` });
      const chunks: Buffer[] = [];
      let size = 0;
      const matchBody = () => {
        if (matching) return;
        matching = true;
        clearTimeout(timer);
        res.destroy();
        const body = Buffer.concat(chunks).subarray(0, opts.maxBodyBytes).toString('utf8');
        void opts.matcher.match(check.bodyMatch!, body, signal).then((m) =>
          finish(
            'error' in m
              ? { ok: false, message: m.error }
              : m.matched
                ? { ok: true, message: `HTTP ${res.statusCode} and the body matches` }
                : {
                    ok: false,
                    message: `HTTP ${res.statusCode} but the body does not match /${check.bodyMatch}/`,
                  },
          ),
        );
      };
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= opts.maxBodyBytes) matchBody();
      });
      res.on('end', matchBody);
      res.on('error', fail);
    });
    req.end();
  });
}

/** The progress note while the first attempt runs: no failed attempt behind it yet. */
export const FIRST_ATTEMPT = 'first attempt running';
/** An HTTP check whose first attempt had not begun when the deadline passed (downtime, a busy operator). */
export const NOT_ATTEMPTED = 'not attempted before the deadline (the operator was unavailable or busy)';
/** Whether a running check's progress note tells of a failed attempt (not just the first one running). */
export const hasFailedAttempt = (progress: string | undefined) =>
  progress !== undefined && !progress.endsWith(`: ${FIRST_ATTEMPT}`);

/**
 * GETs `check.url` until the status (and the body pattern, if any) match, at most retries+1 times, `period`
 * apart (default 2s), and never past `deadline` (the post-validation step's start + validation.timeout).
 * Runs as a background task: it sleeps, the reconcile workers do not. Never throws.
 */
export async function runHttpCheck(
  check: HTTPCheck,
  opts: HttpProbeOptions,
  task: { signal: AbortSignal; progress(message: string, opts?: { wake?: boolean }): void },
  deadline: { at: number; timeout: string },
): Promise<HttpCheckResult> {
  const attempts = (check.retries ?? 2) + 1;
  const period = check.period ? parseDuration(check.period) : 2000;
  const { signal } = task;
  let last = 'no attempt yet';
  const timedOut = (made: number): HttpCheckResult => ({
    url: check.url,
    passed: false,
    attempts: made,
    reason: 'HTTPCheckTimeout',
    message:
      made === 0
        ? `${check.url}: ${NOT_ATTEMPTED}`
        : `${check.url}: did not pass within validation.timeout ${deadline.timeout} (${made} of ${attempts} attempts made; last: ${last})`,
  });
  for (let i = 1; i <= attempts; i++) {
    const left = deadline.at - Date.now();
    if (left <= 0) return timedOut(i - 1);
    // Progress from the first attempt on: a running task without any has not begun (see validate-only.ts).
    if (i === 1) task.progress(`${check.url}: ${FIRST_ATTEMPT}`);
    const r = await probeOnce(
      check,
      { ...opts, requestTimeoutMs: Math.min(opts.requestTimeoutMs, left) },
      signal,
    );
    if (r.ok) return { url: check.url, passed: true, attempts: i, message: r.message };
    last = r.message;
    if (!r.ok && (r.denied || r.invalidUrl))
      return {
        url: check.url,
        passed: false,
        attempts: i,
        reason: r.invalidUrl ? 'InvalidURL' : 'HTTPCheckDenied',
        message: `${check.url}: ${last}`,
      };
    if (signal.aborted) return { url: check.url, passed: false, attempts: i, message: 'aborted' };
    if (i < attempts) {
      // A failed attempt wakes the plan: Ready names the failing check at once (the plan's writes of later
      // attempt notes are bounded by its progress-write interval).
      task.progress(`${check.url}: attempt ${i} of ${attempts}: ${last}; next in ${check.period ?? '2s'}`, {
        wake: true,
      });
      await sleep(Math.min(period, Math.max(deadline.at - Date.now(), 0)), signal);
      if (signal.aborted) return { url: check.url, passed: false, attempts: i, message: 'aborted' };
      if (Date.now() >= deadline.at) return timedOut(i);
    }
  }
  return {
    url: check.url,
    passed: false,
    attempts,
    reason: 'HTTPCheckFailed',
    message: `${check.url}: ${last} (after ${attempts} attempts)`,
  };
}
