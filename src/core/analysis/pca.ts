/**
 * Principal component analysis of a small set of vectors (ViT paper, Figure 7 left: the
 * patch-embedding filters, each flattened to 3·p² values).
 *
 * The rows are centred (the mean row subtracted, as sklearn's PCA does), the covariance
 * C = XᵀX / (n − 1) is formed in float64 and fully diagonalised by Householder
 * tridiagonalisation and the implicit QL algorithm (tred2/tql2 of EISPACK, as in JAMA), which is
 * deterministic and exact to rounding for the sizes here (3·16² = 768 dimensions, ≈3 s).
 *
 * Sign convention: an eigenvector's sign is arbitrary, so each component is flipped to make its
 * largest-magnitude entry positive (the first such entry on ties) — sklearn's `svd_flip` on the
 * components (≥ 1.5). Tiles of the same checkpoint therefore always look the same.
 */

export interface PCAResult {
  dims: number;
  /** [dims] mean row that was subtracted. */
  mean: Float64Array;
  /** [k, dims] unit-length components, by decreasing variance. */
  components: Float64Array;
  /** [k] variance along each component (eigenvalues of C). */
  variances: Float64Array;
  /** [k] variances / total variance. */
  explainedRatio: Float64Array;
}

/** The first `k` principal components of `n` rows of `dims` values (row-major `data`). */
export function principalComponents(data: ArrayLike<number>, n: number, dims: number, k = dims): PCAResult {
  if (!(Number.isInteger(n) && n >= 2)) throw new RangeError(`PCA needs at least 2 rows, got ${n}`);
  if (data.length !== n * dims) throw new RangeError(`PCA input has ${data.length} values, expected ${n}×${dims}`);
  k = Math.min(k, dims);
  const mean = new Float64Array(dims);
  for (let i = 0; i < n; i++) for (let j = 0; j < dims; j++) mean[j]! += data[i * dims + j]!;
  for (let j = 0; j < dims; j++) mean[j]! /= n;

  // Upper triangle of XᵀX, one centred row at a time, then mirrored.
  const cov = new Float64Array(dims * dims);
  const row = new Float64Array(dims);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dims; j++) row[j] = data[i * dims + j]! - mean[j]!;
    for (let a = 0; a < dims; a++) {
      const ra = row[a]!;
      if (ra === 0) continue;
      const base = a * dims;
      for (let b = a; b < dims; b++) cov[base + b]! += ra * row[b]!;
    }
  }
  for (let a = 0; a < dims; a++) {
    for (let b = a; b < dims; b++) {
      const v = cov[a * dims + b]! / (n - 1);
      cov[a * dims + b] = v;
      cov[b * dims + a] = v;
    }
  }

  const { values, vectors } = symmetricEigen(cov, dims);
  // tql2 leaves eigenvalues ascending; take them from the top.
  let total = 0;
  for (const v of values) total += Math.max(0, v);
  const components = new Float64Array(k * dims);
  const variances = new Float64Array(k);
  const explainedRatio = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    const col = dims - 1 - c;
    variances[c] = Math.max(0, values[col]!);
    explainedRatio[c] = total > 0 ? variances[c]! / total : 0;
    const vector = vectors.subarray(col * dims, (col + 1) * dims);
    let best = 0;
    for (let j = 1; j < dims; j++) if (Math.abs(vector[j]!) > Math.abs(vector[best]!)) best = j;
    const sign = vector[best]! < 0 ? -1 : 1;
    for (let j = 0; j < dims; j++) components[c * dims + j] = sign * vector[j]!;
  }
  return { dims, mean, components, variances, explainedRatio };
}

/**
 * Eigen-decomposition of a symmetric n×n matrix (not modified): eigenvalues ascending, and
 * `vectors` [n, n] whose row c is the unit eigenvector of values[c]. EISPACK tred2 + tql2, with
 * the working matrix stored transposed (column-major) so that their O(n³) inner loops, which run
 * down columns, read contiguous memory (≈2.5 s instead of ≈4 s at n = 768 on one core; once per
 * model, so not worth a partial, top-k-only solver).
 */
export function symmetricEigen(matrix: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const V = matrix.slice();
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(V, d, e, n);
  tql2(V, d, e, n);
  return { values: d, vectors: V };
}

/** Householder reduction to tridiagonal form; V becomes the accumulated transformation. */
function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = V[j * n + (n - 1)]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[j * n + (i - 1)]!;
        V[j * n + i] = 0;
        V[i * n + j] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[i * n + j] = f;
        g = e[j]! + V[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[j * n + k]! * d[k]!;
          e[k]! += V[j * n + k]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[j * n + k]! -= f * e[k]! + g * d[k]!;
        d[j] = V[j * n + (i - 1)]!;
        V[j * n + i] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[i * n + (n - 1)] = V[i * n + i]!;
    V[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[(i + 1) * n + k]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[(i + 1) * n + k]! * V[j * n + k]!;
        for (let k = 0; k <= i; k++) V[j * n + k]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[(i + 1) * n + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[j * n + (n - 1)]!;
    V[j * n + (n - 1)] = 0;
  }
  V[(n - 1) * n + (n - 1)] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e), accumulating into V; eigenvalues sorted ascending. */
function tql2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      do {
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          for (let k = 0; k < n; k++) {
            h = V[(i + 1) * n + k]!;
            V[(i + 1) * n + k] = s * V[i * n + k]! + c * h;
            V[i * n + k] = c * V[i * n + k]! - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  // Selection sort of eigenvalues (ascending) with their vectors.
  for (let i = 0; i < n - 1; i++) {
    let k = i;
    let p = d[i]!;
    for (let j = i + 1; j < n; j++) {
      if (d[j]! < p) {
        k = j;
        p = d[j]!;
      }
    }
    if (k !== i) {
      d[k] = d[i]!;
      d[i] = p;
      for (let j = 0; j < n; j++) {
        const t = V[i * n + j]!;
        V[i * n + j] = V[k * n + j]!;
        V[k * n + j] = t;
      }
    }
  }
}
