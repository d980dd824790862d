// Everything a benchmark starts is registered here and stopped in reverse order: on normal exit, on an
// error, and on Ctrl-C / SIGTERM.

type Step = { name: string; run: () => Promise<unknown> | unknown };

export class Cleanup {
  private readonly steps: Step[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly log: (m: string) => void = (m) => console.error(m)) {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        this.log(`received ${sig}; cleaning up`);
        void this.run().finally(() => process.exit(130));
      });
    }
  }

  /** Registers a cleanup step; later steps run first. */
  add(name: string, run: Step['run']): void {
    this.steps.push({ name, run });
  }

  /** Runs every step once (concurrent callers share the same run); errors are logged, not thrown. */
  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length) {
        const s = this.steps.pop()!;
        try {
          await s.run();
        } catch (e) {
          this.log(`cleanup ${s.name} failed: ${(e as Error).message}`);
        }
      }
    })();
    return this.running;
  }
}

/** Runs `main` with a Cleanup, always cleaning up; exits 1 on error (after cleanup). */
export async function runBenchmark(main: (cleanup: Cleanup) => Promise<void>): Promise<void> {
  const cleanup = new Cleanup();
  let failed = false;
  try {
    await main(cleanup);
  } catch (e) {
    failed = true;
    console.error(`benchmark failed: ${(e as Error).stack ?? String(e)}`);
  } finally {
    await cleanup.run();
  }
  process.exit(failed ? 1 : 0);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Progress lines go to stderr so that stdout carries only the Markdown report. */
export function progress(prefix: string): (m: string) => void {
  const t0 = Date.now();
  return (m) => console.error(`[${prefix} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T, i: number) => Promise<R>,
) {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
