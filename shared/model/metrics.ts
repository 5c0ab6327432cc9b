import { sortedClasses } from './classes';

export interface ClassMetrics {
  recall: number;
  precision: number;
  f1: number;
  /** Rows whose actual class is this one. */
  support: number;
}

export interface ClassificationMetrics {
  accuracy: number;
  /** Unweighted mean F1 over classes that occur as actual or predicted (scikit-learn 'macro'). */
  macroF1: number;
  perClass: Record<string, ClassMetrics>;
  /** matrix[actual][predicted], both indexed by `classes`. */
  confusion: { classes: string[]; matrix: number[][] };
  rows: number;
}

/**
 * A confusion matrix filled chunk by chunk, so metrics over a batch never need the batch in memory.
 * Classes are discovered as they come (a batch may hold a class the model never saw).
 */
export class ConfusionMatrix {
  private readonly index = new Map<string, number>();
  private readonly names: string[] = [];
  /** counts[actual][predicted], grown on demand. */
  private counts: number[][] = [];
  private total = 0;

  constructor(classes: Iterable<string> = []) {
    for (const c of classes) this.classIndex(c);
  }

  private classIndex(name: string): number {
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.names.length;
      this.index.set(name, i);
      this.names.push(name);
      for (const row of this.counts) row.push(0);
      this.counts.push(new Array<number>(this.names.length).fill(0));
    }
    return i;
  }

  add(actual: string, predicted: string, count = 1): void {
    const a = this.classIndex(actual);
    const p = this.classIndex(predicted);
    this.counts[a][p] += count;
    this.total += count;
  }

  /**
   * Adds a chunk given as indices: actual[i] into actualClasses, predicted[i] into predictedClasses
   * (labels come from a batch's own dictionary, predictions from the model's class list).
   */
  addIndexed(
    actualClasses: readonly string[],
    actual: ArrayLike<number>,
    predictedClasses: readonly string[],
    predicted: ArrayLike<number>,
  ): void {
    if (actual.length !== predicted.length) throw new RangeError('actual and predicted differ in length');
    const actualMap = actualClasses.map((c) => this.classIndex(c));
    const predictedMap = predictedClasses.map((c) => this.classIndex(c));
    for (let i = 0; i < actual.length; i++) this.counts[actualMap[actual[i]]][predictedMap[predicted[i]]]++;
    this.total += actual.length;
  }

  merge(other: ConfusionMatrix): void {
    const { classes, matrix } = other.snapshot();
    classes.forEach((actual, a) =>
      classes.forEach((predicted, p) => {
        if (matrix[a][p] > 0) this.add(actual, predicted, matrix[a][p]);
      }),
    );
  }

  get rows(): number {
    return this.total;
  }

  /** Classes sorted as VAT rates, with the matrix reordered to match. */
  snapshot(): { classes: string[]; matrix: number[][] } {
    const classes = sortedClasses(this.names);
    const order = classes.map((c) => this.index.get(c) as number);
    return { classes, matrix: order.map((a) => order.map((p) => this.counts[a][p])) };
  }

  metrics(): ClassificationMetrics {
    const { classes, matrix } = this.snapshot();
    let correct = 0;
    const perClass: Record<string, ClassMetrics> = {};
    let f1Sum = 0;
    let f1Classes = 0;
    classes.forEach((name, k) => {
      const truePositives = matrix[k][k];
      correct += truePositives;
      const support = matrix[k].reduce((s, v) => s + v, 0);
      const predicted = matrix.reduce((s, row) => s + row[k], 0);
      // Zero division counts as 0, as scikit-learn's zero_division default reports.
      const recall = support > 0 ? truePositives / support : 0;
      const precision = predicted > 0 ? truePositives / predicted : 0;
      const f1 = recall + precision > 0 ? (2 * recall * precision) / (recall + precision) : 0;
      perClass[name] = { recall, precision, f1, support };
      if (support > 0 || predicted > 0) {
        f1Sum += f1;
        f1Classes++;
      }
    });
    return {
      accuracy: this.total > 0 ? correct / this.total : 0,
      macroF1: f1Classes > 0 ? f1Sum / f1Classes : 0,
      perClass,
      confusion: { classes, matrix },
      rows: this.total,
    };
  }
}
