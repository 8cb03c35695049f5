/**
 * The learned convolution of a ViT/CLIP: the patch-embedding filters (a Conv2d with kernel =
 * stride = patch size), shown as RGB tiles, and their response maps on an image — the conv output
 * before the class token and position embeddings are added (ViT: + bias; CLIP has none).
 *
 * Responses are computed here in plain JS from the preprocessed pixels and the filter weights,
 * not fetched from the graph: it is the same sum the model does (PyTorch Conv2d is a
 * cross-correlation: no kernel flip), written out so the method card's formula is the code.
 *
 * Fuyu has no Conv2d but a Linear on flattened patches (vision_embed_tokens), which is the same
 * operation with another memory layout; it is read into the same [D, 3, p, p] form.
 */
import { check } from '../errors.js';
import type { LoadedModel } from '../models/runner.js';
import type { RgbImage } from '../image/types.js';

export interface PatchEmbeddingFilters {
  /** Output channels D (= hidden size). */
  count: number;
  patchSize: number;
  /** [D, 3, p, p], channel-major as torch's Conv2d stores it. */
  weight: Float32Array;
  /** [D], or undefined (CLIP's patch embedding has no bias). */
  bias: Float32Array | undefined;
  /** Stored tensor name, for the method card. */
  tensor: string;
}

/** The patch-embedding filters of a loaded model, read from its checkpoint as float32. */
export async function readPatchEmbeddingFilters(loaded: LoadedModel): Promise<PatchEmbeddingFilters> {
  const { checkpoint } = loaded;
  switch (loaded.kind) {
    case 'vit': {
      // The prefixes openModel uses: ViTForImageClassification stores `vit.*`, a bare ViTModel none.
      const view = checkpoint.withPrefixes([`${checkpoint.modelType}.`, '']);
      const { hidden_size: D, patch_size: p } = loaded.model.config;
      const name = 'embeddings.patch_embeddings.projection.weight';
      return { count: D, patchSize: p, weight: await view.readF32(name), bias: await view.readF32('embeddings.patch_embeddings.projection.bias'), tensor: view.get(name).name };
    }
    case 'clip': {
      const view = checkpoint.withPrefixes(['']);
      const { hidden_size: D, patch_size: p } = loaded.model.config.vision_config;
      const name = 'vision_model.embeddings.patch_embedding.weight';
      return { count: D, patchSize: p, weight: await view.readF32(name), bias: undefined, tensor: name };
    }
    case 'fuyu': {
      const view = checkpoint.withPrefixes(['', 'model.', 'language_model.']);
      const { hidden_size: D, patch_size: p } = loaded.model.config;
      const linear = await view.readF32('vision_embed_tokens.weight'); // [D, p·p·3], patch values (y·p + x)·3 + channel
      const weight = new Float32Array(D * 3 * p * p);
      for (let d = 0; d < D; d++) {
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < p * p; i++) weight[((d * 3 + c) * p * p) + i] = linear[d * p * p * 3 + i * 3 + c]!;
        }
      }
      return { count: D, patchSize: p, weight, bias: await view.readF32('vision_embed_tokens.bias'), tensor: view.get('vision_embed_tokens.weight').name };
    }
  }
}

/**
 * How a filter's values become 0–255 in its tile:
 * - `minmax`: per filter, its own minimum → 0 and maximum → 255 over all 3·p² values (the usual
 *   filter picture; each tile uses its full range, so tiles are not comparable in magnitude and
 *   zero is not a fixed grey);
 * - `symmetric`: per filter, 0 → mid-grey 128, ±max|w| → 255/0 (keeps the sign visible).
 * A constant filter is mid-grey in both.
 */
export type TileNormalization = 'minmax' | 'symmetric';

/** One [3, p, p] vector (a filter or a principal component) as a p×p RGB tile. */
export function vectorTile(values: ArrayLike<number>, offset: number, patchSize: number, normalization: TileNormalization = 'minmax'): RgbImage {
  const n = patchSize * patchSize;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < 3 * n; i++) {
    const v = values[offset + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const bound = Math.max(Math.abs(min), Math.abs(max));
  const level = normalization === 'minmax'
    ? (v: number): number => (max > min ? (255 * (v - min)) / (max - min) : 128)
    : (v: number): number => (bound > 0 ? 127.5 + (127.5 * v) / bound : 128);
  const data = new Uint8Array(3 * n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) data[3 * i + c] = Math.min(255, Math.max(0, Math.round(level(values[offset + c * n + i]!))));
  }
  return { width: patchSize, height: patchSize, data };
}

/** Every filter as a tile, in channel order. */
export function filterTiles(filters: PatchEmbeddingFilters, normalization: TileNormalization = 'minmax'): RgbImage[] {
  const size = 3 * filters.patchSize ** 2;
  return Array.from({ length: filters.count }, (_, d) => vectorTile(filters.weight, d * size, filters.patchSize, normalization));
}

export interface PatchResponses {
  rows: number;
  cols: number;
  /** [D, rows·cols]: map d, patch r·cols + c. */
  maps: Float32Array;
}

/**
 * r_d(row, col) = b_d + Σ_c Σ_i Σ_j w_d[c, i, j] · x[c, row·p + i, col·p + j] on `pixelValues`
 * CHW [3, height, width] (the preprocessed input): Conv2d with stride p; pixels past the last whole
 * patch are dropped, as the model drops them.
 */
export function patchResponses(pixelValues: Float32Array, height: number, width: number, filters: PatchEmbeddingFilters): PatchResponses {
  check(pixelValues.length === 3 * height * width, `pixel values have ${pixelValues.length} values, expected 3×${height}×${width}.`);
  const { count: D, patchSize: p, weight, bias } = filters;
  const rows = Math.floor(height / p);
  const cols = Math.floor(width / p);
  const cells = rows * cols;
  const maps = new Float32Array(D * cells);
  const patch = new Float32Array(3 * p * p);
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) {
      // Gather the patch once in the filters' [3, p, p] order; then each map is one dot product.
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < p; i++) {
          const src = c * height * width + (r * p + i) * width + q * p;
          patch.set(pixelValues.subarray(src, src + p), (c * p + i) * p);
        }
      }
      const cell = r * cols + q;
      for (let d = 0; d < D; d++) {
        let sum = bias ? bias[d]! : 0;
        const base = d * patch.length;
        for (let k = 0; k < patch.length; k++) sum += weight[base + k]! * patch[k]!;
        maps[d * cells + cell] = sum;
      }
    }
  }
  return { rows, cols, maps };
}

export interface ChannelEnergy {
  channel: number;
  /** Mean of the squared responses over the patches. */
  energy: number;
}

/** Output channels by the energy of their response map, highest first (ties: lower channel first). */
export function rankByEnergy(responses: PatchResponses): ChannelEnergy[] {
  const cells = responses.rows * responses.cols;
  const D = responses.maps.length / cells;
  const out: ChannelEnergy[] = [];
  for (let d = 0; d < D; d++) {
    let sum = 0;
    for (let i = 0; i < cells; i++) sum += responses.maps[d * cells + i]! ** 2;
    out.push({ channel: d, energy: sum / cells });
  }
  return out.sort((a, b) => b.energy - a.energy || a.channel - b.channel);
}
