import path from 'node:path';
import type { PipelineContext } from '../../shared/pipeline/context';
import type { RecordingTelemetry } from '../../shared/telemetry/telemetry';
import { METRIC } from '../../shared/telemetry/telemetry';
import { collectReportData } from '../../shared/report/collectReportData';
import { storageReportSources } from '../../shared/report/storageSources';
import { writeReport } from '../../shared/report/renderReport';
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

/**
 * The end of `npm start`: the HTML report and a plain-text summary whose every figure comes from
 * the stored records (evaluations, runs with per-stage footprints) and the telemetry the run
 * emitted, so it is traceable to measured CPU time.
 */
export interface DemoSummary {
  scenario: string;
  wallSeconds: number;
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
    schedulerCpuSeconds: number;
    poller: PollerFootprint;
    /** The batch evaluator's own CPU and emissions, beside the training it schedules (issue 14). */
    evaluator: CpuFootprint;
    trainingCpuSeconds: number;
  };
  prediction: { endpoint: string; vatRatePercent: number; probability: number } | null;
  serving: ServingSummary;
}

const pct = (v: number | null) => (v === null ? '   -  ' : `${(v * 100).toFixed(1).padStart(5)}%`);

export async function buildDemoReport(
  ctx: PipelineContext,
  telemetry: RecordingTelemetry,
  options: { outDir: string; scenario: string; wallSeconds: number; fromIso: string },
): Promise<{ reportPath: string; summaryText: string; summary: DemoSummary }> {
  const model = ctx.settings.MODEL_NAME;
  const evaluations = await ctx.evaluations.list(model);
  const runs = await ctx.runRecords.listRuns(model);
  const toIso = new Date(ctx.now().getTime() + 3_600_000).toISOString();
  const data = await collectReportData(
    storageReportSources(ctx.storage, {
      evaluationsTable: TABLES.evaluations,
      runTables: { runs: TABLES.runs, daily: TABLES.daily },
      fallbackProvider: ctx.carbon,
    }),
    {
      modelName: model,
      range: { fromIso: options.fromIso, toIso },
      homeRegion: ctx.settings.HOME_REGION,
      regions: ctx.settings.ALLOWED_REGIONS,
      policyName: ctx.settings.ALLOWED_REGIONS.length > 1 ? 'green-spatial' : 'green',
      generatedAt: new Date().toISOString(),
      title: `green-e2e-ml demo: ${options.scenario}`,
      provenance: [
        `npm start demo, ${options.scenario} scenario, virtual time ${options.fromIso.slice(0, 10)} to ${toIso.slice(0, 10)}`,
        `carbon: ${ctx.carbon.name}, ${ctx.settings.CARBON_TRACE_YEAR} trace, ${ctx.settings.CARBON_TRACE_FORECAST} forecast`,
        'containers: local processes; CPU time and peak memory measured per process (resource source local-process)',
      ],
    },
  );
  const servingPeriods = await servingSummary(ctx);
  const reportPath = await writeReport(
    { ...data, serving: servingPeriods },
    path.join(options.outDir, 'report.html'),
  );

  const serving = await ctx.serving.get(model);
  let prediction: DemoSummary['prediction'] = null;
  if (serving?.endpoint) {
    try {
      const response = await fetch(`${serving.endpoint}/predict`, {
        method: 'POST',
        // The authenticated path, with the key this run gave the model API it launched.
        headers: { 'content-type': 'application/json', ...modelApiCredentials(ctx.launcher.kind).headers },
        body: JSON.stringify({
          invoiceId: 'demo-1',
          issuedAt: ctx.now().toISOString().slice(0, 10),
          supplierId: 'S0001',
          supplierCountry: 'FI',
          receiverId: 'R001',
          accountCode: '4000',
          currency: 'EUR',
          amountNet: 1234.5,
          lineCount: 3,
          reverseCharge: false,
        }),
      });
      const body = (await response.json()) as {
        predictions?: { vatRatePercent: number; probability: number }[];
      };
      const first = body.predictions?.[0];
      if (first) prediction = { endpoint: serving.endpoint, ...first };
    } catch {
      prediction = null;
    }
  }

  const schedulerCpuSeconds = telemetry.records
    .filter((r) => r.kind === 'metric' && r.name === METRIC.functionCpuSeconds)
    .reduce((sum, r) => sum + (r.value ?? 0), 0);
  const nightly = data.cumulative.find((c) => c.policy === 'nightly');
  const home = resolveRegion(ctx.settings.HOME_REGION);
  const poller = pollerFootprint({
    cpuSecondsPerInvocation: telemetry.records
      .filter(
        (r) =>
          r.kind === 'metric' &&
          r.name === METRIC.functionCpuSeconds &&
          r.attributes.function === 'carbonPoller',
      )
      .map((r) => r.value ?? 0),
    coefficients: coefficientsFromSettings(ctx.settings),
    gramsPerKwh: annualAverageFor(home.zone, home).gramsPerKwh,
    policyGrams: runs.reduce((sum, r) => sum + r.totals.totalGrams, 0),
    nightlyGrams: nightly?.points.at(-1)?.grams ?? null,
  });
  const evaluator = cpuFootprint({
    cpuSecondsPerInvocation: evaluations.map((e) => e.cpuSeconds),
    coefficients: coefficientsFromSettings(ctx.settings),
    gramsPerKwh: annualAverageFor(home.zone, home).gramsPerKwh,
  });
  const summary: DemoSummary = {
    scenario: options.scenario,
    wallSeconds: options.wallSeconds,
    batches: evaluations.map((e) => ({
      batch: e.batchName,
      accuracy: e.accuracy,
      decision: e.decision.kind,
      action: e.action,
    })),
    runs: runs.map((r) => ({
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
    })),
    totals: {
      trainingRuns: runs.length,
      promoted: runs.filter((r) => r.outcome === 'promoted').length,
      totalGrams: runs.reduce((sum, r) => sum + r.totals.totalGrams, 0),
      nightlyGrams: nightly?.points.at(-1)?.grams ?? null,
      schedulerCpuSeconds,
      poller,
      evaluator,
      trainingCpuSeconds: runs
        .flatMap((r) => r.stages)
        .filter((st) => st.stage === TRAINING_STAGE)
        .reduce((sum, st) => sum + st.energy.utilisation * st.energy.vcpuHours * 3600, 0),
    },
    prediction,
    serving: servingPeriods,
  };
  return { reportPath, summaryText: formatSummary(summary), summary };
}

