import { z } from 'zod';
import { ValidationError } from '../errors';
import { parseWith } from '../validation';

/**
 * Energy of a stage, Cloud Carbon Footprint's linear model (notes energy-sci-aci.md §3):
 *   CPU W per vCPU = min + u · (max − min)
 *   E = (vCPU-h · W per vCPU / 1000 + GB-h · kWh per GB-h) · PUE
 * Every estimate carries its method, coefficients and where the utilisation came from, because a
 * figure without them can't be compared with anything (SCI reporting requirement).
 *
 * SCI counts what was reserved, not what was used: a container holding 2 vCPUs for an hour at 5 %
 * is charged 2 vCPU-h at the 5 % point of the power curve, plus its whole memory reservation.
 */
export interface EnergyCoefficients {
  readonly cpuMinWattsPerVcpu: number;
  readonly cpuMaxWattsPerVcpu: number;
  readonly memoryKwhPerGbHour: number;
  readonly pue: number;
}

/** CCF's Azure constants from its code (`AzureFootprintEstimationConstants.ts`), not its older docs. */
export const CCF_AZURE_ENERGY_COEFFICIENTS: EnergyCoefficients = Object.freeze({
  cpuMinWattsPerVcpu: 0.74,
  cpuMaxWattsPerVcpu: 3.54,
  memoryKwhPerGbHour: 0.000392,
  pue: 1.185,
});

/** CCF's fallback when nothing was measured. */
export const ASSUMED_UTILISATION = 0.5;

/**
 * `measured`: CPU time covers the whole stage. `measured-with-gaps`: some intervals had no data and
 * were filled with the mean utilisation of the measured ones. `assumed-50%`: nothing usable was
 * measured (run shorter than one metric grain, no metrics, or no measurement at all).
 */
export type UtilisationSource = 'measured' | 'measured-with-gaps' | 'assumed-50%';

/**
 * `reserved-wall-time`: vCPUs and memory held for the whole wall time (containers; the SCI rule).
 * `busy-cpu-time`: only the CPU time actually consumed, at full load, on a host shared with other
 * tenants (Function invocations: the plan's instance is not ours to reserve).
 */
export type ReservationBasis = 'reserved-wall-time' | 'busy-cpu-time';

export interface EnergyEstimate {
  /** CPU + memory, including PUE. */
  readonly energyKwh: number;
  readonly cpuEnergyKwh: number;
  readonly memoryEnergyKwh: number;
  readonly method: 'ccf-linear';
  readonly coefficients: EnergyCoefficients;
  readonly basis: ReservationBasis;
  /** Fraction 0..1 of the reserved vCPUs that was busy (capped at 1). */
  readonly utilisation: number;
  readonly utilisationSource: UtilisationSource;
  readonly vcpuHours: number;
  readonly memoryGbHours: number;
}

export const ENERGY_COEFFICIENTS_SCHEMA = z.object({
  cpuMinWattsPerVcpu: z.number().nonnegative(),
  cpuMaxWattsPerVcpu: z.number().nonnegative(),
  memoryKwhPerGbHour: z.number().nonnegative(),
  pue: z.number().min(1),
});

export const ENERGY_ESTIMATE_SCHEMA = z.object({
  energyKwh: z.number().nonnegative(),
  cpuEnergyKwh: z.number().nonnegative(),
  memoryEnergyKwh: z.number().nonnegative(),
  method: z.literal('ccf-linear'),
  coefficients: ENERGY_COEFFICIENTS_SCHEMA,
  basis: z.enum(['reserved-wall-time', 'busy-cpu-time']),
  utilisation: z.number().min(0).max(1),
  utilisationSource: z.enum(['measured', 'measured-with-gaps', 'assumed-50%']),
  vcpuHours: z.number().nonnegative(),
  memoryGbHours: z.number().nonnegative(),
});

const quantity = z.number().finite().nonnegative();

const RESERVED_USAGE_SCHEMA = z.object({
  vcpus: z.number().finite().positive(),
  memoryGb: quantity,
  wallSeconds: quantity,
  cpuSeconds: quantity.nullable(),
});

/** Resources held for a stage; `cpuSeconds: null` means nothing was measured. */
export type ReservedUsage = z.output<typeof RESERVED_USAGE_SCHEMA>;

