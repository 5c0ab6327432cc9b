import { TARGET_FOLDS } from './columns';

/**
 * Target encoding of high-cardinality columns, shared by the built-in VAT-rate encoder
 * (features.ts) and the declared-pipeline encoder (shared/pipelines/featureEncoding.ts): both must
 * bin a row the same way, or a declared `vat-rate` model would read rows differently from today's.
 */

/** Target statistics are probabilities in [0, 1], binned uniformly so the bins survive warm start. */
export const TARGET_BINS = 64;
/** m-estimate smoothing: a supplier seen n times is pulled towards the prior with weight m/(n+m). */
export const TARGET_SMOOTHING_ROWS = 10;

export function probabilityBin(p: number): number {
  return Math.min(TARGET_BINS - 1, Math.max(0, Math.floor(p * TARGET_BINS)));
}

export interface TargetStats {
  values: string[];
  index: Map<string, number>;
  /** values × classes, row-major. */
  classCounts: Uint32Array;
  rows: Uint32Array;
  /** Precomputed bins of the smoothed frequencies, values × classes. */
  bins: Uint8Array;
}

/** The class prior every column's frequencies are smoothed towards. */
export class TargetPrior {
  readonly bins: Uint8Array;

  constructor(
    private readonly priorCounts: readonly number[],
    private readonly priorRows: number,
  ) {
    this.bins = Uint8Array.from(priorCounts, (n) => probabilityBin(n / priorRows));
  }

  smoothedBin(classRows: number, rows: number, k: number): number {
    const prior = this.priorCounts[k] / this.priorRows;
    return probabilityBin((classRows + TARGET_SMOOTHING_ROWS * prior) / (rows + TARGET_SMOOTHING_ROWS));
  }

  /** One column's statistics with the smoothed bins precomputed (lengths checked by the caller). */
  stats(values: string[], classCounts: Uint32Array, rows: Uint32Array): TargetStats {
    const classCount = this.priorCounts.length;
    const bins = new Uint8Array(classCounts.length);
    for (let v = 0; v < values.length; v++) {
      for (let k = 0; k < classCount; k++) {
        bins[v * classCount + k] = this.smoothedBin(classCounts[v * classCount + k], rows[v], k);
      }
    }
    return { values, index: new Map(values.map((value, i) => [value, i])), classCounts, rows, bins };
  }
}

/** The labelled rows of one column, as dictionary ids, label ids and folds. */
export interface TargetColumnRows {
  /** Dictionary id of each row's value. */
  ids: ArrayLike<number>;
  dictionarySize: number;
  /** Label dictionary id of each row, and the class rank of each label id (-1: not a class). */
  labelIds: ArrayLike<number>;
  labelRank: Int32Array;
  folds: ArrayLike<number>;
}

/** Per dictionary value and fold: counts of each class, then the row count. */
export function foldClassCounts(column: TargetColumnRows, classCount: number): Uint32Array {
  const { ids, labelIds, labelRank, folds } = column;
  const counts = new Uint32Array(column.dictionarySize * TARGET_FOLDS * (classCount + 1));
  for (let r = 0; r < ids.length; r++) {
    const base = (ids[r] * TARGET_FOLDS + folds[r]) * (classCount + 1);
    const k = labelRank[labelIds[r]];
    if (k >= 0) counts[base + k]++;
    counts[base + classCount]++;
  }
  return counts;
}

/**
 * Writes one column's class-frequency bins into the row-major matrix at feature offset `first`.
 * With fold counts (training), each row's statistics leave out its own fold, so the forest never
 * sees a frequency that includes the row's own label.
 */
export function writeTargetBins(
  matrix: { bins: Uint16Array; rows: number; features: number },
  first: number,
  column: { ids: ArrayLike<number>; dictionary: readonly string[]; folds: ArrayLike<number> },
  stats: TargetStats,
  prior: TargetPrior,
  foldCounts: Uint32Array | undefined,
): void {
  const { bins, rows, features } = matrix;
  const classCount = prior.bins.length;
  const statIndex = Int32Array.from(column.dictionary, (v) => stats.index.get(v) ?? -1);
  for (let r = 0; r < rows; r++) {
    const d = column.ids[r];
    const t = statIndex[d];
    const out = r * features + first;
    if (t < 0) {
      for (let k = 0; k < classCount; k++) bins[out + k] = prior.bins[k];
    } else if (foldCounts) {
      const base = (d * TARGET_FOLDS + column.folds[r]) * (classCount + 1);
      const n = stats.rows[t] - foldCounts[base + classCount];
      for (let k = 0; k < classCount; k++) {
        bins[out + k] = prior.smoothedBin(stats.classCounts[t * classCount + k] - foldCounts[base + k], n, k);
      }
    } else {
      for (let k = 0; k < classCount; k++) bins[out + k] = stats.bins[t * classCount + k];
    }
  }
}
