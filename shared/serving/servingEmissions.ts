import { embodiedOfReservation, type EmbodiedCoefficients } from '../sci/embodied';
import { energyOfReservation, type EnergyCoefficients } from '../sci/energy';
import type { ReplicaSize } from './capacityProfile';

/**
 * Emissions of model-API replicas over one interval, with shared/sci's models: CCF energy of the
 * reserved vCPUs and memory at the measured utilisation (busy CPU / reserved vCPU time), times the
 * grid intensity, plus the embodied share of the reserved vCPUs. A replica scaled to zero reserves
 * nothing and emits nothing.
 */
export interface ReplicaInterval {
  readonly size: ReplicaSize;
  readonly replicaSeconds: number;
  readonly busyCpuSeconds: number;
  readonly gramsPerKwh: number;
}

export interface ServingGrams {
  readonly operationalGrams: number;
  readonly embodiedGrams: number;
  readonly energyKwh: number;
}

export const NO_GRAMS: ServingGrams = { operationalGrams: 0, embodiedGrams: 0, energyKwh: 0 };

export function gramsOfReplicaInterval(
  interval: ReplicaInterval,
  coefficients: EnergyCoefficients & EmbodiedCoefficients,
): ServingGrams {
  if (interval.replicaSeconds <= 0) return NO_GRAMS;
  const energy = energyOfReservation(
    {
      vcpus: interval.size.cpuCores,
      memoryGb: interval.size.memoryGb,
      wallSeconds: interval.replicaSeconds,
      cpuSeconds: Math.min(interval.busyCpuSeconds, interval.size.cpuCores * interval.replicaSeconds),
    },
    coefficients,
  );
  const embodied = embodiedOfReservation(
    { vcpus: interval.size.cpuCores, seconds: interval.replicaSeconds },
    coefficients,
  );
  return {
    operationalGrams: energy.energyKwh * interval.gramsPerKwh,
    embodiedGrams: embodied.embodiedGrams,
    energyKwh: energy.energyKwh,
  };
}

export function addGrams(a: ServingGrams, b: ServingGrams): ServingGrams {
  return {
    operationalGrams: a.operationalGrams + b.operationalGrams,
    embodiedGrams: a.embodiedGrams + b.embodiedGrams,
    energyKwh: a.energyKwh + b.energyKwh,
  };
}
