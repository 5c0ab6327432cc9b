import { z } from 'zod';
import { parseWith } from '../validation';

/**
 * Embodied emissions share, SCI's M = TE · (TiR / EL) · (RR / ToR): the host's manufacturing
 * footprint, times the share of its life we held it, times the share of its vCPUs we held.
 * ACI does not reveal the host, so TE and ToR are a documented proxy (CCF's Azure Dsv3: 1 483.12 kg
 * over 64 vCPUs, 4-year life; notes energy-sci-aci.md §3, §9).
 */
export interface EmbodiedCoefficients {
  readonly embodiedGramsPerHost: number;
  readonly hostLifespanHours: number;
  readonly hostVcpus: number;
}

export const CCF_AZURE_DSV3_EMBODIED: EmbodiedCoefficients = Object.freeze({
  embodiedGramsPerHost: 1_483_120,
  hostLifespanHours: 35_040,
  hostVcpus: 64,
});

export interface EmbodiedEstimate {
  readonly embodiedGrams: number;
  readonly method: 'sci-m';
  readonly coefficients: EmbodiedCoefficients;
  /** TiR / EL. */
  readonly timeShare: number;
  /** RR / ToR (capped at 1: one reservation can't hold more than the whole host). */
  readonly resourceShare: number;
  readonly reservedHours: number;
  readonly reservedVcpus: number;
}

export const EMBODIED_COEFFICIENTS_SCHEMA = z.object({
  embodiedGramsPerHost: z.number().finite().nonnegative(),
  hostLifespanHours: z.number().finite().positive(),
  hostVcpus: z.number().finite().positive(),
});

export const EMBODIED_ESTIMATE_SCHEMA = z.object({
  embodiedGrams: z.number().nonnegative(),
  method: z.literal('sci-m'),
  coefficients: EMBODIED_COEFFICIENTS_SCHEMA,
  timeShare: z.number().nonnegative(),
  resourceShare: z.number().min(0).max(1),
  reservedHours: z.number().nonnegative(),
  reservedVcpus: z.number().nonnegative(),
});

const RESERVATION_SCHEMA = z.object({
  vcpus: z.number().finite().nonnegative(),
  seconds: z.number().finite().nonnegative(),
});

export function embodiedOfReservation(
  reservation: { vcpus: number; seconds: number },
  coefficients: EmbodiedCoefficients,
): EmbodiedEstimate {
  const r = parseWith(RESERVATION_SCHEMA, reservation, 'embodied reservation');
  const c = parseWith(EMBODIED_COEFFICIENTS_SCHEMA, coefficients, 'embodied coefficients');
  const reservedHours = r.seconds / 3600;
  const timeShare = reservedHours / c.hostLifespanHours;
  const resourceShare = Math.min(1, r.vcpus / c.hostVcpus);
  return {
    embodiedGrams: c.embodiedGramsPerHost * timeShare * resourceShare,
    method: 'sci-m',
    coefficients: { ...c },
    timeShare,
    resourceShare,
    reservedHours,
    reservedVcpus: r.vcpus,
  };
}