const BUSY_USAGE_SCHEMA = z.object({ cpuSeconds: quantity, wallSeconds: quantity, memoryGb: quantity });
export type BusyCpuUsage = z.output<typeof BUSY_USAGE_SCHEMA>;

const SECONDS_PER_HOUR = 3600;

function checkCoefficients(c: EnergyCoefficients): EnergyCoefficients {
  const parsed = parseWith(ENERGY_COEFFICIENTS_SCHEMA, c, 'energy coefficients');
  if (parsed.cpuMaxWattsPerVcpu < parsed.cpuMinWattsPerVcpu) {
    throw new ValidationError('Invalid energy coefficients: cpuMaxWattsPerVcpu is below cpuMinWattsPerVcpu', [
      { path: 'cpuMaxWattsPerVcpu', message: 'must be at least cpuMinWattsPerVcpu' },
    ]);
  }
  return parsed;
}

/** Point on the CCF linear power curve for a utilisation fraction 0..1. */
export function cpuWattsPerVcpu(utilisation: number, c: EnergyCoefficients): number {
  const u = Math.min(1, Math.max(0, utilisation));
  return c.cpuMinWattsPerVcpu + u * (c.cpuMaxWattsPerVcpu - c.cpuMinWattsPerVcpu);
}

function estimate(
  vcpuHours: number,
  utilisation: number,
  memoryGbHours: number,
  c: EnergyCoefficients,
  basis: ReservationBasis,
  utilisationSource: UtilisationSource,
): EnergyEstimate {
  const cpuEnergyKwh = ((vcpuHours * cpuWattsPerVcpu(utilisation, c)) / 1000) * c.pue;
  const memoryEnergyKwh = memoryGbHours * c.memoryKwhPerGbHour * c.pue;
  return {
    energyKwh: cpuEnergyKwh + memoryEnergyKwh,
    cpuEnergyKwh,
    memoryEnergyKwh,
    method: 'ccf-linear',
    coefficients: { ...c },
    basis,
    utilisation: Math.min(1, Math.max(0, utilisation)),
    utilisationSource,
    vcpuHours,
    memoryGbHours,
  };
}

/**
 * Energy of resources reserved for the wall time. Utilisation = cpuSeconds / (vCPUs × wall);
 * a process that used more than its nominal share (local runs have no hard limit) is capped at 100 %.
 */
export function energyOfReservation(usage: ReservedUsage, coefficients: EnergyCoefficients): EnergyEstimate {
  const u = parseWith(RESERVED_USAGE_SCHEMA, usage, 'reserved usage');
  const c = checkCoefficients(coefficients);
  const vcpuHours = (u.vcpus * u.wallSeconds) / SECONDS_PER_HOUR;
  const memoryGbHours = (u.memoryGb * u.wallSeconds) / SECONDS_PER_HOUR;
  if (u.cpuSeconds === null) {
    return estimate(vcpuHours, ASSUMED_UTILISATION, memoryGbHours, c, 'reserved-wall-time', 'assumed-50%');
  }
  const utilisation = u.wallSeconds > 0 ? u.cpuSeconds / (u.vcpus * u.wallSeconds) : 0;
  return estimate(vcpuHours, utilisation, memoryGbHours, c, 'reserved-wall-time', 'measured');
}

/**
 * Energy of CPU time on a shared host (a Function invocation): the busy seconds at the 100 % point
 * of the curve, plus memory held for the wall time. Idle capacity of the plan is not attributed.
 */
export function energyOfBusyCpu(usage: BusyCpuUsage, coefficients: EnergyCoefficients): EnergyEstimate {
  const u = parseWith(BUSY_USAGE_SCHEMA, usage, 'busy CPU usage');
  const c = checkCoefficients(coefficients);
  return estimate(
    u.cpuSeconds / SECONDS_PER_HOUR,
    1,
    (u.memoryGb * u.wallSeconds) / SECONDS_PER_HOUR,
    c,
    'busy-cpu-time',
    'measured',
  );
}

const USAGE_INTERVAL_SCHEMA = z.object({
  startsAt: z.iso.datetime({ offset: true }),
  seconds: quantity,
  cpuSeconds: quantity.nullable(),
});

