import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { deriveSeed } from './random';
import { addTreeVotes, walkTreeOf } from './treeWalk';
import {
  growTree,
  LEAF_SCALE,
  toColumns,
  type ColumnMatrix,
  type Tree,
  type TrainingMatrix,
  type TreeParams,
} from './tree';

export type MaxFeatures = 'sqrt' | 'all' | number;

export interface ForestParams {
  trees: number;
  maxFeatures: MaxFeatures;
  minSamplesLeaf: number;
  maxDepth: number;
  seed: number;
  /** Worker threads (trees are independent); 1 grows them on the calling thread. Default: up to 2. */
  threads?: number;
  /** Index of the first tree, so trees added by a warm start draw fresh seeds. */
  firstTreeIndex?: number;
  onTreeDone?: (done: number, total: number) => void;
  /** Told once how many threads grow the trees (1 when no worker script is built beside this module). */
  onThreads?: (threads: number) => void;
}

/** A trained forest: trees over the encoder's features, voting over `classes` (sorted class keys). */
export interface Forest {
  classes: string[];
  features: number;
  trees: Tree[];
}

/** scikit-learn's max_features: 'sqrt' → floor(√p) (at least 1), 'all' → p, a number → min(n, p). */
export function resolveFeaturesPerSplit(maxFeatures: MaxFeatures, features: number): number {
  if (maxFeatures === 'all') return features;
  if (maxFeatures === 'sqrt') return Math.max(1, Math.floor(Math.sqrt(features)));
  return Math.max(1, Math.min(features, Math.floor(maxFeatures)));
}

/**
 * Grows `trees` trees. Tree i always uses seed deriveSeed(seed, firstTreeIndex + i), so the forest
 * is the same whichever thread grows which tree, and the same with 1 thread or 2.
 */
export async function trainForest(
  matrix: TrainingMatrix,
  classes: string[],
  params: ForestParams,
): Promise<Forest> {
  const treeParams: TreeParams = {
    featuresPerSplit: resolveFeaturesPerSplit(params.maxFeatures, matrix.features),
    minSamplesLeaf: params.minSamplesLeaf,
    maxDepth: params.maxDepth,
  };
  const seeds = Array.from({ length: params.trees }, (_, i) =>
    deriveSeed(params.seed, (params.firstTreeIndex ?? 0) + i),
  );
  const threads = Math.min(params.trees, params.threads ?? Math.min(2, availableParallelism()));
  const inWorkers = threads > 1 && workerScript() !== undefined;
  params.onThreads?.(inWorkers ? threads : 1);
  const columns = toColumns(matrix, { shared: inWorkers });
  const trees = inWorkers
    ? await growInWorkers(columns, treeParams, seeds, threads, params.onTreeDone)
    : await growHere(columns, treeParams, seeds, params.onTreeDone);
  return { classes, features: matrix.features, trees };
}

