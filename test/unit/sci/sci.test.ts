import { loadSettings } from '../../../shared/config';
import { ValidationError } from '../../../shared/errors';
import type { IntensityPoint } from '../../../shared/carbon/types';
import {
  aggregateRun,
  coefficientsFromSettings,
  footprintOfStage,
  functionalUnitOf,
  type StageInput,
} from '../../../shared/sci/sci';

const coefficients = coefficientsFromSettings(loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }));
const DE_2025 = {
  gramsPerKwh: 342,
  provider: 'co2js',
  source: 'electricityMaps.yearly2025:DE',
  signal: 'average',
} as const;

// Notes §9: 2 vCPU / 4 GB reserved for 1 h, mean CpuUsage 1 000 millicores.
const training: StageInput = {
  stage: 'train',
  region: 'germanywestcentral',
  startedAt: '2025-03-01T10:00:00Z',
  endedAt: '2025-03-01T11:00:00Z',
  cpuCores: 2,
  memoryGb: 4,
  cpuSeconds: 3600,
  resourceSource: 'azure-monitor',
  functionalUnit: { kind: 'retrain', count: 1 },
  intensity: DE_2025,
};

function point(startsAt: string, gramsPerKwh: number, over: Partial<IntensityPoint> = {}): IntensityPoint {
  return {
    startsAt,
    durationMinutes: 60,
    gramsPerKwh,
    zone: 'DE',
    signal: 'average',
    provider: 'trace:em_DE_2022',
    source: 'trace',
    ...over,
  };
}

describe('coefficientsFromSettings', () => {
  test('defaults are the CCF Azure figures and the Dsv3 embodied proxy', () => {
    expect(coefficients).toEqual({
      cpuMinWattsPerVcpu: 0.74,
      cpuMaxWattsPerVcpu: 3.54,
      memoryKwhPerGbHour: 0.000392,
      pue: 1.185,
      embodiedGramsPerHost: 1_483_120,
      hostLifespanHours: 35_040,
      hostVcpus: 64,
      functionalUnit: 'retrain',
    });
    const custom = coefficientsFromSettings(
      loadSettings({
        DataStorage: 'UseDevelopmentStorage=true',
        PUE: '1.12',
        SCI_FUNCTIONAL_UNIT: 'invoices-1000',
      }),
    );
    expect(custom).toMatchObject({ pue: 1.12, functionalUnit: 'invoices-1000' });
  });
});

describe('footprintOfStage', () => {
  test('notes §9 in Germany: E = 0.006930 kWh, O ≈ 2.37 g, M ≈ 1.32 g, SCI ≈ 3.69 g per retrain', () => {
    const f = footprintOfStage(training, coefficients);
    expect(f.energy.energyKwh).toBeCloseTo(0.00692988, 8);
    expect(f.operationalGrams).toBeCloseTo(0.00692988 * 342, 5); // 2.37 g
    expect(f.embodiedGrams).toBeCloseTo(1.3227, 4);
    expect(f.totalGrams).toBeCloseTo(0.00692988 * 342 + 1.32268, 4);
    expect(f.sciGramsPerUnit).toBeCloseTo(f.totalGrams, 12);
    expect(f).toMatchObject({
      stage: 'train',
      region: 'germanywestcentral',
      intensity: DE_2025,
      resourceSource: 'azure-monitor',
      functionalUnit: { kind: 'retrain', count: 1 },
      energy: { method: 'ccf-linear', utilisation: 0.5, utilisationSource: 'measured' },
      embodied: { method: 'sci-m' },
    });
  });

  test('SCI divides by R: 2 500 predictions is 2.5 units of predictions-1000', () => {
    const unit = functionalUnitOf('predictions-1000', 2500);
    expect(unit).toEqual({ kind: 'predictions-1000', count: 2.5 });
    const f = footprintOfStage({ ...training, stage: 'serve', functionalUnit: unit }, coefficients);
    expect(f.sciGramsPerUnit).toBeCloseTo(f.totalGrams / 2.5, 12);
  });

  test('R = 0 leaves SCI undefined (null) rather than silently using R = 1', () => {
    const f = footprintOfStage(
      { ...training, stage: 'serve', functionalUnit: functionalUnitOf('predictions-1000', 0) },
      coefficients,
    );
    expect(f.totalGrams).toBeGreaterThan(0);
    expect(f.sciGramsPerUnit).toBeNull();
  });

  test('unmeasured CPU assumes 50 % and records it', () => {
    const f = footprintOfStage({ ...training, cpuSeconds: null, resourceSource: 'assumed' }, coefficients);
    expect(f.energy.utilisationSource).toBe('assumed-50%');
    expect(f.resourceSource).toBe('assumed');
  });

  test('function-cpu charges busy CPU seconds at full power and 1 vCPU of embodied for that time', () => {
    const f = footprintOfStage(
      {
        ...training,
        stage: 'evaluate',
        startedAt: '2025-03-01T10:00:00Z',
        endedAt: '2025-03-01T10:00:10Z',
        cpuSeconds: 4,
        memoryGb: 1.5,
        resourceSource: 'function-cpu',
      },
      coefficients,
    );
    expect(f.energy.basis).toBe('busy-cpu-time');
    expect(f.energy.cpuEnergyKwh).toBeCloseTo(((4 / 3600) * 3.54 * 1.185) / 1000, 15);
    expect(f.energy.memoryEnergyKwh).toBeCloseTo(1.5 * (10 / 3600) * 0.000392 * 1.185, 15);
    expect(f.embodiedGrams).toBeCloseTo(1_483_120 * (4 / 3600 / 35_040) * (1 / 64), 12);
  });

  test('an intensity series is integrated over the stage: O = Σ E_t · I_t', () => {
    // 10:30 → 11:30 at constant power: half the energy in each hour.
    const f = footprintOfStage(
      {
        ...training,
        startedAt: '2025-03-01T10:30:00Z',
        endedAt: '2025-03-01T11:30:00Z',
        intensity: { series: [point('2025-03-01T10:00:00Z', 200), point('2025-03-01T11:00:00Z', 500)] },
      },
      coefficients,
    );
    expect(f.operationalGrams).toBeCloseTo(f.energy.energyKwh * (0.5 * 200 + 0.5 * 500), 12);
    expect(f.intensity).toEqual({
      gramsPerKwh: expect.closeTo(350, 9),
      provider: 'trace:em_DE_2022',
      source: 'series:trace',
      signal: 'average',
    });
  });

  test('time the series does not cover takes the nearest point, so it is never free', () => {
    const f = footprintOfStage(
      {
        ...training,
        startedAt: '2025-03-01T10:30:00Z',
        endedAt: '2025-03-01T11:30:00Z',
        intensity: { series: [point('2025-03-01T10:00:00Z', 300)] },
      },
      coefficients,
    );
    expect(f.operationalGrams).toBeCloseTo(f.energy.energyKwh * 300, 12);
  });

  test('mixing average and marginal signals is refused', () => {
    expect(() =>
      footprintOfStage(
        {
          ...training,
          intensity: {
            series: [
              point('2025-03-01T10:00:00Z', 200),
              point('2025-03-01T11:00:00Z', 500, { signal: 'marginal' }),
            ],
          },
        },
        coefficients,
      ),
    ).toThrow(/mixes average and marginal/);
  });

  test('inconsistent input is a ValidationError naming the field', () => {
    expect(() => footprintOfStage({ ...training, endedAt: '2025-03-01T09:00:00Z' }, coefficients)).toThrow(
      /endedAt: is before startedAt/,
    );
    expect(() => footprintOfStage({ ...training, resourceSource: 'assumed' }, coefficients)).toThrow(
      /cpuSeconds: must be null/,
    );
    expect(() =>
      footprintOfStage({ ...training, resourceSource: 'function-cpu', cpuSeconds: null }, coefficients),
    ).toThrow(ValidationError);
    expect(() =>
      footprintOfStage(
        { ...training, intervals: [{ startsAt: training.startedAt, seconds: 60, cpuSeconds: 30 }] },
        coefficients,
      ),
    ).toThrow(/intervals cover 60 s but the stage lasted 3600 s/);
  });
});

