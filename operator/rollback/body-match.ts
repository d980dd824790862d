import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { RE2JS } from 're2js';

/**
 * `validation.http[].bodyMatch` is RE2 syntax, matched by re2js: linear in the body, so `(a+)+$` cannot
 * backtrack for hours. Linear is not free, though: a pattern like `(.*a){1000}` costs pattern size × body
 * size (seconds on 64 KiB). So the match runs in a worker thread with a time limit, never on the event loop
 * that renews the lease and answers /healthz.
 */

/** Why `pattern` cannot be used (RE2 rejects it), or undefined if it compiles. */
export function bodyMatchProblem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (e) {
    return `bodyMatch /${pattern}/ is not a valid RE2 pattern: ${(e as Error).message}`;
  }
}

export type BodyMatchOutcome = { matched: boolean } | { error: string };

const RE2JS_PATH = createRequire(import.meta.url).resolve('re2js');
// CommonJS, evaluated in the worker: no TypeScript loader needed there, and re2js by absolute path.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { RE2JS } = require(workerData.re2js);
parentPort.postMessage(RE2JS.compile(workerData.pattern).matcher(workerData.body).find());
`;

/** Runs matches in short-lived worker threads, at most `maxConcurrent` at once, each cut off after `timeoutMs`. */
export class BodyMatcher {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly opts: { timeoutMs: number; maxConcurrent: number } = {
      timeoutMs: 2000,
      maxConcurrent: 2,
    },
  ) {}

  async match(pattern: string, body: string, signal?: AbortSignal): Promise<BodyMatchOutcome> {
    const problem = bodyMatchProblem(pattern);
    if (problem) return { error: problem };
    await this.slot();
    try {
      if (signal?.aborted) return { error: 'aborted' };
      return await this.inWorker(pattern, body, signal);
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  private slot(): Promise<void> {
    if (this.active < this.opts.maxConcurrent) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((r) =>
      this.waiting.push(() => {
        this.active++;
        r();
      }),
    );
  }

  private inWorker(pattern: string, body: string, signal?: AbortSignal): Promise<BodyMatchOutcome> {
    return new Promise((resolve) => {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        workerData: { re2js: RE2JS_PATH, pattern, body },
        resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
      });
      let settled = false;
      const finish = (outcome: BodyMatchOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        void worker.terminate();
        resolve(outcome);
      };
      const onAbort = () => finish({ error: 'aborted' });
      const timer = setTimeout(
        () =>
          finish({
            error: `bodyMatch /${pattern}/ did not finish within ${this.opts.timeoutMs} ms on a ${body.length}-character body`,
          }),
        this.opts.timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.once('message', (m: unknown) => finish({ matched: m === true }));
      worker.once('error', (e) => finish({ error: `bodyMatch failed: ${e.message}` }));
      worker.once('exit', (code) => finish({ error: `bodyMatch worker exited with code ${code}` }));
    });
  }
}
