/**
 * Mean attention distance (ViT paper, Figure 7 right and Appendix D.7): per head and layer, the
 * distance in image space across which attention gathers information, averaged over queries and
 * images; plotted against depth.
 *
 * Convention (that of the common reimplementations, e.g. keras-io "Investigating Vision
 * Transformer representations"): prefix tokens ([CLS], distillation) are excluded both as queries
 * and as keys, since they have no place in the image. Unlike that code, each query's remaining
 * attention over the patch keys is renormalised to sum to 1, so the value is a true weighted mean
 * distance and does not shrink with the attention mass a head puts on [CLS] (`renormalize: false`
 * gives the keras-io numbers).
 *
 *   d̄(layer, head) = mean over images, mean over patch queries q of
 *                    Σ_k a(q, k) · ‖centre(q) − centre(k)‖ / Σ_k a(q, k)       (k over patches)
 *
 * with centres in pixels of the model input: patch distance × patch size.
 */
import { CancelledError } from '../errors.js';
import type { PatchGrid } from '../models/vit.js';

export interface AttentionDistanceOptions {
  /** Renormalise each query's attention over the patch keys (default true; see above). */
  renormalize?: boolean;
}

/** Euclidean distance in pixels between the centres of every pair of patches, [P, P]. */
export function patchDistanceMatrix(rows: number, cols: number, patchSize: number): Float64Array {
  const P = rows * cols;
  const out = new Float64Array(P * P);
  for (let i = 0; i < P; i++) {
    const ri = Math.floor(i / cols);
    const ci = i % cols;
    for (let j = 0; j < P; j++) out[i * P + j] = patchSize * Math.hypot(ri - Math.floor(j / cols), ci - (j % cols));
  }
  return out;
}

/** One layer of one image: `attention` [heads, N, N] on `grid` → mean distance per head, [heads] in pixels. */
export function meanAttentionDistance(attention: Float32Array, heads: number, grid: PatchGrid, options: AttentionDistanceOptions = {}, distances?: Float64Array): Float64Array {
  const N = grid.tokens;
  const P = grid.rows * grid.cols;
  const s = grid.prefixTokens;
  if (attention.length !== heads * N * N) throw new RangeError(`attention has ${attention.length} values, expected ${heads}×${N}×${N}`);
  const dist = distances ?? patchDistanceMatrix(grid.rows, grid.cols, grid.patchSize);
  const renormalize = options.renormalize ?? true;
  const out = new Float64Array(heads);
  for (let h = 0; h < heads; h++) {
    let total = 0;
    for (let q = 0; q < P; q++) {
      const row = (h * N + s + q) * N + s;
      let weighted = 0;
      let mass = 0;
      for (let k = 0; k < P; k++) {
        const a = attention[row + k]!;
        weighted += a * dist[q * P + k]!;
        mass += a;
      }
      total += renormalize ? (mass > 0 ? weighted / mass : 0) : weighted;
    }
    out[h] = total / P;
  }
  return out;
}

export interface AttentionDistanceSummary {
  layers: number;
  heads: number;
  /** How many images were averaged. */
  images: number;
  /** [layers, heads] mean distance in pixels. */
  distance: Float64Array;
}

/** Accumulates mean attention distances over images (each image counts equally; grids may differ). */
export class AttentionDistanceAccumulator {
  private readonly sums: Float64Array;
  private readonly counts: Int32Array;
  private readonly distanceCache = new Map<string, Float64Array>();

  constructor(
    readonly layers: number,
    readonly heads: number,
    private readonly options: AttentionDistanceOptions = {},
  ) {
    this.sums = new Float64Array(layers * heads);
    this.counts = new Int32Array(layers);
  }

  add(layer: number, attention: Float32Array, grid: PatchGrid): void {
    if (!(layer >= 0 && layer < this.layers)) throw new RangeError(`layer ${layer} is outside 0…${this.layers - 1}`);
    const key = `${grid.rows}x${grid.cols}@${grid.patchSize}`;
    let dist = this.distanceCache.get(key);
    if (!dist) {
      dist = patchDistanceMatrix(grid.rows, grid.cols, grid.patchSize);
      this.distanceCache.set(key, dist);
    }
    const perHead = meanAttentionDistance(attention, this.heads, grid, this.options, dist);
    for (let h = 0; h < this.heads; h++) this.sums[layer * this.heads + h]! += perHead[h]!;
    this.counts[layer]!++;
  }

  summary(): AttentionDistanceSummary {
    const distance = this.sums.map((s, i) => {
      const n = this.counts[Math.floor(i / this.heads)]!;
      return n > 0 ? s / n : NaN;
    });
    return { layers: this.layers, heads: this.heads, images: Math.max(0, ...this.counts), distance };
  }
}

/** The largest distance between two patch centres of a grid, in pixels (the plot's natural top). */
export function maxPatchDistance(grid: Pick<PatchGrid, 'rows' | 'cols' | 'patchSize'>): number {
  return grid.patchSize * Math.hypot(grid.rows - 1, grid.cols - 1);
}

/** One image's attention, as attentionDistanceOverImages asks for it. */
export interface ImageAttentions {
  grid: PatchGrid;
  /** Per layer: [heads, N, N]. */
  attentions: readonly Float32Array[];
}

export interface OverImagesOptions extends AttentionDistanceOptions {
  signal?: AbortSignal;
  /** After each image: how many are done. */
  onImage?(done: number, total: number): void;
}

/**
 * Mean attention distance averaged over `count` images, each run by `runImage(i)` in turn (so
 * only one image's attention is held at a time). Also returns the largest patch distance seen.
 */
export async function attentionDistanceOverImages(
  count: number,
  layers: number,
  heads: number,
  runImage: (index: number) => Promise<ImageAttentions>,
  options: OverImagesOptions = {},
): Promise<AttentionDistanceSummary & { maxDistance: number }> {
  const accumulator = new AttentionDistanceAccumulator(layers, heads, options);
  let maxDistance = 0;
  for (let i = 0; i < count; i++) {
    if (options.signal?.aborted) throw new CancelledError();
    const { grid, attentions } = await runImage(i);
    attentions.forEach((a, l) => accumulator.add(l, a, grid));
    maxDistance = Math.max(maxDistance, maxPatchDistance(grid));
    options.onImage?.(i + 1, count);
  }
  return { ...accumulator.summary(), maxDistance };
}
