import { ConfigError } from '../../../shared/errors';
import { CarbonAwareSdkProvider } from '../../../shared/carbon/carbonAwareSdk';
import { ElectricityMapsProvider } from '../../../shared/carbon/electricityMaps';
import { createCarbonChain, createCarbonProvider, loadCarbonSettings } from '../../../shared/carbon/factory';
import { TraceProvider } from '../../../shared/carbon/traceProvider';
import { UkCarbonIntensityProvider } from '../../../shared/carbon/ukCarbonIntensity';
import { WattTimeProvider } from '../../../shared/carbon/wattTime';
import { type LoopbackServer, startLoopbackServer } from '../../support/loopbackHttp';

test('carbon settings load without storage settings and default to the trace provider', () => {
  const settings = loadCarbonSettings({});
  expect(settings.CARBON_PROVIDER).toBe('trace');
  const provider = createCarbonProvider(settings);
  expect(provider).toBeInstanceOf(TraceProvider);
  expect((provider as TraceProvider).forecastMode).toBe('realistic');
});

test.each([
  ['electricitymaps', { ELECTRICITYMAPS_API_TOKEN: 't' }, ElectricityMapsProvider],
  ['watttime', { WATTTIME_USERNAME: 'u', WATTTIME_PASSWORD: 'p' }, WattTimeProvider],
  ['ukcarbonintensity', {}, UkCarbonIntensityProvider],
  ['carbonawaresdk', { CARBON_AWARE_SDK_BASE_URL: 'http://127.0.0.1:1' }, CarbonAwareSdkProvider],
] as const)('CARBON_PROVIDER=%s picks its provider', (name, extra, type) => {
  expect(createCarbonProvider(loadCarbonSettings({ CARBON_PROVIDER: name, ...extra }))).toBeInstanceOf(type);
});

test('a live provider without its credentials is a ConfigError naming the key', () => {
  const settings = loadCarbonSettings({ CARBON_PROVIDER: 'electricitymaps' });
  expect(() => createCarbonProvider(settings)).toThrow(ConfigError);
  expect(() => createCarbonProvider(settings)).toThrow(/ELECTRICITYMAPS_API_TOKEN/);
  expect(() => loadCarbonSettings({ CARBON_HTTP_MAX_RETRIES: '50' })).toThrow(/CARBON_HTTP_MAX_RETRIES/);
});

describe('settings reach the HTTP client', () => {
  let server: LoopbackServer;
  beforeEach(async () => {
    server = await startLoopbackServer();
  });
  afterEach(async () => {
    await server.close();
  });

  test('base URL, token, retries and timeout come from settings', async () => {
    server.route('GET', '/v3/carbon-intensity/latest', { status: 503, body: 'down' });
    const settings = loadCarbonSettings({
      CARBON_PROVIDER: 'electricitymaps',
      ELECTRICITYMAPS_API_TOKEN: 'tok',
      ELECTRICITYMAPS_BASE_URL: `${server.baseUrl}/v3`,
      CARBON_HTTP_MAX_RETRIES: '2',
    });
    const chain = createCarbonChain(settings, {
      now: () => new Date('2025-06-01T12:00:00Z'),
    });
    const outcome = await chain.latestWithTrail('DE');
    expect(server.requests).toHaveLength(3);
    expect(server.requests[0].headers['auth-token']).toBe('tok');
    expect(outcome.servedBy).toBe('annual-average');
    expect(outcome.failures[0]).toMatchObject({ link: 'live', code: 'PROVIDER_HTTP' });
  });
});
