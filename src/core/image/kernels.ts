/**
 * Classic image kernels and the 2-D discrete convolution they are applied with: the first lesson
 * of the convolution explorer (issue 7), before the model's learned filters.
 *
 * Conventions (everything the UI's method card states):
 * - A kernel is a square, odd-sized table k(u, v) with offsets u (x, to the right) and v (y, down)
 *   in −r…r, r = (size − 1) / 2, stored row-major by v then u: `weights[(v + r)·size + (u + r)]`.
 * - True convolution: g(x, y) = Σ_v Σ_u k(u, v) · f(x − u, y − v) — the kernel is flipped in both
 *   axes relative to the image. Cross-correlation: g(x, y) = Σ_v Σ_u k(u, v) · f(x + u, y + v) —
 *   the kernel laid on the image as written, which is what deep-learning "conv" layers compute.
 *   The two agree for kernels symmetric under a 180° rotation, and otherwise differ by exactly
 *   that rotation of the kernel.
 * - Borders (pixels outside the image): `zero` (f = 0), `replicate` (the nearest edge pixel),
 *   `reflect` (mirrored about the edge pixel without repeating it: … c b | a b c | b a …, as
 *   numpy/PyTorch `reflect` and OpenCV BORDER_REFLECT_101).
 * - Images are float, HWC, values on the 0–255 scale of the 8-bit input; outputs stay float
 *   (negative and >255 values are kept) and are mapped to 8 bits only for display (see toDisplayRgb).
 * - Luminance is ITU-R BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B, the weights of PIL's
 *   `convert("L")`; kept as a float here, where PIL rounds it to an integer.
 *
 * Sobel kernels are written as in the textbook definition for convolution (Gx = [[1, 0, −1],
 * [2, 0, −2], [1, 0, −1]]), so true convolution gives +∂f/∂x (bright to the right → positive) and
 * cross-correlation gives its negative: the toggle flips the sign of the edges.
 *
 * Pure TypeScript on typed arrays (no Node, no DOM), so the webview can run it as well as the CLI.
 */
import type { RgbImage } from './types.js';

export interface Kernel {
  /** What it is called in the gallery and method card, e.g. "Gaussian blur σ=1, 7×7". */
  name: string;
  /** Odd side length. */
  size: number;
  /** size·size values, row-major: weights[(v + r)·size + (u + r)] = k(u, v). */
  weights: Float64Array;
}

export type BorderMode = 'zero' | 'replicate' | 'reflect';
export const BORDER_MODES: readonly BorderMode[] = ['zero', 'replicate', 'reflect'];

export type KernelOperation = 'convolution' | 'correlation';

/** A float image, HWC (channels 1 for luminance, 3 for RGB), values on the 0–255 scale. */
export interface FloatImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Float32Array;
}

export interface ApplyOptions {
  /** Default 'convolution' (the formula of the method card). */
  operation?: KernelOperation;
  /** Default 'reflect'. */
  border?: BorderMode;
}

/** ITU-R BT.601 luma weights (PIL `convert("L")`). */
export const LUMA_601 = [0.299, 0.587, 0.114] as const;

/** Sizes the custom-kernel editor offers. */
export const CUSTOM_KERNEL_SIZES = [3, 5, 7] as const;

// ---------------------------------------------------------------------------------------------
// Kernels

/** A kernel from a flat row-major list (or rows) of size² values; size must be odd. */
export function makeKernel(name: string, values: ArrayLike<number> | readonly (readonly number[])[]): Kernel {
  const flat: number[] = Array.isArray(values) && Array.isArray(values[0]) ? (values as number[][]).flat() : Array.from(values as ArrayLike<number>);
  const size = Math.round(Math.sqrt(flat.length));
  if (size * size !== flat.length || size % 2 !== 1) throw new RangeError(`a kernel needs an odd square number of values, got ${flat.length}`);
  if (!flat.every(Number.isFinite)) throw new RangeError('kernel values must be finite numbers');
  return { name, size, weights: Float64Array.from(flat) };
}

