import { serializeModel } from '../../../shared/model/artifact';
import {
  argmaxRows,
  mergeForests,
  predictClasses,
  predictProba,
  resolveFeaturesPerSplit,
  type Forest,
} from '../../../shared/model/randomForest';
import { trainFromRows, type TrainingOptions } from '../../../shared/model/training';
import {
  growTree as growOnColumns,
  LEAF,
  toColumns,
  type Tree,
  type TrainingMatrix,
  type TreeParams,
} from '../../../shared/model/tree';
import { mulberry32 } from '../../../shared/model/random';
import { syntheticRows } from './syntheticInvoices';
import { generateWeek } from '../../../shared/invoices/generator';
import { encodeRows } from '../../../shared/model/features';
import { LEAF_SCALE } from '../../../shared/model/tree';

const options: TrainingOptions = {
  trees: 8,
  maxFeatures: 'sqrt',
  minSamplesLeaf: 1,
  maxDepth: 32,
  seed: 7,
  modelName: 'vat',
  versionId: 'v1',
  threads: 1,
};

/** Grows on a row-major matrix, transposed as trainForest does. */
function growTree(matrix: TrainingMatrix, params: TreeParams, seed: number): Tree {
  return growOnColumns(toColumns(matrix), params, seed);
}

/** Label = 1 when feature 1's bin is above 5, else 0; feature 0 is noise. */
function ruleMatrix(rows: number, seed: number): TrainingMatrix {
  const random = mulberry32(seed);
  const bins = new Uint16Array(rows * 2);
  const labels = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    bins[r * 2] = Math.floor(random() * 16);
    bins[r * 2 + 1] = Math.floor(random() * 10);
    labels[r] = bins[r * 2 + 1] > 5 ? 1 : 0;
  }
  return { bins, rows, features: 2, binCounts: Uint16Array.from([16, 10]), labels, classCount: 2 };
}

/** Rows reaching each node and each node's depth, by walking the tree. */
function walk(tree: Tree, matrix: TrainingMatrix): { leafRows: Map<number, number>; maxDepth: number } {
  const leafRows = new Map<number, number>();
  let maxDepth = 0;
  for (let r = 0; r < matrix.rows; r++) {
    let node = 0;
    let depth = 0;
    while (tree.feature[node] !== LEAF) {
      const f = tree.feature[node];
      node =
        matrix.bins[r * matrix.features + f] <= tree.threshold[node]
          ? tree.child[node]
          : tree.child[node] + 1;
      depth++;
    }
    leafRows.set(node, (leafRows.get(node) ?? 0) + 1);
    maxDepth = Math.max(maxDepth, depth);
  }
  return { leafRows, maxDepth };
}

describe('growTree', () => {
  it('finds a threshold rule exactly with all features', () => {
    const matrix = ruleMatrix(2000, 1);
    const tree = growTree(matrix, { featuresPerSplit: 2, minSamplesLeaf: 1, maxDepth: 10 }, 3);
    const forest: Forest = { classes: ['0', '1'], features: 2, trees: [tree] };
    const predicted = argmaxRows(predictProba(forest, matrix.bins, matrix.rows), 2);
    expect(Array.from(predicted)).toEqual(Array.from(matrix.labels));
    // One split on feature 1 at bin 5 separates the classes; nothing else is needed.
    expect(tree.feature[0]).toBe(1);
    expect(tree.threshold[0]).toBe(5);
    expect(tree.feature.length).toBe(3);
  });

  it('respects maxDepth and minSamplesLeaf on noisy labels', () => {
    const matrix = ruleMatrix(3000, 2);
    const random = mulberry32(9);
    for (let r = 0; r < matrix.rows; r++) if (random() < 0.3) matrix.labels[r] = 1 - matrix.labels[r];
    const deep = growTree(matrix, { featuresPerSplit: 2, minSamplesLeaf: 1, maxDepth: 3 }, 5);
    expect(walk(deep, matrix).maxDepth).toBeLessThanOrEqual(3);
    expect(walk(deep, matrix).maxDepth).toBe(3);

    // minSamplesLeaf counts bootstrap draws; with the same bootstrap (seed) every leaf keeps >= 40.
    const bushy = growTree(matrix, { featuresPerSplit: 2, minSamplesLeaf: 1, maxDepth: 32 }, 5);
    const pruned = growTree(matrix, { featuresPerSplit: 2, minSamplesLeaf: 40, maxDepth: 32 }, 5);
    expect(pruned.feature.length).toBeLessThan(bushy.feature.length);
    const sampled = resample(matrix, 5);
    for (const rows of walk(pruned, sampled).leafRows.values()) expect(rows).toBeGreaterThanOrEqual(40);
  });

  it('stores in each leaf the class shares of the bootstrap draws that reach it', () => {
    const matrix = ruleMatrix(3000, 6);
    const random = mulberry32(2);
    for (let r = 0; r < matrix.rows; r++) if (random() < 0.2) matrix.labels[r] = 1 - matrix.labels[r];
    // Deep enough to be exact, shallow enough that leaves hold many, mixed, repeated draws.
    const tree = growTree(matrix, { featuresPerSplit: 1, minSamplesLeaf: 25, maxDepth: 32 }, 9);
    const sampled = resample(matrix, 9);
    const counts = new Map<number, [number, number]>();
    for (let r = 0; r < sampled.rows; r++) {
      let node = 0;
      while (tree.feature[node] !== LEAF) {
        const bin = sampled.bins[r * sampled.features + tree.feature[node]];
        node = bin <= tree.threshold[node] ? tree.child[node] : tree.child[node] + 1;
      }
      const pair = counts.get(node) ?? [0, 0];
      pair[sampled.labels[r]]++;
      counts.set(node, pair);
    }
    expect(counts.size).toBeGreaterThan(10);
    for (const [node, [zeros, ones]] of counts) {
      const leaf = tree.child[node] * 2;
      expect(tree.leafValues[leaf]).toBe(Math.round((zeros / (zeros + ones)) * 65535));
      expect(tree.leafValues[leaf + 1]).toBe(Math.round((ones / (zeros + ones)) * 65535));
    }
  });

  it('keeps leaf distributions normalised', () => {
    const tree = growTree(ruleMatrix(500, 3), { featuresPerSplit: 1, minSamplesLeaf: 20, maxDepth: 32 }, 1);
    for (let v = 0; v < tree.leafValues.length / 2; v++) {
      expect(tree.leafValues[v * 2] + tree.leafValues[v * 2 + 1]).toBeGreaterThanOrEqual(65534);
      expect(tree.leafValues[v * 2] + tree.leafValues[v * 2 + 1]).toBeLessThanOrEqual(65536);
    }
  });
});

