import * as assert from 'node:assert/strict';
import { AttentionDistanceAccumulator, meanAttentionDistance, patchDistanceMatrix } from '../../../src/core/analysis/attention-distance';
import { clsAttentionMap, clsRolloutMaps } from '../../../src/core/analysis/attention-maps';
import type { PatchGrid } from '../../../src/core/models/vit';

/** rows×cols patches of 16 px behind one [CLS]. */
function gridOf(rows: number, cols: number, patchSize = 16): PatchGrid {
  return { height: rows * patchSize, width: cols * patchSize, patchSize, rows, cols, prefixTokens: 1, tokens: 1 + rows * cols };
}

/** [heads, N, N] attention where `row(h, q)` gives each query's distribution over all N keys. */
function attentionOf(heads: number, grid: PatchGrid, row: (h: number, q: number) => number[]): Float32Array {
  const N = grid.tokens;
  const out = new Float32Array(heads * N * N);
  for (let h = 0; h < heads; h++) for (let q = 0; q < N; q++) out.set(row(h, q), (h * N + q) * N);
  return out;
}

const oneHot = (N: number, k: number): number[] => Array.from({ length: N }, (_, i) => (i === k ? 1 : 0));

describe('mean attention distance', () => {
  const grid = gridOf(2, 2);
  const N = grid.tokens;
  // On a 2×2 grid every patch sees itself at 0, two neighbours at 16 px and the diagonal at 16√2.
  const uniformMean = (0 + 16 + 16 + 16 * Math.SQRT2) / 4;

  it('distance matrix: patch distance × patch size between centres', () => {
    const d = patchDistanceMatrix(2, 3, 16);
    assert.equal(d[0 * 6 + 5], 16 * Math.hypot(1, 2));
    assert.equal(d[4 * 6 + 4], 0);
    assert.equal(d[1 * 6 + 4], 16);
  });

  it('all attention on self → 0; on the right or lower neighbour → one patch; uniform → the known mean', () => {
    const self = attentionOf(2, grid, (_, q) => oneHot(N, q));
    assert.deepEqual(Array.from(meanAttentionDistance(self, 2, grid)), [0, 0]);
    // Head 0: each patch attends to its horizontal neighbour (tokens 1↔2, 3↔4); head 1 uniform over patches.
    const mixed = attentionOf(2, grid, (h, q) => (h === 0 ? oneHot(N, q === 0 ? 0 : q % 2 === 1 ? q + 1 : q - 1) : [0, 0.25, 0.25, 0.25, 0.25]));
    const d = meanAttentionDistance(mixed, 2, grid);
    assert.ok(Math.abs(d[0]! - 16) < 1e-12);
    assert.ok(Math.abs(d[1]! - uniformMean) < 1e-6);
  });

  it('CLS is excluded as query and key; the rest is renormalised (or not, as keras-io)', () => {
    // Half of every query's attention on [CLS], the other half uniform over the patches; the CLS query looks far away.
    const half = attentionOf(1, grid, (_, q) => (q === 0 ? [0, 0, 0, 0, 1] : [0.5, 0.125, 0.125, 0.125, 0.125]));
    assert.ok(Math.abs(meanAttentionDistance(half, 1, grid)[0]! - uniformMean) < 1e-6);
    assert.ok(Math.abs(meanAttentionDistance(half, 1, grid, { renormalize: false })[0]! - uniformMean / 2) < 1e-6);
  });

  it('averages over images per layer, with grids that may differ', () => {
    const acc = new AttentionDistanceAccumulator(2, 1);
    acc.add(0, attentionOf(1, grid, (_, q) => oneHot(N, q)), grid); // 0
    const wide = gridOf(1, 3, 10);
    // Every patch of a 1×3 grid attends to the first patch: distances 0, 10, 20 → mean 10.
    acc.add(0, attentionOf(1, wide, () => oneHot(4, 1)), wide);
    acc.add(1, attentionOf(1, grid, () => [0, 0.25, 0.25, 0.25, 0.25]), grid);
    const s = acc.summary();
    assert.equal(s.images, 2);
    assert.ok(Math.abs(s.distance[0]! - 5) < 1e-12);
    assert.ok(Math.abs(s.distance[1]! - uniformMean) < 1e-6);
  });
});

describe('CLS attention maps', () => {
  it('mean over heads of the [CLS] row at the patch keys, and its rollout per layer', () => {
    const grid = gridOf(1, 2);
    // N = 3. Head 0: CLS → patch 1; head 1: CLS → patch 2. Patches attend to themselves.
    const layer = attentionOf(2, grid, (h, q) => (q === 0 ? oneHot(3, h + 1) : oneHot(3, q)));
    assert.deepEqual(Array.from(clsAttentionMap(layer, 2, grid)), [0.5, 0.5]);
    // Rollout factor: ((mean) + I)/2 → CLS row [0.5, 0.25, 0.25]; patches stay on themselves.
    const [first, second] = clsRolloutMaps([layer, layer], 2, grid);
    assert.deepEqual(Array.from(first!), [0.25, 0.25]);
    // Two layers: CLS keeps 0.25 of itself, each patch 0.25·1 + 0.5·0.25 = 0.375.
    assert.deepEqual(Array.from(second!), [0.375, 0.375]);
  });
});
