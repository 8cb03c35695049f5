import * as assert from 'node:assert/strict';
import { AttentionDistanceAccumulator, attentionDistanceOverImages, maxPatchDistance, meanAttentionDistance, patchDistanceMatrix } from '../../../src/core/analysis/attention-distance';
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

describe('mean attention distance over several images', () => {
  const grids = [gridOf(2, 2), gridOf(2, 3), gridOf(3, 3)];
  /** A random-ish softmax per query (seeded), [heads, N, N], two layers. */
  const attentionsOf = (grid: PatchGrid, seed: number): Float32Array[] =>
    [0, 1].map((l) => attentionOf(2, grid, (h, q) => {
      const raw = Array.from({ length: grid.tokens }, (_, k) => Math.exp(Math.sin(seed * 12.9898 + l * 7.1 + h * 3.3 + q * 1.7 + k * 0.91) * 2));
      const sum = raw.reduce((a, b) => a + b, 0);
      return raw.map((v) => v / sum);
    }));

  it('is the mean of the per-image values, with the largest patch distance seen and progress per image', async () => {
    const runs = grids.map((grid, i) => ({ grid, attentions: attentionsOf(grid, i + 1) }));
    const progress: string[] = [];
    const summary = await attentionDistanceOverImages(3, 2, 2, async (i) => runs[i]!, { onImage: (done, total) => progress.push(`${done}/${total}`) });
    assert.equal(summary.images, 3);
    assert.deepEqual(progress, ['1/3', '2/3', '3/3']);
    for (let l = 0; l < 2; l++) {
      const perImage = runs.map((r) => meanAttentionDistance(r.attentions[l]!, 2, r.grid));
      for (let h = 0; h < 2; h++) {
        const mean = perImage.reduce((s, d) => s + d[h]!, 0) / 3;
        assert.ok(Math.abs(summary.distance[l * 2 + h]! - mean) < 1e-9, `layer ${l} head ${h}: ${summary.distance[l * 2 + h]} vs ${mean}`);
      }
    }
    assert.equal(summary.maxDistance, maxPatchDistance(grids[2]!));
    assert.equal(maxPatchDistance(gridOf(3, 3)), 16 * Math.hypot(2, 2));
  });

  it('stops with CancelledError once the signal is aborted', async () => {
    const controller = new AbortController();
    let ran = 0;
    const run = attentionDistanceOverImages(3, 2, 2, async (i) => {
      ran++;
      if (i === 0) controller.abort();
      return { grid: grids[0]!, attentions: attentionsOf(grids[0]!, 1) };
    }, { signal: controller.signal });
    await assert.rejects(run, (err: Error) => err.name === 'CancelledError');
    assert.equal(ran, 1);
  });
});
