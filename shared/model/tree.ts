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
 * The training matrix feature-major: one feature's bins for every row lie together, one byte a
 * bin where the feature has at most 256 bins (all but large vocabularies), else two.
 */
export interface ColumnMatrix extends Omit<TrainingMatrix, 'bins'> {
  /** Bin of row r for a feature of at most 256 bins at f * rows + r. */
  narrow: Uint8Array;
  /** Bin of row r for a wider feature at wideSlot[f] * rows + r. */
  wide: Uint16Array;
  /** Per feature: its slot in `wide`, or -1 when it is in `narrow`. */
  wideSlot: Int16Array;
}

/**
 * Transposes once per forest. A node reads a few features of its rows, which (after a stable
 * partition) are in ascending order: in one feature's column those reads move forward through a
 * few hundred KB, where whole rows would jump through the whole matrix.
 */
export function toColumns(matrix: TrainingMatrix, options: { shared?: boolean } = {}): ColumnMatrix {
  const { bins, rows, features, binCounts, labels, classCount } = matrix;
  if (bins.length !== rows * features)
    throw new RangeError(`expected ${rows * features} bins, got ${bins.length}`);
  const buffer = (bytes: number): ArrayBuffer | SharedArrayBuffer =>
    options.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  const wideSlot = new Int16Array(features).fill(-1);
  let wideCount = 0;
  for (let f = 0; f < features; f++) if (binCounts[f] > 256) wideSlot[f] = wideCount++;
  const narrow = new Uint8Array(buffer(rows * features));
  const wide = new Uint16Array(buffer(rows * wideCount * Uint16Array.BYTES_PER_ELEMENT));
  for (let f = 0; f < features; f++) {
    const slot = wideSlot[f];
    if (slot < 0) for (let r = 0; r < rows; r++) narrow[f * rows + r] = bins[r * features + f];
    else for (let r = 0; r < rows; r++) wide[slot * rows + r] = bins[r * features + f];
  }
  return { narrow, wide, wideSlot, rows, features, binCounts, labels, classCount };
}

/**
 * Grows one CART tree the way scikit-learn's RandomForestClassifier does: a bootstrap sample of
 * `rows` draws (held as a draw count per row, scikit-learn's sample weights), gini impurity,
 * `featuresPerSplit` features drawn per node without replacement among those not already known to
 * be constant in the node (drawing further when a drawn feature turns out constant), nodes split
 * until pure, smaller than 2 × minSamplesLeaf, or at maxDepth. Splits are on feature bins: one pass
 * over a node's rows per drawn feature builds its class histogram.
 */
