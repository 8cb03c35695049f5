/**
 * Per-layer maps of where [CLS] looks, for static figures: the raw attention of the [CLS] query
 * averaged over heads, and the rollout (rollout.ts) of [CLS] through each layer; both restricted
 * to the patch keys, row-major over the patch grid.
 */
import { fuseHeads, rolloutFactor, rolloutRow, DEFAULT_ROLLOUT_OPTIONS, type RolloutOptions } from './rollout.js';
import type { PatchGrid } from '../models/vit.js';

/** a_ℓ(p) = (1/H) Σ_h A_ℓ[h, 0, prefix + p]: [rows·cols]. */
export function clsAttentionMap(attention: Float32Array, heads: number, grid: PatchGrid): Float32Array {
  const N = grid.tokens;
  return fuseHeads(attention, heads, N, 'mean').slice(grid.prefixTokens, N);
}

/** Row 0 of the rollout through layer ℓ, for every ℓ, at the patch keys: one [rows·cols] map per layer. */
export function clsRolloutMaps(attentions: readonly Float32Array[], heads: number, grid: PatchGrid, options: RolloutOptions = DEFAULT_ROLLOUT_OPTIONS): Float32Array[] {
  const N = grid.tokens;
  const factors = attentions.map((a) => rolloutFactor(a, heads, N, options));
  return factors.map((_, layer) => rolloutRow(factors, N, 0, layer).slice(grid.prefixTokens));
}
