import { ValidationError } from '../errors';

/**
 * The six-field NCRONTAB schedules Azure Functions timers use ("{second} {minute} {hour} {day}
 * {month} {day-of-week}"), evaluated in UTC, so the local driver fires the carbon poller exactly
 * when the Functions host would. Supports `*`, numbers, ranges `a-b`, steps `* /n` and `a-b/n`,
 * and lists; named months and days are not needed by our schedules and are refused.
 */
const FIELDS = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day-of-week', min: 0, max: 6 },
] as const;

export interface Schedule {
  readonly expression: string;
  readonly sets: readonly ReadonlySet<number>[];
}

function parseField(text: string, field: (typeof FIELDS)[number]): Set<number> {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const match = /^(\*|\d+(?:-\d+)?)(?:\/(\d+))?$/.exec(part);
    if (!match) throw new ValidationError(`Invalid ${field.name} field "${part}" in schedule`);
    const [, range, stepText] = match;
    const step = stepText ? Number(stepText) : 1;
    let from: number = field.min;
    let to: number = field.max;
    if (range !== '*') {
      const [a, b] = range.split('-').map(Number);
      from = a;
      to = b ?? (stepText ? field.max : a);
    }
    if (from < field.min || to > field.max || from > to || step < 1) {
      throw new ValidationError(`Out-of-range ${field.name} field "${part}" in schedule`);
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return values;
}

export function parseSchedule(expression: string): Schedule {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 6) throw new ValidationError(`Schedule "${expression}" must have six fields`);
  return { expression, sets: parts.map((p, i) => parseField(p, FIELDS[i])) };
}

/** The first occurrence strictly after `after` (UTC). */
export function nextOccurrence(schedule: Schedule, after: Date): Date {
  const [seconds, minutes, hours, days, months, weekdays] = schedule.sets;
  const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
  const limit = after.getTime() + 4 * 366 * 86_400_000;
  while (t.getTime() <= limit) {
    if (!months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!days.has(t.getUTCDate()) || !weekdays.has(t.getUTCDay())) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    if (!seconds.has(t.getUTCSeconds())) {
      t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
      continue;
    }
    return t;
  }
  throw new ValidationError(`Schedule "${schedule.expression}" never fires`);
}
