/**
 * Weight-only block quantisation for ONNX Runtime's `com.microsoft` MatMulNBits, and the on-disk
 * cache that holds a checkpoint's quantised weights.
 *
 * MatMulNBits computes Y = A · dequant(B)ᵀ for a PyTorch Linear weight W [N, K] (out, in): each row
 * of W is cut into blocks of `blockSize` values along K (the last block zero-padded), and each
 * block stores unsigned `bits`-bit codes q, one float scale s and a zero point z, with
 * w = (q − z) · s. Layout (ORT's contrib-op spec, MLAS BlockwiseQuantizer):
 *   B            uint8 [N, blocks, blockSize·bits/8]: 4-bit codes two per byte, the even element
 *                in the low nibble;
 *   scales       float [N·blocks] (the type of A: float32 here);
 *   zero_points  uint8 [N·ceil(blocks·bits/8)], 4-bit ones two per byte, low nibble first, each row
 *                padded to whole bytes; absent means z = 2^(bits−1).
 * Scales and zero points come from each block's range as MLAS' reference quantiser computes them
 * (`range2scalezp` / `range2scale`, in float32): asymmetric s = (max(mx,0) − min(mn,0)) / (2^bits − 1),
 * z = round(−min/s); symmetric s = −m / 2^(bits−1) with m the value of largest magnitude.
 *
 * The cache is one safetensors file per (checkpoint identity, plan, spec), converted once,
 * streaming chunks of rows so memory stays at a few hundred MB however large the checkpoint, and
 * written through a temporary file renamed into place. It also holds float32 copies of every other
 * tensor the graph needs (biases, norms), because ORT resolves all external data against one folder.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CancelledError, UserError, check } from '../errors.js';
import type { Checkpoint } from '../io/checkpoint.js';
import {
  DTYPE_BYTES, SafetensorsFile, decodeToF32, encodeHeader, fsUserError, isFloatDtype, writeFileAtomically,
  type Dtype, type PositionalWrite, type TensorDescriptor,
} from '../io/safetensors.js';
import type { GraphBuilder, Value } from '../onnx/graph.js';
import { OnnxDataType } from '../onnx/proto.js';

/** How a model's large matrices are stored for inference. */
export type WeightPrecision = 'fp32' | 'int8' | 'int4';
export const WEIGHT_PRECISIONS: readonly WeightPrecision[] = ['fp32', 'int8', 'int4'];

export interface QuantSpec {
  bits: 4 | 8;
  /** Values per block along K: a power of two ≥ 16 (MatMulNBits' rule). */
  blockSize: number;
  /** true: no zero points, scale from the value of largest magnitude; false: per-block min/max with zero points. */
  symmetric: boolean;
}

/**
 * Values per block of our weights. Not ORT's default 32: at accuracy level 4, ORT 1.30 holds each
 * 4-bit weight as its packed code plus a float32 scale and a float32 block sum per block, and keeps
 * the file's scales mapped, so memory per weight is 0.5 + 12/block bytes. Measured on a 16384×4096
 * weight (MatMulNBits alone): 0.92 bytes/weight at block 32, 0.72 at 64, 0.62 at 128 — Fuyu-8B's
 * 8.3 G quantised weights take 7.6, 6.0 and 5.2 GB — and block 128 ran as fast at M = 1 and M = 1240
 * (2.2 vs 2.4 ms, 0.54 vs 0.82 s). 7.6 GB alone would miss a laptop's 7 GB; group size 128 is also
 * what GPTQ/AWQ 4-bit checkpoints use.
 */
export const QUANT_BLOCK_SIZE = 128;

/** Asymmetric blocks of QUANT_BLOCK_SIZE (zero points: the better fit for weights not centred on 0). */
export function quantSpecFor(precision: Exclude<WeightPrecision, 'fp32'>, options: { symmetric?: boolean } = {}): QuantSpec {
  return { bits: precision === 'int4' ? 4 : 8, blockSize: QUANT_BLOCK_SIZE, symmetric: options.symmetric ?? false };
}

