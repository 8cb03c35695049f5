import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { positionSimilarity, readPositionTable, resizePositionTable, type PositionTable } from '../../../src/core/analysis/position-embedding';
import { openModel } from '../../../src/core/models/runner';
import { GOLDEN } from '../parity';

function close(actual: ArrayLike<number>, expected: readonly number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `[${i}]: ${actual[i]} vs ${expected[i]}`);
}

describe('position-embedding similarity', () => {
  it('cosine similarity of a constructed table: known values, 1 on the diagonal, symmetric', () => {
    // A 2×2 grid of 2-d embeddings: (1, 0), (0, 2), (1, 1), (−3, 0).
    const table: PositionTable = { rows: 2, cols: 2, dim: 2, table: Float32Array.from([1, 0, 0, 2, 1, 1, -3, 0]) };
    const s = Math.SQRT1_2;
    close(positionSimilarity(table), [
      1, 0, s, -1,
      0, 1, s, 0,
      s, s, 1, -s,
      -1, 0, -s, 1,
    ]);
  });

  it('on a real checkpoint: self-similarity 1 and symmetric, at the native and an interpolated grid', async () => {
    const loaded = await openModel(path.join(GOLDEN, 'vit-tiny'));
    const native = await readPositionTable(loaded);
    assert.deepEqual([native.rows, native.cols, native.dim, native.prefixTokens], [8, 8, 32, 1]);
    for (const table of [native, resizePositionTable(native, 12, 10)]) {
      const P = table.rows * table.cols;
      const sim = positionSimilarity(table);
      assert.equal(sim.length, P * P);
      for (let i = 0; i < P; i++) {
        assert.ok(Math.abs(sim[i * P + i]! - 1) < 1e-6);
        for (let j = 0; j < i; j++) assert.equal(sim[i * P + j], sim[j * P + i]);
      }
    }
  });

  it('resizing is the model\'s bicubic: the native size is unchanged, a constant table stays constant', () => {
    const constant: PositionTable = { rows: 3, cols: 3, dim: 2, table: new Float32Array(18).fill(0.25) };
    assert.equal(resizePositionTable(constant, 3, 3), constant);
    const big = resizePositionTable(constant, 5, 4);
    assert.equal(big.table.length, 5 * 4 * 2);
    close(big.table, new Array(40).fill(0.25));
    close(positionSimilarity(big), new Array(400).fill(1));
  });

  it('CLIP: the class position is dropped; Fuyu has no table', async () => {
    const clip = await readPositionTable(await openModel(path.join(GOLDEN, 'clip-tiny')));
    assert.equal(clip.table.length, clip.rows * clip.cols * clip.dim);
    await assert.rejects(readPositionTable(await openModel(path.join(GOLDEN, 'fuyu-tiny'))), /rotary/);
  });
});
