import type { ReportData } from './reportData';

/**
 * The report's charts as plain chart.js configurations (JSON only: no functions), built in Node so
 * they can be unit-tested and embedded as data. The page script adds the few callbacks JSON can't
 * carry (time tick labels, tooltips) by looking at `xAxis`.
 *
 * Time axes are `linear` over epoch milliseconds with labels formatted by the page: chart.js's
 * `time` scale needs a date adapter, which is a separate package and would have to be inlined too.
 */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export type ChartKind = 'intensity' | 'accuracy' | 'emissions' | 'cumulative';

export interface ChartSpec {
  readonly id: string;
  readonly kind: ChartKind;
  readonly title: string;
  readonly caption: string;
  readonly xAxis: 'time' | 'category';
  readonly config: { [key: string]: Json };
}

/** A chart, or the note shown in its place when there is nothing to draw. */
export type ChartSection =
  | { readonly state: 'chart'; readonly spec: ChartSpec }
  | { readonly state: 'empty'; readonly kind: ChartKind; readonly title: string; readonly note: string };

/** Above this many points a region's line is averaged into buckets (a year is 8,760 hours). */
export const MAX_POINTS_PER_SERIES = 2000;

const PALETTE = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#1f78b4'];
export const DECISION_COLOURS: Record<ReportData['batches'][number]['decision'], string> = {
  none: '#9e9e9e',
  retrainWhenGreen: '#2e7d32',
  retrainNow: '#c62828',
};
const DECISION_LABELS: Record<ReportData['batches'][number]['decision'], string> = {
  none: 'no retrain',
  retrainWhenGreen: 'retrain when green',
  retrainNow: 'retrain now',
};

const TITLES: Record<ChartKind, string> = {
  intensity: 'Grid carbon intensity per region, with training runs',
  accuracy: 'Champion accuracy per batch, with the decision taken',
  emissions: 'Emissions per stage of each run (operational + embodied)',
  cumulative: 'Cumulative training emissions: policy used vs nightly retraining',
};

function colour(index: number): string {
  return PALETTE[index % PALETTE.length];
}

/** Hex colour with an alpha channel, for the lighter "embodied" half of a stage. */
function translucent(hex: string, alpha: number): string {
  return `${hex}${Math.round(alpha * 255)
    .toString(16)
    .padStart(2, '0')}`;
}

interface XY {
  x: number;
  y: number;
}

/** Bucket means, keeping the time of each bucket's first point: preserves the shape of the day. */
export function downsample(points: readonly XY[], maxPoints: number): XY[] {
  if (points.length <= maxPoints) return [...points];
  const size = Math.ceil(points.length / maxPoints);
  const out: XY[] = [];
  for (let i = 0; i < points.length; i += size) {
    const bucket = points.slice(i, i + size);
    out.push({ x: bucket[0].x, y: bucket.reduce((s, p) => s + p.y, 0) / bucket.length });
  }
  return out;
}

const HOUR_MS = 3_600_000;
const TICK_STEPS_HOURS = [1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720, 2160];
const TARGET_TICKS = 8;

/**
 * Epoch multiples of whole hours/days fall on UTC hour/midnight boundaries, so a step from this
 * ladder gives round labels ("03-08 00:00") instead of chart.js's arbitrary "nice" milliseconds.
 */
export function timeTickStepMs(spanMs: number): number {
  const hours = TICK_STEPS_HOURS.find((h) => spanMs / (h * HOUR_MS) <= TARGET_TICKS);
  return (hours ?? TICK_STEPS_HOURS[TICK_STEPS_HOURS.length - 1]) * HOUR_MS;
}

function timeScale(title: string, xs: readonly number[]): Json {
  // A loop, not Math.max(...xs): a year of hourly points for several regions overflows the stack.
  let min = Infinity;
  let max = -Infinity;
  for (const x of xs) {
    if (!Number.isFinite(x)) continue;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const span = max > min ? max - min : HOUR_MS;
  return {
    type: 'linear',
    bounds: 'data',
    ticks: { stepSize: timeTickStepMs(span) },
    title: { display: true, text: title },
  };
}

function valueScale(title: string, extra: { [key: string]: Json } = {}): Json {
  return { title: { display: true, text: title }, ...extra };
}

function baseOptions(scales: { [key: string]: Json }): { [key: string]: Json } {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: 'nearest', intersect: false },
    plugins: { legend: { position: 'bottom' } },
    scales,
  };
}

