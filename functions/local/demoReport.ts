import path from 'node:path';
import type { PipelineContext } from '../../shared/pipeline/context';
import type { RecordingTelemetry } from '../../shared/telemetry/telemetry';
import { METRIC } from '../../shared/telemetry/telemetry';
import { collectReportData } from '../../shared/report/collectReportData';
import { storageReportSources } from '../../shared/report/storageSources';
import { writeReport } from '../../shared/report/renderReport';
import type { ReportData } from '../../shared/report/reportData';
import { TABLES } from '../composition';
import { modelApiCredentials } from '../../shared/modelApi/credentials';
import { annualAverageFor } from '../../shared/carbon/annualAverage';
import { resolveRegion } from '../../shared/carbon/provider';
import {
  type CpuFootprint,
  type PollerFootprint,
  cpuFootprint,
  pollerFootprint,
} from '../../shared/sci/pollerFootprint';
import { coefficientsFromSettings } from '../../shared/sci/sci';
import { formatServing, servingSummary, type ServingSummary } from '../../shared/report/servingPeriods';
import { TRAINING_STAGE } from '../../shared/report/cumulativeEmissions';
import type { InvoiceRow } from '../../shared/invoices/schema';
import { deployedPipelines } from '../../shared/pipelines/deployedPipelines';
import type { PipelineDefinition } from '../../shared/pipelines/manifest';
import type { RunRecord } from '../../shared/sci/runRecords';
import { predictedLabel, predictionInput } from './demoModels';

/**
 * The end of `npm start`: the HTML report (a section per model) and a plain-text summary whose
 * every figure comes from the stored records (each model's evaluations and runs with per-stage
 * footprints) and the telemetry the run emitted, so it is traceable to measured CPU time.
 */
export interface ModelSummary {
  model: string;
  label: string;
  batches: { batch: string; accuracy: number | null; decision: string; action: string }[];
  runs: {
    runId: string;
    region: string | null;
    startedAt: string;
    outcome: string;
    challengerAccuracy: number | null;
    championAccuracy: number | null;
    energyKwh: number;
    totalGrams: number;
    stages: {
      stage: string;
      region: string;
      cpuSeconds: number | null;
      energyKwh: number;
      gramsPerKwh: number;
      totalGrams: number;
      sciGramsPerUnit: number | null;
      unit: string;
    }[];
  }[];
  totals: {
    trainingRuns: number;
    promoted: number;
    totalGrams: number;
    nightlyGrams: number | null;
    trainingCpuSeconds: number;
  };
  /** One /predict on the model's serving API: the label it predicts for a generated invoice. */
  prediction: { endpoint: string; value: string; probability: number } | null;
  serving: ServingSummary;
}

export interface DemoSummary {
  scenario: string;
  wallSeconds: number;
  models: ModelSummary[];
  totals: {
    trainingRuns: number;
    promoted: number;
    totalGrams: number;
    nightlyGrams: number | null;
    schedulerCpuSeconds: number;
    poller: PollerFootprint;
    /** The batch evaluator's own CPU and emissions (one parse serves every model), beside the training it schedules. */
    evaluator: CpuFootprint;
    trainingCpuSeconds: number;
  };
}

const pct = (v: number | null) => (v === null ? '   -  ' : `${(v * 100).toFixed(1).padStart(5)}%`);
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

