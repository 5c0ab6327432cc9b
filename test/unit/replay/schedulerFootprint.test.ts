import { pollsForRequest } from '../../../bench/replay/schedulerFootprint';

const HOUR = 3_600_000;
const base = {
  requestedAtMs: Date.parse('2024-03-04T09:00:00Z'),
  durationMinutes: 5,
  pollPeriodMinutes: 15,
  forecastRefreshMinutes: 60,
};

describe('pollsForRequest (carbonPollNeed over a replayed wait)', () => {
  it('calls providers once an hour while the plan is current, and once more when its window opens', () => {
    // Window 10 h after the request: plan at 09:00, re-plan at each hourly forecast refresh, and the
    // 19:00 tick (also a refresh) finds the window open before the next tick and signals it:
    // 41 ticks, 11 of them calling providers.
    const polls = pollsForRequest({
      ...base,
      plannedStartMs: base.requestedAtMs + 10 * HOUR,
      deadlineMs: base.requestedAtMs + 24 * HOUR,
    });
    expect(polls.providerPolls).toBe(11);
    expect(polls.skippedPolls).toBe(41 - 11);
  });

  it('a window that opens at once costs one provider poll and nothing else', () => {
    const polls = pollsForRequest({
      ...base,
      plannedStartMs: base.requestedAtMs,
      deadlineMs: base.requestedAtMs + HOUR,
    });
    expect(polls).toEqual({ providerPolls: 1, skippedPolls: 0 });
  });
});
