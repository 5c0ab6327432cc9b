import { ValidationError } from '../../../shared/errors';
import {
  CCF_AZURE_ENERGY_COEFFICIENTS as CCF,
  cpuWattsPerVcpu,
  energyOfBusyCpu,
  energyOfIntervals,
  energyOfReservation,
} from '../../../shared/sci/energy';

const HOUR = 3600;

describe('energyOfReservation (CCF linear curve, reserved resources, PUE)', () => {
  test('CCF golden case: 10 vCPU-h at 50 % is 0.025359 kWh', () => {
    // (0.74 W + 0.5 · (3.54 − 0.74) W) · 10 vCPU-h · 1.185 / 1000 = 0.025359 kWh
    const e = energyOfReservation({ vcpus: 10, memoryGb: 0, wallSeconds: HOUR, cpuSeconds: 5 * HOUR }, CCF);
    expect(e.energyKwh).toBeCloseTo(0.025359, 9);
    expect(e.cpuEnergyKwh).toBeCloseTo(0.025359, 9);
    expect(e.memoryEnergyKwh).toBe(0);
    expect(e).toMatchObject({
      method: 'ccf-linear',
      basis: 'reserved-wall-time',
      utilisation: 0.5,
      utilisationSource: 'measured',
      vcpuHours: 10,
      coefficients: {
        cpuMinWattsPerVcpu: 0.74,
        cpuMaxWattsPerVcpu: 3.54,
        memoryKwhPerGbHour: 0.000392,
        pue: 1.185,
      },
    });
  });

  test('notes §9: 2 vCPU / 4 GB for 1 h at 50 % is 0.006930 kWh', () => {
    // [2 · 2.14 W + 4 GB · 0.392 W/GB] · 1 h · 1.185 / 1000 = 5.848 · 1.185 / 1000
    const e = energyOfReservation({ vcpus: 2, memoryGb: 4, wallSeconds: HOUR, cpuSeconds: HOUR }, CCF);
    expect(e.energyKwh).toBeCloseTo(0.00692988, 8);
    expect(e.cpuEnergyKwh).toBeCloseTo((4.28 * 1.185) / 1000, 12);
    expect(e.memoryEnergyKwh).toBeCloseTo(4 * 0.000392 * 1.185, 12);
    expect(e.memoryGbHours).toBe(4);
  });

  test('an idle reservation still costs its minimum power and all its memory (SCI counts reserved)', () => {
    const idle = energyOfReservation({ vcpus: 2, memoryGb: 4, wallSeconds: HOUR, cpuSeconds: 0 }, CCF);
    expect(idle.utilisation).toBe(0);
    expect(idle.cpuEnergyKwh).toBeCloseTo((2 * 0.74 * 1.185) / 1000, 12);
    expect(idle.memoryEnergyKwh).toBeCloseTo(4 * 0.000392 * 1.185, 12);
  });

  test('nothing measured assumes 50 % and says so', () => {
    const e = energyOfReservation({ vcpus: 2, memoryGb: 4, wallSeconds: HOUR, cpuSeconds: null }, CCF);
    expect(e.utilisationSource).toBe('assumed-50%');
    expect(e.utilisation).toBe(0.5);
    expect(e.energyKwh).toBeCloseTo(0.00692988, 8);
  });

  test('CPU time beyond the reservation is capped at 100 %', () => {
    const e = energyOfReservation({ vcpus: 1, memoryGb: 0, wallSeconds: 100, cpuSeconds: 250 }, CCF);
    expect(e.utilisation).toBe(1);
    expect(e.cpuEnergyKwh).toBeCloseTo(((3.54 * 100) / HOUR / 1000) * 1.185, 15);
  });

  test('zero wall time is zero energy', () => {
    expect(
      energyOfReservation({ vcpus: 4, memoryGb: 16, wallSeconds: 0, cpuSeconds: 0 }, CCF).energyKwh,
    ).toBe(0);
  });

  test('bad input and bad coefficients are ValidationErrors naming the field', () => {
    expect(() => energyOfReservation({ vcpus: 0, memoryGb: 1, wallSeconds: 1, cpuSeconds: 1 }, CCF)).toThrow(
      /vcpus/,
    );
    expect(() =>
      energyOfReservation({ vcpus: 1, memoryGb: 1, wallSeconds: Number.NaN, cpuSeconds: 1 }, CCF),
    ).toThrow(ValidationError);
    expect(() => energyOfReservation({ vcpus: 1, memoryGb: 1, wallSeconds: 1, cpuSeconds: -1 }, CCF)).toThrow(
      /cpuSeconds/,
    );
    expect(() =>
      energyOfReservation(
        { vcpus: 1, memoryGb: 1, wallSeconds: 1, cpuSeconds: 1 },
        { ...CCF, cpuMinWattsPerVcpu: 5, cpuMaxWattsPerVcpu: 3 },
      ),
    ).toThrow(/cpuMaxWattsPerVcpu/);
    expect(() =>
      energyOfReservation({ vcpus: 1, memoryGb: 1, wallSeconds: 1, cpuSeconds: 1 }, { ...CCF, pue: 0.9 }),
    ).toThrow(/pue/);
  });

  test('the power curve is linear between min and max', () => {
    expect(cpuWattsPerVcpu(0, CCF)).toBe(0.74);
    expect(cpuWattsPerVcpu(1, CCF)).toBe(3.54);
    expect(cpuWattsPerVcpu(0.25, CCF)).toBeCloseTo(0.74 + 0.25 * 2.8, 12);
  });
});

