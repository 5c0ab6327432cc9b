import { mulberry32 } from './random';

/** A feature-binned training set: row-major bins plus one class index per row. */
export interface TrainingMatrix {
  bins: Uint16Array;
  rows: number;
  features: number;
  /** Bins per feature; every bin value is below its feature's count. */
  binCounts: Uint16Array;
  labels: Uint8Array;
  classCount: number;
}

export interface TreeParams {
  /** Features drawn per split (scikit-learn max_features, already resolved to a count). */
  featuresPerSplit: number;
  minSamplesLeaf: number;
  maxDepth: number;
}

/**
 * One tree as flat typed arrays. Node 0 is the root. An internal node sends a row left when its bin
 * of `feature[node]` is <= `threshold[node]`; its children are `child[node]` (left) and
 * `child[node] + 1` (right), always after the node itself, so a walk cannot loop. A leaf has
 * `feature[node] === LEAF` and `child[node]` indexes `leafValues`.
 */
export interface Tree {
  feature: Uint8Array;
  threshold: Uint16Array;
  child: Uint32Array;
  /** Distinct leaf class distributions, leafVectors × classCount, fixed point (sum ≈ LEAF_SCALE). */
  leafValues: Uint16Array;
}

export const LEAF = 255;
/** Most features a tree can address (the feature index is a byte; 255 marks a leaf). */
export const MAX_FEATURES = 254;
export const LEAF_SCALE = 65535;

/**
 * Grows one CART tree the way scikit-learn's RandomForestClassifier does: a bootstrap sample of
 * `rows` draws, gini impurity, `featuresPerSplit` features drawn per node without replacement
 * (drawing further when a drawn feature is constant in the node), nodes split until pure, smaller
 * than 2 × minSamplesLeaf, or at maxDepth. Splits are on feature bins, so one pass over a node's
 * rows builds the class histograms of all drawn features at once.
 */
