import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EVENT, METRIC } from '../../../shared/telemetry/telemetry';

/**
 * infra/workbook.json and the SCI alert are deployed as they are, so their shape and their contract
 * with shared/telemetry/telemetry.ts (metric and event names, where each lands in App Insights) are
 * checked here: a renamed metric breaks this test instead of silently emptying a Portal panel.
 */
const ROOT = path.resolve(__dirname, '..', '..', '..');
const WORKBOOK_SCHEMA = z.object({
  version: z.literal('Notebook/1.0'),
  items: z.array(
    z.object({
      type: z.number().int(),
      name: z.string().min(1),
      content: z.looseObject({}),
    }),
  ),
  $schema: z.string().optional(),
});
const QUERY_ITEM = z.object({
  version: z.literal('KqlItem/1.0'),
  query: z.string().min(1),
  title: z.string().min(1),
  queryType: z.literal(0),
  resourceType: z.literal('microsoft.insights/components'),
  visualization: z.enum(['timechart', 'table', 'linechart', 'barchart']),
});

const workbook = WORKBOOK_SCHEMA.parse(
  JSON.parse(readFileSync(path.join(ROOT, 'infra/workbook.json'), 'utf8')),
);
const queries = new Map(
  workbook.items.filter((i) => i.type === 3).map((i) => [i.name, QUERY_ITEM.parse(i.content)] as const),
);

/** Panel -> telemetry it claims to show. */
const PANELS: Record<string, { metrics: string[]; events: string[] }> = {
  'intensity-per-region': { metrics: [METRIC.carbonIntensity], events: [EVENT.retrainRun] },
  'training-windows': { metrics: [METRIC.carbonIntensity], events: [EVENT.retrainRun] },
  'sci-per-stage': { metrics: [METRIC.sci], events: [] },
  'sci-per-run': { metrics: [METRIC.sci, METRIC.energyKwh], events: [] },
  'accuracy-per-batch': { metrics: [METRIC.accuracy], events: [] },
  batches: { metrics: [METRIC.accuracy], events: [EVENT.retrainDecision] },
  retrains: { metrics: [], events: [EVENT.retrainDecision] },
  promotions: { metrics: [], events: [EVENT.modelPromoted] },
  'quarantined-batches': { metrics: [], events: [EVENT.batchQuarantined] },
  'sci-increase-check': { metrics: [METRIC.sci], events: [] },
};

/** Quotes and brackets balance outside string literals: catches a truncated or mangled query. */
function balanced(kql: string): boolean {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  let quote: string | null = null;
  for (const line of kql.split('\n')) {
    const code: string = quote === null ? line.replace(/^\s*\/\/.*$/, '') : line;
    for (let i = 0; i < code.length; i++) {
      const c: string = code[i];
      if (quote) {
        if (c === '\\') i++;
        else if (c === quote) quote = null;
      } else if (c === '"' || c === "'") quote = c;
      else if ('([{'.includes(c)) stack.push(c);
      else if (c in pairs && stack.pop() !== pairs[c]) return false;
    }
  }
  return quote === null && stack.length === 0;
}

describe('infra/workbook.json', () => {
  it('has a time-range parameter and every panel the brief asks for', () => {
    const parameters = workbook.items.find((i) => i.type === 9);
    expect(JSON.stringify(parameters?.content)).toContain('"name":"TimeRange"');
    expect([...queries.keys()].sort()).toEqual(Object.keys(PANELS).sort());
    expect(queries.get('intensity-per-region')?.visualization).toBe('timechart');
    expect(queries.get('sci-per-stage')?.visualization).toBe('timechart');
  });

  it.each(Object.entries(PANELS))('%s queries the telemetry it claims, where it lands', (name, claims) => {
    const query = queries.get(name)?.query ?? '';
    for (const metric of claims.metrics) {
      expect(query).toContain(`name == "${metric}"`);
      expect(query).toContain('customMetrics');
      // Histograms are aggregated per export interval: a plain `value` would be a sum, not a reading.
      expect(query).toMatch(/valueSum/);
    }
    for (const event of claims.events) {
      expect(query).toContain(`name == "${event}"`);
      expect(query).toMatch(/union dependencies, requests/);
    }
    expect(query).not.toContain('customEvents');
    expect(balanced(query)).toBe(true);
    if (name !== 'sci-increase-check') expect(query).toContain('{TimeRange}');
  });
});

describe('infra/alerts/sciIncrease.kql', () => {
  const kql = readFileSync(path.join(ROOT, 'infra/alerts/sciIncrease.kql'), 'utf8');

  it('compares the latest run per stage with 2 × the median of the previous 14 days', () => {
    expect(kql).toContain(`name == "${METRIC.sci}"`);
    expect(kql).toMatch(/let lookback = 14d;/);
    expect(kql).toMatch(/let factor = 2\.0;/);
    expect(kql).toMatch(/percentile\(sciGramsPerUnit, 50\)/);
    expect(kql).toMatch(/arg_max\(at, runId, region, sciGramsPerUnit\) by stage, functionalUnit/);
    expect(kql).toMatch(/sciGramsPerUnit > factor \* medianSci/);
    expect(balanced(kql)).toBe(true);
  });

  it('is the query the workbook check panel runs, apart from the freshness window', () => {
    const body = kql
      .split('\n')
      .filter((l) => !l.startsWith('//'))
      .join('\n')
      .replace('let freshness = 1h;', 'let freshness = 14d;')
      .trim();
    expect(queries.get('sci-increase-check')?.query).toContain(body);
  });
});
