import { ConfigError } from '../errors';

/**
 * The timer schedules, readable without the settings schema: the Functions entry registers its
 * timers before anything heavy is loaded (zod and the pipeline come with the first invocation), so
 * it reads these two settings here, the way loadSettings does (trimmed, blank = default). The
 * schema in index.ts uses the same defaults and rule and validates every setting on first use.
 */
export const TIMER_SCHEDULE_DEFAULTS = {
  CARBON_POLL_SCHEDULE: '0 */15 * * * *',
  INCOMING_SWEEP_SCHEDULE: '0 */10 * * * *',
} as const;

export const SIX_FIELD_NCRONTAB = /^(\S+\s+){5}\S+$/;
export const SIX_FIELD_NCRONTAB_MESSAGE = 'six-field NCRONTAB expression';

export function timerSchedule(
  env: Record<string, string | undefined>,
  key: keyof typeof TIMER_SCHEDULE_DEFAULTS,
): string {
  const raw = env[key]?.trim();
  const value = raw === undefined || raw === '' ? TIMER_SCHEDULE_DEFAULTS[key] : raw;
  if (!SIX_FIELD_NCRONTAB.test(value)) {
    throw new ConfigError(`Invalid settings (1): ${key}: ${SIX_FIELD_NCRONTAB_MESSAGE}`, [
      { key, reason: SIX_FIELD_NCRONTAB_MESSAGE },
    ]);
  }
  return value;
}
