/**
 * safetensors reader and writer (SPEC §1.2).
 *
 * The reader opens a file, validates its header exactly as the reference Rust reader does, and
 * keeps only the tensor table in memory; tensor bytes are read on demand, so opening an 18 GB
 * checkpoint costs a few kilobytes. Every problem a user's file can cause becomes a UserError that
 * names the file (and the tensor), because these files come from downloads that get interrupted,
 * from Git LFS clones without LFS, or from tools that write odd layouts.
 *
 * The writer produces the same bytes as the reference writer (header padded with spaces to a
 * multiple of 8, tensors by descending dtype rank then name), through a temporary file renamed
 * into place so a crash or a full disk never leaves a half-written file behind.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import * as path from 'node:path';
import { CancelledError, UserError, check } from '../errors.js';

// Typed arrays use the platform byte order and safetensors is little-endian; every platform
// Node and VS Code ship on is little-endian, so a big-endian host is a build problem, not a user's.
if (endianness() !== 'LE') throw new Error('safetensors I/O assumes a little-endian host');

/** The reference reader's `MAX_HEADER_SIZE`: anything larger is not a real header. */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * dtypes this tool reads, in the reference `enum Dtype` order (increasing alignment). The order
 * matters: the reference writer sorts tensors by this rank, descending, and we reproduce its bytes.
 */
export const DTYPES = [
  'BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64',
] as const;
export type Dtype = (typeof DTYPES)[number];

/** Bytes per element of each supported dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8,
};

const DTYPE_RANK: ReadonlyMap<string, number> = new Map(DTYPES.map((d, i) => [d, i]));

/** dtypes newer safetensors versions define but no target checkpoint uses; refused by name. */
const EXOTIC_DTYPES: ReadonlySet<string> = new Set([
  'F4', 'F6_E2M3', 'F6_E3M2', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ', 'C64',
]);

const FLOAT_DTYPES: ReadonlySet<Dtype> = new Set<Dtype>(['F8_E5M2', 'F8_E4M3', 'F16', 'BF16', 'F32', 'F64']);

export function isDtype(value: string): value is Dtype {
  return DTYPE_RANK.has(value);
}

export function isFloatDtype(dtype: Dtype): boolean {
  return FLOAT_DTYPES.has(dtype);
}

/** Where one tensor lives on disk; enough to read it later or hand it to ORT as external data. */
export interface TensorDescriptor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Absolute offset of the first byte in `file` (8 + header length + data_offsets[0]). */
  readonly byteOffset: number;
  readonly byteLength: number;
  /** The file holding the bytes (as opened; Checkpoint replaces it with the resolved real path). */
  readonly file: string;
}

/** A tensor's elements in their stored representation (F16/BF16/F8 as raw bits). */
export type StoredArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | Float32Array | Float64Array | BigInt64Array | BigUint64Array;

/** Said with every "this is not a valid safetensors file" error. */
const DAMAGED_FILE_HINT =
  'The file is damaged, incomplete or not a safetensors file: download it again, or re-save the weights with the safetensors library.';

/** fs reads and writes of more than 2 GiB − 1 bytes at once fail in Node, so large tensors move in chunks. */
const IO_CHUNK_BYTES = 1 << 30;

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Number of elements of a shape; exact (BigInt) because a lying header may ask for more than 2^53. */
function elementCount(shape: readonly number[]): bigint {
  return shape.reduce((n, d) => n * BigInt(d), 1n);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Turns a Node fs error about a user's file into a UserError; anything else is rethrown unchanged. */
export function fsUserError(err: unknown, file: string, action: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new UserError(`cannot ${action}: no such file or folder.`, file);
    case 'EACCES':
    case 'EPERM':
      return new UserError(`cannot ${action}: permission denied.`, file, 'Check the file permissions.');
    case 'EISDIR':
      return new UserError(`cannot ${action}: it is a folder, not a file.`, file);
    case 'ENOTDIR':
      return new UserError(`cannot ${action}: a part of the path is not a folder.`, file);
    case 'ENOSPC':
      return new UserError(`cannot ${action}: no space left on the disk.`, file, 'Free some disk space and try again.');
    case 'EDQUOT':
      return new UserError(`cannot ${action}: disk quota exceeded.`, file, 'Free some disk space and try again.');
    case 'EROFS':
      return new UserError(`cannot ${action}: the file system is read-only.`, file);
    case undefined:
      return err;
    default:
      return new UserError(`cannot ${action}: ${(err as Error).message}`, file);
  }
}