/** The editable kernel of the explorer: 3×3, 5×5 or 7×7. */
export function customKernel(values: ArrayLike<number> | readonly (readonly number[])[]): Kernel {
  const kernel = makeKernel('custom', values);
  if (!(CUSTOM_KERNEL_SIZES as readonly number[]).includes(kernel.size)) {
    throw new RangeError(`a custom kernel is 3×3, 5×5 or 7×7, got ${kernel.size}×${kernel.size}`);
  }
  kernel.name = `custom ${kernel.size}×${kernel.size}`;
  return kernel;
}

export function identityKernel(): Kernel {
  return makeKernel('identity', [0, 0, 0, 0, 1, 0, 0, 0, 0]);
}

/** Mean over a size×size square. */
export function boxBlurKernel(size = 3): Kernel {
  checkOddSize(size);
  return { name: `box blur ${size}×${size}`, size, weights: new Float64Array(size * size).fill(1 / (size * size)) };
}

/**
 * Sampled Gaussian exp(−(u² + v²) / 2σ²), normalised to sum 1. Default size: 2·⌈3σ⌉ + 1, which
 * holds all but ~0.3 % of the continuous mass.
 */
export function gaussianKernel(sigma: number, size = 2 * Math.ceil(3 * sigma) + 1): Kernel {
  if (!(sigma > 0)) throw new RangeError(`σ must be positive, got ${sigma}`);
  checkOddSize(size);
  const r = (size - 1) / 2;
  const weights = new Float64Array(size * size);
  let sum = 0;
  for (let v = -r; v <= r; v++) {
    for (let u = -r; u <= r; u++) {
      const w = Math.exp(-(u * u + v * v) / (2 * sigma * sigma));
      weights[(v + r) * size + (u + r)] = w;
      sum += w;
    }
  }
  for (let i = 0; i < weights.length; i++) weights[i]! /= sum;
  return { name: `Gaussian blur σ=${sigma}, ${size}×${size}`, size, weights };
}

/** Identity plus the negative 4-neighbour Laplacian: 5 at the centre, −1 at the four neighbours. */
export function sharpenKernel(): Kernel {
  return makeKernel('sharpen', [0, -1, 0, -1, 5, -1, 0, -1, 0]);
}

/** Horizontal derivative (smoothed vertically); see the module comment for its sign. */
export function sobelXKernel(): Kernel {
  return makeKernel('Sobel x', [1, 0, -1, 2, 0, -2, 1, 0, -1]);
}

/** Vertical derivative (y down), the transpose of Sobel x. */
export function sobelYKernel(): Kernel {
  return makeKernel('Sobel y', [1, 2, 1, 0, 0, 0, -1, -2, -1]);
}

/** 4-neighbour Laplacian ∂²f/∂x² + ∂²f/∂y². */
export function laplacianKernel(): Kernel {
  return makeKernel('Laplacian', [0, 1, 0, 1, -4, 1, 0, 1, 0]);
}

/** Relief from the top left; not symmetric, so convolution and correlation light it from opposite sides. */
export function embossKernel(): Kernel {
  return makeKernel('emboss', [-2, -1, 0, -1, 1, 1, 0, 1, 2]);
}

/** The kernel rotated by 180° (flipped in x and y): correlation with k = convolution with flip(k). */
export function flipKernel(kernel: Kernel): Kernel {
  return { name: `${kernel.name} (flipped)`, size: kernel.size, weights: kernel.weights.slice().reverse() };
}

/**
 * The single kernel equivalent to applying `first` then `second` (their full convolution, size
 * s1 + s2 − 1). Exact away from the borders, for both operations: convolution is associative, and
 * correlating with a then b is convolving with flip(a) * flip(b) = flip(a * b).
 */
export function stackKernels(first: Kernel, second: Kernel): Kernel {
  const size = first.size + second.size - 1;
  const weights = new Float64Array(size * size);
  for (let y1 = 0; y1 < first.size; y1++) {
    for (let x1 = 0; x1 < first.size; x1++) {
      const a = first.weights[y1 * first.size + x1]!;
      if (a === 0) continue;
      for (let y2 = 0; y2 < second.size; y2++) {
        for (let x2 = 0; x2 < second.size; x2++) weights[(y1 + y2) * size + x1 + x2]! += a * second.weights[y2 * second.size + x2]!;
      }
    }
  }
  return { name: `${first.name} then ${second.name}`, size, weights };
}

