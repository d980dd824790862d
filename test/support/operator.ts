import { inject } from 'vitest';
import { startOperatorProcess, type OperatorProcess } from '../env/operator-process.js';

export type { OperatorProcess };

/** The real operator process against the cluster under test (see test/env/operator-process.ts). */
export function startOperator(
  opts: { kubeconfigPath?: string; env?: Record<string, string>; name?: string } = {},
): Promise<OperatorProcess> {
  return startOperatorProcess({ ...opts, kubeconfigPath: opts.kubeconfigPath ?? inject('kubeconfigPath') });
}

/** Reads one sample value from a Prometheus text exposition, e.g. metric('x_total', {result: 'success'}). */
export async function metricValue(
  metricsUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const text = await fetch(metricsUrl).then((r) => r.text());
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.split(' ').pop());
  }
  return undefined;
}