describe('energyOfBusyCpu (Function invocations on a shared host)', () => {
  test('busy seconds at full power plus memory over the wall time', () => {
    const e = energyOfBusyCpu({ cpuSeconds: 36, wallSeconds: 360, memoryGb: 0.5 }, CCF);
    // 0.01 vCPU-h · 3.54 W / 1000 · 1.185 + 0.5 GB · 0.1 h · 0.000392 · 1.185
    expect(e.cpuEnergyKwh).toBeCloseTo((0.01 * 3.54 * 1.185) / 1000, 15);
    expect(e.memoryEnergyKwh).toBeCloseTo(0.05 * 0.000392 * 1.185, 15);
    expect(e).toMatchObject({ basis: 'busy-cpu-time', utilisation: 1, utilisationSource: 'measured' });
  });
});

describe('energyOfIntervals (per-minute usage for Σ E_t · I_t)', () => {
  const minute = (i: number, cpuSeconds: number | null) => ({
    startsAt: new Date(Date.UTC(2024, 0, 1, 0, i)).toISOString(),
    seconds: 60,
    cpuSeconds,
  });

  test('fully measured: intervals add up, and match the single-figure estimate (the curve is linear)', () => {
    const intervals = [minute(0, 30), minute(1, 120), minute(2, 60)];
    const { intervals: out, total } = energyOfIntervals({ vcpus: 2, memoryGb: 4, intervals }, CCF);
    expect(out.map((i) => i.utilisation)).toEqual([0.25, 1, 0.5]);
    expect(out.reduce((s, i) => s + i.energyKwh, 0)).toBeCloseTo(total.energyKwh, 15);
    const single = energyOfReservation({ vcpus: 2, memoryGb: 4, wallSeconds: 180, cpuSeconds: 210 }, CCF);
    expect(total.energyKwh).toBeCloseTo(single.energyKwh, 15);
    expect(total.utilisationSource).toBe('measured');
  });

  test('a gap takes the mean measured utilisation, never zero', () => {
    const { intervals: out, total } = energyOfIntervals(
      { vcpus: 1, memoryGb: 1, intervals: [minute(0, 60), minute(1, null), minute(2, 0)] },
      CCF,
    );
    expect(out[1]).toMatchObject({ utilisation: 0.5, utilisationSource: 'gap-filled' });
    expect(out[1].energyKwh).toBeGreaterThan(out[2].energyKwh);
    expect(total.utilisationSource).toBe('measured-with-gaps');
    expect(total.utilisation).toBeCloseTo(0.5, 12);
  });

  test('all gaps: 50 % assumed', () => {
    const { intervals: out, total } = energyOfIntervals(
      { vcpus: 1, memoryGb: 1, intervals: [minute(0, null), minute(1, null)] },
      CCF,
    );
    expect(out.every((i) => i.utilisationSource === 'assumed-50%')).toBe(true);
    expect(total.utilisationSource).toBe('assumed-50%');
    expect(total.energyKwh).toBeCloseTo(
      energyOfReservation({ vcpus: 1, memoryGb: 1, wallSeconds: 120, cpuSeconds: null }, CCF).energyKwh,
      15,
    );
  });

  test('malformed intervals are rejected', () => {
    expect(() =>
      energyOfIntervals(
        { vcpus: 1, memoryGb: 1, intervals: [{ startsAt: 'yesterday', seconds: 60, cpuSeconds: 1 }] },
        CCF,
      ),
    ).toThrow(/intervals\.0\.startsAt/);
  });
});