/** Sum of the weights: 1 for smoothing/sharpening kernels (they keep brightness), 0 for derivatives. */
export function kernelSum(kernel: Kernel): number {
  return kernel.weights.reduce((s, w) => s + w, 0);
}

export type ClassicFilterId = 'identity' | 'box' | 'gaussian' | 'sharpen' | 'sobel-x' | 'sobel-y' | 'gradient-magnitude' | 'laplacian' | 'emboss';

/** The gallery's filters in order; gradient magnitude is the one that is not a single kernel. */
export const CLASSIC_FILTERS: readonly ClassicFilterId[] = ['identity', 'box', 'gaussian', 'sharpen', 'sobel-x', 'sobel-y', 'gradient-magnitude', 'laplacian', 'emboss'];

export interface ClassicKernelParameters {
  /** Box blur side (default 3). */
  boxSize?: number;
  /** Gaussian σ (default 1) and side (default 2·⌈3σ⌉ + 1). */
  sigma?: number;
  gaussianSize?: number;
}

/** The kernel of a gallery filter (undefined for gradient magnitude, which combines Sobel x and y). */
export function classicKernel(id: ClassicFilterId, params: ClassicKernelParameters = {}): Kernel | undefined {
  switch (id) {
    case 'identity': return identityKernel();
    case 'box': return boxBlurKernel(params.boxSize ?? 3);
    case 'gaussian': return gaussianKernel(params.sigma ?? 1, params.gaussianSize);
    case 'sharpen': return sharpenKernel();
    case 'sobel-x': return sobelXKernel();
    case 'sobel-y': return sobelYKernel();
    case 'laplacian': return laplacianKernel();
    case 'emboss': return embossKernel();
    case 'gradient-magnitude': return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Images

/** The 8-bit image as floats: its RGB channels, or one luminance channel (BT.601). */
export function toFloatImage(image: RgbImage, mode: 'rgb' | 'luminance'): FloatImage {
  const n = image.width * image.height;
  if (mode === 'rgb') return { width: image.width, height: image.height, channels: 3, data: Float32Array.from(image.data) };
  const data = new Float32Array(n);
  const [wr, wg, wb] = LUMA_601;
  for (let i = 0; i < n; i++) data[i] = wr * image.data[3 * i]! + wg * image.data[3 * i + 1]! + wb * image.data[3 * i + 2]!;
  return { width: image.width, height: image.height, channels: 1, data };
}

/** The index a border mode reads for coordinate `i` on an axis of length n; -1 means "zero". */
function borderIndex(i: number, n: number, border: BorderMode): number {
  if (i >= 0 && i < n) return i;
  if (border === 'zero') return -1;
  if (border === 'replicate' || n === 1) return i < 0 ? 0 : n - 1;
  // reflect without repeating the edge has period 2(n − 1); folding makes any kernel size work.
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/** `kernel` applied to every channel of `image`, by convolution or correlation (module comment). */
export function applyKernel(image: FloatImage, kernel: Kernel, options: ApplyOptions = {}): FloatImage {
  const operation = options.operation ?? 'convolution';
  const border = options.border ?? 'reflect';
  const { width: W, height: H, channels: C } = image;
  const size = kernel.size;
  const r = (size - 1) / 2;
  // f(x − u, y − v) for convolution, f(x + u, y + v) for correlation: the sign of the offset.
  const s = operation === 'convolution' ? -1 : 1;
  // Per output column/row, the source index of each kernel tap (or −1 for a zero border).
  const xs = new Int32Array(W * size);
  for (let x = 0; x < W; x++) for (let u = -r; u <= r; u++) xs[x * size + u + r] = borderIndex(x + s * u, W, border);
  const ys = new Int32Array(H * size);
  for (let y = 0; y < H; y++) for (let v = -r; v <= r; v++) ys[y * size + v + r] = borderIndex(y + s * v, H, border);

  const out = new Float32Array(W * H * C);
  const acc = new Float64Array(C);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      acc.fill(0);
      for (let kv = 0; kv < size; kv++) {
        const sy = ys[y * size + kv]!;
        if (sy < 0) continue;
        for (let ku = 0; ku < size; ku++) {
          const sx = xs[x * size + ku]!;
          const w = kernel.weights[kv * size + ku]!;
          if (sx < 0 || w === 0) continue;
          const base = (sy * W + sx) * C;
          for (let c = 0; c < C; c++) acc[c]! += w * image.data[base + c]!;
        }
      }
      const o = (y * W + x) * C;
      for (let c = 0; c < C; c++) out[o + c] = acc[c]!;
    }
  }
  return { width: W, height: H, channels: C, data: out };
}

/** Kernels applied one after another (stacking), each with the same options. */
export function applyKernels(image: FloatImage, kernels: readonly Kernel[], options: ApplyOptions = {}): FloatImage {
  return kernels.reduce((img, k) => applyKernel(img, k, options), image);
}

/**
 * √(Gx² + Gy²) with Gx, Gy the Sobel x/y responses. The operation only changes the signs of Gx
 * and Gy, so the magnitude is the same either way.
 */
export function gradientMagnitude(image: FloatImage, options: ApplyOptions = {}): FloatImage {
  const gx = applyKernel(image, sobelXKernel(), options);
  const gy = applyKernel(image, sobelYKernel(), options);
  const data = gx.data.map((v, i) => Math.hypot(v, gy.data[i]!));
  return { ...gx, data };
}

/** A gallery filter on an image (the kernel, or gradient magnitude). */
export function applyClassicFilter(image: FloatImage, id: ClassicFilterId, params: ClassicKernelParameters = {}, options: ApplyOptions = {}): FloatImage {
  const kernel = classicKernel(id, params);
  return kernel ? applyKernel(image, kernel, options) : gradientMagnitude(image, options);
}

// ---------------------------------------------------------------------------------------------
// Display

/**
 * How float output becomes 8-bit pixels:
 * - `clamp`: the value itself, clamped to 0…255 (brightness-keeping kernels: blur, sharpen, emboss);
 * - `signed`: 0 → mid-grey 128, ±m → 255/0 with m = max |value| over the image (derivatives:
 *   Sobel, Laplacian — positive brighter, negative darker);
 * - `magnitude`: 0 → black, the image's maximum → white (gradient magnitude).
 */
export type DisplayMapping = 'clamp' | 'signed' | 'magnitude';

/** The mapping a kernel's output is shown with: `signed` for zero-sum kernels, else `clamp`. */
export function displayMappingFor(kernel: Kernel | undefined): DisplayMapping {
  if (!kernel) return 'magnitude';
  return Math.abs(kernelSum(kernel)) < 1e-9 ? 'signed' : 'clamp';
}

/** 8-bit RGB for display (luminance repeated in R, G, B); `scale` is the m or maximum used. */
export function toDisplayRgb(image: FloatImage, mapping: DisplayMapping): RgbImage & { scale: number } {
  const { width, height, channels, data } = image;
  let scale = 255;
  if (mapping !== 'clamp') {
    scale = 0;
    for (const v of data) scale = Math.max(scale, Math.abs(v));
  }
  const level = (v: number): number => {
    const t = mapping === 'clamp' ? v : mapping === 'signed' ? (scale > 0 ? 127.5 + (127.5 * v) / scale : 128) : scale > 0 ? (255 * v) / scale : 0;
    return Math.min(255, Math.max(0, Math.round(t)));
  };
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) out[3 * i + c] = level(data[i * channels + (channels === 3 ? c : 0)]!);
  }
  return { width, height, data: out, scale };
}

function checkOddSize(size: number): void {
  if (!(Number.isInteger(size) && size > 0 && size % 2 === 1)) throw new RangeError(`kernel size must be a positive odd integer, got ${size}`);
}
