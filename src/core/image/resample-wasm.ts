/**
 * WebAssembly SIMD kernels for the two passes of the Pillow resampler (resample.ts).
 *
 * Why: the horizontal pass of a 4000×3000 → 224×224 resize is ~25 M taps × 3 channels; plain
 * JavaScript manages ~1 G multiply-adds/s (≈85 ms bilinear, ≈175 ms bicubic), SIMD does all
 * channels of a tap in one multiply. The arithmetic is the same int32 fixed point as the JS
 * path (products < 2^31, sums without overflow, arithmetic shift, clamp to a byte), so the
 * results are identical; the tests check that on random images.
 *
 * The module is tiny and assembled here from named opcodes (no toolchain in the build); each
 * kernel's algorithm is written out in pseudo-code above its builder. If WebAssembly SIMD is
 * unavailable, `loadKernels()` returns null and the JS path runs.
 */

// The project's lib (ES2022, no DOM) has no WebAssembly types; declare the little used here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmModule {
  readonly __brand: 'WebAssembly.Module';
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => {
    readonly exports: Record<string, unknown>;
  };
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
};

// ---------------------------------------------------------------------------------------
// A minimal assembler: just the opcodes the two kernels use.

const I32 = 0x7f;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];

// Control and scalar ops.
const block = [0x02, 0x40];
const loop = [0x03, 0x40];
const end = [0x0b];
const br = (depth: number) => [0x0c, ...uleb(depth)];
const brIf = (depth: number) => [0x0d, ...uleb(depth)];
const get = (local: number) => [0x20, ...uleb(local)];
const set = (local: number) => [0x21, ...uleb(local)];
const tee = (local: number) => [0x22, ...uleb(local)];
const i32const = (v: number) => [0x41, ...sleb(v)];
const i32load = (offset: number) => [0x28, 2, ...uleb(offset)];
const i32add = [0x6a];
const i32sub = [0x6b];
const i32mul = [0x6c];
const i32geU = [0x4f];
const i32eqz = [0x45];
const addTo = (local: number, amount: number[]) => [...get(local), ...amount, ...i32add, ...set(local)];

// SIMD ops (prefix 0xfd, LEB128 opcode).
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
/** Load 8 bytes, zero-extend to 8 × i16. */
const v128load8x8U = simd(0x02, 0, 0);
/** Load one i32 and splat it to 4 lanes. */
const v128load32Splat = simd(0x09, 2, 0);
const v128store32Lane0 = simd(0x5a, 0, 0, 0);
const i32x4splat = simd(0x11);
const i32x4extendLowI16x8U = simd(0xa9);
const i32x4mul = simd(0xb5);
const i32x4add = simd(0xae);
const i32x4shrS = simd(0xac);
const i16x8narrowI32x4S = simd(0x85);
const i8x16narrowI16x8U = simd(0x66);

/** Stack: [v128 acc] → 4 bytes `clip8(acc >> 22)` in lanes 0–3 (narrowing saturates = clamp). */
function clip8Lanes(scratch: number): number[] {
  return [
    ...i32const(22), ...i32x4shrS, ...tee(scratch), ...get(scratch), ...i16x8narrowI32x4S,
    ...tee(scratch), ...get(scratch), ...i8x16narrowI16x8U,
  ];
}

const HALF = 1 << 21;

/*
 * hpass(src, srcStride, rows, outW, bounds, weights, kStride, out)
 *   for y < rows:                                 row = src + y*srcStride
 *     for xx < outW:                              (bounds: i32 byteOffset, i32 count per xx)
 *       p = row + bounds[xx].byteOffset; n = bounds[xx].count; k = weights + xx*kStride
 *       acc = splat(2^21)
 *       while n: acc += u8x4(p) * splat(i32 k); p += 3; k += 4; n--
 *       store32(out, clip8(acc)); out += 3       (the 4th byte is overwritten by the next pixel)
 * Reads up to 5 bytes past the last source pixel and writes 1 byte past the output: callers pad.
 */
