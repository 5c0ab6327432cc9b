import { LEAF, LEAF_SCALE, type Tree } from './tree';

/**
 * The prediction form of a tree, built once per tree and kept as long as the tree is:
 *
 * - `nodes`, two words a node: (feature | threshold << 8) and the left child (the right one is next
 *   to it). A step of the walk reads one cache line instead of three (feature, threshold and child
 *   arrays).
 * - A leaf's first word is negative, and its threshold (the word's upper 24 bits read unsigned) is
 *   above any 16-bit bin, and its child is itself. A walk that reached a leaf stays there, so several
 *   rows can be walked in lockstep without a branch per row: their dependent loads overlap instead of
 *   waiting on each other, and the loop ends when every walk's word is negative.
 * - `vote` per leaf: -(class + 1) when the leaf's distribution is a single class (most leaves of a
 *   fully grown tree: a vote is one addition instead of K), else its vector's index in `leafValues`.
 */
export interface WalkTree {
  readonly nodes: Int32Array;
  readonly vote: Int32Array;
  readonly leafValues: Uint16Array;
}

/** feature 0, threshold 0xffffff: negative, and no bin (≤ 0xffff) is above it. */
const LEAF_WORD = (0xffffff << 8) | 0;

const walkTrees = new WeakMap<Tree, WalkTree>();

export function walkTreeOf(tree: Tree, K: number): WalkTree {
  let walk = walkTrees.get(tree);
  if (walk === undefined) {
    const { feature, threshold, child, leafValues } = tree;
    const nodes = new Int32Array(feature.length * 2);
    const vote = new Int32Array(feature.length);
    for (let n = 0; n < feature.length; n++) {
      if (feature[n] === LEAF) {
        nodes[2 * n] = LEAF_WORD;
        nodes[2 * n + 1] = n;
        vote[n] = leafVote(leafValues, child[n], K);
      } else {
        nodes[2 * n] = feature[n] | (threshold[n] << 8);
        nodes[2 * n + 1] = child[n];
      }
    }
    walk = { nodes, vote, leafValues };
    walkTrees.set(tree, walk);
  }
  return walk;
}

function leafVote(leafValues: Uint16Array, vector: number, K: number): number {
  let pure = -1;
  for (let k = 0; k < K; k++) {
    const v = leafValues[vector * K + k];
    if (v === LEAF_SCALE && pure < 0) pure = k;
    else if (v !== 0) return vector;
  }
  return pure < 0 ? vector : -(pure + 1);
}

/**
 * One tree's leaf distributions added to the sums of rows rowIds[0…count). Rows go four at a time
 * in lockstep (see WalkTree); the sums are integers, so the order of the additions cannot change a
 * result.
 */
export function addTreeVotes(
  tree: WalkTree,
  bins: Uint16Array,
  rowIds: Int32Array,
  count: number,
  F: number,
  K: number,
  sums: Uint32Array,
): void {
  const { nodes, vote, leafValues } = tree;
  const rootWord = nodes[0];
  let i = 0;
  for (; i + 3 < count; i += 4) {
    const r0 = rowIds[i];
    const r1 = rowIds[i + 1];
    const r2 = rowIds[i + 2];
    const r3 = rowIds[i + 3];
    const b0 = r0 * F;
    const b1 = r1 * F;
    const b2 = r2 * F;
    const b3 = r3 * F;
    let n0 = 0;
    let n1 = 0;
    let n2 = 0;
    let n3 = 0;
    let w0 = rootWord;
    let w1 = rootWord;
    let w2 = rootWord;
    let w3 = rootWord;
    while ((w0 & w1 & w2 & w3) >= 0) {
      n0 = nodes[2 * n0 + 1] + (((w0 >>> 8) - bins[b0 + (w0 & 0xff)]) >>> 31);
      n1 = nodes[2 * n1 + 1] + (((w1 >>> 8) - bins[b1 + (w1 & 0xff)]) >>> 31);
      n2 = nodes[2 * n2 + 1] + (((w2 >>> 8) - bins[b2 + (w2 & 0xff)]) >>> 31);
      n3 = nodes[2 * n3 + 1] + (((w3 >>> 8) - bins[b3 + (w3 & 0xff)]) >>> 31);
      w0 = nodes[2 * n0];
      w1 = nodes[2 * n1];
      w2 = nodes[2 * n2];
      w3 = nodes[2 * n3];
    }
    addVote(sums, r0 * K, vote[n0], leafValues, K);
    addVote(sums, r1 * K, vote[n1], leafValues, K);
    addVote(sums, r2 * K, vote[n2], leafValues, K);
    addVote(sums, r3 * K, vote[n3], leafValues, K);
  }
  for (; i < count; i++) {
    const r = rowIds[i];
    const base = r * F;
    let node = 0;
    let word = rootWord;
    while (word >= 0) {
      node = nodes[2 * node + 1] + (((word >>> 8) - bins[base + (word & 0xff)]) >>> 31);
      word = nodes[2 * node];
    }
    addVote(sums, r * K, vote[node], leafValues, K);
  }
}

function addVote(sums: Uint32Array, out: number, leaf: number, leafValues: Uint16Array, K: number): void {
  if (leaf < 0) sums[out - leaf - 1] += LEAF_SCALE;
  else for (let k = 0; k < K; k++) sums[out + k] += leafValues[leaf * K + k];
}