export function growTree(matrix: ColumnMatrix, params: TreeParams, seed: number): Tree {
  const { narrow, wide, wideSlot, rows, features, binCounts, labels, classCount: K } = matrix;
  if (rows === 0) throw new RangeError('cannot grow a tree on zero rows');
  if (features > MAX_FEATURES) throw new RangeError(`at most ${MAX_FEATURES} features are supported`);
  const random = mulberry32(seed);
  const mtry = Math.max(1, Math.min(features, params.featuresPerSplit));
  const minLeaf = Math.max(1, params.minSamplesLeaf);
  const nodeRows = bootstrap(rows, labels, random);

  let maxBins = 1;
  for (let f = 0; f < features; f++) maxBins = Math.max(maxBins, binCounts[f]);
  // Per bin: K class counts. Int32, not Uint32: V8 keeps Int32Array elements as small integers,
  // where Uint32Array reads may leave the integer fast path (counts never approach 2^31).
  const histogram = new Int32Array(maxBins * K);
  const split = new SplitSearch(K, minLeaf);
  const order = new Uint8Array(features);
  // Per stack slot, the features known to be constant in that node: a feature constant in a node
  // is constant in all its descendants, so (as scikit-learn does) it is never drawn again there.
  const knownConstant: Uint8Array[] = [new Uint8Array(features)];
  // Per stack slot, that node's class counts: a child's are known from its parent's best split (the
  // left side's histogram sums, and the rest), so no node but the root needs a pass to count them.
  const slotCounts: Float64Array[] = [nodeRows.classCounts(K)];

  const nodeFeature: number[] = [LEAF];
  const nodeThreshold: number[] = [0];
  const nodeChild: number[] = [0];
  const leaves = new LeafTable(K);

  // Depth-first with an explicit stack: [node, start, end, depth].
  const stack: number[] = [0, 0, nodeRows.length, 0];
  while (stack.length > 0) {
    const depth = stack.pop() as number;
    const end = stack.pop() as number;
    const start = stack.pop() as number;
    const node = stack.pop() as number;
    const slot = stack.length / 4;

    split.begin(slotCounts[slot]);
    if (split.isPure() || depth >= params.maxDepth || split.size < 2 * minLeaf) {
      nodeChild[node] = leaves.idOf(split.classCounts, split.size);
      continue;
    }

    const constants = knownConstant[slot];
    let candidates = 0;
    for (let f = 0; f < features; f++) if (constants[f] === 0) order[candidates++] = f;
    let drawn = 0;
    let visited = 0;
    while (visited < mtry && drawn < candidates) {
      const pick = drawn + Math.floor(random() * (candidates - drawn));
      const f = order[pick];
      order[pick] = order[drawn];
      order[drawn] = f;
      drawn++;
      const range =
        wideSlot[f] < 0
          ? accumulateNarrow(narrow, f * rows, nodeRows, start, end, histogram, K)
          : accumulateWide(wide, wideSlot[f] * rows, nodeRows, start, end, histogram, K);
      if (range === CONSTANT) {
        constants[f] = 1;
        continue;
      }
      const lo = range & 0xffff;
      const hi = range >>> 16;
      visited++;
      split.scan(histogram, lo, hi, f);
      // Clear only the bins this node touched; the buffer is reused for every feature and node.
      histogram.fill(0, lo * K, (hi + 1) * K);
    }
    if (split.bestFeature < 0) {
      nodeChild[node] = leaves.idOf(split.classCounts, split.size);
      continue;
    }

    const best = split.bestFeature;
    const middle =
      wideSlot[best] < 0
        ? nodeRows.partition(narrow, best * rows, split.bestThreshold, start, end)
        : nodeRows.partition(wide, wideSlot[best] * rows, split.bestThreshold, start, end);
    const leftChild = nodeFeature.length;
    nodeFeature[node] = split.bestFeature;
    nodeThreshold[node] = split.bestThreshold;
    nodeChild[node] = leftChild;
    nodeFeature.push(LEAF, LEAF);
    nodeThreshold.push(0, 0);
    nodeChild.push(0, 0);
    // The children take this node's slot and the next one, and inherit the constants found here.
    if (knownConstant.length === slot + 1) knownConstant.push(new Uint8Array(features));
    knownConstant[slot + 1].set(constants);
    if (slotCounts.length === slot + 1) slotCounts.push(new Float64Array(K));
    const leftCounts = slotCounts[slot + 1];
    const rightCounts = slotCounts[slot];
    leftCounts.set(split.bestLeft);
    for (let k = 0; k < K; k++) rightCounts[k] = split.classCounts[k] - leftCounts[k];
    stack.push(leftChild + 1, middle, end, depth + 1);
    stack.push(leftChild, start, middle, depth + 1);
  }
  return {
    feature: Uint8Array.from(nodeFeature),
    threshold: Uint16Array.from(nodeThreshold),
    child: Uint32Array.from(nodeChild),
    leafValues: leaves.values(),
  };
}

/** What accumulate returns for a feature with a single bin among the node's rows. */
const CONSTANT = -1;

/**
 * The bootstrap's distinct rows in ascending order, with label and draw count alongside (one word:
 * label << 16 | draws) so a node's reads of them are sequential. Each node owns a range [start, end).
 */
class NodeRows {
  readonly index: Int32Array;
  readonly labelWeight: Int32Array;
  private readonly spillIndex: Int32Array;
  private readonly spillLabelWeight: Int32Array;

  constructor(readonly length: number) {
    this.index = new Int32Array(length);
    this.labelWeight = new Int32Array(length);
    this.spillIndex = new Int32Array(length);
    this.spillLabelWeight = new Int32Array(length);
  }

  /** Draws per class over all rows (the root's class counts). */
  classCounts(K: number): Float64Array {
    const counts = new Float64Array(K);
    for (let i = 0; i < this.length; i++) {
      const lw = this.labelWeight[i];
      counts[lw >>> 16] += lw & 0xffff;
    }
    return counts;
  }

