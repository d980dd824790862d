import { CronExpressionParser } from 'cron-parser';

// Cron as Kubernetes CronJobs understand it. The CronJob controller parses schedules with robfig/cron v3
// (`cron.ParseStandard`) and evaluates them in spec.timeZone; this module mirrors that parser's grammar and
// semantics, and leaves the calendar arithmetic (time zones, DST, month lengths) to cron-parser. It tells
// whether a schedule is valid, when it runs next and the longest gap between runs; it does not trigger
// runs (the CronJob controller does).

/** A field's bounds and names, as robfig/cron's `bounds`. */
interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: Record<string, number>;
}
const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: Object.fromEntries(
      ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'].map((m, i) => [
        m,
        i + 1,
      ]),
    ),
  },
  // 0-6: robfig/cron (and so the API server) rejects 7 for Sunday, unlike Vixie cron.
  {
    name: 'day of week',
    min: 0,
    max: 6,
    names: Object.fromEntries(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'].map((d, i) => [d, i])),
  },
];

/** robfig/cron's descriptors, minus `@every <duration>`, which the CRD does not accept. */
export const CRON_MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

export class CronSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CronSyntaxError';
  }
}

/** One parsed field: its values, and whether it is a star (`*` or `?` without a step > 1). */
interface Field {
  values: number[];
  star: boolean;
}

/** A parsed 5-field schedule. */
export interface CronSchedule {
  expression: string;
  minutes: number[];
  hours: number[];
  /** Fields as cron-parser should see them: plain numbers, `*` only where robfig sets its star bit. */
  canonical: string;
}

/** strconv.Atoi plus robfig's "negative number not allowed". */
function parseNumber(text: string, field: FieldSpec): number {
  if (!/^[+-]?[0-9]{1,18}$/.test(text)) throw new CronSyntaxError(`${field.name}: "${text}" is not a number`);
  const n = Number(text);
  if (n < 0) throw new CronSyntaxError(`${field.name}: negative number (${n}) not allowed`);
  return n;
}

const parseValue = (text: string, field: FieldSpec) =>
  field.names?.[text.toLowerCase()] ?? parseNumber(text, field);

/** robfig/cron's getRange for one comma-separated part. */
function parseRange(part: string, field: FieldSpec): Field {
  const [range, step, ...moreSlashes] = part.split('/');
  if (moreSlashes.length) throw new CronSyntaxError(`${field.name}: too many slashes in "${part}"`);
  const [low, high, ...moreHyphens] = range!.split('-');
  let start: number;
  let end: number;
  let star = false;
  if (low === '*' || low === '?') {
    [start, end, star] = [field.min, field.max, true];
  } else {
    if (moreHyphens.length) throw new CronSyntaxError(`${field.name}: too many hyphens in "${part}"`);
    start = parseValue(low!, field);
    end = high === undefined ? start : parseValue(high, field);
  }
  let every = 1;
  if (step !== undefined) {
    every = parseNumber(step, field);
    if (high === undefined && !star) end = field.max; // "N/step" means "N-max/step"
    if (every > 1) star = false;
  }
  const where = `${field.name}: "${part}"`;
  if (start < field.min) throw new CronSyntaxError(`${where}: ${start} is below the minimum ${field.min}`);
  if (end > field.max) throw new CronSyntaxError(`${where}: ${end} is above the maximum ${field.max}`);
  if (start > end) throw new CronSyntaxError(`${where}: the range starts after it ends`);
  if (every === 0) throw new CronSyntaxError(`${where}: the step must be a positive number`);
  const values: number[] = [];
  for (let v = start; v <= end; v += every) values.push(v);
  return { values, star };
}

function parseField(text: string, field: FieldSpec): Field {
  const parts = text.split(',').map((p) => parseRange(p, field));
  const values = [...new Set(parts.flatMap((p) => p.values))].sort((a, b) => a - b);
  return { values, star: parts.some((p) => p.star) };
}

/**
 * Parses a schedule as the API server's CronJob validation does (robfig/cron `ParseStandard`): five fields
 * separated by whitespace, or a macro. Throws CronSyntaxError naming the field.
 */