/** Reads exactly `length` bytes at `position`; a short read means the file shrank under us. */
async function readExactly(handle: FileHandle, file: string, position: number, length: number): Promise<Uint8Array> {
  // A fresh buffer (byteOffset 0) is aligned for every typed-array view, whatever the file offset:
  // this is what makes unaligned tensors from non-reference writers safe to view (SPEC §1.2).
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const want = Math.min(IO_CHUNK_BYTES, length - done);
    const { bytesRead } = await handle.read(bytes, done, want, position + done);
    check(bytesRead > 0, `the file ended after ${position + done} bytes while reading; it is truncated or was changed while open.`, file, DAMAGED_FILE_HINT);
    done += bytesRead;
  }
  return bytes;
}

/** A better message than "header too large" for the two look-alikes users actually have. */
function recognizeForeignFile(prefix: Uint8Array): string | undefined {
  const text = Buffer.from(prefix).toString('latin1');
  if (text.startsWith('version https://git-lfs')) {
    return 'is a Git LFS pointer, not the weights themselves (the repository was cloned without Git LFS). Run `git lfs pull` in the model folder, or download the model with `huggingface-cli download`.';
  }
  if (text.startsWith('PK\x03\x04') || prefix[0] === 0x80) {
    return 'is a PyTorch pickle/zip checkpoint renamed to .safetensors, not a safetensors file. Pickle checkpoints are never loaded because they can run code; convert it to safetensors.';
  }
  return undefined;
}

/** One safetensors file: its validated tensor table, and lazy readers for the tensor bytes. */
export class SafetensorsFile {
  private constructor(
    /** The path as given to open(); used in messages and to read. */
    readonly path: string,
    readonly fileSize: number,
    /** Modification time when opened; part of cache keys. */
    readonly mtimeMs: number,
    /** N: the header's length in bytes. Tensor data starts at 8 + N. */
    readonly headerLength: number,
    /** The `__metadata__` map (empty when absent). */
    readonly metadata: ReadonlyMap<string, string>,
    /** Descriptors in file order (by offset). */
    private readonly tensors: ReadonlyMap<string, TensorDescriptor>,
  ) {}

  /** Reads and validates the header of `file` (SPEC §1.2); no tensor data is read. */
  static async open(file: string): Promise<SafetensorsFile> {
    let handle: FileHandle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (err) {
      throw fsUserError(err, file, 'open the safetensors file');
    }
    try {
      const stat = await handle.stat();
      check(stat.isFile(), 'is not a file; expected a .safetensors file.', file);
      const fileSize = stat.size;
      check(fileSize >= 8, `is not a safetensors file: it is only ${fileSize} bytes long.`, file, DAMAGED_FILE_HINT);

      const lengthBytes = await readExactly(handle, file, 0, 8);
      const headerLength = Buffer.from(lengthBytes).readBigUInt64LE(0);
      if (headerLength > BigInt(MAX_HEADER_BYTES) || 8n + headerLength > BigInt(fileSize)) {
        const foreign = recognizeForeignFile(await readExactly(handle, file, 0, Math.min(fileSize, 32)));
        if (foreign) throw new UserError(foreign, file);
      }
      check(headerLength <= BigInt(MAX_HEADER_BYTES),
        `is not a safetensors file: its header length (${headerLength} bytes) exceeds the ${MAX_HEADER_BYTES}-byte limit.`,
        file, DAMAGED_FILE_HINT);
      const n = Number(headerLength);
      check(8 + n <= fileSize,
        `is truncated or not a safetensors file: its header claims ${n} bytes but the file has only ${fileSize} bytes.`,
        file, DAMAGED_FILE_HINT);

      const headerBytes = await readExactly(handle, file, 8, n);
      const { metadata, tensors } = parseHeader(headerBytes, file, fileSize);
      return new SafetensorsFile(file, fileSize, stat.mtimeMs, n, metadata, tensors);
    } catch (err) {
      throw fsUserError(err, file, 'read the safetensors file');
    } finally {
      await handle.close();
    }
  }

