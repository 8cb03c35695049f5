import * as assert from 'node:assert/strict';
import {
  applyClassicFilter,
  applyKernel,
  applyKernels,
  boxBlurKernel,
  customKernel,
  displayMappingFor,
  embossKernel,
  flipKernel,
  gaussianKernel,
  gradientMagnitude,
  identityKernel,
  laplacianKernel,
  makeKernel,
  sharpenKernel,
  sobelXKernel,
  sobelYKernel,
  stackKernels,
  toDisplayRgb,
  toFloatImage,
  BORDER_MODES,
  type FloatImage,
  type Kernel,
} from '../../../src/core/image/kernels';

/** A one-channel image from rows of values. */
function grey(rows: number[][]): FloatImage {
  return { width: rows[0]!.length, height: rows.length, channels: 1, data: Float32Array.from(rows.flat()) };
}

function rowsOf(img: FloatImage): number[][] {
  return Array.from({ length: img.height }, (_, y) => Array.from(img.data.subarray(y * img.width, (y + 1) * img.width)));
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}

/** Integer-valued pseudo-random image (integers keep float sums exact, so equalities can be exact). */
function randomImage(width: number, height: number, channels: 1 | 3, seed = 1): FloatImage {
  let s = seed;
  const data = Float32Array.from({ length: width * height * channels }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % 256;
  });
  return { width, height, channels, data };
}

function rotate180(img: FloatImage): FloatImage {
  const { width: W, height: H, channels: C } = img;
  const data = new Float32Array(img.data.length);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) data[(y * W + x) * C + c] = img.data[((H - 1 - y) * W + (W - 1 - x)) * C + c]!;
  return { ...img, data };
}

const ramp = grey([[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]]); // f(x, y) = x

