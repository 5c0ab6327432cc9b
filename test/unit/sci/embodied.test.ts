import { ValidationError } from '../../../shared/errors';
import { CCF_AZURE_DSV3_EMBODIED, embodiedOfReservation } from '../../../shared/sci/embodied';

describe('embodiedOfReservation: M = TE · (TiR / EL) · (RR / ToR)', () => {
  test('notes §9: 2 of 64 Dsv3 vCPUs for 1 h is ≈ 1.32 g', () => {
    const m = embodiedOfReservation({ vcpus: 2, seconds: 3600 }, CCF_AZURE_DSV3_EMBODIED);
    // 1 483 120 g · (1 h / 35 040 h) · (2 / 64)
    expect(m.embodiedGrams).toBeCloseTo(1_483_120 * (1 / 35_040) * (2 / 64), 9);
    expect(m.embodiedGrams).toBeCloseTo(1.3227, 4);
    expect(m).toMatchObject({
      method: 'sci-m',
      timeShare: 1 / 35_040,
      resourceShare: 2 / 64,
      reservedHours: 1,
    });
  });

  test('SCI spec example: 1 000 kg server, 4 years, 1 h, whole host ≈ 28.5 g', () => {
    const m = embodiedOfReservation(
      { vcpus: 1, seconds: 3600 },
      { embodiedGramsPerHost: 1_000_000, hostLifespanHours: 4 * 365 * 24, hostVcpus: 1 },
    );
    expect(m.embodiedGrams).toBeCloseTo(28.539, 3);
  });

  test('a reservation larger than the host counts the whole host, not more', () => {
    const m = embodiedOfReservation({ vcpus: 128, seconds: 3600 }, CCF_AZURE_DSV3_EMBODIED);
    expect(m.resourceShare).toBe(1);
  });

  test('invalid coefficients are rejected', () => {
    expect(() =>
      embodiedOfReservation({ vcpus: 1, seconds: 1 }, { ...CCF_AZURE_DSV3_EMBODIED, hostLifespanHours: 0 }),
    ).toThrow(ValidationError);
  });
});
