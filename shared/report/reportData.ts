import type { ServingSummary } from './servingPeriods';
/**
 * Everything the HTML report shows, as plain data with units in the names. The local driver
 * (`npm start`), the `report` CLI and the replay benchmark fill it from run records, evaluation
 * records and carbon readings; the renderer never reads storage itself.
 */
export interface ReportData {
  title: string;
  generatedAt: string;
  modelName: string;
  /** What produced the numbers, e.g. "npm start demo, vat-reform, trace provider (realistic forecast)". */
  provenance: string[];
  intensity: {
    region: string;
    zone: string;
    /** Hourly points: ISO start and gCO2eq/kWh. */
    points: { at: string; gramsPerKwh: number }[];
    /** Optional: where the points came from, e.g. "cached readings (trace:em_NL_2022)". */
    origin?: string;
  }[];
  runs: {
    runId: string;
    region: string;
    startedAt: string;
    endedAt: string;
    outcome: string;
    decision: 'retrainWhenGreen' | 'retrainNow';
    reason: string;
    /** Average intensity the training saw. */
    gramsPerKwh: number | null;
    challengerAccuracy: number | null;
    championAccuracy: number | null;
    stages: {
      stage: string;
      region: string;
      energyKwh: number;
      operationalGrams: number;
      embodiedGrams: number;
      totalGrams: number;
      /** null when R's count is 0 (a model API that served nothing): SCI is undefined, not C. */
      sciGramsPerUnit: number | null;
      /** Optional: intensity used for the stage; the renderer falls back to operational / energy. */
      gramsPerKwh?: number | null;
      functionalUnit: string;
      cpuSeconds: number | null;
      resourceSource: string;
      intensitySource: string;
    }[];
  }[];
  batches: {
    batchName: string;
    evaluatedAt: string;
    accuracy: number | null;
    rowsAccepted: number;
    rowsRejected: number;
    decision: 'none' | 'retrainWhenGreen' | 'retrainNow';
    reason: string;
  }[];
  /** Cumulative emissions over time of the policy used versus the nightly baseline, in gCO2eq. */
  cumulative: {
    policy: string;
    points: { at: string; grams: number }[];
    /** Optional: how the series was computed (shown under the chart). */
    description?: string;
  }[];
  /** Free-form key figures shown as a table at the top (label -> value with unit). */
  keyFigures: { label: string; value: string }[];
  /** Optional: serving emissions per plan against always-on (from the recorded serve stages). */
  serving?: ServingSummary;
}