/**
 * MatMulNBits `accuracy_level` 4: A is quantised to int8 per block and the dot products run in
 * int8 (4-bit: 2–4× faster than fp32 at M = 1; 8-bit is pathologically slow at any other level).
 */
export const ACCURACY_LEVEL = 4;

/** The MatMulNBits shapes of one [n, k] weight. */
export interface QuantizedShape {
  n: number;
  k: number;
  blocks: number;
  /** Bytes per block of codes: blockSize·bits/8. */
  blobSize: number;
  /** Bytes of packed zero points per row of W. */
  zeroPointBytesPerRow: number;
}

export function quantizedShape(n: number, k: number, spec: QuantSpec): QuantizedShape {
  const blocks = Math.ceil(k / spec.blockSize);
  return { n, k, blocks, blobSize: (spec.blockSize * spec.bits) / 8, zeroPointBytesPerRow: Math.ceil((blocks * spec.bits) / 8) };
}

/** Quantised rows of a weight: codes [rows, blocks, blobSize], scales [rows·blocks], zero points [rows·zeroPointBytesPerRow]. */
export interface QuantizedMatrix {
  data: Uint8Array;
  scales: Float32Array;
  /** Absent for symmetric quantisation. */
  zeroPoints?: Uint8Array;
}

export function allocateQuantized(shape: QuantizedShape, rows: number, spec: QuantSpec): QuantizedMatrix {
  return {
    data: new Uint8Array(rows * shape.blocks * shape.blobSize),
    scales: new Float32Array(rows * shape.blocks),
    zeroPoints: spec.symmetric ? undefined : new Uint8Array(rows * shape.zeroPointBytesPerRow),
  };
}

/**
 * Quantises `rows` rows of the row-major [rows, k] matrix `src` into `out`, whose row 0 receives
 * src's row 0. Padding past K gets the zero point's code, so it dequantises to 0.
 */
export function quantizeRows(src: Float32Array, rows: number, shape: QuantizedShape, spec: QuantSpec, out: QuantizedMatrix): void {
  const { k, blocks, blobSize, zeroPointBytesPerRow } = shape;
  const { bits, blockSize } = spec;
  const qmax = (1 << bits) - 1;
  const mid = 1 << (bits - 1);
  const fround = Math.fround;
  const codes = new Uint8Array(blockSize);
  for (let r = 0; r < rows; r++) {
    const rowStart = r * k;
    for (let b = 0; b < blocks; b++) {
      const start = rowStart + b * blockSize;
      const end = rowStart + Math.min((b + 1) * blockSize, k);
      let min = Infinity;
      let max = -Infinity;
      for (let i = start; i < end; i++) {
        const v = src[i]!;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      let scale: number;
      let zp: number;
      if (spec.symmetric) {
        scale = fround(-(Math.abs(max) > Math.abs(min) ? max : min) / mid);
        zp = mid;
      } else {
        const lo = Math.min(min, 0);
        const hi = Math.max(max, 0);
        scale = fround(fround(hi - lo) / qmax);
        const zpFloat = scale !== 0 ? fround(0 - fround(lo / scale)) : lo;
        zp = zpFloat < 0 ? 0 : zpFloat > qmax ? qmax : Math.round(zpFloat); // roundf: halves away from zero (zpFloat ≥ 0 here)
      }
      const reciprocal = scale !== 0 ? fround(1 / scale) : 0;
      codes.fill(zp);
      for (let i = start; i < end; i++) {
        const q = Math.round(fround(fround(src[i]! * reciprocal) + zp)); // clamped below; negative values clamp to 0 either way
        codes[i - start] = q < 0 ? 0 : q > qmax ? qmax : q;
      }
      const block = r * blocks + b;
      out.scales[block] = scale;
      const blob = block * blobSize;
      if (bits === 4) {
        for (let j = 0; j < blobSize; j++) out.data[blob + j] = codes[2 * j]! | (codes[2 * j + 1]! << 4);
        if (out.zeroPoints) {
          const at = r * zeroPointBytesPerRow + (b >> 1);
          out.zeroPoints[at] = b & 1 ? (out.zeroPoints[at]! & 0x0f) | (zp << 4) : (out.zeroPoints[at]! & 0xf0) | zp;
        }
      } else {
        out.data.set(codes, blob);
        if (out.zeroPoints) out.zeroPoints[r * zeroPointBytesPerRow + b] = zp;
      }
    }
  }
}

/** W [n, k] back from its blocks, as MatMulNBits sees it: (q − z) · s in float32. */
export function dequantize(q: QuantizedMatrix, shape: QuantizedShape, spec: QuantSpec): Float32Array {
  const { n, k, blocks, blobSize, zeroPointBytesPerRow } = shape;
  const { bits, blockSize } = spec;
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < blocks; b++) {
      const block = r * blocks + b;
      const scale = q.scales[block]!;
      let zp = 1 << (bits - 1);
      if (q.zeroPoints) {
        zp = bits === 4 ? (q.zeroPoints[r * zeroPointBytesPerRow + (b >> 1)]! >> ((b & 1) * 4)) & 0x0f : q.zeroPoints[r * zeroPointBytesPerRow + b]!;
      }
      for (let j = 0; j < blockSize && b * blockSize + j < k; j++) {
        const code = bits === 4 ? (q.data[block * blobSize + (j >> 1)]! >> ((j & 1) * 4)) & 0x0f : q.data[block * blobSize + j]!;
        out[r * k + b * blockSize + j] = Math.fround((code - zp) * scale);
      }
    }
  }
  return out;
}