export function parseCron(expression: string): CronSchedule {
  if (/TZ=/.test(expression))
    throw new CronSyntaxError('TZ= and CRON_TZ= are not allowed in a schedule; use spec.timeZone');
  const text = expression.startsWith('@') ? CRON_MACROS[expression] : expression;
  if (text === undefined) throw new CronSyntaxError(`unknown macro "${expression}"`);
  const parts = text.trim().split(/\s+/).filter(Boolean);
  if (parts.length !== 5)
    throw new CronSyntaxError(
      `expected exactly 5 fields (minute hour day-of-month month day-of-week), found ${parts.length}`,
    );
  const fields = parts.map((p, i) => parseField(p, FIELDS[i]!));
  return {
    expression,
    minutes: fields[0]!.values,
    hours: fields[1]!.values,
    canonical: fields.map((f) => (f.star ? '*' : f.values.join(','))).join(' '),
  };
}

/** The problem with a schedule, or undefined when the CronJob controller will accept and run it. */
export function cronProblem(expression: string): string | undefined {
  let schedule: CronSchedule;
  try {
    schedule = parseCron(expression);
  } catch (e) {
    return (e as Error).message;
  }
  try {
    CronExpressionParser.parse(schedule.canonical);
  } catch {
    // robfig/cron accepts it too, and the CronJob then never runs: as good as a rejection, but silent
    return 'it matches no date (e.g. 30 February), so it never runs';
  }
  return undefined;
}