export function growTree(matrix: TrainingMatrix, params: TreeParams, seed: number): Tree {
  const { bins, rows, features, binCounts, labels, classCount: K } = matrix;
  if (rows === 0) throw new RangeError('cannot grow a tree on zero rows');
  if (features > MAX_FEATURES) throw new RangeError(`at most ${MAX_FEATURES} features are supported`);
  const random = mulberry32(seed);
  const mtry = Math.max(1, Math.min(features, params.featuresPerSplit));
  const minLeaf = Math.max(1, params.minSamplesLeaf);

  const index = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) index[i] = Math.floor(random() * rows);
  // Ascending row order keeps the bin matrix reads close to sequential.
  index.sort();

  let maxBins = 1;
  for (let f = 0; f < features; f++) maxBins = Math.max(maxBins, binCounts[f]);
  const histogram = new Uint32Array(mtry * maxBins * K);
  const slotFeature = new Int32Array(mtry);
  const slotMin = new Int32Array(mtry);
  const slotMax = new Int32Array(mtry);
  const order = Uint8Array.from({ length: features }, (_, f) => f);
  const classCounts = new Float64Array(K);
  const left = new Float64Array(K);

  const nodeFeature: number[] = [];
  const nodeThreshold: number[] = [];
  const nodeChild: number[] = [];
  const leafValues: number[] = [];
  const leafIds = new Map<string, number>();

  const makeLeaf = (node: number, size: number): void => {
    const vector = new Array<number>(K);
    for (let k = 0; k < K; k++) vector[k] = Math.round((classCounts[k] / size) * LEAF_SCALE);
    const key = vector.join(',');
    let id = leafIds.get(key);
    if (id === undefined) {
      id = leafIds.size;
      leafIds.set(key, id);
      leafValues.push(...vector);
    }
    nodeFeature[node] = LEAF;
    nodeThreshold[node] = 0;
    nodeChild[node] = id;
  };

  // Depth-first with an explicit stack: [node, start, end, depth].
  const stack: number[] = [0, 0, rows, 0];
  nodeFeature.push(LEAF);
  nodeThreshold.push(0);
  nodeChild.push(0);
  while (stack.length > 0) {
    const depth = stack.pop() as number;
    const end = stack.pop() as number;
    const start = stack.pop() as number;
    const node = stack.pop() as number;
    const size = end - start;

    classCounts.fill(0);
    for (let i = start; i < end; i++) classCounts[labels[index[i]]]++;
    let largest = 0;
    let parentSquares = 0;
    for (let k = 0; k < K; k++) {
      largest = Math.max(largest, classCounts[k]);
      parentSquares += classCounts[k] * classCounts[k];
    }
    if (largest === size || depth >= params.maxDepth || size < 2 * minLeaf) {
      makeLeaf(node, size);
      continue;
    }

    // Best split by the gini proxy sum(left²)/nLeft + sum(right²)/nRight (higher is better).
    let bestScore = -Infinity;
    let bestFeature = -1;
    let bestThreshold = 0;
    let drawn = 0;
    let visited = 0;
    while (visited < mtry && drawn < features) {
      const batch = Math.min(mtry - visited, features - drawn);
      for (let s = 0; s < batch; s++) {
        const pick = drawn + Math.floor(random() * (features - drawn));
        const f = order[pick];
        order[pick] = order[drawn];
        order[drawn] = f;
        drawn++;
        slotFeature[s] = f;
        slotMin[s] = binCounts[f];
        slotMax[s] = -1;
      }
      for (let i = start; i < end; i++) {
        const row = index[i];
        const base = row * features;
        const label = labels[row];
        for (let s = 0; s < batch; s++) {
          const bin = bins[base + slotFeature[s]];
          histogram[(s * maxBins + bin) * K + label]++;
          if (bin < slotMin[s]) slotMin[s] = bin;
          if (bin > slotMax[s]) slotMax[s] = bin;
        }
      }
      for (let s = 0; s < batch; s++) {
        const lo = slotMin[s];
        const hi = slotMax[s];
        const offset = s * maxBins * K;
        if (lo !== hi) {
          visited++;
          left.fill(0);
          let nLeft = 0;
          let leftSquares = 0;
          let rightSquares = parentSquares;
          for (let bin = lo; bin < hi; bin++) {
            const cell = offset + bin * K;
            for (let k = 0; k < K; k++) {
              const c = histogram[cell + k];
              if (c === 0) continue;
              const l = left[k];
              const r = classCounts[k] - l;
              leftSquares += 2 * l * c + c * c;
              rightSquares += c * c - 2 * r * c;
              left[k] = l + c;
              nLeft += c;
            }
            const nRight = size - nLeft;
            if (nLeft < minLeaf) continue;
            if (nRight < minLeaf) break;
            const score = leftSquares / nLeft + rightSquares / nRight;
            if (score > bestScore) {
              bestScore = score;
              bestFeature = slotFeature[s];
              bestThreshold = bin;
            }
          }
        }
        // Clear only the bins this node touched; the buffer is reused for every node.
        if (hi >= lo) histogram.fill(0, offset + lo * K, offset + (hi + 1) * K);
      }
    }
    if (bestFeature < 0) {
      makeLeaf(node, size);
      continue;
    }

    let i = start;
    let j = end - 1;
    while (i <= j) {
      if (bins[index[i] * features + bestFeature] <= bestThreshold) {
        i++;
      } else {
        const t = index[i];
        index[i] = index[j];
        index[j] = t;
        j--;
      }
    }
    const leftChild = nodeFeature.length;
    nodeFeature[node] = bestFeature;
    nodeThreshold[node] = bestThreshold;
    nodeChild[node] = leftChild;
    nodeFeature.push(LEAF, LEAF);
    nodeThreshold.push(0, 0);
    nodeChild.push(0, 0);
    stack.push(leftChild + 1, i, end, depth + 1);
    stack.push(leftChild, start, i, depth + 1);
  }
  return {
    feature: Uint8Array.from(nodeFeature),
    threshold: Uint16Array.from(nodeThreshold),
    child: Uint32Array.from(nodeChild),
    leafValues: Uint16Array.from(leafValues),
  };
}