/** The bootstrap sample growTree draws for a seed, as its own matrix. */
function resample(matrix: TrainingMatrix, seed: number): TrainingMatrix {
  const random = mulberry32(seed);
  const index = new Uint32Array(matrix.rows);
  for (let i = 0; i < matrix.rows; i++) index[i] = Math.floor(random() * matrix.rows);
  const bins = new Uint16Array(matrix.rows * matrix.features);
  const labels = new Uint8Array(matrix.rows);
  index.forEach((row, i) => {
    bins.set(matrix.bins.subarray(row * matrix.features, (row + 1) * matrix.features), i * matrix.features);
    labels[i] = matrix.labels[row];
  });
  return { ...matrix, bins, labels };
}

describe('resolveFeaturesPerSplit', () => {
  it('follows scikit-learn max_features', () => {
    expect(resolveFeaturesPerSplit('sqrt', 20)).toBe(4);
    expect(resolveFeaturesPerSplit('sqrt', 1)).toBe(1);
    expect(resolveFeaturesPerSplit('all', 20)).toBe(20);
    expect(resolveFeaturesPerSplit(7, 20)).toBe(7);
    expect(resolveFeaturesPerSplit(50, 20)).toBe(20);
  });
});

describe('random forest on invoices', () => {
  const rows = syntheticRows({ rows: 3000, seed: 11, suppliers: 60 });
  // A rule the forest must find: the supplier decides the rate. Holdout rows were never trained on.
  it('learns a supplier → VAT rate rule to high held-out accuracy', async () => {
    const result = await trainFromRows(rows, options);
    expect(result.metadata.rows.holdout).toBeGreaterThan(400);
    expect(result.metadata.holdoutMetrics.accuracy).toBeGreaterThan(0.97);
    expect(result.holdout.perClass['5.5'].recall).toBeGreaterThan(0.9);
    expect(result.model.forest.trees).toHaveLength(8);
    expect(result.metadata.classes).toEqual(['0', '5.5', '9', '14', '24']);
  });

  it('is deterministic for a seed and changes with it', async () => {
    const first = await trainFromRows(rows, options);
    const again = await trainFromRows(rows, options);
    const other = await trainFromRows(rows, { ...options, seed: 8 });
    const forestPart = (text: string): string => text.slice(text.indexOf('"encoder":'));
    expect(forestPart(serializeModel(again.model))).toBe(forestPart(serializeModel(first.model)));
    expect(forestPart(serializeModel(other.model))).not.toBe(forestPart(serializeModel(first.model)));
  });

  it('keeps the newest trees when merging and re-expresses old leaves over new classes', () => {
    const tree = growTree(ruleMatrix(200, 4), { featuresPerSplit: 2, minSamplesLeaf: 1, maxDepth: 4 }, 1);
    const older: Forest = { classes: ['0', '24'], features: 2, trees: [tree, tree, tree] };
    const newer: Forest = { classes: ['0', '25.5'], features: 2, trees: [tree, tree] };
    const merged = mergeForests(older, newer, 4, ['0', '24', '25.5']);
    expect(merged.trees).toHaveLength(4);
    // Last two are the new trees: their second class is 25.5 (index 2), so index 1 (24) is zero.
    const bins = Uint16Array.from([0, 9]);
    const oldVote = predictProba({ ...merged, trees: merged.trees.slice(0, 2) }, bins, 1);
    const newVote = predictProba({ ...merged, trees: merged.trees.slice(2) }, bins, 1);
    expect(oldVote[1]).toBeCloseTo(1, 4);
    expect(oldVote[2]).toBe(0);
    expect(newVote[1]).toBe(0);
    expect(newVote[2]).toBeCloseTo(1, 4);
  });
});

