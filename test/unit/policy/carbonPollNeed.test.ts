import { carbonPollNeed, type WaitingRequest } from '../../../shared/policy/carbonPollNeed';

const NOW = Date.parse('2024-09-02T10:00:00Z');
const HOUR = 3_600_000;
const base = { nowMs: NOW, nextPollMs: NOW + HOUR, forecastRefreshMinutes: 60, expectedTrainingMinutes: 30 };
const waiting = (overrides: Partial<WaitingRequest> = {}): WaitingRequest => ({
  modelName: 'vat-rate',
  deadlineMs: NOW + 24 * HOUR,
  signalled: false,
  plannedAtMs: NOW - 10 * 60_000,
  planStartMs: NOW + 10 * HOUR,
  ...overrides,
});

test('nothing waiting: no provider call', () => {
  expect(carbonPollNeed({ ...base, waiting: [] })).toEqual({
    kind: 'skip',
    reason: 'no retrain request is waiting for a window',
  });
});

test('an already signalled request cannot be changed by a poll', () => {
  expect(carbonPollNeed({ ...base, waiting: [waiting({ signalled: true, plannedAtMs: null })] }).kind).toBe(
    'skip',
  );
});

test('a fresh plan whose window is hours away is kept until the next forecast', () => {
  expect(carbonPollNeed({ ...base, waiting: [waiting()] })).toEqual({
    kind: 'skip',
    reason: '1 waiting plan(s) are current until the next forecast',
  });
});

test.each([
  ['no plan yet', { plannedAtMs: null, planStartMs: null }],
  ['window opens before the next poll', { planStartMs: NOW + 30 * 60_000 }],
  ['forecast replaced since the plan', { plannedAtMs: NOW - 60 * 60_000 }],
  ['plan no longer meets the deadline', { deadlineMs: NOW + 10 * HOUR }],
] as const)('polls when %s', (reason, overrides) => {
  expect(carbonPollNeed({ ...base, waiting: [waiting(overrides)] })).toEqual({
    kind: 'poll',
    reasons: [`vat-rate: ${reason}`],
  });
});