/** Whether the API server's CronJob validation will know `timeZone` (an IANA name, not "Local"). */
export function isKnownTimeZone(timeZone: string): boolean {
  if (timeZone.toLowerCase() === 'local') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock hour and minute of a time in `timeZone`. */
function wallClockIn(timeZone: string): (d: Date) => { hour: number; minute: number } {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    hour: 'numeric',
    minute: 'numeric',
  });
  return (d) => {
    const parts = format.formatToParts(d);
    const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
    return { hour: get('hour'), minute: get('minute') };
  };
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * The runs strictly after `after`, with robfig/cron's behaviour at DST changes: a wall-clock time that does
 * not exist (spring forward) is skipped, not moved to the next hour as cron-parser does; a time that exists
 * twice (fall back) runs twice. Ends when the schedule never runs again (within cron-parser's search).
 */
function* runs(schedule: CronSchedule, timeZone: string, after: Date): Generator<Date> {
  let it;
  try {
    // An hour early, to see the first instance of a run whose repeat (fall back) comes after `after`.
    it = CronExpressionParser.parse(schedule.canonical, {
      tz: timeZone,
      currentDate: new Date(after.getTime() - HOUR_MS),
    });
  } catch {
    return; // a schedule that matches no date at all ("0 0 30 2 *") never runs
  }
  const wallClock = wallClockIn(timeZone);
  const hours = new Set(schedule.hours);
  const minutes = new Set(schedule.minutes);
  let pending: Date | undefined; // the second instance of a run in a repeated (fall back) hour
  let last = after.getTime();
  for (;;) {
    let next: Date;
    try {
      next = it.next().toDate();
    } catch {
      break; // no further run within cron-parser's search limit
    }
    if (pending && pending.getTime() < next.getTime()) {
      if (pending.getTime() > last) yield pending;
      last = Math.max(last, pending.getTime());
    }
    if (pending && pending.getTime() <= next.getTime()) pending = undefined; // equal: cron-parser has it
    const wall = wallClock(next);
    if (!hours.has(wall.hour) || !minutes.has(wall.minute)) continue; // moved by spring forward: skipped
    const again = new Date(next.getTime() + HOUR_MS);
    const wallAgain = wallClock(again);
    if (wallAgain.hour === wall.hour && wallAgain.minute === wall.minute) pending = again;
    if (next.getTime() <= last) continue; // before `after`, or two values moved onto one instant
    yield next;
    last = next.getTime();
  }
  if (pending && pending.getTime() > last) yield pending;
}

/** The first run strictly after `after`, in `timeZone`; undefined when the schedule never runs. */
export function nextRun(schedule: CronSchedule, timeZone: string, after: Date): Date | undefined {
  const first = runs(schedule, timeZone, after).next();
  return first.done ? undefined : first.value;
}

export interface GapOptions {
  /** Look at the runs of this many days at least (a month: monthly patterns show their longest gap). */
  horizonDays?: number;
  /** ...but at most this many matching hours: cron-parser takes about a millisecond per run. */
  maxHours?: number;
  /** Called every few runs so a long walk can yield the event loop. */
  pause?: () => Promise<void>;
}

/**
 * The longest gap between consecutive runs, in `timeZone`: the worst-case RPO the schedule allows (DST
 * days included: a 02:30 daily run in a zone that skips 02:00-03:00 once leaves a 47 h gap). Runs are
 * walked one per matching hour, so a dense schedule stays cheap: the gap between hours is the hour-level
 * gap less the minutes spanned within an hour, the gap within an hour is the largest step between its
 * minute values. Infinity when it never runs (or runs once).
 */
export async function longestInterval(
  schedule: CronSchedule,
  timeZone: string,
  from: Date,
  { horizonDays = 35, maxHours = 400, pause }: GapOptions = {},
): Promise<number> {
  const minutes = schedule.minutes;
  const firstMinute = minutes[0]!;
  const span = (minutes[minutes.length - 1]! - firstMinute) * 60_000;
  let longest = 0;
  for (let i = 1; i < minutes.length; i++)
    longest = Math.max(longest, (minutes[i]! - minutes[i - 1]!) * 60_000);
  const hourly: CronSchedule = {
    ...schedule,
    minutes: [firstMinute],
    canonical: [String(firstMinute), ...schedule.canonical.split(' ').slice(1)].join(' '),
  };
  const end = from.getTime() + horizonDays * DAY_MS;
  let prev: Date | undefined;
  let gaps = 0;
  for (const run of runs(hourly, timeZone, from)) {
    if (prev) {
      longest = Math.max(longest, run.getTime() - prev.getTime() - span);
      gaps++;
      if (run.getTime() >= end || gaps >= maxHours) return longest;
      if (pause && gaps % 16 === 0) await pause();
    }
    prev = run;
  }
  return gaps > 0 ? longest : Infinity;
}

const GAP_TTL_MS = 6 * HOUR_MS;
const CLOCK_ENTRIES = 1024;

/**
 * The answers about a schedule that cost cron-parser work (about a millisecond per run), remembered per
 * schedule and time zone: the next run until it has passed, the longest gap for six hours (it changes only
 * around DST changes, within the hour). Lives as long as the reconciler that owns it.
 */
export class CronClock {
  private readonly nextRuns = new Map<string, Date | undefined>();
  private readonly gaps = new Map<string, { until: number; gapMs: Promise<number> }>();

  next(expression: string, timeZone: string, now: Date): Date | undefined {
    const key = `${timeZone} ${expression}`;
    const known = this.nextRuns.get(key);
    if (known && known > now) return known;
    if (this.nextRuns.has(key) && !known) return undefined;
    const next = nextRun(parseCron(expression), timeZone, now);
    remember(this.nextRuns, key, next);
    return next;
  }

  /** The longest gap between runs (Infinity when it never runs); yields the event loop while it walks. */
  longestGap(expression: string, timeZone: string, now: Date): Promise<number> {
    const key = `${timeZone} ${expression}`;
    const known = this.gaps.get(key);
    if (known && known.until > now.getTime()) return known.gapMs;
    const gapMs = longestInterval(parseCron(expression), timeZone, now, {
      pause: () => new Promise((resolve) => setImmediate(resolve)),
    });
    remember(this.gaps, key, { until: now.getTime() + GAP_TTL_MS, gapMs });
    gapMs.catch(() => this.gaps.delete(key));
    return gapMs;
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V) {
  map.delete(key);
  map.set(key, value);
  if (map.size > CLOCK_ENTRIES) map.delete(map.keys().next().value!);
}
