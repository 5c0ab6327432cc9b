import { type EnergyCoefficients, energyOfBusyCpu } from './energy';

/**
 * The carbon poller's own footprint beside what the policy it serves saves (issue 14: the scheduler
 * must not emit more than it saves). Energy is the busy-CPU basis of a Function invocation (energy.ts);
 * memory is left out because the Functions instance is shared and held anyway.
 */
export interface PollerFootprint {
  readonly invocations: number;
  readonly cpuSeconds: number;
  readonly energyKwh: number;
  readonly gramsPerKwh: number;
  readonly grams: number;
  /** Nightly-in-home-region emissions minus the policy's; null without a nightly baseline. */
  readonly savingGrams: number | null;
  /** Poller grams ÷ saving; null when nothing was saved. */
  readonly shareOfSaving: number | null;
}

/** Busy-CPU footprint of a function's invocations (the evaluator's, the poller's). */
export interface CpuFootprint {
  readonly invocations: number;
  readonly cpuSeconds: number;
  readonly energyKwh: number;
  readonly gramsPerKwh: number;
  readonly grams: number;
}

export function cpuFootprint(input: {
  readonly cpuSecondsPerInvocation: readonly number[];
  readonly coefficients: EnergyCoefficients;
  readonly gramsPerKwh: number;
}): CpuFootprint {
  const cpuSeconds = input.cpuSecondsPerInvocation.reduce((sum, s) => sum + s, 0);
  const energyKwh = energyOfBusyCpu(
    { cpuSeconds, memoryGb: 0, wallSeconds: 0 },
    input.coefficients,
  ).energyKwh;
  return {
    invocations: input.cpuSecondsPerInvocation.length,
    cpuSeconds,
    energyKwh,
    gramsPerKwh: input.gramsPerKwh,
    grams: energyKwh * input.gramsPerKwh,
  };
}

export function pollerFootprint(input: {
  readonly cpuSecondsPerInvocation: readonly number[];
  readonly coefficients: EnergyCoefficients;
  readonly gramsPerKwh: number;
  readonly policyGrams: number;
  readonly nightlyGrams: number | null;
}): PollerFootprint {
  const cpu = cpuFootprint(input);
  const savingGrams = input.nightlyGrams === null ? null : input.nightlyGrams - input.policyGrams;
  const grams = cpu.grams;
  return {
    ...cpu,
    savingGrams,
    shareOfSaving: savingGrams !== null && savingGrams > 0 ? grams / savingGrams : null,
  };
}
