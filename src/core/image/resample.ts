/**
 * Pillow-exact resizing of 8-bit RGB images (SPEC §2.4).
 *
 * The Hugging Face image processors resize with `PIL.Image.resize`; any other resizer is
 * off by about one 8-bit level, which is enough to move logits past tolerance. So this is a
 * literal port of Pillow's `libImaging/Resample.c` (separable convolution, coefficients in
 * double, 22-bit fixed point, horizontal pass stored as uint8 before the vertical pass) and,
 * for NEAREST, of the affine scaling path in `libImaging/Geometry.c` that Pillow uses instead.
 *
 * The two convolution passes run on WebAssembly SIMD kernels (resample-wasm.ts) when the
 * runtime has them — 4000×3000 → 224×224 bilinear in ~25 ms instead of ~85 ms — with the same
 * integer arithmetic as the JavaScript passes below, which remain the fallback.
 */
import { UserError } from '../errors.js';
import { finishedWithKernels, loadKernels } from './resample-wasm.js';
import type { RgbImage } from './types.js';

export type ResampleFilter = 'nearest' | 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

/** PIL's resample integers (`PIL.Image.Resampling`, also HF's `PILImageResampling`). */
export const PIL_RESAMPLE_CODES: Readonly<Record<number, ResampleFilter>> = {
  0: 'nearest',
  1: 'lanczos',
  2: 'bilinear',
  3: 'bicubic',
  4: 'box',
  5: 'hamming',
};

/**
 * Maps a `resample` value from a `preprocessor_config.json` (an int as PIL numbers them, or a
 * filter name) to a filter. `file` names the config in the error.
 */
export function resampleFilterFromPil(value: unknown, file?: string): ResampleFilter {
  if (typeof value === 'number' && Number.isInteger(value) && value in PIL_RESAMPLE_CODES) {
    return PIL_RESAMPLE_CODES[value]!;
  }
  if (typeof value === 'string') {
    const name = value.toLowerCase().replace(/^(pil\.)?(image\.)?(resampling\.)?/, '');
    const found = Object.values(PIL_RESAMPLE_CODES).find((f) => f === name || (name === 'antialias' && f === 'lanczos'));
    if (found) return found;
  }
  throw new UserError(
    `unknown "resample" value ${JSON.stringify(value)}.`,
    file,
    'Use a PIL resampling code: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming.',
  );
}

// ---------------------------------------------------------------------------------------
// Filters, written with exactly Pillow's expressions: the fixed-point coefficients are
// rounded from these doubles, so a different but "equivalent" formula can flip a rounding.

interface Filter {
  readonly support: number;
  readonly weight: (x: number) => number;
}

function boxFilter(x: number): number {
  return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}

function bilinearFilter(x: number): number {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Pillow writes `0.54f + 0.46f * cos(x)`: float constants promoted to double.
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);

