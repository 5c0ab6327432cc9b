import { AnnualAverageProvider, annualAverageFor } from '../../../shared/carbon/annualAverage';
import { findAzureRegion } from '../../../shared/carbon/azureRegions';
import { latestForRegion } from '../../../shared/carbon/provider';

/* eslint-disable @typescript-eslint/no-require-imports */
const emYearly = require('@tgwf/co2/data/electricity-maps') as Record<
  string,
  { data: Record<string, { carbonIntensity: { value: number } }> }
>;
const ember = (require('@tgwf/co2/data') as { averageIntensity: { data: Record<string, number> } })
  .averageIntensity.data;
/* eslint-enable @typescript-eslint/no-require-imports */
const latestYear = Object.keys(emYearly)
  .filter((k) => /^yearly\d{4}$/.test(k))
  .sort()
  .pop() as string;

test('an Electricity Maps zone gets its latest yearly average from CO2.js', () => {
  expect(annualAverageFor('NL')).toEqual({
    gramsPerKwh: emYearly[latestYear].data.NL.carbonIntensity.value,
    provider: `co2js:electricityMaps.${latestYear}:NL`,
  });
});

test('keys that are not EM zones resolve through the region table', () => {
  // UK Carbon Intensity region 13 is uksouth -> GB; an Azure region name works too
  expect(annualAverageFor('13').provider).toBe(`co2js:electricityMaps.${latestYear}:GB`);
  expect(annualAverageFor('northeurope').provider).toBe(`co2js:electricityMaps.${latestYear}:IE`);
});

test('without an EM zone the Ember country average is used, then WORLD', () => {
  const ireland = {
    ...(findAzureRegion('northeurope') as NonNullable<ReturnType<typeof findAzureRegion>>),
    zone: 'IE-UNKNOWN',
  };
  expect(annualAverageFor('IE-UNKNOWN', ireland)).toEqual({
    gramsPerKwh: ember.IRL,
    provider: 'co2js:ember:IRL',
  });
  expect(annualAverageFor('XX-NOWHERE')).toEqual({ gramsPerKwh: ember.WORLD, provider: 'co2js:ember:WORLD' });
});

test('the provider labels points annual-average and serves flat forecasts', async () => {
  const p = new AnnualAverageProvider(() => new Date('2025-06-01T12:20:00Z'));
  const point = await latestForRegion(p, 'polandcentral');
  expect(point).toMatchObject({
    zone: 'PL',
    source: 'annual-average',
    signal: 'average',
    startsAt: '2025-06-01T12:00:00.000Z',
  });
  const forecast = await p.forecast('PL', 6);
  expect(forecast.points).toHaveLength(6);
  expect(new Set(forecast.points.map((x) => x.gramsPerKwh)).size).toBe(1);
  expect(forecast.points.every((x) => x.source === 'annual-average')).toBe(true);
});
