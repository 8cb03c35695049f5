/**
 * Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"), with
 * the head fusion and discard ratio of jacobgil/vit-explain, but with the row normalisation done
 * right.
 *
 * Per layer ℓ, from its attention probabilities A_ℓ [heads, N, N]:
 *   1. fuse the heads: element-wise mean, max or min → F_ℓ [N, N];
 *   2. discard: zero the `discardRatio` fraction of F_ℓ's smallest entries (never [0, 0], the
 *      [CLS]→[CLS] entry, as vit-explain keeps it);
 *   3. add the identity for the residual connection: (F_ℓ + I) / 2;
 *   4. renormalise every *row* to sum to 1. vit-explain writes `a / a.sum(dim=-1)`, which
 *      broadcasts the [N] row sums along the last axis and so divides column j by row j's sum;
 *      it only looks right because without discarding every row already sums to 1.
 * The rollout through layer L is R = Ã_L · Ã_{L−1} ··· Ã_1; row t of R says how much token t's
 * final representation draws on each input token.
 *
 * Pure TypeScript on typed arrays (no Node, no DOM): the extension host prepares the layers, the
 * webview multiplies rows, the tests check both.
 */

export type HeadFusion = 'mean' | 'max' | 'min';

export const HEAD_FUSIONS: readonly HeadFusion[] = ['mean', 'max', 'min'];

export interface RolloutOptions {
  headFusion: HeadFusion;
  /** Fraction in [0, 1) of each fused matrix's smallest entries set to zero before the identity is added. */
  discardRatio: number;
}

export const DEFAULT_ROLLOUT_OPTIONS: Readonly<RolloutOptions> = { headFusion: 'mean', discardRatio: 0 };

/** Heads of one layer's attention [heads, N, N] fused element-wise → [N, N]. */
export function fuseHeads(attention: Float32Array, heads: number, tokens: number, fusion: HeadFusion): Float32Array {
  const size = tokens * tokens;
  if (attention.length !== heads * size) {
    throw new RangeError(`attention has ${attention.length} values, expected ${heads}×${tokens}×${tokens}`);
  }
  const out = attention.slice(0, size); // head 0
  for (let h = 1; h < heads; h++) {
    const offset = h * size;
    if (fusion === 'mean') for (let i = 0; i < size; i++) out[i]! += attention[offset + i]!;
    else if (fusion === 'max') for (let i = 0; i < size; i++) out[i] = Math.max(out[i]!, attention[offset + i]!);
    else for (let i = 0; i < size; i++) out[i] = Math.min(out[i]!, attention[offset + i]!);
  }
  if (fusion === 'mean') for (let i = 0; i < size; i++) out[i]! /= heads;
  return out;
}

/**
 * Zeroes the ⌊ratio·length⌋ smallest entries of `matrix` in place, except entry 0. Ties at the
 * threshold are broken by position (lowest index first), so the result is deterministic.
 */
export function discardLowest(matrix: Float32Array, ratio: number): void {
  if (!(ratio >= 0 && ratio < 1)) throw new RangeError(`discard ratio must be in [0, 1), got ${ratio}`);
  const count = Math.floor(matrix.length * ratio);
  if (count === 0) return;
  const threshold = kthSmallest(matrix, count - 1);
  let belowThreshold = 0;
  for (let i = 0; i < matrix.length; i++) if (matrix[i]! < threshold) belowThreshold++;
  let tiesToDrop = count - belowThreshold;
  for (let i = 0; i < matrix.length; i++) {
    const v = matrix[i]!;
    const drop = v < threshold || (v === threshold && tiesToDrop-- > 0);
    // vit-explain filters index 0 out of the chosen indices, so that slot is simply not zeroed.
    if (drop && i !== 0) matrix[i] = 0;
  }
}

