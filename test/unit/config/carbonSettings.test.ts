import { loadSettings } from '../../../shared/config';
import { ConfigError } from '../../../shared/errors';

const base = { DataStorage: 'UseDevelopmentStorage=true' };

test('the carbon check and poll-budget settings have working defaults', () => {
  expect(loadSettings(base)).toMatchObject({
    CARBON_LIVE_MAX_AGE_MINUTES: 180,
    CARBON_CLOCK_SKEW_MINUTES: 5,
    CARBON_FORECAST_MAX_GAP_MINUTES: 180,
    CARBON_POLL_DEADLINE_SECONDS: 120,
    CARBON_FORECAST_REFRESH_MINUTES: 60,
    CARBON_AWARE_SDK_SIGNAL: 'average',
  });
});

test('a poll deadline as long as the timer period is refused, naming the period', () => {
  const error = (() => {
    try {
      loadSettings({ ...base, CARBON_POLL_SCHEDULE: '0 */5 * * * *', CARBON_POLL_DEADLINE_SECONDS: '300' });
    } catch (e) {
      return e;
    }
    return null;
  })();
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).problems).toEqual([
    { key: 'CARBON_POLL_DEADLINE_SECONDS', reason: 'must be shorter than the poll period (300 s)' },
  ]);
  expect(
    loadSettings({ ...base, CARBON_POLL_SCHEDULE: '0 */5 * * * *', CARBON_POLL_DEADLINE_SECONDS: '299' }),
  ).toMatchObject({ CARBON_POLL_DEADLINE_SECONDS: 299 });
});

test('CARBON_AWARE_SDK_SIGNAL accepts only average or marginal', () => {
  expect(() => loadSettings({ ...base, CARBON_AWARE_SDK_SIGNAL: 'lifecycle' })).toThrow(
    /CARBON_AWARE_SDK_SIGNAL/,
  );
});