/** The straightforward soft vote the optimised predictProba must equal bit for bit. */
function referenceProba(forest: Forest, bins: Uint16Array, rows: number): Float32Array {
  const K = forest.classes.length;
  const sums = new Float64Array(rows * K);
  for (const tree of forest.trees) {
    for (let r = 0; r < rows; r++) {
      let node = 0;
      while (tree.feature[node] !== LEAF) {
        const bin = bins[r * forest.features + tree.feature[node]];
        node = bin <= tree.threshold[node] ? tree.child[node] : tree.child[node] + 1;
      }
      for (let k = 0; k < K; k++) sums[r * K + k] += tree.leafValues[tree.child[node] * K + k];
    }
  }
  return Float32Array.from(sums, (v) => v / (LEAF_SCALE * forest.trees.length));
}

describe('prediction', () => {
  it('gives the same probabilities and classes as the plain walk on a seeded model', async () => {
    const world = { scenario: 'supplier-churn' as const, weeks: 3, rowsPerWeek: 3000, seed: 5 };
    const { model } = await trainFromRows(generateWeek(world, 0), { ...options, trees: 21 });
    // A later week: drifted rows, unseen suppliers, close votes.
    const rows = [...generateWeek(world, 2)];
    const { bins } = encodeRows(model.encoder, rows);
    const K = model.forest.classes.length;
    const probabilities = predictProba(model.forest, bins, rows.length);
    expect(Array.from(probabilities)).toEqual(Array.from(referenceProba(model.forest, bins, rows.length)));
    const classes = predictClasses(model.forest, bins, rows.length);
    expect(Array.from(classes)).toEqual(Array.from(argmaxRows(probabilities, K)));
    // Some rows must be undecided until late, or the early stop was not exercised.
    let close = 0;
    for (let r = 0; r < rows.length; r++) {
      const sorted = Array.from(probabilities.subarray(r * K, (r + 1) * K)).sort((a, b) => b - a);
      if (sorted[0] - sorted[1] < 0.2) close++;
    }
    expect(close).toBeGreaterThan(10);
  });
});

describe('prediction walk (four rows in lockstep, branch-free steps)', () => {
  it('equals the plain walk for every row count and tree prefix of a trained forest', async () => {
    const world = { scenario: 'vat-reform' as const, weeks: 4, rowsPerWeek: 2000, seed: 11 };
    const { model } = await trainFromRows(generateWeek(world, 0), { ...options, trees: 13 });
    const rows = [...generateWeek(world, 3)];
    const K = model.forest.classes.length;
    for (const trees of [1, 2, 13]) {
      const forest = { ...model.forest, trees: model.forest.trees.slice(0, trees) };
      for (const count of [0, 1, 2, 3, 4, 5, 7, 97]) {
        const { bins } = encodeRows(model.encoder, rows.slice(0, count));
        const probabilities = predictProba(forest, bins, count);
        expect(Array.from(probabilities)).toEqual(Array.from(referenceProba(forest, bins, count)));
        expect(Array.from(predictClasses(forest, bins, count))).toEqual(
          Array.from(argmaxRows(probabilities, K)),
        );
      }
    }
  });

  it('splits correctly on the largest 16-bit bins and thresholds', () => {
    // Root: feature 1 ≤ 65534 → leaf 0 (class 0), else node 2: feature 0 ≤ 65535 → class 1 (never right).
    const tree: Tree = {
      feature: Uint8Array.from([1, LEAF, 0, LEAF, LEAF, LEAF]),
      threshold: Uint16Array.from([65534, 0, 65535, 0, 0, 0]),
      child: Uint32Array.from([1, 0, 4, 0, 1, 0]),
      leafValues: Uint16Array.from([LEAF_SCALE, 0, 0, LEAF_SCALE]),
    };
    // Node 1 is the left leaf (class 0); node 2 the right split, whose children are 4 (class 1) and 5.
    const forest: Forest = { classes: ['a', 'b'], features: 2, trees: [tree] };
    const bins = Uint16Array.from([0, 65534, 65535, 65535, 65535, 0, 7, 65535, 0, 0]);
    expect(Array.from(predictClasses(forest, bins, 5))).toEqual([0, 1, 0, 1, 0]);
    expect(Array.from(predictProba(forest, bins, 5))).toEqual(Array.from(referenceProba(forest, bins, 5)));
  });
});