function hammingFilter(x: number): number {
  if (x < 0.0) x = -x;
  if (x === 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * Math.PI;
  return (Math.sin(x) / x) * (HAMMING_A + HAMMING_B * Math.cos(x));
}

/** Keys cubic with a = −0.5 (Pillow's BICUBIC; PyTorch uses −0.75, see interpolate.ts). */
function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

function sincFilter(x: number): number {
  if (x === 0.0) return 1.0;
  x = x * Math.PI;
  return Math.sin(x) / x;
}

function lanczosFilter(x: number): number {
  // Truncated sinc, 3 lobes.
  if (-3.0 <= x && x < 3.0) return sincFilter(x) * sincFilter(x / 3);
  return 0.0;
}

const FILTERS: Readonly<Record<Exclude<ResampleFilter, 'nearest'>, Filter>> = {
  box: { support: 0.5, weight: boxFilter },
  bilinear: { support: 1.0, weight: bilinearFilter },
  hamming: { support: 1.0, weight: hammingFilter },
  bicubic: { support: 2.0, weight: bicubicFilter },
  lanczos: { support: 3.0, weight: lanczosFilter },
};

// ---------------------------------------------------------------------------------------
// Coefficients

/** 32 − 8 − 2: 8 bits for the pixel, 2 spare bits for filters whose taps overshoot. */
const PRECISION_BITS = 22;
const FIXED_ONE = 1 << PRECISION_BITS;
const FIXED_HALF = 1 << (PRECISION_BITS - 1);

/** Fixed-point taps for one axis: output i reads `count[i]` inputs from `first[i]`. */
export interface AxisCoefficients {
  readonly inSize: number;
  readonly outSize: number;
  /** Row stride of `weights`: Pillow's `ksize = ceil(support) * 2 + 1`. */
  readonly stride: number;
  readonly first: Int32Array;
  readonly count: Int32Array;
  /** `weights[i * stride + t]`, in units of 2^-22. */
  readonly weights: Int32Array;
}

/**
 * Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for resizing `inSize` → `outSize`
 * over the whole axis (no crop box). Exported for tests and for callers that resize many
 * images of one size.
 */
export function computeAxisCoefficients(
  inSize: number,
  outSize: number,
  filter: Exclude<ResampleFilter, 'nearest'>,
): AxisCoefficients {
  const { support: filterSupport, weight } = FILTERS[filter];
  const scale = inSize / outSize;
  // Widening the kernel when shrinking is what makes Pillow antialias.
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = filterSupport * filterscale;
  const stride = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * stride);
  const taps = new Float64Array(stride);
  const ss = 1.0 / filterscale;

  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // C's (int) cast truncates toward zero; the clamp makes that equal to floor here.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5));
    const n = xmax - xmin;
    let sum = 0.0;
    for (let x = 0; x < n; x++) {
      const w = weight((x + xmin - center + 0.5) * ss);
      taps[x] = w;
      sum += w;
    }
    const row = i * stride;
    for (let x = 0; x < n; x++) {
      const k = sum !== 0.0 ? taps[x]! / sum : taps[x]!;
      // Round half away from zero, as normalize_coeffs_8bpc does.
      weights[row + x] = k < 0 ? Math.trunc(-0.5 + k * FIXED_ONE) : Math.trunc(0.5 + k * FIXED_ONE);
    }
    first[i] = xmin;
    count[i] = n;
  }
  return { inSize, outSize, stride, first, count, weights };
}

/** `clip8`: drop the fraction bits, clamp to a byte. */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// ---------------------------------------------------------------------------------------
// JavaScript passes. Accumulators stay in int32 range (|Σk| ≤ ~1.3·2^22 for every filter, pixels ≤ 255),
// so `Math.imul` + `| 0` is exact and keeps V8 on integer arithmetic.

/** Horizontal pass over rows [rowStart, rowStart + rows) of `src`, into a new image. */
function resampleHorizontal(
  src: Uint8Array,
  srcWidth: number,
  rowStart: number,
  rows: number,
  c: AxisCoefficients,
): Uint8Array {
  const outW = c.outSize;
  const out = new Uint8Array(outW * rows * 3);
  const { first, count, weights, stride } = c;
  const srcRow = srcWidth * 3;
  for (let y = 0; y < rows; y++) {
    const inBase = (y + rowStart) * srcRow;
    let o = y * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const n = count[xx]!;
      let k = xx * stride;
      let p = inBase + first[xx]! * 3;
      let s0 = FIXED_HALF;
      let s1 = FIXED_HALF;
      let s2 = FIXED_HALF;
      for (let t = 0; t < n; t++, k++, p += 3) {
        const w = weights[k]!;
        s0 = (s0 + Math.imul(src[p]!, w)) | 0;
        s1 = (s1 + Math.imul(src[p + 1]!, w)) | 0;
        s2 = (s2 + Math.imul(src[p + 2]!, w)) | 0;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    }
  }
  return out;
}

/**
 * Vertical pass. `rowOffset` is subtracted from each output row's first input row, because
 * the horizontal pass only produced the rows the vertical pass reads.
 */