describe('classic kernels (hand-computed)', () => {
  it('identity leaves the image unchanged under every border mode and both operations', () => {
    const img = randomImage(5, 4, 3);
    for (const border of BORDER_MODES) {
      for (const operation of ['convolution', 'correlation'] as const) assert.deepEqual(applyKernel(img, identityKernel(), { border, operation }).data, img.data);
    }
  });

  it('box blur averages the 3×3 neighbourhood', () => {
    // A 9 in the centre reaches every pixel of a 3×3 image once: 9/9 everywhere (zero border).
    const out = applyKernel(grey([[0, 0, 0], [0, 9, 0], [0, 0, 0]]), boxBlurKernel(3), { border: 'zero' });
    close(out.data, [1, 1, 1, 1, 1, 1, 1, 1, 1]);
    // replicate: the centre of [[1,2,3],[4,5,6],[7,8,9]] is the mean 5; the corner sees 1,1,2,1,1,2,4,4,5 → 21/9.
    const r = applyKernel(grey([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), boxBlurKernel(3), { border: 'replicate' });
    close([r.data[4]!, r.data[0]!], [5, 21 / 9]);
  });

  it('Gaussian: sampled exp(−(u²+v²)/2σ²), normalised, default size 2⌈3σ⌉+1', () => {
    const k = gaussianKernel(1, 3);
    const e1 = Math.exp(-0.5);
    const e2 = Math.exp(-1);
    const sum = 1 + 4 * e1 + 4 * e2;
    close(k.weights, [e2, e1, e2, e1, 1, e1, e2, e1, e2].map((v) => v / sum), 1e-12);
    assert.equal(gaussianKernel(1).size, 7);
    assert.equal(gaussianKernel(0.5).size, 5);
    // Blurring an impulse reproduces the kernel around it.
    const impulse = grey([[0, 0, 0], [0, 1, 0], [0, 0, 0]]);
    close(applyKernel(impulse, k, { border: 'zero' }).data, k.weights, 1e-7);
  });

  it('sharpen: 5·centre − the four neighbours', () => {
    const out = applyKernel(grey([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), sharpenKernel(), { border: 'replicate' });
    // centre 25 − (2+4+6+8) = 5; corner 5·1 − (1 + 1 + 2 + 4) = −3 (negative values are kept).
    close([out.data[4]!, out.data[0]!], [5, -3]);
  });

  it('Sobel x on f = x: +8 by convolution, −8 by correlation; borders as computed by hand', () => {
    assert.deepEqual(rowsOf(applyKernel(ramp, sobelXKernel(), { border: 'replicate' })), [[4, 8, 8, 4], [4, 8, 8, 4], [4, 8, 8, 4]]);
    assert.deepEqual(rowsOf(applyKernel(ramp, sobelXKernel(), { border: 'replicate', operation: 'correlation' })), [[-4, -8, -8, -4], [-4, -8, -8, -4], [-4, -8, -8, -4]]);
    // reflect mirrors x = 1 onto x = −1 and x = 2 onto x = 4: no gradient at the edges.
    assert.deepEqual(rowsOf(applyKernel(ramp, sobelXKernel(), { border: 'reflect' }))[1], [0, 8, 8, 0]);
    // zero border, top row: the row above is 0, so only the weights 1 and 2 of each column remain:
    // x = 0: 3·f(1) − 3·f(−1) = 3; x = 1: 3·f(2) − 3·f(0) = 6; x = 3: 3·f(4) − 3·f(2) = 0 − 6.
    assert.deepEqual(rowsOf(applyKernel(ramp, sobelXKernel(), { border: 'zero' }))[0], [3, 6, 6, -6]);
  });

  it('Sobel y on f = y: +8 inside (y down); gradient magnitude √(Gx² + Gy²) on f = x + y is 8√2', () => {
    const fy = grey([[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]);
    assert.deepEqual(rowsOf(applyKernel(fy, sobelYKernel(), { border: 'replicate' })).map((r) => r[1]), [4, 8, 8, 4]);
    const diag = grey([[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]]);
    const mag = gradientMagnitude(diag, { border: 'replicate' });
    close([mag.data[5]!, mag.data[10]!], [8 * Math.SQRT2, 8 * Math.SQRT2]);
    // The same whichever operation: only the signs of Gx and Gy change.
    assert.deepEqual(gradientMagnitude(diag, { operation: 'correlation' }).data, gradientMagnitude(diag).data);
    assert.deepEqual(applyClassicFilter(diag, 'gradient-magnitude').data, gradientMagnitude(diag).data);
  });

  it('Laplacian of f = x² is 2 inside', () => {
    const sq = grey([[0, 1, 4, 9, 16], [0, 1, 4, 9, 16], [0, 1, 4, 9, 16]]);
    assert.deepEqual(rowsOf(applyKernel(sq, laplacianKernel(), { border: 'replicate' }))[1]!.slice(1, 4), [2, 2, 2]);
  });

  it('emboss: the response to an impulse is the kernel itself by convolution, the flipped kernel by correlation', () => {
    const impulse = grey([[0, 0, 0], [0, 1, 0], [0, 0, 0]]);
    const k = embossKernel();
    assert.deepEqual(Array.from(applyKernel(impulse, k, { border: 'zero' }).data), [-2, -1, 0, -1, 1, 1, 0, 1, 2]);
    assert.deepEqual(Array.from(applyKernel(impulse, k, { border: 'zero', operation: 'correlation' }).data), [2, 1, 0, 1, 1, -1, 0, -1, -2]);
  });

  it('luminance uses the BT.601 weights of PIL convert("L")', () => {
    const img = toFloatImage({ width: 4, height: 1, data: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30]) }, 'luminance');
    assert.equal(img.channels, 1);
    close(img.data, [0.299 * 255, 0.587 * 255, 0.114 * 255, 0.299 * 10 + 0.587 * 200 + 0.114 * 30], 1e-4);
    // PIL: (10·19595 + 200·38470 + 30·7471 + 2¹⁵) >> 16 = 124.
    assert.equal(Math.round(img.data[3]!), 124);
    const rgb = toFloatImage({ width: 1, height: 1, data: Uint8Array.from([1, 2, 3]) }, 'rgb');
    assert.deepEqual(Array.from(rgb.data), [1, 2, 3]);
  });

  it('per-channel filtering treats R, G and B independently', () => {
    const img = randomImage(4, 3, 3, 7);
    const out = applyKernel(img, embossKernel());
    for (let c = 0; c < 3; c++) {
      const plane: FloatImage = { width: 4, height: 3, channels: 1, data: img.data.filter((_, i) => i % 3 === c) };
      assert.deepEqual(out.data.filter((_, i) => i % 3 === c), applyKernel(plane, embossKernel()).data);
    }
  });

  it('custom kernels are 3×3, 5×5 or 7×7', () => {
    assert.equal(customKernel(new Array(25).fill(1)).size, 5);
    assert.equal(customKernel([[1, 2, 3], [4, 5, 6], [7, 8, 9]]).weights[5], 6);
    assert.throws(() => customKernel(new Array(16).fill(0)), /odd square/);
    assert.throws(() => customKernel(new Array(81).fill(0)), /3×3, 5×5 or 7×7/);
    assert.throws(() => makeKernel('x', [1, 2, NaN, 0, 0, 0, 0, 0, 0]), /finite/);
  });
});

describe('convolution vs cross-correlation', () => {
  const asymmetric: Kernel[] = [embossKernel(), sobelXKernel(), customKernel(Array.from({ length: 25 }, (_, i) => (i * 7) % 11 - 5))];
  const symmetric: Kernel[] = [boxBlurKernel(3), gaussianKernel(1.2), sharpenKernel(), laplacianKernel(), customKernel([1, 2, 3, 4, 5, 4, 3, 2, 1])];

  it('differ exactly by the 180° flip of the kernel (every border mode)', () => {
    const img = randomImage(6, 5, 3, 3);
    for (const k of asymmetric) {
      for (const border of BORDER_MODES) {
        assert.deepEqual(applyKernel(img, k, { border, operation: 'correlation' }).data, applyKernel(img, flipKernel(k), { border }).data, `${k.name} ${border}`);
        assert.notDeepEqual(applyKernel(img, k, { border, operation: 'correlation' }).data, applyKernel(img, k, { border }).data, `${k.name} ${border}`);
      }
    }
  });

  it('are equal for kernels symmetric under the flip', () => {
    const img = randomImage(6, 5, 1, 5);
    for (const k of symmetric) {
      for (const border of BORDER_MODES) assert.deepEqual(applyKernel(img, k, { border, operation: 'correlation' }).data, applyKernel(img, k, { border }).data, `${k.name} ${border}`);
    }
  });

  it('mirror each other: correlation of the rotated image is the rotated convolution', () => {
    const img = randomImage(7, 4, 3, 11);
    for (const k of asymmetric) {
      for (const border of BORDER_MODES) {
        assert.deepEqual(applyKernel(rotate180(img), k, { border, operation: 'correlation' }).data, rotate180(applyKernel(img, k, { border })).data, `${k.name} ${border}`);
      }
    }
  });
});

describe('border modes', () => {
  // Correlation with a single 1 at u = −1 reads f(x − 1): the left border shows directly.
  const shiftRight = makeKernel('shift', [0, 0, 0, 1, 0, 0, 0, 0, 0]);
  const row = grey([[1, 2, 3, 4]]);

  it('zero, replicate and reflect (without repeating the edge) on one row', () => {
    assert.deepEqual(Array.from(applyKernel(row, shiftRight, { operation: 'correlation', border: 'zero' }).data), [0, 1, 2, 3]);
    assert.deepEqual(Array.from(applyKernel(row, shiftRight, { operation: 'correlation', border: 'replicate' }).data), [1, 1, 2, 3]);
    assert.deepEqual(Array.from(applyKernel(row, shiftRight, { operation: 'correlation', border: 'reflect' }).data), [2, 1, 2, 3]);
    // The same kernel by convolution reads f(x + 1): the right border.
    assert.deepEqual(Array.from(applyKernel(row, shiftRight, { border: 'reflect' }).data), [2, 3, 4, 3]);
  });

  it('reflect folds kernels wider than the image (… b c b | a b c | b a …)', () => {
    const k = makeKernel('far', Array.from({ length: 49 }, (_, i) => (i === 3 * 7 + 0 ? 1 : 0))); // u = −3, v = 0
    const out = applyKernel(grey([[10, 20, 30]]), k, { operation: 'correlation', border: 'reflect' });
    // x − 3 = −3, −2, −1 → b, c, b
    assert.deepEqual(Array.from(out.data), [20, 30, 20]);
    const one = applyKernel(grey([[5]]), boxBlurKernel(5), { border: 'reflect' });
    assert.deepEqual(Array.from(one.data), [5]);
  });
});

describe('stacking kernels', () => {
  it('applying two kernels in turn equals applying their stacked kernel, away from the borders', () => {
    const img = randomImage(12, 11, 1, 9);
    for (const operation of ['convolution', 'correlation'] as const) {
      for (const [a, b] of [[boxBlurKernel(3), boxBlurKernel(3)], [embossKernel(), sobelXKernel()], [gaussianKernel(1, 3), laplacianKernel()]] as const) {
        const twice = applyKernels(img, [a, b], { operation, border: 'zero' });
        const stacked = stackKernels(a, b);
        assert.equal(stacked.size, a.size + b.size - 1);
        const once = applyKernel(img, stacked, { operation, border: 'zero' });
        const r = (stacked.size - 1) / 2;
        for (let y = r; y < img.height - r; y++) {
          for (let x = r; x < img.width - r; x++) {
            const i = y * img.width + x;
            assert.ok(Math.abs(twice.data[i]! - once.data[i]!) < 1e-3, `${operation} ${stacked.name} at (${x}, ${y}): ${twice.data[i]} vs ${once.data[i]}`);
          }
        }
      }
    }
  });

  it('box 3 stacked with box 3 is the separable [1 2 3 2 1]² / 81', () => {
    const k = stackKernels(boxBlurKernel(3), boxBlurKernel(3));
    const t = [1, 2, 3, 2, 1];
    close(k.weights, t.flatMap((a) => t.map((b) => (a * b) / 81)), 1e-12);
  });
});

describe('display mapping', () => {
  it('signed maps 0 to mid-grey and ±max|v| to white/black; magnitude and clamp as documented', () => {
    const img = grey([[-4, 0, 2, 4]]);
    const signed = toDisplayRgb(img, 'signed');
    assert.equal(signed.scale, 4);
    assert.deepEqual(Array.from(signed.data.filter((_, i) => i % 3 === 0)), [0, 128, 191, 255]);
    assert.deepEqual(Array.from(toDisplayRgb(img, 'magnitude').data.filter((_, i) => i % 3 === 0)), [0, 0, 128, 255]);
    assert.deepEqual(Array.from(toDisplayRgb(grey([[-3, 100.4, 300]]), 'clamp').data.filter((_, i) => i % 3 === 0)), [0, 100, 255]);
  });

  it('zero-sum kernels are shown signed, the others clamped, gradient magnitude as magnitude', () => {
    assert.equal(displayMappingFor(sobelXKernel()), 'signed');
    assert.equal(displayMappingFor(laplacianKernel()), 'signed');
    assert.equal(displayMappingFor(gaussianKernel(2)), 'clamp');
    assert.equal(displayMappingFor(embossKernel()), 'clamp');
    assert.equal(displayMappingFor(undefined), 'magnitude');
  });
});