/** (M + I) / 2 with each row then divided by its own sum, in place on an [N, N] matrix. */
export function addIdentityAndNormalizeRows(matrix: Float32Array, tokens: number): void {
  for (let r = 0; r < tokens; r++) {
    const row = r * tokens;
    matrix[row + r]! += 1;
    let sum = 0;
    for (let c = 0; c < tokens; c++) sum += matrix[row + c]!;
    // sum ≥ 1 (the identity), so this never divides by zero.
    const scale = 1 / sum;
    for (let c = 0; c < tokens; c++) matrix[row + c]! *= scale;
  }
}

/** One layer's attention [heads, N, N] → its rollout factor Ã [N, N] (steps 1–4 above). */
export function rolloutFactor(attention: Float32Array, heads: number, tokens: number, options: RolloutOptions): Float32Array {
  const fused = fuseHeads(attention, heads, tokens, options.headFusion);
  discardLowest(fused, options.discardRatio);
  addIdentityAndNormalizeRows(fused, tokens);
  return fused;
}

/**
 * Row `token` of Ã_last ··· Ã_0 (the rollout through layer `last`, 0-based), by vector–matrix
 * products: O(layers·N²) instead of the O(layers·N³) full product, so it can follow the mouse.
 */
export function rolloutRow(factors: readonly Float32Array[], tokens: number, token: number, last = factors.length - 1): Float32Array {
  if (last < 0 || last >= factors.length) throw new RangeError(`layer ${last} is outside 0…${factors.length - 1}`);
  if (token < 0 || token >= tokens) throw new RangeError(`token ${token} is outside 0…${tokens - 1}`);
  let row = factors[last]!.slice(token * tokens, (token + 1) * tokens);
  let next = new Float32Array(tokens);
  for (let layer = last - 1; layer >= 0; layer--) {
    const m = factors[layer]!;
    next.fill(0);
    // Eight rows of m per pass over `next`: an eighth of the loads and stores of `next`, which
    // is what bounds this loop (ViT-L/14@336: 23 × 577² multiply-adds per hovered patch).
    let k = 0;
    for (; k + 7 < tokens; k += 8) {
      const w0 = row[k]!, w1 = row[k + 1]!, w2 = row[k + 2]!, w3 = row[k + 3]!;
      const w4 = row[k + 4]!, w5 = row[k + 5]!, w6 = row[k + 6]!, w7 = row[k + 7]!;
      const o0 = k * tokens, o1 = o0 + tokens, o2 = o1 + tokens, o3 = o2 + tokens;
      const o4 = o3 + tokens, o5 = o4 + tokens, o6 = o5 + tokens, o7 = o6 + tokens;
      for (let c = 0; c < tokens; c++) {
        next[c]! += w0 * m[o0 + c]! + w1 * m[o1 + c]! + w2 * m[o2 + c]! + w3 * m[o3 + c]! + w4 * m[o4 + c]! + w5 * m[o5 + c]! + w6 * m[o6 + c]! + w7 * m[o7 + c]!;
      }
    }
    for (; k < tokens; k++) {
      const w = row[k]!;
      const offset = k * tokens;
      for (let c = 0; c < tokens; c++) next[c]! += w * m[offset + c]!;
    }
    [row, next] = [next, row];
  }
  return row;
}

/** The full rollout matrix Ã_last ··· Ã_0 [N, N]; O(N³) per layer, for tests and small models. */
export function rolloutMatrix(factors: readonly Float32Array[], tokens: number, last = factors.length - 1): Float32Array {
  const out = new Float32Array(tokens * tokens);
  for (let t = 0; t < tokens; t++) out.set(rolloutRow(factors, tokens, t, last), t * tokens);
  return out;
}

/** The k-th smallest value (0-based) of `values`, by quickselect on a copy. */
function kthSmallest(values: Float32Array, k: number): number {
  const a = values.slice();
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    // Median of three keeps sorted and constant inputs (common here: many exact zeros) linear.
    const mid = (lo + hi) >>> 1;
    const pivot = median3(a[lo]!, a[mid]!, a[hi]!);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

function median3(a: number, b: number, c: number): number {
  return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
}