export async function buildDemoReport(
  ctx: PipelineContext,
  telemetry: RecordingTelemetry,
  options: {
    outDir: string;
    scenario: string;
    wallSeconds: number;
    fromIso: string;
    /** A generated invoice each serving API is asked to predict. */
    sampleRow: InvoiceRow;
  },
): Promise<{ reportPath: string; summaryText: string; summary: DemoSummary }> {
  const toIso = new Date(ctx.now().getTime() + 3_600_000).toISOString();
  const sources = storageReportSources(ctx.storage, {
    evaluationsTable: TABLES.evaluations,
    runTables: { runs: TABLES.runs, daily: TABLES.daily },
    fallbackProvider: ctx.carbon,
  });
  const pipelines = deployedPipelines(ctx.settings).pipelines;
  const sections: ReportData[] = [];
  const models: ModelSummary[] = [];
  const evaluatorCpuByBatch = new Map<string, number>();
  for (const pipeline of pipelines) {
    const model = pipeline.name;
    const evaluations = await ctx.evaluations.list(model);
    // One parse scores every model: a batch's evaluator CPU is counted once, not once per model.
    for (const e of evaluations)
      evaluatorCpuByBatch.set(e.batchName, Math.max(evaluatorCpuByBatch.get(e.batchName) ?? 0, e.cpuSeconds));
    const runs = await ctx.runRecords.listRuns(model);
    const data = await collectReportData(sources, {
      modelName: model,
      range: { fromIso: options.fromIso, toIso },
      homeRegion: ctx.settings.HOME_REGION,
      regions: pipeline.regions.allowed,
      policyName: pipeline.regions.allowed.length > 1 ? 'green-spatial' : 'green',
      generatedAt: new Date().toISOString(),
      title: `green-e2e-ml demo: ${options.scenario}`,
      provenance: [
        `npm start demo, ${options.scenario} scenario, virtual time ${options.fromIso.slice(0, 10)} to ${toIso.slice(0, 10)}`,
        `carbon: ${ctx.carbon.name}, ${ctx.settings.CARBON_TRACE_YEAR} trace, ${ctx.settings.CARBON_TRACE_FORECAST} forecast`,
        'containers: local processes; CPU time and peak memory measured per process (resource source local-process)',
      ],
    });
    const serving = await servingSummary(ctx, model);
    sections.push({ ...data, serving });
    models.push({
      model,
      label: pipeline.label,
      batches: evaluations.map((e) => ({
        batch: e.batchName,
        accuracy: e.accuracy,
        decision: e.decision.kind,
        action: e.action,
      })),
      runs: runs.map(runSummary),
      totals: {
        trainingRuns: runs.length,
        promoted: runs.filter((r) => r.outcome === 'promoted').length,
        totalGrams: sum(runs.map((r) => r.totals.totalGrams)),
        nightlyGrams: data.cumulative.find((c) => c.policy === 'nightly')?.points.at(-1)?.grams ?? null,
        trainingCpuSeconds: sum(
          runs
            .flatMap((r) => r.stages)
            .filter((st) => st.stage === TRAINING_STAGE)
            .map((st) => st.energy.utilisation * st.energy.vcpuHours * 3600),
        ),
      },
      prediction: await predictOnce(ctx, pipeline, options.sampleRow),
      serving,
    });
  }
  const reportPath = await writeReport(sections, path.join(options.outDir, 'report.html'));

  const cpuOf = (fn?: string) =>
    telemetry.records
      .filter(
        (r) =>
          r.kind === 'metric' &&
          r.name === METRIC.functionCpuSeconds &&
          (fn === undefined || r.attributes.function === fn),
      )
      .map((r) => r.value ?? 0);
  const home = resolveRegion(ctx.settings.HOME_REGION);
  const homeGramsPerKwh = annualAverageFor(home.zone, home).gramsPerKwh;
  const coefficients = coefficientsFromSettings(ctx.settings);
  const totalGrams = sum(models.map((m) => m.totals.totalGrams));
  const nightlies = models.map((m) => m.totals.nightlyGrams).filter((g): g is number => g !== null);
  const nightlyGrams = nightlies.length > 0 ? sum(nightlies) : null;
  const summary: DemoSummary = {
    scenario: options.scenario,
    wallSeconds: options.wallSeconds,
    models,
    totals: {
      trainingRuns: sum(models.map((m) => m.totals.trainingRuns)),
      promoted: sum(models.map((m) => m.totals.promoted)),
      totalGrams,
      nightlyGrams,
      schedulerCpuSeconds: sum(cpuOf()),
      poller: pollerFootprint({
        cpuSecondsPerInvocation: cpuOf('carbonPoller'),
        coefficients,
        gramsPerKwh: homeGramsPerKwh,
        policyGrams: totalGrams,
        nightlyGrams,
      }),
      evaluator: cpuFootprint({
        cpuSecondsPerInvocation: [...evaluatorCpuByBatch.values()],
        coefficients,
        gramsPerKwh: homeGramsPerKwh,
      }),
      trainingCpuSeconds: sum(models.map((m) => m.totals.trainingCpuSeconds)),
    },
  };
  return { reportPath, summaryText: formatSummary(summary), summary };
}

function runSummary(r: RunRecord): ModelSummary['runs'][number] {
  return {
    runId: r.runId,
    region: r.region,
    startedAt: r.startedAt,
    outcome: r.outcome,
    challengerAccuracy: r.challengerAccuracy,
    championAccuracy: r.championAccuracy,
    energyKwh: r.totals.energyKwh,
    totalGrams: r.totals.totalGrams,
    stages: r.stages.map((s) => ({
      stage: s.stage,
      region: s.region,
      cpuSeconds: s.energy.utilisation * s.energy.vcpuHours * 3600,
      energyKwh: s.energy.energyKwh,
      gramsPerKwh: s.intensity.gramsPerKwh,
      totalGrams: s.totalGrams,
      sciGramsPerUnit: s.sciGramsPerUnit,
      unit: s.functionalUnit.kind,
    })),
  };
}