function resampleVertical(src: Uint8Array, width: number, c: AxisCoefficients, rowOffset: number): Uint8Array {
  const rowLen = width * 3;
  const out = new Uint8Array(c.outSize * rowLen);
  const { first, count, weights, stride } = c;
  const acc = new Int32Array(rowLen);
  for (let yy = 0; yy < c.outSize; yy++) {
    const n = count[yy]!;
    const y0 = first[yy]! - rowOffset;
    const kBase = yy * stride;
    acc.fill(FIXED_HALF);
    // Row-major accumulation: same sums as Pillow's per-pixel loop (integer adds commute),
    // but reads each input row contiguously.
    for (let t = 0; t < n; t++) {
      const w = weights[kBase + t]!;
      const inBase = (y0 + t) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] = (acc[i]! + Math.imul(src[inBase + i]!, w)) | 0;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]!);
  }
  return out;
}

/**
 * NEAREST as Pillow does it (`ImagingScaleAffine`): source index = trunc of a position that
 * starts at scale/2 and is advanced by repeated addition (so it carries the same rounding).
 */
function nearestIndices(inSize: number, outSize: number): Int32Array {
  const scale = inSize / outSize;
  const idx = new Int32Array(outSize);
  let pos = scale * 0.5;
  for (let i = 0; i < outSize; i++) {
    // Pillow fills out-of-range positions with 0; with these positions that cannot happen,
    // but keep the guard so a bad index never reads outside the row.
    idx[i] = pos < 0 ? -1 : Math.min(Math.trunc(pos), inSize);
    pos += scale;
  }
  return idx;
}

function resizeNearest(src: RgbImage, outW: number, outH: number): Uint8Array {
  const xs = nearestIndices(src.width, outW);
  const ys = nearestIndices(src.height, outH);
  const out = new Uint8Array(outW * outH * 3);
  const srcRow = src.width * 3;
  for (let y = 0; y < outH; y++) {
    const yi = ys[y]!;
    if (yi < 0 || yi >= src.height) continue;
    const inBase = yi * srcRow;
    let o = y * outW * 3;
    for (let x = 0; x < outW; x++, o += 3) {
      const xi = xs[x]!;
      if (xi < 0 || xi >= src.width) continue;
      const p = inBase + xi * 3;
      out[o] = src.data[p]!;
      out[o + 1] = src.data[p + 1]!;
      out[o + 2] = src.data[p + 2]!;
    }
  }
  return out;
}

