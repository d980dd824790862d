import type { Redact } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One structured event: `log('info', 'backup.dumped', { bytes })`. */
export type RunnerLog = (level: LogLevel, event: string, fields?: Record<string, unknown>) => void;

/**
 * Writes one JSON object per line (stderr in the pod; kubectl logs and log shippers read it as is).
 * Every line goes through `redact`, so a secret slipped into an error message still never leaves.
 */
export function createJsonLog(
  write: (line: string) => void,
  redact: Redact,
  now: () => Date = () => new Date(),
): RunnerLog {
  return (level, event, fields = {}) => {
    const line = JSON.stringify({ ts: now().toISOString(), level, event, ...fields }, (_k, v: unknown) =>
      v instanceof Error ? { name: v.name, message: v.message } : v,
    );
    write(redact(line) + '\n');
  };
}

/** For tests and callers that do not care. */
export const silentLog: RunnerLog = () => {};