async function growHere(
  matrix: ColumnMatrix,
  params: TreeParams,
  seeds: number[],
  onTreeDone?: (done: number, total: number) => void,
): Promise<Tree[]> {
  const trees: Tree[] = [];
  for (const seed of seeds) {
    trees.push(growTree(matrix, params, seed));
    onTreeDone?.(trees.length, seeds.length);
    // Lets timers (progress bars, heartbeats) run between trees.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return trees;
}

/** The compiled worker beside this module; absent when running from TypeScript sources (tests). */
function workerScript(): string | undefined {
  const file = path.join(__dirname, 'forestWorker.js');
  return existsSync(file) ? file : undefined;
}

function sharedLabels(labels: Uint8Array): Uint8Array {
  if (labels.buffer instanceof SharedArrayBuffer) return labels;
  const copy = new Uint8Array(new SharedArrayBuffer(labels.byteLength));
  copy.set(labels);
  return copy;
}

export interface WorkerInput {
  matrix: ColumnMatrix;
  params: TreeParams;
}
export interface WorkerTask {
  treeIndex: number;
  seed: number;
}
export type WorkerResult =
  { kind: 'tree'; treeIndex: number; tree: Tree } | { kind: 'error'; treeIndex: number; message: string };

async function growInWorkers(
  matrix: ColumnMatrix,
  params: TreeParams,
  seeds: number[],
  threads: number,
  onTreeDone?: (done: number, total: number) => void,
): Promise<Tree[]> {
  const input: WorkerInput = {
    params,
    // The columns are already shared; labels are shared so no worker gets a copy.
    matrix: { ...matrix, labels: sharedLabels(matrix.labels) },
  };
  const trees = new Array<Tree>(seeds.length);
  let next = 0;
  let done = 0;
  const workers = Array.from(
    { length: threads },
    () => new Worker(workerScript() as string, { workerData: input }),
  );
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const dispatch = (): void => {
              if (next >= seeds.length) return resolve();
              const task: WorkerTask = { treeIndex: next, seed: seeds[next] };
              next++;
              worker.postMessage(task);
            };
            worker.on('message', (result: WorkerResult) => {
              if (result.kind === 'error') {
                reject(new Error(`tree ${result.treeIndex} failed in a worker: ${result.message}`));
                return;
              }
              trees[result.treeIndex] = result.tree;
              onTreeDone?.(++done, seeds.length);
              dispatch();
            });
            worker.on('error', reject);
            worker.on('exit', (code) => {
              if (code !== 0) reject(new Error(`forest worker exited with code ${code}`));
            });
            dispatch();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return trees;
}

/**
 * Soft vote: the mean over trees of each row's leaf class distribution (scikit-learn's
 * predict_proba). Tree-major over the whole chunk, so one tree's nodes stay in cache while it
 * walks every row. Leaf values are integers summed exactly (50 trees × 65535 fits a Uint32).
 * Returns rows × classes probabilities.
 */
export function predictProba(forest: Forest, bins: Uint16Array, rows: number): Float32Array {
  const K = forest.classes.length;
  const F = forest.features;
  if (bins.length !== rows * F) throw new RangeError(`expected ${rows * F} bins, got ${bins.length}`);
  const sums = new Uint32Array(rows * K);
  const ids = allRows(rows);
  for (const tree of forest.trees) addTreeVotes(walkTreeOf(tree, K), bins, ids, rows, F, K, sums);
  const probabilities = new Float32Array(rows * K);
  const scale = 1 / (LEAF_SCALE * Math.max(1, forest.trees.length));
  for (let i = 0; i < sums.length; i++) probabilities[i] = sums[i] * scale;
  return probabilities;
}

function allRows(rows: number): Int32Array {
  const ids = new Int32Array(rows);
  for (let r = 0; r < rows; r++) ids[r] = r;
  return ids;
}

/**
 * The predicted class per row, exactly argmaxRows(predictProba(...)) but cheaper: once the leader
 * of a row's vote is ahead of the runner-up by more than the remaining trees could ever give
 * (LEAF_SCALE each), the remaining trees skip that row. Confident rows, most of a batch, are
 * decided after a little over half the forest. For evaluation, where only the class counts.
 */
export function predictClasses(forest: Forest, bins: Uint16Array, rows: number): Uint8Array {
  const K = forest.classes.length;
  const F = forest.features;
  if (bins.length !== rows * F) throw new RangeError(`expected ${rows * F} bins, got ${bins.length}`);
  const sums = new Uint32Array(rows * K);
  const active = allRows(rows);
  let open = rows;
  const trees = forest.trees;
  for (let t = 0; t < trees.length; t++) {
    addTreeVotes(walkTreeOf(trees[t], K), bins, active, open, F, K, sums);
    const margin = (trees.length - t - 1) * LEAF_SCALE;
    // Worth checking only once a row can be decided at all; then every few trees.
    if (margin < (t + 1) * LEAF_SCALE && t % 4 === 3) open = undecided(sums, K, active, open, margin);
  }
  const out = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (sums[r * K + k] > sums[r * K + best]) best = k;
    out[r] = best;
  }
  return out;
}

/** Keeps (in place, in order) the rows whose leader is not more than `margin` ahead; returns how many. */
function undecided(sums: Uint32Array, K: number, active: Int32Array, open: number, margin: number): number {
  let kept = 0;
  for (let i = 0; i < open; i++) {
    const r = active[i];
    let first = 0;
    let second = 0;
    for (let k = 0; k < K; k++) {
      const v = sums[r * K + k];
      if (v > first) {
        second = first;
        first = v;
      } else if (v > second) second = v;
    }
    if (first - second <= margin) active[kept++] = r;
  }
  return kept;
}

/** Index of the most probable class per row; ties go to the first class, as numpy's argmax does. */
export function argmaxRows(probabilities: Float32Array, classCount: number): Uint8Array {
  const rows = probabilities.length / classCount;
  const out = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let k = 1; k < classCount; k++) {
      if (probabilities[r * classCount + k] > probabilities[r * classCount + best]) best = k;
    }
    out[r] = best;
  }
  return out;
}

/** Re-expresses a forest's leaves over a larger class list (new classes get probability 0). */
export function withClasses(forest: Forest, classes: string[]): Forest {
  const from = forest.classes;
  if (from.length === classes.length && from.every((c, i) => c === classes[i])) return forest;
  const target = from.map((c) => classes.indexOf(c));
  if (target.some((t) => t < 0)) throw new RangeError('the new class list must contain every old class');
  const trees = forest.trees.map((tree) => {
    const vectors = tree.leafValues.length / from.length;
    const leafValues = new Uint16Array(vectors * classes.length);
    for (let v = 0; v < vectors; v++) {
      for (let k = 0; k < from.length; k++) {
        leafValues[v * classes.length + target[k]] = tree.leafValues[v * from.length + k];
      }
    }
    return { ...tree, leafValues };
  });
  return { classes, features: forest.features, trees };
}

/**
 * Warm start: the newest `keep` trees of old followed by new. Both must read the same features
 * (the warm-started encoder keeps the layout) and are re-expressed over the union of classes.
 */
export function mergeForests(older: Forest, newer: Forest, keep: number, classes: string[]): Forest {
  if (older.features !== newer.features) {
    throw new RangeError(`cannot merge forests over ${older.features} and ${newer.features} features`);
  }
  const all = [...withClasses(older, classes).trees, ...withClasses(newer, classes).trees];
  return { classes, features: newer.features, trees: all.slice(Math.max(0, all.length - keep)) };
}
