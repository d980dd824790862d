import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import type { AddressPolicy } from '../rollback/address-policy.js';
import {
  DeniedAddressError,
  deniedUrl,
  guardConnectedPeer,
  guardedLookup,
  parseCheckUrl,
} from '../rollback/http-check.js';
import type { ConditionProbe, TriggerObservation } from './types.js';

export interface PrometheusCondition {
  address: string;
  query: string;
  above?: number;
  below?: number;
}

export interface PrometheusProbeOptions {
  /** Bound of one query, connection included. */
  timeoutMs: number;
  /** The HTTP checks' address policy, applied at connect time. */
  policy: AddressPolicy;
  /** Bytes of response read at most (default 1 MiB); a larger answer is not one value anyway. */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY = 1024 * 1024;
/** Longer request URLs go as a POST form: proxies and servers cap URL length (often at 4-8 KiB). */
const MAX_GET_URL = 2000;
const OBSERVED_MAX = 256;
const AGGREGATE_HINT = 'aggregate it to one series, e.g. sum(...)';

// Sample values are JSON strings ("0.5", "NaN", "+Inf"); everything else is checked only as far as used.
const Sample = z.tuple([z.number(), z.string()]);
const Series = z.object({
  metric: z.record(z.string(), z.string()).optional(),
  value: Sample.optional(),
  values: z.array(z.unknown()).optional(),
  histogram: z.unknown().optional(),
  histograms: z.unknown().optional(),
});
const Envelope = z.object({
  status: z.enum(['success', 'error']),
  data: z.unknown().optional(),
  errorType: z.string().optional(),
  error: z.string().optional(),
});
const QueryData = z.discriminatedUnion('resultType', [
  z.object({ resultType: z.literal('scalar'), result: Sample }),
  z.object({ resultType: z.literal('vector'), result: z.array(Series) }),
  z.object({ resultType: z.literal('matrix'), result: z.array(z.unknown()) }),
  z.object({ resultType: z.literal('string'), result: z.unknown() }),
]);

/** Prometheus' float text: Go's strconv.FormatFloat, plus the spellings of NaN and infinities it emits. */
export function parseSampleValue(s: string): number | undefined {
  if (s === 'NaN') return Number.NaN;
  if (s === '+Inf' || s === 'Inf') return Number.POSITIVE_INFINITY;
  if (s === '-Inf') return Number.NEGATIVE_INFINITY;
  const v = s.trim() === '' ? Number.NaN : Number(s);
  return Number.isNaN(v) ? undefined : v;
}

const formatValue = (v: number): string =>
  v === Number.POSITIVE_INFINITY
    ? '+Inf'
    : v === Number.NEGATIVE_INFINITY
      ? '-Inf'
      : String(Number(v.toPrecision(6)));

/** The address for people: no user:password@, no query string or fragment (tokens live there too). */
export function displayAddress(address: string): string {
  const u = parseCheckUrl(address);
  if (typeof u === 'string') return '(invalid address)';
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
}

/** Collapses whitespace and cuts to `max` characters (an ellipsis marks the cut). */
export function bounded(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** `<what> (query <q>)`, the query shortened so the whole stays within OBSERVED_MAX. */
function withQuery(what: string, query: string): string {
  const room = OBSERVED_MAX - what.length - ' (query )'.length;
  if (room < 16) return bounded(what, OBSERVED_MAX);
  return `${what} (query ${bounded(query, room)})`;
}

/** bad when the value is above `above` or below `below` (NaN is noData before it gets here). */
export function judgeValue(cond: PrometheusCondition, v: number): { bad: boolean; text: string } {
  const val = formatValue(v);
  if (cond.above !== undefined && v > cond.above)
    return { bad: true, text: `${val} > ${formatValue(cond.above)}` };
  if (cond.below !== undefined && v < cond.below)
    return { bad: true, text: `${val} < ${formatValue(cond.below)}` };
  const limits = [
    cond.below !== undefined ? `>= ${formatValue(cond.below)}` : undefined,
    cond.above !== undefined ? `<= ${formatValue(cond.above)}` : undefined,
  ].filter(Boolean);
  return { bad: false, text: `${val} ${limits.join(' and ')}` };
}

type Answer =
  | { kind: 'response'; status: number; body: string; truncated: boolean }
  | { kind: 'failed'; reason: string; message: string };

/** One HTTP request to the query API, bounded in time and size, connecting only where the policy allows. */
function request(
  url: URL,
  form: string | undefined,
  opts: PrometheusProbeOptions,
  signal: AbortSignal,
): Promise<Answer> {
  const transport = url.protocol === 'https:' ? https : http;
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  return new Promise<Answer>((resolve) => {
    let settled = false;
    const finish = (a: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      resolve(a);
    };
    const fail = (e: Error) =>
      finish(
        e instanceof DeniedAddressError
          ? { kind: 'failed', reason: 'PrometheusAddressDenied', message: e.message }
          : {
              kind: 'failed',
              reason: 'PrometheusUnreachable',
              message: `${(e as NodeJS.ErrnoException).code ?? 'request failed'}: ${e.message}`,
            },
      );
    const timer = setTimeout(
      () => fail(new Error(`no complete answer within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    const onAbort = () => finish({ kind: 'failed', reason: 'Aborted', message: 'the query was cancelled' });
    // No keep-alive agent (every connection is judged by the policy) and no redirects.
    const req = transport.request(url, {
      method: form === undefined ? 'GET' : 'POST',
      agent: false,
      lookup: guardedLookup(opts.policy),
      headers: {
        'user-agent': 'nxt-rollback-operator prometheus-trigger',
        accept: 'application/json',
        ...(form === undefined
          ? {}
          : {
              'content-type': 'application/x-www-form-urlencoded',
              'content-length': Buffer.byteLength(form),
            }),
      },
    });
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    guardConnectedPeer(req, opts.policy, url.hostname, fail);
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = (truncated: boolean) =>
        finish({
          kind: 'response',
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).subarray(0, max).toString('utf8'),
          truncated,
        });
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size > max) done(true);
      });
      res.on('end', () => done(false));
      res.on('error', fail);
    });
    req.end(form);
  });
}

/** The request for `query`: GET with the parameters in the URL, or a POST form when that URL is too long. */
export function queryRequest(
  address: string,
  query: string,
  timeoutMs: number,
): { url: URL; form?: string } | string {
  const base = parseCheckUrl(address);
  if (typeof base === 'string') return base;
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/api/v1/query`;
  url.search = '';
  url.hash = '';
  // Prometheus gives up evaluating too when the caller would have stopped waiting.
  const params = new URLSearchParams({ query, timeout: `${Math.max(1, timeoutMs - 100)}ms` });
  const get = new URL(url.href);
  get.search = params.toString();
  return get.href.length <= MAX_GET_URL ? { url: get } : { url, form: params.toString() };
}

/** The Prometheus error envelope's errorType and error, bounded, if the body is one. */
function apiError(body: string): string | undefined {
  try {
    const env = Envelope.safeParse(JSON.parse(body));
    if (env.success && env.data.status === 'error')
      return bounded(`${env.data.errorType ?? 'error'}: ${env.data.error ?? '(no message)'}`, 160);
  } catch {
    /* not JSON: a proxy's page */
  }
  return undefined;
}

/** Classifies one successful API answer (see TriggerObservation). */
export function classify(cond: PrometheusCondition, body: unknown, at: Date): TriggerObservation {
  const error = (reason: string, what: string): TriggerObservation => ({
    kind: 'error',
    at,
    reason,
    observed: withQuery(what, cond.query),
  });
  const env = Envelope.safeParse(body);
  if (!env.success)
    return error(
      'PrometheusQueryFailed',
      'not a Prometheus API response (is address the Prometheus base URL?)',
    );
  if (env.data.status === 'error')
    return error(
      'PrometheusQueryFailed',
      bounded(`${env.data.errorType ?? 'error'}: ${env.data.error ?? '(no message)'}`, 160),
    );
  const data = QueryData.safeParse(env.data.data);
  if (!data.success)
    return error('PrometheusResultInvalid', 'the answer has no query result Prometheus would send');
  const d = data.data;
  let raw: string;
  if (d.resultType === 'scalar') raw = d.result[1];
  else if (d.resultType === 'vector') {
    if (d.result.length === 0)
      return { kind: 'noData', at, observed: withQuery('no data (empty vector)', cond.query) };
    if (d.result.length > 1)
      return error('PrometheusResultInvalid', `${d.result.length} series, expected one: ${AGGREGATE_HINT}`);
    const series = d.result[0]!;
    if (!series.value)
      return error(
        'PrometheusResultInvalid',
        series.histogram !== undefined
          ? `a histogram sample, expected one number: ${AGGREGATE_HINT} or histogram_quantile(...)`
          : 'a series without a value',
      );
    raw = series.value[1];
  } else
    return error(
      'PrometheusResultInvalid',
      `a ${d.resultType} result, expected one number: ${AGGREGATE_HINT}`,
    );
  const v = parseSampleValue(raw);
  if (v === undefined)
    return error('PrometheusResultInvalid', `the value "${bounded(raw, 32)}" is not a number`);
  if (Number.isNaN(v)) return { kind: 'noData', at, observed: withQuery('no data (NaN)', cond.query) };
  const j = judgeValue(cond, v);
  return { kind: j.bad ? 'bad' : 'good', at, observed: withQuery(j.text, cond.query) };
}

/** One instant query per call, classified as a TriggerObservation (see types.ts). Never throws. */
export function prometheusProbe(cond: PrometheusCondition, opts: PrometheusProbeOptions): ConditionProbe {
  const where = displayAddress(cond.address);
  return async (signal) => {
    const at = () => new Date();
    const fail = (reason: string, what: string): TriggerObservation => ({
      kind: 'error',
      at: at(),
      reason,
      observed: withQuery(what, cond.query),
    });
    const target = queryRequest(cond.address, cond.query, opts.timeoutMs);
    if (typeof target === 'string') return fail('InvalidURL', `address: ${target}`);
    const denied = deniedUrl(opts.policy, cond.address);
    if (denied) return fail('PrometheusAddressDenied', bounded(denied, 200));
    let answer: Answer;
    try {
      answer = await request(target.url, target.form, opts, signal);
    } catch (e) {
      return fail('PrometheusUnreachable', bounded(`${where}: ${(e as Error).message}`, 200));
    }
    if (answer.kind === 'failed') return fail(answer.reason, bounded(`${where}: ${answer.message}`, 200));
    if (answer.status < 200 || answer.status > 299) {
      const api = apiError(answer.body);
      return fail('PrometheusQueryFailed', `HTTP ${answer.status} from ${where}${api ? `: ${api}` : ''}`);
    }
    if (answer.truncated)
      return fail(
        'PrometheusResultInvalid',
        `the answer is larger than ${opts.maxBodyBytes ?? DEFAULT_MAX_BODY} bytes, not one value: ${AGGREGATE_HINT}`,
      );
    let body: unknown;
    try {
      body = JSON.parse(answer.body);
    } catch {
      return fail(
        'PrometheusQueryFailed',
        `${where} answered something that is not JSON (is address the Prometheus base URL?)`,
      );
    }
    return classify(cond, body, at());
  };
}
