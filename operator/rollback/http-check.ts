import { parseDuration, type HTTPCheck } from '../api/v1alpha1/common.js';

export interface HttpCheckResult {
  url: string;
  passed: boolean;
  attempts: number;
  message: string;
}

/**
 * GETs `check.url` until the status (and the body regex, if any) match, at most retries+1 times, `period`
 * apart (default 2s), each request bounded by 5 s. Never throws.
 */
export async function runHttpCheck(check: HTTPCheck, signal?: AbortSignal): Promise<HttpCheckResult> {
  const attempts = (check.retries ?? 2) + 1;
  const period = check.period ? parseDuration(check.period) : 2000;
  const body = check.bodyMatch ? safeRegex(check.bodyMatch) : undefined;
  let last = '';
  for (let i = 1; i <= attempts; i++) {
    if (signal?.aborted) break;
    try {
      const res = await fetch(check.url, { signal: AbortSignal.timeout(5000), redirect: 'manual' });
      const text = body ? await res.text() : '';
      if (res.status !== check.expectStatus) {
        last = `got HTTP ${res.status}, expected ${check.expectStatus}`;
      } else if (body && !body.test(text)) {
        last = `HTTP ${res.status} but the body does not match /${check.bodyMatch}/`;
      } else {
        return { url: check.url, passed: true, attempts: i, message: `HTTP ${res.status} as expected` };
      }
    } catch (e) {
      last = `request failed: ${(e as Error).message}`;
    }
    if (i < attempts) await new Promise((r) => setTimeout(r, period));
  }
  return {
    url: check.url,
    passed: false,
    attempts,
    message: `${check.url}: ${last} (after ${attempts} attempts)`,
  };
}

function safeRegex(src: string): RegExp | undefined {
  try {
    return new RegExp(src);
  } catch {
    return /$^/; // an invalid pattern never matches: reported as a body mismatch
  }
}