function formatSummary(s: DemoSummary): string {
  const lines: string[] = [];
  lines.push(`== green-e2e-ml demo summary (${s.scenario}, ${s.wallSeconds.toFixed(0)} s) ==`, '');
  lines.push('Decisions per batch');
  lines.push('  batch                          accuracy  decision           action');
  for (const b of s.batches) {
    lines.push(`  ${b.batch.padEnd(30)} ${pct(b.accuracy)}   ${b.decision.padEnd(18)} ${b.action}`);
  }
  lines.push('', 'Retrains');
  lines.push('  started (UTC)     region          outcome          challenger champion   energy kWh   gCO2e');
  for (const r of s.runs) {
    lines.push(
      `  ${r.startedAt.slice(0, 16).replace('T', ' ')}  ${(r.region ?? '-').padEnd(15)} ${r.outcome.padEnd(16)} ${pct(r.challengerAccuracy)}    ${pct(r.championAccuracy)}   ${r.energyKwh.toExponential(2).padStart(9)}  ${r.totalGrams.toPrecision(3).padStart(8)}`,
    );
  }
  lines.push('', 'Per-stage SCI');
  lines.push('  run      stage    region          CPU s   energy kWh  gCO2/kWh   gCO2e    SCI (per unit)');
  for (const r of s.runs) {
    for (const st of r.stages) {
      lines.push(
        `  ${r.runId.slice(0, 8)} ${st.stage.padEnd(8)} ${st.region.padEnd(15)} ${(st.cpuSeconds ?? 0).toFixed(1).padStart(6)}  ${st.energyKwh.toExponential(2).padStart(10)}  ${st.gramsPerKwh.toFixed(0).padStart(8)}  ${st.totalGrams.toFixed(4).padStart(7)}   ${st.sciGramsPerUnit === null ? '-' : st.sciGramsPerUnit.toFixed(4)} g/${st.unit}`,
      );
    }
  }
  lines.push('');
  lines.push(`Training runs: ${s.totals.trainingRuns}, promoted: ${s.totals.promoted}`);
  lines.push(`Emissions of all runs (per-retrain stages): ${s.totals.totalGrams.toPrecision(4)} gCO2e`);
  if (s.totals.nightlyGrams !== null) {
    lines.push(
      `Nightly retraining in the home region over the same period (same measured energy per run): ${s.totals.nightlyGrams.toPrecision(4)} gCO2e`,
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
  if (s.prediction) {
    lines.push(
      `/predict on the serving model API (${s.prediction.endpoint}): VAT ${s.prediction.vatRatePercent} % (p=${s.prediction.probability.toFixed(2)})`,
    );
  }
  lines.push('', ...formatServing(s.serving));
  return lines.join('\n');
}