  /** Tensor names in file order. */
  tensorNames(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The descriptor of `name`; a UserError naming the file if there is no such tensor. */
  describe(name: string): TensorDescriptor {
    const descriptor = this.tensors.get(name);
    check(descriptor, `has no tensor '${name}'.`, this.path);
    return descriptor;
  }

  /** All descriptors in file order. */
  descriptors(): TensorDescriptor[] {
    return [...this.tensors.values()];
  }

  /** The tensor's bytes, as stored (little-endian, C order), in a fresh aligned buffer. */
  async readRaw(name: string): Promise<Uint8Array> {
    const d = this.describe(name);
    return this.readBytes(d.byteOffset, d.byteLength);
  }

  /**
   * `byteLength` bytes starting `byteStart` bytes into the tensor (e.g. a few rows of a large
   * embedding table), without reading the rest.
   */
  async readRawRange(name: string, byteStart: number, byteLength: number): Promise<Uint8Array> {
    const d = this.describe(name);
    if (!(isNonNegativeInteger(byteStart) && isNonNegativeInteger(byteLength) && byteStart + byteLength <= d.byteLength)) {
      throw new RangeError(`range [${byteStart}, ${byteStart + byteLength}) is outside tensor '${name}' (${d.byteLength} bytes)`);
    }
    return this.readBytes(d.byteOffset + byteStart, byteLength);
  }

  /** The elements in their stored type: F16/BF16 as Uint16Array bits, F8 as Uint8Array bits, BOOL as Uint8Array. */
  async readStored(name: string): Promise<StoredArray> {
    const d = this.describe(name);
    return storedView(d.dtype, await this.readRaw(name));
  }

  /**
   * The tensor as float32: F32 as is, F16/BF16/F8 decoded exactly (SPEC §1.2), F64 rounded to
   * nearest. Integer tensors are refused: a float weight stored as integers is a broken checkpoint.
   */
  async readF32(name: string): Promise<Float32Array> {
    const d = this.describe(name);
    check(isFloatDtype(d.dtype),
      `tensor '${name}' has dtype ${d.dtype}; a floating-point tensor (F32, F16, BF16 or F64) was expected.`, this.path);
    return decodeToF32(d.dtype, await this.readRaw(name));
  }

  /** An integer tensor (any integer dtype or BOOL) widened to int64, e.g. `input_ids` for ORT. */
  async readI64(name: string): Promise<BigInt64Array> {
    const d = this.requireInteger(name);
    const stored = storedView(d.dtype, await this.readRaw(name));
    if (stored instanceof BigInt64Array) return stored;
    if (stored instanceof BigUint64Array) {
      const out = new BigInt64Array(stored.length);
      for (let i = 0; i < stored.length; i++) {
        check(stored[i]! <= 0x7fff_ffff_ffff_ffffn, `tensor '${name}' holds U64 value ${stored[i]} that does not fit in int64.`, this.path);
        out[i] = stored[i]!;
      }
      return out;
    }
    const out = new BigInt64Array(stored.length);
    for (let i = 0; i < stored.length; i++) out[i] = BigInt(stored[i] as number);
    return out;
  }

  /** An integer tensor (any integer dtype or BOOL) as int32; a UserError if a value does not fit. */
  async readI32(name: string): Promise<Int32Array> {
    const d = this.requireInteger(name);
    const stored = storedView(d.dtype, await this.readRaw(name));
    if (stored instanceof Int32Array) return stored;
    const out = new Int32Array(stored.length);
    for (let i = 0; i < stored.length; i++) {
      const value = stored[i]!;
      const fits = typeof value === 'bigint'
        ? value >= -0x8000_0000n && value <= 0x7fff_ffffn
        : value >= -0x8000_0000 && value <= 0x7fff_ffff;
      check(fits, `tensor '${name}' holds value ${value} that does not fit in int32.`, this.path);
      out[i] = Number(value);
    }
    return out;
  }

  private requireInteger(name: string): TensorDescriptor {
    const d = this.describe(name);
    check(!isFloatDtype(d.dtype), `tensor '${name}' has dtype ${d.dtype}; an integer tensor was expected.`, this.path);
    return d;
  }

  private async readBytes(position: number, length: number): Promise<Uint8Array> {
    let handle: FileHandle;
    try {
      handle = await fsp.open(this.path, 'r');
    } catch (err) {
      throw fsUserError(err, this.path, 'open the safetensors file');
    }
    try {
      // The header was validated against the size at open(); a different size now means the
      // offsets may point anywhere (the file was replaced, e.g. by a new download).
      const { size } = await handle.stat();
      check(size === this.fileSize,
        `changed on disk since it was opened (${this.fileSize} → ${size} bytes).`, this.path, 'Open the model again.');
      return await readExactly(handle, this.path, position, length);
    } catch (err) {
      throw fsUserError(err, this.path, 'read the safetensors file');
    } finally {
      await handle.close();
    }
  }
}

/** Validates the header JSON (SPEC §1.2) and builds the descriptor table in file order. */
function parseHeader(
  headerBytes: Uint8Array,
  file: string,
  fileSize: number,
): { metadata: Map<string, string>; tensors: Map<string, TensorDescriptor> } {
  const fail = (message: string): never => {
    throw new UserError(message, file, DAMAGED_FILE_HINT);
  };

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    return fail('is not a safetensors file: its header is not valid UTF-8.');
  }
  // Padding is only allowed at the end (trailing spaces, which JSON.parse accepts).
  if (!text.startsWith('{')) fail("is not a safetensors file: its header does not start with '{'.");
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`is not a safetensors file: its header is not valid JSON (${(err as Error).message}).`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    return fail('is not a safetensors file: its header is not a JSON object.');
  }

  // Maps, not plain objects, so that names such as "__proto__" stay ordinary keys.
  // Duplicate keys cannot be seen after JSON.parse (the last wins); the dropped entry's bytes then
  // show up as a hole below, so such files are still refused unless the duplicates are identical.
  const metadata = new Map<string, string>();
  const entries: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (value === null) continue; // the reference treats null as absent
      if (typeof value !== 'object' || Array.isArray(value)) fail("has an invalid '__metadata__': it must map strings to strings.");
      for (const [key, v] of Object.entries(value as object)) {
        if (typeof v !== 'string') fail(`has an invalid '__metadata__': the value of '${key}' is not a string.`);
        metadata.set(key, v as string);
      }
      continue;
    }
    const where = `tensor '${name}'`;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where}: its header entry is not an object.`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (typeof dtype !== 'string') fail(`${where}: its header entry has no dtype string.`);
    if (EXOTIC_DTYPES.has(dtype as string)) {
      throw new UserError(`${where} uses dtype ${dtype as string}, which this tool does not support.`, file,
        'Convert the checkpoint to float32, float16 or bfloat16.');
    }
    if (!isDtype(dtype as string)) fail(`${where} has unknown dtype '${dtype as string}'.`);
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) fail(`${where}: its shape must be a list of non-negative integers.`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
      fail(`${where}: its data_offsets must be [begin, end] with non-negative integers.`);
    }
    const [begin, end] = offsets as [number, number];
    entries.push({ name, dtype: dtype as Dtype, shape: shape as number[], begin, end });
  }

  // The reference reader's rule: sorted by (begin, end), tensors tile the data buffer exactly.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataStart = 8 + headerBytes.length;
  const dataBytes = fileSize - dataStart;
  const tensors = new Map<string, TensorDescriptor>();
  let expectedBegin = 0;
  let previous: string | undefined;
  for (const { name, dtype, shape, begin, end } of entries) {
    const where = `tensor '${name}'`;
    if (end < begin) fail(`${where}: its data_offsets [${begin}, ${end}] end before they begin.`);
    if (begin > expectedBegin) {
      fail(`${where} starts at data byte ${begin} but ${previous ? `tensor '${previous}' ends` : 'the data starts'} at ${expectedBegin}: the offsets leave a hole.`);
    }
    if (begin < expectedBegin) {
      fail(`${where} starts at data byte ${begin}, inside tensor '${previous}' which ends at ${expectedBegin}: the offsets overlap.`);
    }
    const needed = elementCount(shape) * BigInt(DTYPE_BYTES[dtype]);
    if (BigInt(end - begin) !== needed) {
      fail(`${where} occupies ${end - begin} bytes but dtype ${dtype} with shape ${formatShape(shape)} needs ${needed}.`);
    }
    if (end > dataBytes) {
      fail(`${where} ends at data byte ${end} but the file holds only ${dataBytes} data bytes: the file is truncated.`);
    }
    tensors.set(name, { name, dtype, shape, byteOffset: dataStart + begin, byteLength: end - begin, file });
    expectedBegin = end;
    previous = name;
  }
  if (expectedBegin !== dataBytes) {
    fail(`has ${dataBytes - expectedBegin} bytes after the last tensor${previous ? ` ('${previous}')` : ''} that no tensor covers.`);
  }
  return { metadata, tensors };
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** A typed-array view of `bytes` (offset 0, so always aligned) in the dtype's stored representation. */
function storedView(dtype: Dtype, bytes: Uint8Array): StoredArray {
  const { buffer, byteOffset } = bytes;
  const count = bytes.byteLength / DTYPE_BYTES[dtype];
  switch (dtype) {
    case 'BOOL': case 'U8': case 'F8_E5M2': case 'F8_E4M3': return bytes;
    case 'I8': return new Int8Array(buffer, byteOffset, count);
    case 'I16': return new Int16Array(buffer, byteOffset, count);
    case 'U16': case 'F16': case 'BF16': return new Uint16Array(buffer, byteOffset, count);
    case 'I32': return new Int32Array(buffer, byteOffset, count);
    case 'U32': return new Uint32Array(buffer, byteOffset, count);
    case 'F32': return new Float32Array(buffer, byteOffset, count);
    case 'F64': return new Float64Array(buffer, byteOffset, count);
    case 'I64': return new BigInt64Array(buffer, byteOffset, count);
    case 'U64': return new BigUint64Array(buffer, byteOffset, count);
  }
}

/** Float32 from the raw little-endian bytes of a floating-point tensor. */
export function decodeToF32(dtype: Dtype, bytes: Uint8Array): Float32Array {
  const stored = storedView(dtype, bytes);
  switch (dtype) {
    case 'F32': return stored as Float32Array;
    case 'F64': return Float32Array.from(stored as Float64Array); // ToFloat32 rounds to nearest-even
    case 'BF16': return bf16ToF32(stored as Uint16Array);
    case 'F16': return f16ToF32(stored as Uint16Array);
    case 'F8_E4M3': return lookup(stored as Uint8Array, f8e4m3Table());
    case 'F8_E5M2': return lookup(stored as Uint8Array, f8e5m2Table());
    default: throw new TypeError(`dtype ${dtype} is not a floating-point dtype`);
  }
}

/** bfloat16 bits → float32: the bits are the upper half of a binary32 (exact; NaN payloads kept). */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i]! << 16;
  return out;
}

/** IEEE binary16 bits → float32 (exact: every half is a float). */
export function f16ToF32(bits: Uint16Array): Float32Array {
  return lookup(bits, f16Table());
}

/** The value of one binary16 bit pattern (SPEC §1.2 formula). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** float8 e4m3 "fn" (torch.float8_e4m3fn): bias 7, no infinities, S.1111.111 is NaN. */
export function f8e4m3BitsToNumber(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exponent = (b >> 3) & 0xf;
  const mantissa = b & 0x7;
  if (exponent === 15 && mantissa === 7) return NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -9;
  return sign * (1 + mantissa / 8) * 2 ** (exponent - 7);
}

/** float8 e5m2 (torch.float8_e5m2): IEEE-like with bias 15, infinities and NaNs. */
export function f8e5m2BitsToNumber(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exponent = (b >> 2) & 0x1f;
  const mantissa = b & 0x3;
  if (exponent === 0) return sign * mantissa * 2 ** -16;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 4) * 2 ** (exponent - 15);
}

function lookup(bits: Uint8Array | Uint16Array, table: Float32Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}

// Decoding tables are built on first use: 256 KiB for F16 buys a table lookup per element.
let f16TableCache: Float32Array | undefined;
let f8e4m3TableCache: Float32Array | undefined;
let f8e5m2TableCache: Float32Array | undefined;
function f16Table(): Float32Array {
  return (f16TableCache ??= Float32Array.from({ length: 1 << 16 }, (_, h) => f16BitsToNumber(h)));
}
function f8e4m3Table(): Float32Array {
  return (f8e4m3TableCache ??= Float32Array.from({ length: 256 }, (_, b) => f8e4m3BitsToNumber(b)));
}
function f8e5m2Table(): Float32Array {
  return (f8e5m2TableCache ??= Float32Array.from({ length: 256 }, (_, b) => f8e5m2BitsToNumber(b)));
}

// ---------------------------------------------------------------------------------------------
// Convenience: whole-file reads

/** A tensor read whole: floats as Float32Array; int64/uint32/uint64 as BigInt64Array; other integers and BOOL as Int32Array. */
export interface LoadedTensor {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array | BigInt64Array;
}

/** Every tensor of a (small) file, in file order; for tests and `--pixel-values` style inputs. */
export async function readSafetensorsAll(file: string): Promise<Map<string, LoadedTensor>> {
  const st = await SafetensorsFile.open(file);
  const out = new Map<string, LoadedTensor>();
  for (const { name, dtype, shape } of st.descriptors()) {
    let data: LoadedTensor['data'];
    if (isFloatDtype(dtype)) data = await st.readF32(name);
    else if (dtype === 'I64' || dtype === 'U64' || dtype === 'U32') data = await st.readI64(name);
    else data = await st.readI32(name);
    out.set(name, { dtype, shape, data });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writer

/** A tensor to write. `data` holds the elements little-endian in C order (F16/BF16 as Uint16Array bits). */
export interface TensorToWrite {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: ArrayBufferView;
}

/** `__metadata__` to write; a Map keeps its order exactly (a plain object moves integer-like keys first). */
export type SafetensorsMetadata = Readonly<Record<string, string>> | ReadonlyMap<string, string>;

/**
 * The header bytes and tensor order the reference writer would produce: tensors sorted by
 * descending dtype rank then name (bytewise), `__metadata__` first, JSON padded with spaces to a
 * multiple of 8 so every tensor starts at a multiple of its element size.
 */
export function layoutSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: SafetensorsMetadata,
): { header: Uint8Array; ordered: TensorToWrite[] } {
  const names = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__') throw new Error("a tensor cannot be named '__metadata__'");
    if (names.has(t.name)) throw new Error(`duplicate tensor name '${t.name}'`);
    names.add(t.name);
    if (!isDtype(t.dtype)) throw new Error(`tensor '${t.name}': unsupported dtype '${String(t.dtype)}'`);
    if (!t.shape.every(isNonNegativeInteger)) throw new Error(`tensor '${t.name}': invalid shape ${formatShape(t.shape)}`);
    const size = DTYPE_BYTES[t.dtype];
    const perElement = (t.data as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT;
    if (perElement !== undefined && perElement !== size) {
      throw new Error(`tensor '${t.name}': ${t.data.constructor.name} does not hold ${t.dtype} elements`);
    }
    const needed = elementCount(t.shape) * BigInt(size);
    if (BigInt(t.data.byteLength) !== needed) {
      throw new Error(`tensor '${t.name}': ${t.data.byteLength} bytes given, ${t.dtype} ${formatShape(t.shape)} needs ${needed}`);
    }
  }

  const ordered = [...tensors].sort(
    (a, b) => DTYPE_RANK.get(b.dtype)! - DTYPE_RANK.get(a.dtype)! || Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)),
  );
  const { header } = encodeHeader(ordered.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.data.byteLength })), metadata);
  return { header, ordered };
}

/** A tensor's header entry: its bytes are stored after those of the entries before it. */
export interface HeaderEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly byteLength: number;
}

/**
 * The header JSON for tensors stored in the order given, `__metadata__` first, padded with spaces
 * to a multiple of 8; `offsets[i]` is where entry i's bytes start in the data region.
 */
export function encodeHeader(entries: readonly HeaderEntry[], metadata?: SafetensorsMetadata): { header: Uint8Array; offsets: number[]; dataBytes: number } {
  // The JSON is assembled by hand: JS objects would move integer-like keys ("0", "12") first.
  const parts: string[] = [];
  if (metadata) {
    const metadataEntries = metadata instanceof Map ? [...metadata] : Object.entries(metadata);
    const fields = metadataEntries.map(([k, v]) => {
      if (typeof v !== 'string') throw new Error(`metadata '${k}' must be a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${fields.join(',')}}`);
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of entries) {
    const end = offset + t.byteLength;
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offsets.push(offset);
    offset = end;
  }
  const json = `{${parts.join(',')}}`;
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const padded = jsonBytes + ((8 - (jsonBytes % 8)) % 8);
  const header = Buffer.alloc(padded, 0x20);
  header.write(json, 0, 'utf8');
  return { header, offsets, dataBytes: offset };
}

/** Writes bytes at absolute positions of the file being written. */
export type PositionalWrite = (bytes: Uint8Array, position: number) => Promise<void>;

/**
 * Writes `file` through a temporary file in its folder: `fill` writes the bytes, then the file is
 * flushed and renamed into place, so `file` is either absent or complete — never half-written.
 * With `expectedSize`, a file of any other size is refused before the rename. Errors become
 * UserErrors naming `file` and `action` (cancellation passes through unchanged).
 */
export async function writeFileAtomically(
  file: string,
  fill: (write: PositionalWrite) => Promise<void>,
  action: string,
  expectedSize?: number,
): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(temp, 'wx', 0o644);
    const h = handle;
    await fill(async (bytes, position) => {
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await h.write(bytes, done, Math.min(IO_CHUNK_BYTES, bytes.length - done), position + done);
        done += bytesWritten;
      }
    });
    if (expectedSize !== undefined) {
      const { size } = await handle.stat();
      if (size !== expectedSize) throw new Error(`wrote ${size} bytes of ${file}, expected ${expectedSize}`);
    }
    // Flushed before the rename, so a crash cannot leave a complete-looking but empty file.
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(temp, file);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fsp.rm(temp, { force: true }).catch(() => undefined);
    throw err instanceof CancelledError ? err : fsUserError(err, file, action);
  }
}

/** A small file written whole and atomically (refs, graphs, their metadata). */
export async function writeWholeFile(file: string, data: Uint8Array | string, action: string): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  await writeFileAtomically(file, (write) => write(bytes, 0), action, bytes.length);
}

/**
 * Writes a safetensors file with the reference layout, atomically (see writeFileAtomically), so
 * readers never see a partial file.
 */
export async function writeSafetensors(
  file: string,
  tensors: readonly TensorToWrite[],
  metadata?: SafetensorsMetadata,
): Promise<void> {
  const { header, ordered } = layoutSafetensors(tensors, metadata);
  const lengthPrefix = Buffer.alloc(8);
  lengthPrefix.writeBigUInt64LE(BigInt(header.length));
  await writeFileAtomically(file, async (write) => {
    let position = 0;
    for (const bytes of [lengthPrefix, header, ...ordered.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))]) {
      await write(bytes, position);
      position += bytes.length;
    }
  }, 'write the safetensors file');
}