/** Intensity of `region` at `atMs` from the report's hourly points (the hour that covers it). */
function seriesValueAt(data: ReportData, region: string, atMs: number): number | null {
  const series = data.intensity.find((s) => s.region === region);
  if (!series) return null;
  let best: number | null = null;
  for (const p of series.points) {
    const ms = Date.parse(p.at);
    if (ms <= atMs && atMs < ms + 3_600_000) best = p.gramsPerKwh;
  }
  return best;
}

function intensityChart(data: ReportData): ChartSection {
  const withPoints = data.intensity.filter((s) => s.points.length > 0);
  if (withPoints.length === 0) {
    return {
      state: 'empty',
      kind: 'intensity',
      title: TITLES.intensity,
      note: 'No carbon intensity readings in this period.',
    };
  }
  let downsampled = false;
  const datasets: Json[] = withPoints.map((series, i) => {
    const raw = series.points
      .map((p) => ({ x: Date.parse(p.at), y: p.gramsPerKwh }))
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
      .sort((a, b) => a.x - b.x);
    const points = downsample(raw, MAX_POINTS_PER_SERIES);
    if (points.length < raw.length) downsampled = true;
    return {
      type: 'line',
      label: `${series.region} (${series.zone})`,
      data: points.map((p) => ({ x: p.x, y: Number(p.y.toFixed(2)) })),
      borderColor: colour(i),
      backgroundColor: colour(i),
      borderWidth: 1.5,
      pointRadius: 0,
      tension: 0,
    };
  });
  const markers: Json[] = [];
  for (const run of data.runs) {
    const atMs = Date.parse(run.startedAt);
    const y = run.gramsPerKwh ?? seriesValueAt(data, run.region, atMs);
    if (!Number.isFinite(atMs) || y === null) continue;
    markers.push({
      x: atMs,
      y: Number(y.toFixed(2)),
      note: `run ${run.runId}: ${run.region}, ${run.decision}, ${run.outcome}, ${y.toFixed(0)} g/kWh`,
    });
  }
  if (markers.length > 0) {
    datasets.push({
      type: 'scatter',
      label: 'training run (start, intensity seen)',
      data: markers,
      pointStyle: 'triangle',
      pointRadius: 8,
      pointHoverRadius: 10,
      borderColor: '#000000',
      backgroundColor: '#ffd600',
      borderWidth: 1.5,
    });
  }
  const runNote =
    data.runs.length === 0
      ? ' No training runs yet.'
      : ` Triangles mark the start of each training run at the intensity it saw.`;
  return {
    state: 'chart',
    spec: {
      id: 'chart-intensity',
      kind: 'intensity',
      title: TITLES.intensity,
      caption:
        `Hourly gCO2eq/kWh per region (time in UTC).${runNote}` +
        (downsampled ? ` Long series are averaged to at most ${MAX_POINTS_PER_SERIES} points.` : ''),
      xAxis: 'time',
      config: {
        type: 'line',
        data: { datasets },
        options: baseOptions({
          x: timeScale(
            'time (UTC)',
            withPoints.flatMap((series) => series.points.map((p) => Date.parse(p.at))),
          ),
          y: valueScale('gCO2eq/kWh'),
        }),
      },
    },
  };
}

function accuracyChart(data: ReportData): ChartSection {
  const batches = [...data.batches].sort((a, b) => Date.parse(a.evaluatedAt) - Date.parse(b.evaluatedAt));
  if (batches.length === 0) {
    return { state: 'empty', kind: 'accuracy', title: TITLES.accuracy, note: 'No batches evaluated yet.' };
  }
  const percent = (a: number | null): Json => (a === null ? null : Number((a * 100).toFixed(3)));
  const datasets: Json[] = [
    {
      label: 'accuracy',
      data: batches.map((b) => percent(b.accuracy)),
      borderColor: '#607d8b',
      backgroundColor: '#607d8b',
      borderWidth: 1.5,
      pointRadius: 0,
      spanGaps: false,
    },
  ];
  for (const decision of ['none', 'retrainWhenGreen', 'retrainNow'] as const) {
    if (!batches.some((b) => b.decision === decision)) continue;
    datasets.push({
      label: DECISION_LABELS[decision],
      data: batches.map((b) => (b.decision === decision ? percent(b.accuracy) : null)),
      showLine: false,
      pointRadius: 6,
      pointHoverRadius: 8,
      borderColor: DECISION_COLOURS[decision],
      backgroundColor: DECISION_COLOURS[decision],
    });
  }
  return {
    state: 'chart',
    spec: {
      id: 'chart-accuracy',
      kind: 'accuracy',
      title: TITLES.accuracy,
      caption:
        'Accuracy of the champion on each labelled batch, in upload order; the point colour is the ' +
        'decision taken for that batch (see the batch table for the reasons). Gaps are batches that ' +
        'could not be scored.',
      xAxis: 'category',
      config: {
        type: 'line',
        data: { labels: batches.map((b) => b.batchName), datasets },
        options: baseOptions({ x: valueScale('batch'), y: valueScale('accuracy (%)') }),
      },
    },
  };
}