function horizontalKernel(): number[] {
  const [src, srcStride, rows, outW, bounds, weights, kStride, out] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [y, xx, row, p, n, k, b, kRow] = [8, 9, 10, 11, 12, 13, 14, 15];
  const acc = 16;
  const locals = vec([[8, I32], [1, V128]]);
  const body = [
    ...block, ...loop,
    ...get(y), ...get(rows), ...i32geU, ...brIf(1),
    ...get(src), ...get(y), ...get(srcStride), ...i32mul, ...i32add, ...set(row),
    ...i32const(0), ...set(xx),
    ...get(bounds), ...set(b),
    ...get(weights), ...set(kRow),
    ...block, ...loop,
    ...get(xx), ...get(outW), ...i32geU, ...brIf(1),
    ...get(row), ...get(b), ...i32load(0), ...i32add, ...set(p),
    ...get(b), ...i32load(4), ...set(n),
    ...get(kRow), ...set(k),
    ...i32const(HALF), ...i32x4splat, ...set(acc),
    ...block, ...loop,
    ...get(n), ...i32eqz, ...brIf(1),
    ...get(acc),
    ...get(p), ...v128load8x8U, ...i32x4extendLowI16x8U,
    ...get(k), ...v128load32Splat,
    ...i32x4mul, ...i32x4add, ...set(acc),
    ...addTo(p, i32const(3)),
    ...addTo(k, i32const(4)),
    ...get(n), ...i32const(1), ...i32sub, ...set(n),
    ...br(0),
    ...end, ...end,
    ...get(out), ...get(acc), ...clip8Lanes(acc), ...v128store32Lane0,
    ...addTo(out, i32const(3)),
    ...addTo(b, i32const(8)),
    ...addTo(kRow, get(kStride)),
    ...addTo(xx, i32const(1)),
    ...br(0),
    ...end, ...end,
    ...addTo(y, i32const(1)),
    ...br(0),
    ...end, ...end,
    ...end,
  ];
  const code = [...locals, ...body];
  return [...uleb(code.length), ...code];
}

/*
 * vpass(src, rowLen, outH, bounds, weights, kStride, out)
 *   for yy < outH:                                (bounds: i32 first-row byte offset, i32 count)
 *     for i < rowLen step 4:                      four bytes (channels of neighbouring pixels)
 *       p = src + bounds[yy].byteOffset + i; n = count; k = weights + yy*kStride
 *       acc = splat(2^21)
 *       while n: acc += u8x4(p) * splat(i32 k); p += rowLen; k += 4; n--
 *       store32(out, clip8(acc)); out += 4
 * The last chunk of a row may read/write up to 3 bytes past the row: the next row's output is
 * written afterwards, and callers pad the buffers' ends.
 */
function verticalKernel(): number[] {
  const [src, rowLen, outH, bounds, weights, kStride, out] = [0, 1, 2, 3, 4, 5, 6];
  const [yy, i, rowStart, p, n, k, kRow, rowOut] = [7, 8, 9, 10, 11, 12, 13, 14];
  const acc = 15;
  const locals = vec([[8, I32], [1, V128]]);
  const body = [
    ...get(weights), ...set(kRow),
    ...block, ...loop,
    ...get(yy), ...get(outH), ...i32geU, ...brIf(1),
    ...get(src), ...get(bounds), ...i32load(0), ...i32add, ...set(rowStart),
    ...get(out), ...set(rowOut),
    ...i32const(0), ...set(i),
    ...block, ...loop,
    ...get(i), ...get(rowLen), ...i32geU, ...brIf(1),
    ...get(rowStart), ...get(i), ...i32add, ...set(p),
    ...get(bounds), ...i32load(4), ...set(n),
    ...get(kRow), ...set(k),
    ...i32const(HALF), ...i32x4splat, ...set(acc),
    ...block, ...loop,
    ...get(n), ...i32eqz, ...brIf(1),
    ...get(acc),
    ...get(p), ...v128load8x8U, ...i32x4extendLowI16x8U,
    ...get(k), ...v128load32Splat,
    ...i32x4mul, ...i32x4add, ...set(acc),
    ...addTo(p, get(rowLen)),
    ...addTo(k, i32const(4)),
    ...get(n), ...i32const(1), ...i32sub, ...set(n),
    ...br(0),
    ...end, ...end,
    ...get(rowOut), ...get(acc), ...clip8Lanes(acc), ...v128store32Lane0,
    ...addTo(rowOut, i32const(4)),
    ...addTo(i, i32const(4)),
    ...br(0),
    ...end, ...end,
    ...addTo(out, get(rowLen)),
    ...addTo(bounds, i32const(8)),
    ...addTo(kRow, get(kStride)),
    ...addTo(yy, i32const(1)),
    ...br(0),
    ...end, ...end,
    ...end,
  ];
  const code = [...locals, ...body];
  return [...uleb(code.length), ...code];
}

