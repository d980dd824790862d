// Scrapes a Prometheus text exposition (the operator's /metrics) so a benchmark can report what the operator
// did during a phase: deltas of counters and histogram sums between two scrapes.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return parseProm(await res.text());
}

const matches = (s: Sample, name: string, where: Record<string, string>) =>
  s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v);

/** Sum of every sample named `name` whose labels include `where`. */
export function sum(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples.filter((s) => matches(s, name, where)).reduce((t, s) => t + s.value, 0);
}

/** after - before of `name`, summed over `where`, split by the value of label `by`. */
export function deltaBy(
  before: Sample[],
  after: Sample[],
  name: string,
  by: string,
  where: Record<string, string> = {},
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [sign, list] of [
    [-1, before],
    [1, after],
  ] as const) {
    for (const s of list) {
      if (!matches(s, name, where)) continue;
      const k = s.labels[by] ?? '';
      out[k] = (out[k] ?? 0) + sign * s.value;
    }
  }
  for (const k of Object.keys(out)) if (Math.abs(out[k]!) < 1e-9) delete out[k];
  return out;
}

export function delta(before: Sample[], after: Sample[], name: string, where: Record<string, string> = {}) {
  return sum(after, name, where) - sum(before, name, where);
}

/** A one-line account of what the operator did between two scrapes of its /metrics. */
export function operatorWork(before: Sample[], after: Sample[], controller: string) {
  const fmt = (r: Record<string, number>) =>
    Object.entries(r)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}: ${Math.round(v)}`)
      .join(', ') || '-';
  const mean = (name: string, where: Record<string, string> = {}) => {
    const n = delta(before, after, `${name}_count`, where);
    return n > 0 ? (delta(before, after, `${name}_sum`, where) / n) * 1000 : Number.NaN;
  };
  return {
    reconciles: fmt(deltaBy(before, after, 'controller_runtime_reconcile_total', 'result', { controller })),
    reconcileCount: delta(before, after, 'controller_runtime_reconcile_total', { controller }),
    requests: fmt(deltaBy(before, after, 'rest_client_requests_total', 'code')),
    requestCount: delta(before, after, 'rest_client_requests_total'),
    meanRequestMs: mean('rest_client_request_duration_seconds'),
    meanQueueWaitMs: mean('workqueue_queue_duration_seconds', { controller }),
    meanReconcileMs: mean('controller_runtime_reconcile_time_seconds', { controller }),
    cpuSeconds: delta(before, after, 'process_cpu_seconds_total'),
  };
}
export type OperatorWork = ReturnType<typeof operatorWork>;
