import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { annualAverageFor } from './annualAverage';
import { AZURE_REGIONS } from './azureRegions';
import { availableTraceZones, loadTraceSeries } from './traceData';
import type { ZoneRange } from './plausibility';

/**
 * Derives the per-zone plausible ranges (shared/carbon/plausibleRanges.json) from the bundled real
 * traces, or from the CO2.js annual average where a zone has no trace. Generated once and committed,
 * so the poller never loads 35k-row traces to check one reading; a test re-derives and compares.
 *
 * Margins: a trace bound is [min ÷ 2, max × 2] of every hour on record, wide enough for the trace
 * provider's simulated forecast error (≈ 20 % at 48 h) and for a few years of grid change, narrow
 * enough that 5 g for Germany (record low ≈ 100 g) is refused. An annual average has no spread on
 * record, so its bound is [average ÷ 10, average × 4].
 */
export const TRACE_MARGIN = { lowDivisor: 2, highFactor: 2 } as const;
export const AVERAGE_MARGIN = { lowDivisor: 10, highFactor: 4 } as const;

const round = (value: number): number => Math.round(value * 100) / 100;

function traceRange(zone: string): ZoneRange {
  const series = loadTraceSeries(zone);
  let min = Infinity;
  let max = -Infinity;
  for (const value of series.gramsPerKwh) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return {
    minGramsPerKwh: round(min / TRACE_MARGIN.lowDivisor),
    maxGramsPerKwh: round(max * TRACE_MARGIN.highFactor),
    source: `trace ${series.file}: ${series.gramsPerKwh.length} h, min ${min}, max ${max}; bound [min/${TRACE_MARGIN.lowDivisor}, max×${TRACE_MARGIN.highFactor}]`,
  };
}

/** Every zone key a provider may answer for: trace zones and the EM zone of every Azure region. */
export function derivePlausibleRanges(): Record<string, ZoneRange> {
  const ranges: Record<string, ZoneRange> = {};
  const traces = new Set(availableTraceZones());
  for (const zone of traces) ranges[zone] = traceRange(zone);
  for (const region of AZURE_REGIONS) {
    if (ranges[region.zone]) continue;
    if (region.traceZone && traces.has(region.traceZone)) {
      const proxy = ranges[region.traceZone];
      ranges[region.zone] = { ...proxy, source: `${proxy.source} (proxy for ${region.zone})` };
      continue;
    }
    const average = annualAverageFor(region.zone, region);
    ranges[region.zone] = {
      minGramsPerKwh: round(average.gramsPerKwh / AVERAGE_MARGIN.lowDivisor),
      maxGramsPerKwh: round(average.gramsPerKwh * AVERAGE_MARGIN.highFactor),
      source: `annual average ${average.provider} = ${round(average.gramsPerKwh)}; bound [avg/${AVERAGE_MARGIN.lowDivisor}, avg×${AVERAGE_MARGIN.highFactor}]`,
    };
  }
  return Object.fromEntries(Object.entries(ranges).sort(([a], [b]) => a.localeCompare(b)));
}

if (require.main === module) {
  const target = path.resolve(__dirname, '..', '..', '..', 'shared', 'carbon', 'plausibleRanges.json');
  writeFileSync(target, `${JSON.stringify(derivePlausibleRanges(), null, 2)}\n`);
  console.log(`wrote ${target}`);
}
