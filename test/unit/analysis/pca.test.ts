import * as assert from 'node:assert/strict';
import { principalComponents, symmetricEigen } from '../../../src/core/analysis/pca';

function close(actual: ArrayLike<number>, expected: readonly number[], tol = 1e-9, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}

describe('PCA', () => {
  it('finds the known components of a constructed set, with variances and a deterministic sign', () => {
    // Points a·u + b·v + m with u = (0.6, 0.8, 0), v = (0.8, −0.6, 0) (orthonormal), and
    // a ∈ {±3}, b ∈ {±1} crossed: variance along u = 9·4/3 = 12, along v = 4/3, along z = 0.
    const u = [0.6, 0.8, 0];
    const v = [0.8, -0.6, 0];
    const m = [5, -2, 7];
    const rows: number[] = [];
    for (const a of [3, -3]) for (const b of [1, -1]) rows.push(...m.map((mj, j) => mj + a * u[j]! + b * v[j]!));
    const pca = principalComponents(rows, 4, 3, 2);
    close(pca.mean, m);
    close(pca.variances, [12, 4 / 3]);
    close(pca.explainedRatio, [12 / (12 + 4 / 3), (4 / 3) / (12 + 4 / 3)]);
    // Sign convention: the largest-magnitude entry positive → u and v as written.
    close(pca.components, [...u, ...v]);
    // Negating every input row does not flip the components.
    const negated = principalComponents(rows.map((x) => -x), 4, 3, 2);
    close(negated.components, [...u, ...v]);
  });

  it('flips a component whose largest entry would be negative', () => {
    // All the spread along (0, −1, 0.5)/‖·‖: the component is reported as (0, 1, −0.5)/‖·‖.
    const dir = [0, -1, 0.5];
    const rows = [-2, -1, 1, 2].flatMap((t) => dir.map((d) => t * d));
    const pca = principalComponents(rows, 4, 3, 1);
    const n = Math.hypot(...dir);
    close(pca.components, [0, 1 / n, -0.5 / n]);
  });

  it('decomposes a symmetric matrix exactly: A v = λ v, orthonormal vectors (rows), ascending values', () => {
    const n = 6;
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) A[i * n + j] = A[j * n + i] = Math.sin(i * 3 + j * 7) + (i === j ? i : 0);
    const { values, vectors } = symmetricEigen(A, n);
    for (let i = 1; i < n; i++) assert.ok(values[i]! >= values[i - 1]!);
    for (let c = 0; c < n; c++) {
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += A[i * n + k]! * vectors[c * n + k]!;
        assert.ok(Math.abs(av - values[c]! * vectors[c * n + i]!) < 1e-10);
      }
      for (let d = 0; d < n; d++) {
        let dot = 0;
        for (let k = 0; k < n; k++) dot += vectors[c * n + k]! * vectors[d * n + k]!;
        assert.ok(Math.abs(dot - (c === d ? 1 : 0)) < 1e-10);
      }
    }
  });
});