/** CPU time measured in one interval (e.g. one PT1M metric grain clipped to the stage); null = gap. */
export type UsageInterval = z.output<typeof USAGE_INTERVAL_SCHEMA>;

export interface EnergyInterval {
  readonly startsAt: string;
  readonly seconds: number;
  readonly energyKwh: number;
  readonly utilisation: number;
  readonly utilisationSource: 'measured' | 'gap-filled' | 'assumed-50%';
}

const INTERVALS_INPUT_SCHEMA = z.object({
  vcpus: z.number().finite().positive(),
  memoryGb: quantity,
  intervals: z.array(USAGE_INTERVAL_SCHEMA),
});

/**
 * Energy per interval of a reserved stage, for O = Σ E_t · I_t when intensity changes during the
 * stage. A gap is filled with the mean utilisation of the measured intervals (never with zero,
 * which would make missing data look green); with no measured interval at all, 50 % is assumed.
 * The total equals the sum of the intervals.
 */
export function energyOfIntervals(
  input: { vcpus: number; memoryGb: number; intervals: readonly UsageInterval[] },
  coefficients: EnergyCoefficients,
): { intervals: EnergyInterval[]; total: EnergyEstimate } {
  const parsed = parseWith(INTERVALS_INPUT_SCHEMA, input, 'usage intervals');
  const c = checkCoefficients(coefficients);
  let measuredCpuSeconds = 0;
  let measuredSeconds = 0;
  let gapSeconds = 0;
  for (const i of parsed.intervals) {
    if (i.cpuSeconds === null) gapSeconds += i.seconds;
    else {
      measuredCpuSeconds += i.cpuSeconds;
      measuredSeconds += i.seconds;
    }
  }
  const anyMeasured = measuredSeconds > 0;
  const gapUtilisation = anyMeasured
    ? Math.min(1, measuredCpuSeconds / (parsed.vcpus * measuredSeconds))
    : ASSUMED_UTILISATION;
  const intervals: EnergyInterval[] = parsed.intervals.map((i) => {
    const measured = i.cpuSeconds !== null;
    const utilisation =
      i.cpuSeconds !== null
        ? i.seconds > 0
          ? Math.min(1, i.cpuSeconds / (parsed.vcpus * i.seconds))
          : 0
        : gapUtilisation;
    const e = estimate(
      (parsed.vcpus * i.seconds) / SECONDS_PER_HOUR,
      utilisation,
      (parsed.memoryGb * i.seconds) / SECONDS_PER_HOUR,
      c,
      'reserved-wall-time',
      'measured',
    );
    return {
      startsAt: i.startsAt,
      seconds: i.seconds,
      energyKwh: e.energyKwh,
      utilisation,
      utilisationSource: measured ? 'measured' : anyMeasured ? 'gap-filled' : 'assumed-50%',
    };
  });
  const totalSeconds = measuredSeconds + gapSeconds;
  const vcpuHours = (parsed.vcpus * totalSeconds) / SECONDS_PER_HOUR;
  const memoryGbHours = (parsed.memoryGb * totalSeconds) / SECONDS_PER_HOUR;
  const cpuEnergyKwh = intervals.reduce(
    (sum, i) =>
      sum +
      ((((parsed.vcpus * i.seconds) / SECONDS_PER_HOUR) * cpuWattsPerVcpu(i.utilisation, c)) / 1000) * c.pue,
    0,
  );
  const memoryEnergyKwh = memoryGbHours * c.memoryKwhPerGbHour * c.pue;
  // Time-weighted utilisation over the whole stage, so the total reads like a single-figure estimate.
  const utilisation =
    totalSeconds > 0
      ? intervals.reduce((sum, i) => sum + i.utilisation * i.seconds, 0) / totalSeconds
      : ASSUMED_UTILISATION;
  return {
    intervals,
    total: {
      energyKwh: cpuEnergyKwh + memoryEnergyKwh,
      cpuEnergyKwh,
      memoryEnergyKwh,
      method: 'ccf-linear',
      coefficients: { ...c },
      basis: 'reserved-wall-time',
      utilisation,
      utilisationSource: !anyMeasured ? 'assumed-50%' : gapSeconds > 0 ? 'measured-with-gaps' : 'measured',
      vcpuHours,
      memoryGbHours,
    },
  };
}