/**
 * Y = A · dequant(W)ᵀ (+ bias) as a MatMulNBits node over quantised tensors given as external
 * initializers; A is float [..., K], Y float [..., N].
 */
export function matMulNBits(
  g: GraphBuilder, a: Value,
  tensors: { data: TensorDescriptor; scales: TensorDescriptor; zeroPoints?: TensorDescriptor },
  shape: QuantizedShape, spec: QuantSpec, options: { bias?: Value; name?: string; accuracyLevel?: number } = {},
): Value {
  const inputs = [a, g.externalTensor(tensors.data, OnnxDataType.UINT8), g.externalTensor(tensors.scales, OnnxDataType.FLOAT)];
  if (tensors.zeroPoints) inputs.push(g.externalTensor(tensors.zeroPoints, OnnxDataType.UINT8));
  const attributes = { K: shape.k, N: shape.n, bits: spec.bits, block_size: spec.blockSize, accuracy_level: options.accuracyLevel ?? ACCURACY_LEVEL };
  // The bias is a separate Add: MatMulNBits' own bias input is newer than some ORT builds users have.
  if (!options.bias) return g.op('MatMulNBits', inputs, attributes, { domain: MS_DOMAIN, name: options.name });
  const product = g.op('MatMulNBits', inputs, attributes, { domain: MS_DOMAIN });
  return g.op('Add', [product, options.bias], undefined, { name: options.name });
}

/** ONNX Runtime's contrib-op domain, and the opsets a graph using it declares. */
export const MS_DOMAIN = 'com.microsoft';
export const QUANTIZED_OPSETS: Readonly<Record<string, number>> = { '': 17, [MS_DOMAIN]: 1 };

// ---------------------------------------------------------------------------------------------
// Streaming safetensors layout (the header first, then tensors written at known offsets)

export interface PlannedTensor {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
}

export interface SafetensorsLayout {
  /** 8-byte length prefix + header JSON padded with spaces to a multiple of 8. */
  prefix: Uint8Array;
  /** Absolute file offset and byte length of each tensor, in the order given. */
  offsets: Map<string, { offset: number; length: number }>;
  fileSize: number;
}

/**
 * A safetensors header for tensors whose bytes are produced later, stored in the order given (the
 * reader only needs them to tile the data region), so files larger than memory can be streamed.
 */
