import { ValidationError } from '../../shared/errors';
import { generateWeek } from '../../shared/invoices/generator';
import { trainFromRows } from '../../shared/model/training';
import { energyOfReservation, type EnergyCoefficients } from '../../shared/sci/energy';

/**
 * Training cost of a retrain, FITTED to training runs measured on this machine in the same process:
 * cpuSeconds = a + b·rows and wallSeconds = a' + b'·rows (least squares over a few sizes), then
 * scaled to the production job (rows per week × window weeks, production tree count; CPU time is
 * assumed proportional to the tree count, which holds for the tree-growing part that dominates).
 */
export interface LineFit {
  readonly intercept: number;
  readonly slope: number;
  /** Coefficient of determination of the fit over the samples. */
  readonly r2: number;
}

export interface CostSample {
  readonly rows: number;
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
}

export interface ProductionJob {
  /** Training rows per weekly batch in production (the replay trains smaller models for speed). */
  readonly rowsPerWeek: number;
  readonly trees: number;
  readonly vcpus: number;
  readonly memoryGb: number;
}

export interface TrainingCostModel {
  readonly samples: readonly CostSample[];
  /** Trees grown in the measured runs. */
  readonly measuredTrees: number;
  readonly cpu: LineFit;
  readonly wall: LineFit;
  readonly production: ProductionJob;
  readonly coefficients: EnergyCoefficients;
}

export interface RetrainCost {
  readonly rows: number;
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
  readonly energyKwh: number;
}

export const DEFAULT_PRODUCTION_JOB: ProductionJob = {
  rowsPerWeek: 25_000,
  trees: 50,
  vcpus: 2,
  memoryGb: 4,
};

/** Ordinary least squares y = intercept + slope·x. */
export function fitLine(xs: readonly number[], ys: readonly number[]): LineFit {
  if (xs.length !== ys.length || xs.length < 2)
    throw new ValidationError(`a line fit needs at least two (x, y) pairs, got ${xs.length}/${ys.length}`);
  const n = xs.length;
  const meanX = xs.reduce((s, x) => s + x, 0) / n;
  const meanY = ys.reduce((s, y) => s + y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - meanX) ** 2;
    sxy += (xs[i] - meanX) * (ys[i] - meanY);
    syy += (ys[i] - meanY) ** 2;
  }
  if (sxx === 0) throw new ValidationError('a line fit needs at least two distinct x values');
  const slope = sxy / sxx;
  const intercept = meanY - slope * meanX;
  let residual = 0;
  for (let i = 0; i < n; i++) residual += (ys[i] - intercept - slope * xs[i]) ** 2;
  return { intercept, slope, r2: syy === 0 ? 1 : 1 - residual / syy };
}

/** Trains on generated `stable` rows at each size and measures process CPU (all threads) and wall time. */
export async function measureTrainingCost(options: {
  sizes: readonly number[];
  trees: number;
  seed: number;
  onSample?: (sample: CostSample) => void;
}): Promise<CostSample[]> {
  const samples: CostSample[] = [];
  for (const rows of options.sizes) {
    // holdoutFraction 0: every generated row is a training row, so `rows` is what was trained on.
    const data = [
      ...generateWeek({ scenario: 'stable', weeks: 1, rowsPerWeek: rows, seed: options.seed }, 0),
    ];
    const cpuBefore = process.cpuUsage();
    const wallBefore = performance.now();
    await trainFromRows(data, {
      trees: options.trees,
      maxFeatures: 'sqrt',
      minSamplesLeaf: 1,
      maxDepth: 32,
      seed: options.seed,
      holdoutFraction: 0,
      modelName: 'cost-model',
      versionId: `cost-${rows}`,
    });
    const cpu = process.cpuUsage(cpuBefore);
    const sample = {
      rows,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      wallSeconds: (performance.now() - wallBefore) / 1000,
    };
    samples.push(sample);
    options.onSample?.(sample);
  }
  return samples;
}

export function fitCostModel(
  samples: readonly CostSample[],
  measuredTrees: number,
  production: ProductionJob,
  coefficients: EnergyCoefficients,
): TrainingCostModel {
  const rows = samples.map((s) => s.rows);
  return {
    samples,
    measuredTrees,
    cpu: fitLine(
      rows,
      samples.map((s) => s.cpuSeconds),
    ),
    wall: fitLine(
      rows,
      samples.map((s) => s.wallSeconds),
    ),
    production,
    coefficients,
  };
}

/**
 * Cost of one production retrain on `windowWeeks` weekly batches; a warm start grows only
 * `treeShare` of the production trees (tree growth is the CPU: it scales with the trees grown).
 */
export function retrainCost(model: TrainingCostModel, windowWeeks: number, treeShare = 1): RetrainCost {
  const rows = windowWeeks * model.production.rowsPerWeek;
  const treeScale = (model.production.trees * treeShare) / model.measuredTrees;
  // A fit can have a slightly negative intercept; a job never costs less than nothing.
  const cpuSeconds = Math.max(0, model.cpu.intercept + model.cpu.slope * rows) * treeScale;
  // Wall time from CPU time, not from the measured wall: training keeps every reserved vCPU busy
  // (one worker thread each), and on a shared machine the measured wall is mostly other tenants'
  // load, which would change the planned duration, the energy and so every ratio from run to run.
  const wallSeconds = cpuSeconds / model.production.vcpus;
  const energy = energyOfReservation(
    { vcpus: model.production.vcpus, memoryGb: model.production.memoryGb, wallSeconds, cpuSeconds },
    model.coefficients,
  );
  return { rows, cpuSeconds, wallSeconds, energyKwh: energy.energyKwh };
}

/** Whole minutes a full-window retrain reserves: the duration every policy plans with. */
export function plannedDurationMinutes(model: TrainingCostModel, windowWeeks: number): number {
  return Math.max(1, Math.ceil(retrainCost(model, windowWeeks).wallSeconds / 60));
}