  /**
   * Stable partition of [start, end) by bin <= threshold; returns where the right side starts.
   * Stable, so every node keeps its rows ascending and its column reads move forward in memory.
   */
  partition(
    columns: Uint8Array | Uint16Array,
    column: number,
    threshold: number,
    start: number,
    end: number,
  ): number {
    const { index, labelWeight, spillIndex, spillLabelWeight } = this;
    let i = start;
    let spilled = 0;
    for (let from = start; from < end; from++) {
      const row = index[from];
      const lw = labelWeight[from];
      if (columns[column + row] <= threshold) {
        index[i] = row;
        labelWeight[i] = lw;
        i++;
      } else {
        spillIndex[spilled] = row;
        spillLabelWeight[spilled] = lw;
        spilled++;
      }
    }
    index.set(spillIndex.subarray(0, spilled), i);
    labelWeight.set(spillLabelWeight.subarray(0, spilled), i);
    return i;
  }
}

/**
 * `rows` draws with replacement, as draw counts: each distinct row is visited once per node with
 * its weight instead of once per draw (about 37 % fewer visits), and every class count, split and
 * leaf is the same as with the duplicated rows.
 */
function bootstrap(rows: number, labels: Uint8Array, random: () => number): NodeRows {
  const drawCounts = new Uint16Array(rows);
  for (let i = 0; i < rows; i++) drawCounts[Math.floor(random() * rows)]++;
  let distinct = 0;
  for (let r = 0; r < rows; r++) if (drawCounts[r] > 0) distinct++;
  const nodeRows = new NodeRows(distinct);
  for (let r = 0, i = 0; r < rows; r++) {
    if (drawCounts[r] === 0) continue;
    nodeRows.index[i] = r;
    nodeRows.labelWeight[i] = (labels[r] << 16) | drawCounts[r];
    i++;
  }
  return nodeRows;
}

/**
 * Adds a node's rows to one feature's class histogram (bins × K) and returns the lowest bin seen |
 * the highest << 16, or CONSTANT (histogram untouched) when every row has the same bin: that is
 * checked first with bare reads, as deep in a tree most drawn features are constant (the target
 * statistics of one supplier) and need no histogram. Small functions of their own, one per column
 * type, so V8 optimises this hottest loop monomorphically.
 */
function accumulateNarrow(
  columns: Uint8Array,
  column: number,
  nodeRows: NodeRows,
  start: number,
  end: number,
  histogram: Int32Array,
  K: number,
): number {
  const { index, labelWeight } = nodeRows;
  const first = columns[column + index[start]];
  let i = start + 1;
  while (i < end && columns[column + index[i]] === first) i++;
  if (i === end) return CONSTANT;
  for (let j = start; j < i; j++) {
    const lw = labelWeight[j];
    histogram[first * K + (lw >>> 16)] += lw & 0xffff;
  }
  let lo = first;
  let hi = first;
  for (; i < end; i++) {
    const bin = columns[column + index[i]];
    const lw = labelWeight[i];
    histogram[bin * K + (lw >>> 16)] += lw & 0xffff;
    if (bin < lo) lo = bin;
    if (bin > hi) hi = bin;
  }
  return lo | (hi << 16);
}

/** accumulateNarrow for two-byte columns (the same body; kept apart so each stays monomorphic). */
function accumulateWide(
  columns: Uint16Array,
  column: number,
  nodeRows: NodeRows,
  start: number,
  end: number,
  histogram: Int32Array,
  K: number,
): number {
  const { index, labelWeight } = nodeRows;
  const first = columns[column + index[start]];
  let i = start + 1;
  while (i < end && columns[column + index[i]] === first) i++;
  if (i === end) return CONSTANT;
  for (let j = start; j < i; j++) {
    const lw = labelWeight[j];
    histogram[first * K + (lw >>> 16)] += lw & 0xffff;
  }
  let lo = first;
  let hi = first;
  for (; i < end; i++) {
    const bin = columns[column + index[i]];
    const lw = labelWeight[i];
    histogram[bin * K + (lw >>> 16)] += lw & 0xffff;
    if (bin < lo) lo = bin;
    if (bin > hi) hi = bin;
  }
  return lo | (hi << 16);
}