function checkImage(img: RgbImage, what: string): void {
  if (!(Number.isInteger(img.width) && Number.isInteger(img.height) && img.width > 0 && img.height > 0)) {
    throw new RangeError(`${what}: width and height must be positive integers, got ${img.width}×${img.height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new RangeError(
      `${what}: data has ${img.data.length} bytes, expected ${img.width}×${img.height}×3 = ${img.width * img.height * 3}`,
    );
  }
}

export interface ResizeOptions {
  /**
   * Use the WebAssembly SIMD kernels when the runtime has them (default true). Both paths give
   * identical bytes; `false` exists for tests and for debugging.
   */
  simd?: boolean;
}

/**
 * `PIL.Image.resize((outW, outH), filter)` on an RGB image, byte for byte.
 * An unchanged size returns a copy (as Pillow does). Default filter: bilinear (HF's default).
 */
export function resizeRGB8(
  src: RgbImage,
  outW: number,
  outH: number,
  filter: ResampleFilter = 'bilinear',
  options: ResizeOptions = {},
): RgbImage {
  checkImage(src, 'resizeRGB8 input');
  if (!(Number.isInteger(outW) && Number.isInteger(outH) && outW > 0 && outH > 0)) {
    throw new RangeError(`resizeRGB8: output size must be positive integers, got ${outW}×${outH}`);
  }
  if (outW === src.width && outH === src.height) {
    return { width: outW, height: outH, data: src.data.slice() };
  }
  if (filter === 'nearest') {
    return { width: outW, height: outH, data: resizeNearest(src, outW, outH) };
  }

  const plan = planConvolution(src, outW, outH, filter);
  const data = (options.simd !== false && convolveWasm(src, plan)) || convolveJs(src, plan);
  return { width: outW, height: outH, data };
}

/** What Pillow's ImagingResampleInner decides before running the passes. */
interface ConvolutionPlan {
  readonly outW: number;
  readonly outH: number;
  /** Null when the width does not change (Pillow skips that pass). */
  readonly horizontal: AxisCoefficients | null;
  /** Null when the height does not change. */
  readonly vertical: AxisCoefficients | null;
  /** Source rows the vertical pass reads: only these go through the horizontal pass. */
  readonly firstRow: number;
  readonly lastRow: number;
}

function planConvolution(src: RgbImage, outW: number, outH: number, filter: Exclude<ResampleFilter, 'nearest'>): ConvolutionPlan {
  const vertical = computeAxisCoefficients(src.height, outH, filter);
  const horizontal = outW !== src.width ? computeAxisCoefficients(src.width, outW, filter) : null;
  // Pillow's ybox_first / ybox_last; when the height is unchanged these are 0 and height.
  const firstRow = vertical.first[0]!;
  const lastRow = vertical.first[outH - 1]! + vertical.count[outH - 1]!;
  return { outW, outH, horizontal, vertical: outH !== src.height ? vertical : null, firstRow, lastRow };
}

function convolveJs(src: RgbImage, plan: ConvolutionPlan): Uint8Array {
  let data = src.data;
  let rowOffset = 0;
  if (plan.horizontal) {
    data = resampleHorizontal(src.data, src.width, plan.firstRow, plan.lastRow - plan.firstRow, plan.horizontal);
    rowOffset = plan.firstRow;
  }
  if (plan.vertical) data = resampleVertical(data, plan.outW, plan.vertical, rowOffset);
  return data;
}

/** Same passes on the SIMD kernels; null if they are unavailable. */
function convolveWasm(src: RgbImage, plan: ConvolutionPlan): Uint8Array | null {
  const { horizontal, vertical, outW, outH } = plan;
  const srcRowLen = src.width * 3;
  const midRowLen = outW * 3;
  // The horizontal pass reads only the rows the vertical pass needs; without a horizontal
  // pass the vertical one reads the source as is.
  const firstRow = horizontal ? plan.firstRow : 0;
  const rows = horizontal ? plan.lastRow - plan.firstRow : src.height;

  // Memory layout, each block 16-byte aligned and followed by ≥ 16 bytes of slack, since the
  // kernels read and write a few bytes past a block's end.
  let size = 0;
  const alloc = (bytes: number): number => {
    const at = size;
    size += Math.ceil((bytes + 16) / 16) * 16;
    return at;
  };
  const srcAt = alloc(rows * srcRowLen);
  const hBoundsAt = horizontal ? alloc(outW * 8) : 0;
  const hWeightsAt = horizontal ? alloc(horizontal.weights.byteLength) : 0;
  const midAt = horizontal ? alloc(rows * midRowLen) : srcAt;
  const vBoundsAt = vertical ? alloc(outH * 8) : 0;
  const vWeightsAt = vertical ? alloc(vertical.weights.byteLength) : 0;
  const outAt = vertical ? alloc(outH * midRowLen) : midAt;

  const kernels = loadKernels(size);
  if (!kernels) return null;
  const buffer = kernels.memory.buffer;
  new Uint8Array(buffer, srcAt, rows * srcRowLen).set(
    src.data.subarray(firstRow * srcRowLen, (firstRow + rows) * srcRowLen),
  );

  if (horizontal) {
    const bounds = new Int32Array(buffer, hBoundsAt, outW * 2);
    for (let i = 0; i < outW; i++) {
      bounds[2 * i] = horizontal.first[i]! * 3;
      bounds[2 * i + 1] = horizontal.count[i]!;
    }
    new Int32Array(buffer, hWeightsAt, horizontal.weights.length).set(horizontal.weights);
    kernels.hpass(srcAt, srcRowLen, rows, outW, hBoundsAt, hWeightsAt, horizontal.stride * 4, midAt);
  }
  if (vertical) {
    const bounds = new Int32Array(buffer, vBoundsAt, outH * 2);
    for (let i = 0; i < outH; i++) {
      bounds[2 * i] = (vertical.first[i]! - firstRow) * midRowLen;
      bounds[2 * i + 1] = vertical.count[i]!;
    }
    new Int32Array(buffer, vWeightsAt, vertical.weights.length).set(vertical.weights);
    kernels.vpass(midAt, midRowLen, outH, vBoundsAt, vWeightsAt, vertical.stride * 4, outAt);
  }
  const result = new Uint8Array(buffer, outAt, outH * midRowLen).slice();
  finishedWithKernels();
  return result;
}
