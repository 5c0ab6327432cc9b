import { nextOccurrence, parseSchedule } from '../../../shared/pipeline/ncrontab';

const next = (expr: string, after: string) =>
  nextOccurrence(parseSchedule(expr), new Date(after)).toISOString();

describe('NCRONTAB schedules', () => {
  it('fires every 15 minutes on the quarter hour', () => {
    expect(next('0 */15 * * * *', '2024-09-02T08:07:31Z')).toBe('2024-09-02T08:15:00.000Z');
    expect(next('0 */15 * * * *', '2024-09-02T08:15:00Z')).toBe('2024-09-02T08:30:00.000Z');
    expect(next('0 */15 * * * *', '2024-12-31T23:59:00Z')).toBe('2025-01-01T00:00:00.000Z');
  });

  it('handles hours, weekdays and lists', () => {
    expect(next('0 0 2 * * *', '2024-09-02T03:00:00Z')).toBe('2024-09-03T02:00:00.000Z');
    // Monday-Friday at 09:30: from Saturday to Monday
    expect(next('0 30 9 * * 1-5', '2024-09-07T10:00:00Z')).toBe('2024-09-09T09:30:00.000Z');
    expect(next('0 0 6,18 * * *', '2024-09-02T07:00:00Z')).toBe('2024-09-02T18:00:00.000Z');
    expect(next('0 0 0 29 2 *', '2024-03-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
  });

  it('rejects malformed expressions with the field named', () => {
    expect(() => parseSchedule('0 */15 * * *')).toThrow(/six fields/);
    expect(() => parseSchedule('0 61 * * * *')).toThrow(/minute/);
    expect(() => parseSchedule('0 0 0 * JAN *')).toThrow(/month/);
  });
});
