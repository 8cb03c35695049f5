/**
 * PyTorch `F.interpolate(x, size=(outH, outW), mode="bicubic", align_corners=False)` (SPEC §2.5),
 * used to resize ViT/CLIP position embeddings to a patch grid other than the trained one.
 *
 * Layout: channels last, `[H, W, C]` row-major. That is exactly the layout of position
 * embeddings `[G*G, D]` without their CLS row (token `r*G + c` = grid cell (r, c)), so they
 * go in and come out without transposes; HF permutes them to `[1, D, G, G]` only because
 * torch wants channels first.
 *
 * This is not Pillow's bicubic (resample.ts): A = −0.75 instead of −0.5, no antialiasing
 * when shrinking, taps clamped at the borders, and float arithmetic instead of fixed point.
 */

/** Cubic-convolution coefficient used by PyTorch's upsample kernels. */
const A = -0.75;

/** |x| ≤ 1 */
function cubic1(x: number): number {
  return ((A + 2) * x - (A + 3)) * x * x + 1;
}

/** 1 < |x| < 2 */
function cubic2(x: number): number {
  return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

interface AxisTaps {
  /** `index[i * 4 + j]`: the j-th input index (already clamped) for output i. */
  readonly index: Int32Array;
  readonly weight: Float64Array;
}

function axisTaps(inSize: number, outSize: number): AxisTaps {
  const index = new Int32Array(outSize * 4);
  const weight = new Float64Array(outSize * 4);
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    // align_corners=False source coordinate; PyTorch does not clamp it at 0 for cubic.
    const src = (i + 0.5) * scale - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    const w = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)];
    for (let j = 0; j < 4; j++) {
      index[i * 4 + j] = Math.min(Math.max(i0 - 1 + j, 0), inSize - 1);
      weight[i * 4 + j] = w[j]!;
    }
  }
  return { index, weight };
}

/**
 * Resizes a `[inH, inW, channels]` grid to `[outH, outW, channels]` (target *size*, as current
 * HF passes it; SPEC §2.5), evaluated in float64: matches PyTorch's float32 CPU kernel within
 * ~1.4e-6 on vit-interp; neither is bit-identical to the other. An unchanged size reproduces
 * float32 input exactly (the taps become [0, 1, 0, 0]).
 */
export function interpolateBicubicTorch(
  src: Float32Array | Float64Array,
  inH: number,
  inW: number,
  channels: number,
  outH: number,
  outW: number,
): Float32Array {
  for (const [label, v] of [['inH', inH], ['inW', inW], ['channels', channels], ['outH', outH], ['outW', outW]] as const) {
    if (!(Number.isInteger(v) && v > 0)) throw new RangeError(`interpolateBicubicTorch: ${label} must be a positive integer, got ${v}`);
  }
  if (src.length !== inH * inW * channels) {
    throw new RangeError(
      `interpolateBicubicTorch: src has ${src.length} values, expected ${inH}×${inW}×${channels} = ${inH * inW * channels}`,
    );
  }
  const ys = axisTaps(inH, outH);
  const xs = axisTaps(inW, outW);
  const out = new Float32Array(outH * outW * channels);
  // Per output: interpolate along x in each of the 4 rows, then along y — PyTorch's order.
  const rowSums = new Float64Array(4 * channels);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      for (let r = 0; r < 4; r++) {
        const rowBase = ys.index[oy * 4 + r]! * inW;
        const sums = r * channels;
        for (let c = 0; c < channels; c++) rowSums[sums + c] = 0;
        for (let j = 0; j < 4; j++) {
          const w = xs.weight[ox * 4 + j]!;
          const base = (rowBase + xs.index[ox * 4 + j]!) * channels;
          for (let c = 0; c < channels; c++) rowSums[sums + c] += w * src[base + c]!;
        }
      }
      const o = (oy * outW + ox) * channels;
      const w0 = ys.weight[oy * 4]!;
      const w1 = ys.weight[oy * 4 + 1]!;
      const w2 = ys.weight[oy * 4 + 2]!;
      const w3 = ys.weight[oy * 4 + 3]!;
      for (let c = 0; c < channels; c++) {
        out[o + c] =
          w0 * rowSums[c]! + w1 * rowSums[channels + c]! + w2 * rowSums[2 * channels + c]! + w3 * rowSums[3 * channels + c]!;
      }
    }
  }
  return out;
}
