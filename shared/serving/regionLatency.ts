import { z } from 'zod';
import { findAzureRegion, regionSatisfiesResidency, type ResidencyRule } from '../carbon/azureRegions';
import { parseWith } from '../validation';
import rttDocument from './data/azureRttP95Ms.json';

/**
 * Round-trip times between Azure regions, as Microsoft publishes them ("Azure network round-trip
 * latency statistics", monthly P95 over the backbone; the source and dataset date are kept in the
 * JSON next to the numbers). Nothing here is measured by this project: the planner only reads it.
 */
const RTT_DOCUMENT_SCHEMA = z.object({
  source: z.object({
    title: z.string().min(1),
    publisher: z.string().min(1),
    url: z.url(),
    sourceFile: z.string().min(1),
    dataset: z.string().min(1),
    statistic: z.literal('p95'),
    unit: z.literal('ms'),
    orientation: z.string(),
    subset: z.string(),
  }),
  rttMs: z.record(z.string(), z.record(z.string(), z.number().int().positive().nullable())),
});

const RTT = parseWith(RTT_DOCUMENT_SCHEMA, rttDocument, 'Azure round-trip latency table');

export const RTT_SOURCE = RTT.source;

/**
 * P95 round trip from `from` to `to` in ms. Serving in the caller's own region adds no inter-region
 * round trip (the source has no same-region entry), so that counts 0. Null when the table lacks the pair.
 */
export function rttP95MsBetween(from: string, to: string): number | null {
  const a = from.toLowerCase();
  const b = to.toLowerCase();
  if (a === b) return 0;
  return RTT.rttMs[a]?.[b] ?? null;
}

export type RegionCandidate =
  { kind: 'eligible'; region: string; rttMs: number } | { kind: 'excluded'; region: string; reason: string };

/**
 * Every allowed region judged against residency and the latency budget, in the order given.
 * A pair missing from the table is excluded: an unknown RTT cannot be shown to fit the budget.
 */
export function judgeRegions(input: {
  homeRegion: string;
  allowedRegions: readonly string[];
  residency: ResidencyRule;
  latencyBudgetMs: number;
}): RegionCandidate[] {
  return input.allowedRegions.map((raw): RegionCandidate => {
    const region = raw.toLowerCase();
    if (!findAzureRegion(region)) return { kind: 'excluded', region, reason: 'unknown Azure region' };
    if (!regionSatisfiesResidency(region, input.residency)) {
      return { kind: 'excluded', region, reason: `outside DATA_RESIDENCY=${input.residency}` };
    }
    const rttMs = rttP95MsBetween(input.homeRegion, region);
    if (rttMs === null) {
      return { kind: 'excluded', region, reason: `no published RTT from ${input.homeRegion}` };
    }
    if (rttMs > input.latencyBudgetMs) {
      return {
        kind: 'excluded',
        region,
        reason: `P95 RTT ${rttMs} ms from ${input.homeRegion} exceeds the ${input.latencyBudgetMs} ms budget`,
      };
    }
    return { kind: 'eligible', region, rttMs };
  });
}