/** The authenticated /predict of the model's serving API, with the key this run gave the APIs it launched. */
async function predictOnce(
  ctx: PipelineContext,
  pipeline: PipelineDefinition,
  row: InvoiceRow,
): Promise<ModelSummary['prediction']> {
  const serving = await ctx.serving.get(pipeline.name);
  if (!serving?.endpoint) return null;
  try {
    const response = await fetch(`${serving.endpoint}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...modelApiCredentials(ctx.launcher.kind).headers },
      body: JSON.stringify(predictionInput(pipeline, row)),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await response.json()) as { predictions?: Record<string, unknown>[] };
    const predicted = predictedLabel(pipeline, body.predictions?.[0]);
    return predicted ? { endpoint: serving.endpoint, ...predicted } : null;
  } catch {
    return null;
  }
}

function formatModel(m: ModelSummary): string[] {
  const lines: string[] = [];
  lines.push(`-- model ${m.model} (label ${m.label}) --`, '');
  lines.push('Decisions per batch');
  lines.push('  batch                          accuracy  decision           action');
  for (const b of m.batches) {
    lines.push(`  ${b.batch.padEnd(30)} ${pct(b.accuracy)}   ${b.decision.padEnd(18)} ${b.action}`);
  }
  if (m.batches.length === 0) lines.push('  (no batch evaluated)');
  lines.push('', 'Retrains');
  lines.push('  started (UTC)     region          outcome          challenger champion   energy kWh   gCO2e');
  for (const r of m.runs) {
    lines.push(
      `  ${r.startedAt.slice(0, 16).replace('T', ' ')}  ${(r.region ?? '-').padEnd(15)} ${r.outcome.padEnd(16)} ${pct(r.challengerAccuracy)}    ${pct(r.championAccuracy)}   ${r.energyKwh.toExponential(2).padStart(9)}  ${r.totalGrams.toPrecision(3).padStart(8)}`,
    );
  }
  if (m.runs.length === 0) lines.push('  (no retrain)');
  lines.push('', 'Per-stage SCI');
  lines.push('  run      stage    region          CPU s   energy kWh  gCO2/kWh   gCO2e    SCI (per unit)');
  for (const r of m.runs) {
    for (const st of r.stages) {
      lines.push(
        `  ${r.runId.slice(0, 8)} ${st.stage.padEnd(8)} ${st.region.padEnd(15)} ${(st.cpuSeconds ?? 0).toFixed(1).padStart(6)}  ${st.energyKwh.toExponential(2).padStart(10)}  ${st.gramsPerKwh.toFixed(0).padStart(8)}  ${st.totalGrams.toFixed(4).padStart(7)}   ${st.sciGramsPerUnit === null ? '-' : st.sciGramsPerUnit.toFixed(4)} g/${st.unit}`,
      );
    }
  }
  lines.push('');
  lines.push(
    `Training runs: ${m.totals.trainingRuns}, promoted: ${m.totals.promoted}; emissions of its runs: ${m.totals.totalGrams.toPrecision(4)} gCO2e` +
      (m.totals.nightlyGrams === null
        ? ''
        : `; nightly retraining in the home region: ${m.totals.nightlyGrams.toPrecision(4)} gCO2e`),
  );
  if (m.prediction) {
    lines.push(
      `/predict on its serving model API (${m.prediction.endpoint}): ${m.label} ${m.prediction.value} (p=${m.prediction.probability.toFixed(2)})`,
    );
  }
  lines.push(
    '',
    ...(m.serving.periods.length > 0 ? formatServing(m.serving) : ['Serving: no model API yet']),
    '',
  );
  return lines;
}

function formatSummary(s: DemoSummary): string {
  const lines: string[] = [];
  lines.push(
    `== green-e2e-ml demo summary (${s.scenario}, ${s.models.length} model(s): ${s.models.map((m) => m.model).join(', ')}, ${s.wallSeconds.toFixed(0)} s) ==`,
    '',
  );
  for (const m of s.models) lines.push(...formatModel(m));
  lines.push('-- all models --');
  lines.push(`Training runs: ${s.totals.trainingRuns}, promoted: ${s.totals.promoted}`);
  lines.push(`Emissions of all runs (per-retrain stages): ${s.totals.totalGrams.toPrecision(4)} gCO2e`);
  if (s.totals.nightlyGrams !== null) {
    lines.push(
      `Nightly retraining of every model in the home region over the same period (same measured energy per run): ${s.totals.nightlyGrams.toPrecision(4)} gCO2e`,
    );
  }
  lines.push(
    `Scheduler's own CPU (poller, evaluator, activities): ${s.totals.schedulerCpuSeconds.toFixed(2)} s`,
  );
  const e = s.totals.evaluator;
  lines.push(
    `Beside the training it schedules (${s.totals.trainingCpuSeconds.toFixed(2)} CPU s): evaluator ${e.invocations} batches, ` +
      `${e.cpuSeconds.toFixed(2)} CPU s, ${e.grams.toPrecision(3)} gCO2e; poller below`,
  );
  const p = s.totals.poller;
  lines.push(
    `Carbon poller: ${p.invocations} polls, ${p.cpuSeconds.toFixed(2)} CPU s, ${p.grams.toPrecision(3)} gCO2e at ${p.gramsPerKwh.toFixed(0)} g/kWh` +
      (p.shareOfSaving === null
        ? ''
        : ` = ${(p.shareOfSaving * 100).toPrecision(3)} % of what the policy saved against nightly (${(p.savingGrams ?? 0).toPrecision(4)} g)`),
  );
  return lines.join('\n');
}
