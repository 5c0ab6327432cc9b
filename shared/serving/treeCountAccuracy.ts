import { z } from 'zod';
import type { InvoiceRow } from '../invoices/schema';
import { predictProba } from '../model/randomForest';
import { DeclaredColumns } from '../pipelines/featureEncoding';
import type { DeclaredPredictor } from '../pipelines/multiScoring';
import { ValidationError } from '../errors';
import { parseWith } from '../validation';

/**
 * Held-out accuracy of a forest's first k trees, for every k in one pass: each tree's votes are
 * added to a running soft vote and the rows are scored after each tree, so measuring 50 prefixes
 * costs what predicting with the full forest costs. A forest serving its first k trees (the model
 * API's MODEL_API_SERVE_TREES) predicts exactly what prefix k predicts here.
 */
export const TREE_COUNT_ACCURACY_SCHEMA = z
  .object({
    fullTrees: z.number().int().positive(),
    holdoutRows: z.number().int().nonnegative(),
    /** One point per prefix length 1..fullTrees, ascending. */
    points: z
      .array(z.object({ trees: z.number().int().positive(), accuracy: z.number().min(0).max(1) }))
      .min(1),
  })
  .superRefine((value, ctx) => {
    value.points.forEach((p, i) => {
      if (p.trees !== i + 1)
        ctx.addIssue({ code: 'custom', path: ['points', i], message: `expected ${i + 1} trees` });
    });
    if (value.points.length !== value.fullTrees) {
      ctx.addIssue({ code: 'custom', path: ['points'], message: 'needs one point per tree count' });
    }
  });
export type TreeCountAccuracy = z.output<typeof TREE_COUNT_ACCURACY_SCHEMA>;

const CHUNK_ROWS = 4096;

/** Reads rows with the model's own encoding, so a single-model and a declared version measure alike. */
export class TreeCountEvaluator {
  private chunk: DeclaredColumns;
  private readonly correct: Float64Array;
  private rows = 0;

  constructor(private readonly model: DeclaredPredictor) {
    if (model.forest.trees.length === 0) throw new ValidationError('A forest without trees has no accuracy');
    this.correct = new Float64Array(model.forest.trees.length);
    this.chunk = new DeclaredColumns(model.encoder.declaration);
  }

  add(row: InvoiceRow): void {
    this.chunk.push(row, true);
    if (this.chunk.length >= CHUNK_ROWS) this.flush();
  }

  result(): TreeCountAccuracy {
    this.flush();
    const points = Array.from(this.correct, (c, i) => ({
      trees: i + 1,
      accuracy: this.rows > 0 ? c / this.rows : 0,
    }));
    return { fullTrees: points.length, holdoutRows: this.rows, points };
  }

  private flush(): void {
    const columns = this.chunk;
    if (columns.length === 0) return;
    const { forest, encoder } = this.model;
    this.chunk = new DeclaredColumns(encoder.declaration);
    const K = forest.classes.length;
    const encoded = encoder.encode(columns);
    const rows = encoded.rows;
    const truth = new Int16Array(rows);
    const labels = columns.labelDictionary.values.map((v) => forest.classes.indexOf(v));
    for (let r = 0; r < rows; r++) truth[r] = labels[columns.labelIds[r]];
    const sums = new Float64Array(rows * K);
    forest.trees.forEach((tree, t) => {
      const votes = predictProba({ ...forest, trees: [tree] }, encoded.bins, rows);
      for (let i = 0; i < votes.length; i++) sums[i] += votes[i];
      let correct = 0;
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let k = 1; k < K; k++) if (sums[r * K + k] > sums[r * K + best]) best = k;
        if (best === truth[r]) correct++;
      }
      this.correct[t] += correct;
    });
    this.rows += rows;
  }
}

export type TreeCountChoice =
  | { kind: 'fewer-trees'; trees: number; accuracy: number; fullAccuracy: number; fullTrees: number }
  | {
      kind: 'all-trees';
      trees: number;
      accuracy: number;
      fullAccuracy: number;
      fullTrees: number;
      reason: string;
    };

/**
 * The smallest k whose held-out accuracy is at least the full forest's minus `maxAccuracyLoss`
 * (a fraction: 0.002 = 0.2 percentage points). With no held-out rows nothing can be shown, so all
 * trees are served.
 */
export function smallestTreeCountWithin(raw: TreeCountAccuracy, maxAccuracyLoss: number): TreeCountChoice {
  const accuracy = parseWith(TREE_COUNT_ACCURACY_SCHEMA, raw, 'accuracy by tree count');
  const full = accuracy.points[accuracy.points.length - 1];
  const all = {
    trees: full.trees,
    accuracy: full.accuracy,
    fullAccuracy: full.accuracy,
    fullTrees: full.trees,
  };
  if (accuracy.holdoutRows === 0)
    return { kind: 'all-trees', ...all, reason: 'no held-out rows to measure fewer trees on' };
  // A tiny epsilon keeps a prefix whose accuracy equals the bound in floating point.
  const floor = full.accuracy - maxAccuracyLoss - 1e-12;
  const chosen = accuracy.points.find((p) => p.accuracy >= floor) ?? full;
  if (chosen.trees === full.trees) {
    return { kind: 'all-trees', ...all, reason: `every smaller forest loses more than ${maxAccuracyLoss}` };
  }
  return {
    kind: 'fewer-trees',
    trees: chosen.trees,
    accuracy: chosen.accuracy,
    fullAccuracy: full.accuracy,
    fullTrees: full.trees,
  };
}