/** One node's class counts and the best split found so far among the features scanned. */
class SplitSearch {
  readonly classCounts: Float64Array;
  private readonly left: Float64Array;
  /** Class counts left of the best split so far. */
  readonly bestLeft: Float64Array;
  size = 0;
  private parentSquares = 0;
  bestScore = -Infinity;
  bestFeature = -1;
  bestThreshold = 0;

  constructor(
    private readonly K: number,
    private readonly minLeaf: number,
  ) {
    this.classCounts = new Float64Array(K);
    this.left = new Float64Array(K);
    this.bestLeft = new Float64Array(K);
  }

  /** Starts a node whose class counts (draws per class, whole numbers) are `nodeCounts`. */
  begin(nodeCounts: Float64Array): void {
    const counts = this.classCounts;
    counts.set(nodeCounts);
    let size = 0;
    let squares = 0;
    for (let k = 0; k < this.K; k++) {
      size += counts[k];
      squares += counts[k] * counts[k];
    }
    this.size = size;
    this.parentSquares = squares;
    this.bestScore = -Infinity;
    this.bestFeature = -1;
    this.bestThreshold = 0;
  }

  isPure(): boolean {
    for (let k = 0; k < this.K; k++) if (this.classCounts[k] === this.size) return true;
    return false;
  }

  /** Best threshold of one feature by the gini proxy sum(left²)/nLeft + sum(right²)/nRight. */
  scan(histogram: Int32Array, lo: number, hi: number, feature: number): void {
    const { K, minLeaf, size, classCounts, left } = this;
    left.fill(0);
    let nLeft = 0;
    let leftSquares = 0;
    let rightSquares = this.parentSquares;
    for (let bin = lo; bin < hi; bin++) {
      const cell = bin * K;
      let binRows = 0;
      for (let k = 0; k < K; k++) {
        const c = histogram[cell + k];
        if (c === 0) continue;
        const l = left[k];
        const r = classCounts[k] - l;
        leftSquares += 2 * l * c + c * c;
        rightSquares += c * c - 2 * r * c;
        left[k] = l + c;
        binRows += c;
      }
      // An empty bin scores as the bin before it, which can never be strictly better.
      if (binRows === 0) continue;
      nLeft += binRows;
      const nRight = size - nLeft;
      if (nLeft < minLeaf) continue;
      if (nRight < minLeaf) break;
      const score = leftSquares / nLeft + rightSquares / nRight;
      if (score > this.bestScore) {
        this.bestScore = score;
        this.bestFeature = feature;
        this.bestThreshold = bin;
        this.bestLeft.set(left);
      }
    }
  }
}

/**
 * Distinct fixed-point leaf distributions of one tree: most leaves of a deep tree are pure, so
 * thousands of leaves share a handful of vectors. Keyed by a numeric hash, compared exactly.
 */
class LeafTable {
  private data = new Uint16Array(64);
  private count = 0;
  private readonly byHash = new Map<number, number[]>();
  private readonly vector: Uint16Array;

  constructor(private readonly classCount: number) {
    this.vector = new Uint16Array(classCount);
  }

  idOf(classCounts: Float64Array, size: number): number {
    const K = this.classCount;
    let hash = 0;
    for (let k = 0; k < K; k++) {
      const v = Math.round((classCounts[k] / size) * LEAF_SCALE);
      this.vector[k] = v;
      hash = (Math.imul(hash, 31) + v) | 0;
    }
    const candidates = this.byHash.get(hash);
    if (candidates !== undefined) {
      for (const id of candidates) if (this.matches(id)) return id;
    }
    const id = this.count++;
    if ((id + 1) * K > this.data.length) {
      const bigger = new Uint16Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data.set(this.vector, id * K);
    if (candidates !== undefined) candidates.push(id);
    else this.byHash.set(hash, [id]);
    return id;
  }

  private matches(id: number): boolean {
    const base = id * this.classCount;
    for (let k = 0; k < this.classCount; k++) if (this.data[base + k] !== this.vector[k]) return false;
    return true;
  }

  values(): Uint16Array {
    return this.data.slice(0, this.count * this.classCount);
  }
}
