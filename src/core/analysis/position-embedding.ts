/**
 * ViT paper, Figure 7 centre: the cosine similarity of each patch's position embedding with every
 * other one, drawn as a grid of grids (tile (r, c) shows row r·cols + c of the similarity matrix
 * on the patch grid). Prefix tokens ([CLS], DeiT's distillation token) have no place on the grid
 * and are left out.
 *
 * For another input size the table is first resized as the model resizes it (PyTorch bicubic,
 * interpolate.ts), so the user sees the similarities the model actually uses at that size.
 */
import { check } from '../errors.js';
import { interpolateBicubicTorch } from '../image/interpolate.js';
import type { LoadedModel } from '../models/runner.js';

export interface PositionTable {
  rows: number;
  cols: number;
  dim: number;
  /** [rows·cols, dim], patch (r, c) at row r·cols + c; prefix tokens removed. */
  table: Float32Array;
}

/** The trained (native-grid) patch position embeddings of a ViT or CLIP vision tower. */
export async function readPositionTable(loaded: LoadedModel): Promise<PositionTable & { prefixTokens: number }> {
  const { checkpoint } = loaded;
  check(loaded.kind !== 'fuyu', 'Fuyu has no learned position embeddings for image patches (its positions are rotary).', checkpoint.dir);
  if (loaded.kind === 'vit') {
    const view = checkpoint.withPrefixes([`${checkpoint.modelType}.`, '']);
    const G = loaded.model.nativeGrid;
    const D = loaded.model.config.hidden_size;
    const prefixTokens = loaded.model.grid(loaded.model.config.image_size, loaded.model.config.image_size).prefixTokens;
    const all = await view.readF32('embeddings.position_embeddings'); // [1, prefix + G·G, D]
    return { rows: G, cols: G, dim: D, table: all.slice(prefixTokens * D), prefixTokens };
  }
  const G = loaded.model.nativeGrid;
  const D = loaded.model.config.vision_config.hidden_size;
  const all = await checkpoint.withPrefixes(['']).readF32('vision_model.embeddings.position_embedding.weight'); // [1 + G·G, D]
  return { rows: G, cols: G, dim: D, table: all.slice(D), prefixTokens: 1 };
}

/** The table resized to a rows×cols patch grid as the model does for another input size. */
export function resizePositionTable(table: PositionTable, rows: number, cols: number): PositionTable {
  if (rows === table.rows && cols === table.cols) return table;
  return { rows, cols, dim: table.dim, table: interpolateBicubicTorch(table.table, table.rows, table.cols, table.dim, rows, cols) };
}

/**
 * cos(e_i, e_j) = ⟨e_i, e_j⟩ / (‖e_i‖ ‖e_j‖) for every pair of rows: [P, P] with P = rows·cols,
 * symmetric, 1 on the diagonal (0 where a row is all zeros).
 */
export function positionSimilarity(table: PositionTable): Float32Array {
  const P = table.rows * table.cols;
  const D = table.dim;
  check(table.table.length === P * D, `position table has ${table.table.length} values, expected ${P}×${D}.`);
  const unit = new Float64Array(P * D);
  for (let i = 0; i < P; i++) {
    let norm = 0;
    for (let k = 0; k < D; k++) norm += table.table[i * D + k]! ** 2;
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let k = 0; k < D; k++) unit[i * D + k] = table.table[i * D + k]! * inv;
  }
  const out = new Float32Array(P * P);
  for (let i = 0; i < P; i++) {
    for (let j = i; j < P; j++) {
      let dot = 0;
      for (let k = 0; k < D; k++) dot += unit[i * D + k]! * unit[j * D + k]!;
      out[i * P + j] = dot;
      out[j * P + i] = dot;
    }
  }
  return out;
}