describe('aggregateRun', () => {
  const train = footprintOfStage(training, coefficients);
  const compare = footprintOfStage(
    {
      ...training,
      stage: 'compare',
      startedAt: '2025-03-01T11:00:00Z',
      endedAt: '2025-03-01T11:05:00Z',
      cpuSeconds: 120,
    },
    coefficients,
  );
  const serve = footprintOfStage(
    {
      ...training,
      stage: 'serve',
      cpuCores: 1,
      memoryGb: 1.5,
      functionalUnit: functionalUnitOf('predictions-1000', 4000),
    },
    coefficients,
  );

  test('stages with the run’s R are summed; others are listed as excluded, with their grams', () => {
    const run = aggregateRun([train, compare, serve], { kind: 'retrain', count: 1 });
    expect(run.totalGrams).toBeCloseTo(train.totalGrams + compare.totalGrams, 12);
    expect(run.energyKwh).toBeCloseTo(train.energy.energyKwh + compare.energy.energyKwh, 15);
    expect(run.operationalGrams + run.embodiedGrams).toBeCloseTo(run.totalGrams, 12);
    expect(run.sciGramsPerUnit).toBeCloseTo(run.totalGrams, 12);
    expect(run.stagesIncluded).toEqual(['train', 'compare']);
    expect(run.stagesExcluded).toEqual([
      {
        stage: 'serve',
        functionalUnit: { kind: 'predictions-1000', count: 4 },
        totalGrams: serve.totalGrams,
        reason: expect.stringContaining('no conversion was given'),
      },
    ]);
    expect(run.conversions).toEqual([]);
  });

  test('a disclosed conversion brings another R in as SCI × units per run unit', () => {
    const run = aggregateRun([train, serve], { kind: 'retrain', count: 1 }, [
      {
        from: 'predictions-1000',
        stageUnitsPerRunUnit: 2,
        note: '2 000 predictions attributed to each retrain',
      },
    ]);
    expect(run.totalGrams).toBeCloseTo(train.totalGrams + serve.sciGramsPerUnit! * 2, 12);
    expect(run.conversions).toEqual([
      {
        stage: 'serve',
        from: { kind: 'predictions-1000', count: 4 },
        stageUnitsPerRunUnit: 2,
        note: '2 000 predictions attributed to each retrain',
      },
    ]);
    expect(run.stagesExcluded).toEqual([]);
  });

  test('a run per invoices-1000 divides the same grams by the invoices', () => {
    const perInvoices = footprintOfStage(
      { ...training, functionalUnit: functionalUnitOf('invoices-1000', 8000) },
      coefficients,
    );
    const run = aggregateRun([perInvoices], functionalUnitOf('invoices-1000', 8000));
    expect(run.sciGramsPerUnit).toBeCloseTo(perInvoices.totalGrams / 8, 12);
  });
});