function assembleModule(): Uint8Array {
  const hType = [0x60, ...vec(Array.from({ length: 8 }, () => [I32])), 0];
  const vType = [0x60, ...vec(Array.from({ length: 7 }, () => [I32])), 0];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([hType, vType])),
    // Memory imported so the caller can size it per call and let it be collected afterwards.
    ...section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x00, 0x01]])),
    ...section(3, vec([[0], [1]])),
    ...section(7, vec([
      [...name('hpass'), 0x00, 0],
      [...name('vpass'), 0x00, 1],
    ])),
    ...section(10, vec([horizontalKernel(), verticalKernel()])),
  ];
  return Uint8Array.from(bytes);
}

export interface ResampleKernels {
  readonly memory: WasmMemory;
  hpass(src: number, srcStride: number, rows: number, outW: number, bounds: number, weights: number, kStride: number, out: number): void;
  vpass(src: number, rowLen: number, outH: number, bounds: number, weights: number, kStride: number, out: number): void;
}

let compiled: WasmModule | null | undefined;
let cached: ResampleKernels | null = null;
let releaseTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * Kept this long after the last resize. Touching fresh pages costs more than the resize itself
 * (≈100 ms for the 36 MB of a 12-megapixel photo), so the memory is reused across calls, but
 * not held for the life of the process.
 */
const RELEASE_AFTER_MS = 30_000;

/**
 * The kernels on a memory of at least `bytes` bytes, or null when this runtime has no
 * WebAssembly SIMD (the caller then uses the JS path). The memory's previous contents are
 * garbage; views on it must be created after this call (growing detaches old ones).
 */
export function loadKernels(bytes: number): ResampleKernels | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(assembleModule());
    } catch {
      compiled = null;
    }
  }
  if (compiled === null) return null;
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  // 65536 pages = the 4 GiB address space of wasm32.
  if (pages > 65536) return null;
  try {
    if (!cached) {
      const memory = new WebAssembly.Memory({ initial: pages });
      const instance = new WebAssembly.Instance(compiled, { env: { mem: memory } });
      const exports = instance.exports as unknown as Pick<ResampleKernels, 'hpass' | 'vpass'>;
      cached = { memory, hpass: exports.hpass, vpass: exports.vpass };
    } else {
      const have = cached.memory.buffer.byteLength / 65536;
      if (pages > have) cached.memory.grow(pages - have);
    }
  } catch {
    // Out of memory for the wasm heap: the JS path needs less contiguous memory.
    cached = null;
    return null;
  }
  clearTimeout(releaseTimer);
  releaseTimer = setTimeout(releaseKernelMemory, RELEASE_AFTER_MS);
  releaseTimer.unref?.();
  return cached;
}

/** Memory above this is given back right after the call instead of being kept for the next. */
const RETAIN_MAX_BYTES = 64 * 1024 * 1024;

/** Call when done with the memory of `loadKernels`: frees it now if it grew unusually large. */
export function finishedWithKernels(): void {
  if (cached && cached.memory.buffer.byteLength > RETAIN_MAX_BYTES) releaseKernelMemory();
}

/** Drops the kernels' memory now (it is also dropped after RELEASE_AFTER_MS idle). */
export function releaseKernelMemory(): void {
  clearTimeout(releaseTimer);
  releaseTimer = undefined;
  cached = null;
}
