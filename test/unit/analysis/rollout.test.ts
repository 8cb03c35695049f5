import * as assert from 'node:assert/strict';
import {
  addIdentityAndNormalizeRows,
  discardLowest,
  fuseHeads,
  rolloutFactor,
  rolloutMatrix,
  rolloutRow,
} from '../../../src/core/analysis/rollout';

function close(actual: ArrayLike<number>, expected: readonly number[], tolerance = 1e-6, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

const f32 = (values: number[]): Float32Array => Float32Array.from(values);

describe('attention rollout', () => {
  // Two heads over two tokens; every row of each head sums to 1.
  const heads = f32([
    1, 0, 0.5, 0.5, // head 0
    0, 1, 0.5, 0.5, // head 1
  ]);

  it('fuses heads by mean, max and min', () => {
    close(fuseHeads(heads, 2, 2, 'mean'), [0.5, 0.5, 0.5, 0.5]);
    close(fuseHeads(heads, 2, 2, 'max'), [1, 1, 0.5, 0.5]);
    close(fuseHeads(heads, 2, 2, 'min'), [0, 0, 0.5, 0.5]);
  });

  it('adds the identity and renormalises each row by its own sum (hand-computed)', () => {
    // max fusion: [[1, 1], [.5, .5]] + I = [[2, 1], [.5, 1.5]] → rows / 3 and / 2.
    close(rolloutFactor(heads, 2, 2, { headFusion: 'max', discardRatio: 0 }), [2 / 3, 1 / 3, 0.25, 0.75]);
    // min fusion: [[0, 0], [.5, .5]] + I = [[1, 0], [.5, 1.5]].
    close(rolloutFactor(heads, 2, 2, { headFusion: 'min', discardRatio: 0 }), [1, 0, 0.25, 0.75]);
    // A row-stochastic matrix stays (A + I) / 2.
    const m = f32([0.5, 0.5, 0.2, 0.8]);
    addIdentityAndNormalizeRows(m, 2);
    close(m, [0.75, 0.25, 0.1, 0.9]);
  });

  it('after discarding, rows sum to 1 — where vit-explain\'s a / a.sum(dim=-1) divides columns instead', () => {
    const a = f32([0.6, 0.3, 0.1, 0.2, 0.5, 0.3, 0.1, 0.1, 0.8]);
    // ⌊9 · 0.34⌋ = 3 smallest entries: the three 0.1s, at (0, 2), (2, 0), (2, 1).
    const factor = rolloutFactor(a, 1, 3, { headFusion: 'mean', discardRatio: 0.34 });
    // F + I = [[1.6, .3, 0], [.2, 1.5, .3], [0, 0, 1.8]]; row sums 1.9, 2.0, 1.8.
    close(factor, [1.6 / 1.9, 0.3 / 1.9, 0, 0.1, 0.75, 0.15, 0, 0, 1]);
    for (let r = 0; r < 3; r++) close([factor[r * 3]! + factor[r * 3 + 1]! + factor[r * 3 + 2]!], [1], 1e-6, `row ${r} sum`);
    // vit-explain broadcasts the [N] sums over the last axis: element (i, j) / sum(row j).
    // Its first row would be [1.6/1.9, 0.3/2.0, 0/1.8] = [0.842, 0.15, 0], which sums to 0.992.
    const buggyRow0 = [1.6 / 1.9, 0.3 / 2.0, 0 / 1.8];
    assert.ok(Math.abs(buggyRow0.reduce((s, v) => s + v, 0) - 1) > 0.005, 'the column-wise version is not row-stochastic');
    assert.ok(Math.abs(factor[1]! - buggyRow0[1]!) > 0.001, 'and differs from ours');
  });

  it('discards the requested count, ties broken by position, never the [CLS]→[CLS] entry', () => {
    const ties = f32([0.5, 0.1, 0.1, 0.3]);
    discardLowest(ties, 0.25); // ⌊4 · .25⌋ = 1: the first 0.1 only
    close(ties, [0.5, 0, 0.1, 0.3]);
    const clsSmallest = f32([0.05, 0.5, 0.2, 0.3]);
    discardLowest(clsSmallest, 0.25); // the smallest is entry 0, which vit-explain leaves alone
    close(clsSmallest, [0.05, 0.5, 0.2, 0.3]);
    const many = f32([0.4, 0.3, 0.2, 0.1]);
    discardLowest(many, 0.5);
    close(many, [0.4, 0.3, 0, 0]);
    discardLowest(many, 0); // nothing
    close(many, [0.4, 0.3, 0, 0]);
    assert.throws(() => discardLowest(many, 1), RangeError);
    assert.throws(() => discardLowest(many, -0.1), RangeError);
  });

  it('multiplies layers last-to-first: R = Ã₂·Ã₁ (hand-computed)', () => {
    const a1 = f32([0.75, 0.25, 0.1, 0.9]);
    const a2 = f32([2 / 3, 1 / 3, 0.25, 0.75]);
    // Row 0: [2/3·.75 + 1/3·.1, 2/3·.25 + 1/3·.9]; row 1: [.25·.75 + .75·.1, .25·.25 + .75·.9].
    close(rolloutRow([a1, a2], 2, 0), [0.5 + 0.1 / 3, 1 / 6 + 0.3]);
    close(rolloutRow([a1, a2], 2, 1), [0.2625, 0.7375]);
    close(rolloutRow([a1, a2], 2, 0, 0), [0.75, 0.25], 1e-7, 'through the first layer only');
    close(rolloutMatrix([a1, a2], 2), [0.5 + 0.1 / 3, 1 / 6 + 0.3, 0.2625, 0.7375]);
  });

  it('row rollout equals the full matrix product on random attention, and stays row-stochastic', () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const tokens = 9;
    const headsCount = 3;
    const layers = Array.from({ length: 4 }, () => {
      const att = new Float32Array(headsCount * tokens * tokens);
      for (let r = 0; r < headsCount * tokens; r++) {
        let sum = 0;
        for (let c = 0; c < tokens; c++) sum += att[r * tokens + c] = random();
        for (let c = 0; c < tokens; c++) att[r * tokens + c]! /= sum;
      }
      return rolloutFactor(att, headsCount, tokens, { headFusion: 'max', discardRatio: 0.3 });
    });
    // Naive (Ã₃ · (Ã₂ · (Ã₁ · Ã₀))) in float64.
    let product = Array.from(layers[0]!);
    for (let l = 1; l < layers.length; l++) {
      const next = new Array<number>(tokens * tokens).fill(0);
      for (let i = 0; i < tokens; i++) for (let k = 0; k < tokens; k++) for (let j = 0; j < tokens; j++) next[i * tokens + j]! += layers[l]![i * tokens + k]! * product[k * tokens + j]!;
      product = next;
    }
    close(rolloutMatrix(layers, tokens), product, 1e-5);
    for (let t = 0; t < tokens; t++) {
      const row = rolloutRow(layers, tokens, t);
      close([row.reduce((s, v) => s + v, 0)], [1], 1e-5, `row ${t} sum`);
    }
  });

  it('rejects mismatched shapes and out-of-range tokens or layers', () => {
    assert.throws(() => fuseHeads(new Float32Array(7), 2, 2, 'mean'), RangeError);
    const a = f32([1, 0, 0, 1]);
    assert.throws(() => rolloutRow([a], 2, 2), RangeError);
    assert.throws(() => rolloutRow([a], 2, 0, 1), RangeError);
  });
});