export function planSafetensors(tensors: readonly PlannedTensor[], metadata: Readonly<Record<string, string>> = {}): SafetensorsLayout {
  const entries = tensors.map((t) => ({ ...t, byteLength: t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype] }));
  const { header, offsets, dataBytes } = encodeHeader(entries, metadata);
  const prefix = Buffer.alloc(8 + header.length);
  prefix.writeBigUInt64LE(BigInt(header.length), 0);
  prefix.set(header, 8);
  const dataStart = prefix.length;
  return {
    prefix,
    offsets: new Map(entries.map((t, i) => [t.name, { offset: dataStart + offsets[i]!, length: t.byteLength }])),
    fileSize: dataStart + dataBytes,
  };
}

/** Writes a planned safetensors file atomically: the prefix, then whatever `fill` writes at its offsets. */
export async function writeFileStreamed(file: string, layout: SafetensorsLayout, fill: (write: PositionalWrite) => Promise<void>): Promise<void> {
  await writeFileAtomically(file, async (write) => {
    await write(layout.prefix, 0);
    await fill(write);
  }, 'write the quantised weights', layout.fileSize);
}

// ---------------------------------------------------------------------------------------------
// The quantised-weights cache of one checkpoint

/** Stored names of the [N, K] weights to quantise and of the float tensors to copy (as float32) beside them. */
export interface QuantizationPlan {
  quantize: readonly string[];
  copy: readonly string[];
}

export interface QuantizeProgress {
  /** Source bytes converted so far, of `total`. */
  done: number;
  total: number;
}

export interface OpenQuantizedOptions {
  signal?: AbortSignal;
  onProgress?: (progress: QuantizeProgress) => void;
}

const CACHE_FORMAT = 'vision-inspector/matmulnbits';
/** Bump when the file layout or the quantiser's arithmetic changes, so old caches are rebuilt. */
const CACHE_FORMAT_VERSION = '1';
/** Source values converted per chunk: 16 Mi values = 32 MB of BF16, 64 MB as float32. */
const CHUNK_VALUES = 1 << 24;

const suffix = { data: '.qweight', scales: '.scales', zeroPoints: '.zero_points' } as const;

export class QuantizedWeights {
  private constructor(
    /** The cache file (real path); every tensor of the quantised graph lives in it. */
    readonly file: string,
    readonly spec: QuantSpec,
    private readonly stored: SafetensorsFile,
    /** true when this call converted the checkpoint; false when an existing cache was reused. */
    readonly converted: boolean,
    private readonly shapes: ReadonlyMap<string, QuantizedShape>,
  ) {}

  /** The cache file name for a checkpoint, plan and spec: any change to one of them is another file. */
  static cacheKey(checkpoint: Checkpoint, plan: QuantizationPlan, spec: QuantSpec): string {
    return createHash('sha256')
      .update(JSON.stringify({ format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION, checkpoint: checkpoint.identity(), plan, spec }))
      .digest('hex')
      .slice(0, 32);
  }

  /**
   * The checkpoint's quantised weights from the cache folder `dir`, converting them first when the
   * cache has no complete, matching file (missing, truncated, or from another layout).
   */
  static async open(checkpoint: Checkpoint, plan: QuantizationPlan, spec: QuantSpec, dir: string, options: OpenQuantizedOptions = {}): Promise<QuantizedWeights> {
    check(spec.bits === 4 || spec.bits === 8, `only 4- and 8-bit weights are supported, not ${spec.bits}-bit.`);
    check(spec.blockSize >= 16 && (spec.blockSize & (spec.blockSize - 1)) === 0, `block size ${spec.blockSize} must be a power of two ≥ 16.`);
    try {
      await fsp.mkdir(dir, { recursive: true });
    } catch (err) {
      throw fsUserError(err, dir, 'create the quantised-weights cache folder');
    }
    // ORT refuses external data reached through symlinks that leave the folder: use the real folder.
    const realDir = await fsp.realpath(dir);
    const key = QuantizedWeights.cacheKey(checkpoint, plan, spec);
    const file = path.join(realDir, `${key}.safetensors`);
    const { tensors, shapes } = cacheLayout(checkpoint, plan, spec);
    const metadata = { format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION, key, bits: String(spec.bits), block_size: String(spec.blockSize), symmetric: String(spec.symmetric) };

    const existing = await openIfValid(file, tensors, metadata);
    if (existing) return new QuantizedWeights(file, spec, existing, false, shapes);
    await fsp.rm(file, { force: true }); // a damaged or foreign file under our name
    await convert(checkpoint, plan, spec, file, planSafetensors(tensors, metadata), shapes, options);
    const written = await openIfValid(file, tensors, metadata);
    if (!written) throw new Error(`the quantised weights just written to ${file} do not read back`);
    return new QuantizedWeights(file, spec, written, true, shapes);
  }