function emissionsChart(data: ReportData): ChartSection {
  const runs = [...data.runs].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  if (runs.length === 0 || runs.every((r) => r.stages.length === 0)) {
    return { state: 'empty', kind: 'emissions', title: TITLES.emissions, note: 'No runs yet.' };
  }
  const stageNames: string[] = [];
  for (const run of runs)
    for (const s of run.stages) if (!stageNames.includes(s.stage)) stageNames.push(s.stage);
  const sum = (
    run: (typeof runs)[number],
    stage: string,
    key: 'operationalGrams' | 'embodiedGrams',
  ): number =>
    Number(
      run.stages
        .filter((s) => s.stage === stage)
        .reduce((total, s) => total + s[key], 0)
        .toPrecision(6),
    );
  const datasets: Json[] = stageNames.flatMap((stage, i) => [
    {
      label: `${stage} operational`,
      data: runs.map((r) => sum(r, stage, 'operationalGrams')),
      backgroundColor: colour(i),
      stack: 'grams',
    },
    {
      label: `${stage} embodied`,
      data: runs.map((r) => sum(r, stage, 'embodiedGrams')),
      backgroundColor: translucent(colour(i), 0.45),
      stack: 'grams',
    },
  ]);
  return {
    state: 'chart',
    spec: {
      id: 'chart-emissions',
      kind: 'emissions',
      title: TITLES.emissions,
      caption:
        'gCO2eq per run, stacked by stage: solid = operational (energy × grid intensity), light = ' +
        'embodied (hardware share for the time reserved).',
      xAxis: 'category',
      config: {
        type: 'bar',
        data: { labels: runs.map((r) => r.runId), datasets },
        options: baseOptions({
          x: { stacked: true, title: { display: true, text: 'run' } },
          y: valueScale('gCO2eq', { stacked: true }),
        }),
      },
    },
  };
}

function cumulativeChart(data: ReportData): ChartSection {
  const series = data.cumulative.filter((c) => c.points.length > 0);
  const hasGrowth = series.some((c) => c.points.some((p) => p.grams > 0));
  if (series.length === 0 || !hasGrowth) {
    return {
      state: 'empty',
      kind: 'cumulative',
      title: TITLES.cumulative,
      note: 'No runs yet: nothing to compare against nightly retraining.',
    };
  }
  const datasets: Json[] = series.map((c, i) => {
    const isBaseline = c.policy === 'nightly';
    const hue = isBaseline ? '#757575' : colour(i);
    return {
      label: c.policy,
      data: c.points
        .map((p) => ({ x: Date.parse(p.at), y: Number(p.grams.toPrecision(6)) }))
        .filter((p) => Number.isFinite(p.x)),
      stepped: 'after',
      borderColor: hue,
      backgroundColor: hue,
      borderDash: isBaseline ? [6, 4] : [],
      borderWidth: 2,
      pointRadius: 0,
    };
  });
  const notes = series.filter((c) => c.description).map((c) => `${c.policy}: ${c.description}`);
  return {
    state: 'chart',
    spec: {
      id: 'chart-cumulative',
      kind: 'cumulative',
      title: TITLES.cumulative,
      caption: ['Cumulative gCO2eq of the training stage over the period.', ...notes].join(' '),
      xAxis: 'time',
      config: {
        type: 'line',
        data: { datasets },
        options: baseOptions({
          x: timeScale(
            'time (UTC)',
            series.flatMap((c) => c.points.map((p) => Date.parse(p.at))),
          ),
          y: valueScale('cumulative gCO2eq'),
        }),
      },
    },
  };
}

/** The four report charts in display order; empty ones come back as notes. */
export function buildChartSections(data: ReportData): ChartSection[] {
  return [intensityChart(data), accuracyChart(data), emissionsChart(data), cumulativeChart(data)];
}
