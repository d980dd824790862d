import { parseDuration } from '../api/v1alpha1/common.js';

export interface RpoEvaluation {
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  /** The objective in seconds (nxt_rpo_objective_seconds): what rpoSeconds is judged against. */
  objectiveSeconds: number;
  /** Age of the newest good backup in seconds, if there is one. */
  rpoSeconds?: number;
  /** When the condition would flip from True to False without anything else happening. */
  breachInMs?: number;
}

const human = (ms: number) => {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round((s / 3600) * 10) / 10}h`;
};

/**
 * RPOMet: whether the newest good backup is younger than the objective. It also says honestly when the
 * schedule itself cannot keep the objective (e.g. backups every 4h against a 1h objective): right after a
 * backup the condition is True, but it will be False for most of every interval.
 */
export function evaluateRpo(input: {
  lastSuccess?: string;
  objective: string;
  schedule: string;
  /** The longest gap between the schedule's runs in its time zone (cron.ts longestInterval). */
  scheduleGapMs: number;
  now: Date;
}): RpoEvaluation {
  const objectiveMs = parseDuration(input.objective);
  const objectiveSeconds = Math.round(objectiveMs / 1000);
  const gapMs = input.scheduleGapMs;
  const scheduleNote =
    gapMs > objectiveMs && gapMs !== Infinity
      ? `; the schedule "${input.schedule}" leaves up to ${human(gapMs)} between backups, longer than the RPO objective ${input.objective}: schedule backups at least every ${input.objective} (or take emergency backups) to meet it`
      : '';
  if (!input.lastSuccess) {
    return {
      status: 'False',
      reason: 'NoBackupYet',
      objectiveSeconds,
      message: `no successful backup yet; RPO objective ${input.objective}${scheduleNote}`,
    };
  }
  const ageMs = Math.max(0, input.now.getTime() - Date.parse(input.lastSuccess));
  const rpoSeconds = Math.round(ageMs / 1000);
  if (ageMs <= objectiveMs) {
    return {
      status: 'True',
      reason: 'WithinObjective',
      objectiveSeconds,
      message: `newest good backup is ${human(ageMs)} old; objective ${input.objective}${scheduleNote}`,
      rpoSeconds,
      breachInMs: objectiveMs - ageMs + 1000,
    };
  }
  return {
    status: 'False',
    reason: 'ObjectiveBreached',
    objectiveSeconds,
    message: `newest good backup is ${human(ageMs)} old, older than the RPO objective ${input.objective}${scheduleNote}`,
    rpoSeconds,
  };
}