  /** Size of the cache file in bytes. */
  get byteSize(): number {
    return this.stored.fileSize;
  }

  /** The float32 copy of a copied tensor (by its stored name in the checkpoint), for GraphBuilder.weight. */
  describe(storedName: string): TensorDescriptor {
    const d = this.stored.describe(storedName);
    return { ...d, file: this.file };
  }

  /** Whether `storedName` is one of the quantised weights. */
  isQuantized(storedName: string): boolean {
    return this.shapes.has(storedName);
  }

  /** `x · Wᵀ (+ bias)` for the quantised weight `weightName` (stored name), bias a copied tensor. */
  linear(g: GraphBuilder, x: Value, weightName: string, biasName?: string, name?: string): Value {
    const shape = this.shapes.get(weightName);
    if (!shape) throw new Error(`${weightName} is not a quantised weight of ${this.file}`);
    const part = (s: string): TensorDescriptor => this.describe(weightName + s);
    const tensors = { data: part(suffix.data), scales: part(suffix.scales), zeroPoints: this.spec.symmetric ? undefined : part(suffix.zeroPoints) };
    return matMulNBits(g, x, tensors, shape, this.spec, { bias: biasName ? g.weight(this.describe(biasName)) : undefined, name });
  }
}

/** The tensors of a cache file: float32 ones first (aligned for any reader), then the byte-packed codes. */
function cacheLayout(checkpoint: Checkpoint, plan: QuantizationPlan, spec: QuantSpec): { tensors: PlannedTensor[]; shapes: Map<string, QuantizedShape> } {
  const floats: PlannedTensor[] = [];
  const bytes: PlannedTensor[] = [];
  const shapes = new Map<string, QuantizedShape>();
  for (const name of plan.quantize) {
    const d = checkpoint.describe(name);
    check(d.shape.length === 2 && isFloatDtype(d.dtype), `tensor '${name}' is ${d.dtype} ${JSON.stringify(d.shape)}; only 2-D float weights can be quantised.`, checkpoint.displayPath(name));
    const shape = quantizedShape(d.shape[0]!, d.shape[1]!, spec);
    shapes.set(name, shape);
    floats.push({ name: name + suffix.scales, dtype: 'F32', shape: [shape.n * shape.blocks] });
    bytes.push({ name: name + suffix.data, dtype: 'U8', shape: [shape.n, shape.blocks, shape.blobSize] });
    if (!spec.symmetric) bytes.push({ name: name + suffix.zeroPoints, dtype: 'U8', shape: [shape.n * shape.zeroPointBytesPerRow] });
  }
  for (const name of plan.copy) {
    const d = checkpoint.describe(name);
    check(isFloatDtype(d.dtype), `tensor '${name}' is ${d.dtype}; a floating-point tensor was expected.`, checkpoint.displayPath(name));
    floats.push({ name, dtype: 'F32', shape: d.shape });
  }
  return { tensors: [...floats, ...bytes], shapes };
}

/** The cache file when it is complete and was written for exactly this layout; undefined otherwise. */
async function openIfValid(file: string, tensors: readonly PlannedTensor[], metadata: Readonly<Record<string, string>>): Promise<SafetensorsFile | undefined> {
  let stored: SafetensorsFile;
  try {
    stored = await SafetensorsFile.open(file); // validates the header and that the data fills the file exactly
  } catch {
    return undefined;
  }
  for (const [key, value] of Object.entries(metadata)) if (stored.metadata.get(key) !== value) return undefined;
  if (stored.tensorNames().length !== tensors.length) return undefined;
  for (const t of tensors) {
    if (!stored.has(t.name)) return undefined;
    const d = stored.describe(t.name);
    if (d.dtype !== t.dtype || d.shape.join() !== t.shape.join()) return undefined;
  }
  return stored;
}

async function convert(
  checkpoint: Checkpoint, plan: QuantizationPlan, spec: QuantSpec, file: string, layout: SafetensorsLayout,
  shapes: ReadonlyMap<string, QuantizedShape>, options: OpenQuantizedOptions,
): Promise<void> {
  const names = [...plan.quantize, ...plan.copy];
  const total = names.reduce((sum, name) => sum + checkpoint.describe(name).byteLength, 0);
  let done = 0;
  const at = (name: string): number => layout.offsets.get(name)!.offset;
  const aborted = (): void => {
    if (options.signal?.aborted) throw new CancelledError('Quantising the weights was cancelled.');
  };
  await writeFileStreamed(file, layout, async (write) => {
    for (const name of plan.quantize) {
      const d = checkpoint.describe(name);
      const shape = shapes.get(name)!;
      const rowBytes = shape.k * DTYPE_BYTES[d.dtype];
      const rowsPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / shape.k));
      for (let row = 0; row < shape.n; row += rowsPerChunk) {
        aborted();
        const rows = Math.min(rowsPerChunk, shape.n - row);
        const values = decodeToF32(d.dtype, await checkpoint.readRawRange(name, row * rowBytes, rows * rowBytes));
        const q = allocateQuantized(shape, rows, spec);
        quantizeRows(values, rows, shape, spec, q);
        await write(q.data, at(name + suffix.data) + row * shape.blocks * shape.blobSize);
        await write(asBytes(q.scales), at(name + suffix.scales) + row * shape.blocks * 4);
        if (q.zeroPoints) await write(q.zeroPoints, at(name + suffix.zeroPoints) + row * shape.zeroPointBytesPerRow);
        done += rows * rowBytes;
        options.onProgress?.({ done, total });
      }
    }
    for (const name of plan.copy) {
      aborted();
      await write(asBytes(await checkpoint.readF32(name)), at(name));
      done += checkpoint.describe(name).byteLength;
      options.onProgress?.({ done, total });
    }
  });
}

function asBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/**
 * Rows `ids` of a [V, D] float table (e.g. token embeddings) as float32 [ids.length, D], reading
 * only those rows from the checkpoint (each distinct id once): a 262,144-row table never has to be
 * in memory, and the rows are exact (no quantisation).
 */
export async function readTableRows(checkpoint: Checkpoint, name: string, ids: readonly number[]): Promise<Float32Array> {
  const d = checkpoint.describe(name);
  check(d.shape.length === 2 && isFloatDtype(d.dtype), `tensor '${name}' must be a 2-D float table.`, checkpoint.displayPath(name));
  const [rows, dim] = d.shape as [number, number];
  const rowBytes = dim * DTYPE_BYTES[d.dtype];
  const out = new Float32Array(ids.length * dim);
  const distinct = new Map<number, Float32Array>();
  for (const id of ids) {
    if (distinct.has(id)) continue;
    if (!(Number.isInteger(id) && id >= 0 && id < rows)) throw new UserError(`token id ${id} is outside the ${rows}-row table '${name}'.`);
    distinct.set(id, decodeToF32(d.dtype, await checkpoint.readRawRange(name, id * rowBytes, rowBytes)));
  }
  ids.forEach((id, i) => out.set(distinct.get(id)!, i * dim));
  return out;
}
