import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  DTYPE_BYTES, SafetensorsFile, layoutSafetensors, readSafetensorsAll, writeSafetensors,
  type TensorToWrite,
} from '../../../src/core/io/safetensors.js';
import {
  GOLDEN, expectUserError, makeTempDir, rawSafetensors, removeTempDirs, roundToBf16, writeFile,
} from './helpers.js';
import { planSafetensors } from '../../../src/core/models/quantize.js';

const VIT_TINY = path.join(GOLDEN, 'vit-tiny/model.safetensors');
const CLIP_TINY = path.join(GOLDEN, 'clip-tiny/model.safetensors');
const CLIP_BF16_SHARDS = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']
  .map((f) => path.join(GOLDEN, 'clip-bf16-sharded', f));

/** A one-tensor file with the given header entry, data bytes and file name. */
function oneTensorFile(dir: string, name: string, entry: object, dataBytes: number): string {
  return writeFile(dir, name, rawSafetensors({ t: entry }, dataBytes));
}

describe('io/safetensors', () => {
  after(removeTempDirs);

  describe('reading the golden fixtures', () => {
    it('opens an F32 checkpoint and describes every tensor with absolute offsets', async () => {
      const st = await SafetensorsFile.open(VIT_TINY);
      const bytes = fs.readFileSync(VIT_TINY);
      const n = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
      assert.equal(st.headerLength, n);
      assert.equal(st.fileSize, bytes.length);
      assert.deepEqual([...st.metadata], [['format', 'pt']]);
      assert.equal(st.tensorNames().length, 40);
      const d = st.describe('vit.embeddings.cls_token');
      assert.deepEqual(d, {
        name: 'vit.embeddings.cls_token', dtype: 'F32', shape: [1, 1, 32],
        byteOffset: 8 + n + header['vit.embeddings.cls_token'].data_offsets[0], byteLength: 128, file: VIT_TINY,
      });
    });

    it('reads F32 tensors equal to an independent DataView decode of the file', async () => {
      const st = await SafetensorsFile.open(VIT_TINY);
      const bytes = fs.readFileSync(VIT_TINY);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (const name of ['classifier.weight', 'vit.embeddings.position_embeddings', 'vit.layernorm.bias']) {
        const d = st.describe(name);
        const values = await st.readF32(name);
        assert.equal(values.length, d.byteLength / 4);
        for (let i = 0; i < values.length; i++) assert.equal(values[i], view.getFloat32(d.byteOffset + 4 * i, true));
      }
    });

    it('decodes the BF16 shards to the F32 checkpoint rounded to bfloat16 (exactly)', async () => {
      const f32 = await SafetensorsFile.open(CLIP_TINY);
      let compared = 0;
      for (const shard of CLIP_BF16_SHARDS) {
        const bf16 = await SafetensorsFile.open(shard);
        for (const name of bf16.tensorNames()) {
          assert.equal(bf16.describe(name).dtype, 'BF16');
          assert.deepEqual(bf16.describe(name).shape, f32.describe(name).shape);
          const got = await bf16.readF32(name);
          const reference = await f32.readF32(name);
          for (let i = 0; i < got.length; i++) {
            const x = reference[i]!;
            assert.ok(Math.abs(got[i]! - x) <= 1e-2 * Math.abs(x) + 1e-30, `${name}[${i}]: ${got[i]} vs ${x}`);
            assert.equal(got[i], roundToBf16(x), `${name}[${i}] is not ${x} rounded to bfloat16`);
          }
          compared++;
        }
      }
      assert.equal(compared, f32.tensorNames().length);
    });

    it('reads I64 inputs as BigInt64Array and Int32Array, and refuses them as floats', async () => {
      const file = path.join(GOLDEN, 'clip-tiny/pair.inputs.safetensors');
      const st = await SafetensorsFile.open(file);
      const d = st.describe('input_ids');
      assert.equal(d.dtype, 'I64');
      assert.deepEqual(d.shape, [3, 16]);
      const bytes = fs.readFileSync(file);
      const ids64 = await st.readI64('input_ids');
      const ids32 = await st.readI32('input_ids');
      for (let i = 0; i < 48; i++) {
        const expected = bytes.readBigInt64LE(d.byteOffset + 8 * i);
        assert.equal(ids64[i], expected);
        assert.equal(ids32[i], Number(expected));
      }
      await expectUserError(() => st.readF32('input_ids'), file, "'input_ids'", 'I64');
      await expectUserError(() => st.readI64('pixel_values'), file, "'pixel_values'", 'F32');
    });

    it('reads I64 tensors stored at offsets that are not multiples of 8 (fuyu-tiny inputs)', async () => {
      const file = path.join(GOLDEN, 'fuyu-tiny/prompt.inputs.safetensors');
      const st = await SafetensorsFile.open(file);
      const bytes = fs.readFileSync(file);
      const unaligned = st.descriptors().filter((d) => d.dtype === 'I64' && d.byteOffset % 8 !== 0);
      assert.ok(unaligned.length > 0, 'the fixture has unaligned I64 tensors');
      for (const d of unaligned) {
        const values = await st.readI64(d.name);
        for (let i = 0; i < values.length; i++) assert.equal(values[i], bytes.readBigInt64LE(d.byteOffset + 8 * i), d.name);
      }
    });

    it('readSafetensorsAll returns floats as Float32Array and int64 as BigInt64Array', async () => {
      const all = await readSafetensorsAll(path.join(GOLDEN, 'clip-tiny/pair.inputs.safetensors'));
      assert.deepEqual([...all.keys()].sort(), ['attention_mask', 'input_ids', 'pixel_values']);
      assert.ok(all.get('pixel_values')!.data instanceof Float32Array, 'pixel_values is a Float32Array');
      assert.ok(all.get('input_ids')!.data instanceof BigInt64Array, 'input_ids is a BigInt64Array');
      assert.equal(all.get('pixel_values')!.data.length, all.get('pixel_values')!.shape.reduce((a, b) => a * b, 1));
    });

    it('reads a byte range of a tensor without the rest', async () => {
      const st = await SafetensorsFile.open(VIT_TINY);
      const whole = await st.readRaw('classifier.weight');
      const part = await st.readRawRange('classifier.weight', 128, 64);
      assert.deepEqual(part, whole.subarray(128, 192));
      await assert.rejects(() => st.readRawRange('classifier.weight', 600, 100), RangeError);
    });
  });

  describe('decoding', () => {
    async function decode(dtype: 'F16' | 'BF16', bits: number[]): Promise<Float32Array> {
      const file = path.join(makeTempDir(), 'bits.safetensors');
      await writeSafetensors(file, [{ name: 'x', dtype, shape: [bits.length], data: Uint16Array.from(bits) }]);
      return (await SafetensorsFile.open(file)).readF32('x');
    }

    it('decodes hand-made F16 bit patterns exactly (zero, subnormals, normals, max, inf, NaN)', async () => {
      const cases: [number, number][] = [
        [0x0000, 0], [0x8000, -0], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x8001, -(2 ** -24)],
        [0x0400, 2 ** -14], [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504],
        [0x7c00, Infinity], [0xfc00, -Infinity], [0x7e00, NaN], [0x7c01, NaN],
      ];
      const got = await decode('F16', cases.map(([b]) => b));
      cases.forEach(([bits, expected], i) => assert.ok(Object.is(got[i], expected), `0x${bits.toString(16)} → ${got[i]}, expected ${expected}`));
    });

    it('decodes hand-made BF16 bit patterns exactly (zero, subnormal, normals, inf, NaN)', async () => {
      const cases: [number, number][] = [
        [0x0000, 0], [0x8000, -0], [0x0001, 2 ** -133], [0x0080, 2 ** -126], [0x3f80, 1], [0xc000, -2],
        [0x4049, 3.140625], [0x7f7f, 0xff * 2 ** 120], [0x7f80, Infinity], [0xff80, -Infinity], [0x7fc0, NaN],
      ];
      const got = await decode('BF16', cases.map(([b]) => b));
      cases.forEach(([bits, expected], i) => assert.ok(Object.is(got[i], expected), `0x${bits.toString(16)} → ${got[i]}, expected ${expected}`));
    });

    it('rounds F64 to the nearest float32', async () => {
      const file = path.join(makeTempDir(), 'f64.safetensors');
      const data = Float64Array.from([0.1, -1 / 3, 1e300, 2 ** -160]);
      await writeSafetensors(file, [{ name: 'x', dtype: 'F64', shape: [4], data }]);
      assert.deepEqual(await (await SafetensorsFile.open(file)).readF32('x'), Float32Array.from(data));
    });

    it('reads an F32 tensor at an offset that is not a multiple of 4', async () => {
      const dir = makeTempDir();
      const values = Float32Array.from([1.5, -2.25, 1e-20]);
      const data = Buffer.concat([Buffer.from([7]), Buffer.from(values.buffer)]);
      const file = writeFile(dir, 'unaligned.safetensors', rawSafetensors({
        b: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
        x: { dtype: 'F32', shape: [3], data_offsets: [1, 13] },
      }, data));
      const st = await SafetensorsFile.open(file);
      assert.notEqual(st.describe('x').byteOffset % 4, 0);
      assert.deepEqual(await st.readF32('x'), values);
      assert.deepEqual(await st.readI32('b'), Int32Array.from([7]));
    });
  });

  describe('refusing bad files with a UserError naming the file', () => {
    it('a truncated file', async () => {
      const dir = makeTempDir();
      const bytes = fs.readFileSync(VIT_TINY);
      const file = writeFile(dir, 'truncated.safetensors', bytes.subarray(0, bytes.length - 100));
      const lastTensor = (await SafetensorsFile.open(VIT_TINY)).tensorNames().at(-1)!;
      await expectUserError(() => SafetensorsFile.open(file), file, 'truncated', `'${lastTensor}'`);
    });

    it('a file cut inside its header', async () => {
      const dir = makeTempDir();
      const file = writeFile(dir, 'cut.safetensors', fs.readFileSync(VIT_TINY).subarray(0, 1000));
      await expectUserError(() => SafetensorsFile.open(file), file, 'truncated');
    });

    it('a file shorter than 8 bytes, and an empty file', async () => {
      const dir = makeTempDir();
      const short = writeFile(dir, 'short.safetensors', Buffer.from([1, 2, 3]));
      const empty = writeFile(dir, 'empty.safetensors', Buffer.alloc(0));
      await expectUserError(() => SafetensorsFile.open(short), short, 'not a safetensors file');
      await expectUserError(() => SafetensorsFile.open(empty), empty, 'not a safetensors file');
    });

    it('offsets that leave a hole', async () => {
      const dir = makeTempDir();
      const file = writeFile(dir, 'hole.safetensors', rawSafetensors({
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] },
      }, 20));
      await expectUserError(() => SafetensorsFile.open(file), file, "'b'", "'a'", 'hole');
    });

    it('a hole before the first tensor', async () => {
      const dir = makeTempDir();
      const file = writeFile(dir, 'lead.safetensors', rawSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8));
      await expectUserError(() => SafetensorsFile.open(file), file, "'a'", 'hole');
    });

    it('overlapping tensors', async () => {
      const dir = makeTempDir();
      const file = writeFile(dir, 'overlap.safetensors', rawSafetensors({
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      }, 12));
      await expectUserError(() => SafetensorsFile.open(file), file, "'b'", "'a'", 'overlap');
    });

    it('bytes after the last tensor', async () => {
      const dir = makeTempDir();
      const file = writeFile(dir, 'trailing.safetensors', rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 16));
      await expectUserError(() => SafetensorsFile.open(file), file, "'a'", '8 bytes after the last tensor');
    });

    it('data_offsets that end before they begin', async () => {
      const dir = makeTempDir();
      const file = oneTensorFile(dir, 'backwards.safetensors', { dtype: 'F32', shape: [0], data_offsets: [0, 0] }, 0);
      await SafetensorsFile.open(file); // an empty tensor is legal
      const bad = writeFile(dir, 'bad.safetensors', rawSafetensors({
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        t: { dtype: 'F32', shape: [1], data_offsets: [4, 2] },
      }, 4));
      await expectUserError(() => SafetensorsFile.open(bad), bad, "'t'");
    });

    it('a header length over 100 MB', async () => {
      const dir = makeTempDir();
      const file = writeFile(dir, 'huge.safetensors', rawSafetensors('{}', 0, { headerLength: 100_000_001n }));
      await expectUserError(() => SafetensorsFile.open(file), file, '100000001', 'limit');
      const max = writeFile(dir, 'max.safetensors', rawSafetensors('{}', 0, { headerLength: 0xffff_ffff_ffff_ffffn }));
      await expectUserError(() => SafetensorsFile.open(max), max, 'limit');
    });

    it('a header length beyond the end of the file', async () => {
      const dir = makeTempDir();
      const file = writeFile(dir, 'long.safetensors', rawSafetensors('{}', 0, { headerLength: 5000n }));
      await expectUserError(() => SafetensorsFile.open(file), file, '5000', 'truncated');
    });

    it('an unknown dtype and the exotic dtypes', async () => {
      const dir = makeTempDir();
      const unknown = oneTensorFile(dir, 'unknown.safetensors', { dtype: 'Q4_K', shape: [4], data_offsets: [0, 4] }, 4);
      await expectUserError(() => SafetensorsFile.open(unknown), unknown, "'t'", 'unknown dtype', 'Q4_K');
      for (const dtype of ['F4', 'F6_E2M3', 'F8_E8M0', 'F8_E4M3FNUZ', 'C64']) {
        const file = oneTensorFile(dir, `${dtype}.safetensors`, { dtype, shape: [8], data_offsets: [0, 8] }, 8);
        await expectUserError(() => SafetensorsFile.open(file), file, "'t'", dtype, 'not support');
      }
    });

    it('a byte length that does not match dtype × shape', async () => {
      const dir = makeTempDir();
      const file = oneTensorFile(dir, 'size.safetensors', { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] }, 20);
      await expectUserError(() => SafetensorsFile.open(file), file, "'t'", '20 bytes', '24');
    });

    it('a shape whose element count overflows', async () => {
      const dir = makeTempDir();
      const big = 2 ** 52;
      const file = oneTensorFile(dir, 'overflow.safetensors', { dtype: 'F64', shape: [big, big], data_offsets: [0, 8] }, 8);
      await expectUserError(() => SafetensorsFile.open(file), file, "'t'");
    });

    it('a header that is not JSON, not an object, or does not start with "{"', async () => {
      const dir = makeTempDir();
      const notJson = writeFile(dir, 'notjson.safetensors', rawSafetensors('{"a": {"dtype": "F32",', 0));
      await expectUserError(() => SafetensorsFile.open(notJson), notJson, 'not valid JSON', 'download it again');
      const array = writeFile(dir, 'array.safetensors', rawSafetensors('[]', 0));
      await expectUserError(() => SafetensorsFile.open(array), array, "start with '{'");
      const leading = writeFile(dir, 'leading.safetensors', rawSafetensors(' {}', 0));
      await expectUserError(() => SafetensorsFile.open(leading), leading, "start with '{'");
      const utf8 = writeFile(dir, 'utf8.safetensors', Buffer.concat([rawSafetensors('{}', 0).subarray(0, 8), Buffer.from([0x7b, 0xff, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20])]));
      await expectUserError(() => SafetensorsFile.open(utf8), utf8, 'UTF-8');
    });

    it('bad entries: shape, data_offsets, __metadata__', async () => {
      const dir = makeTempDir();
      const negative = oneTensorFile(dir, 'neg.safetensors', { dtype: 'F32', shape: [-1], data_offsets: [0, 4] }, 4);
      await expectUserError(() => SafetensorsFile.open(negative), negative, "'t'", 'shape');
      const offsets = oneTensorFile(dir, 'offs.safetensors', { dtype: 'F32', shape: [1], data_offsets: [0] }, 4);
      await expectUserError(() => SafetensorsFile.open(offsets), offsets, "'t'", 'data_offsets');
      const meta = writeFile(dir, 'meta.safetensors', rawSafetensors({ __metadata__: { format: 1 } }, 0));
      await expectUserError(() => SafetensorsFile.open(meta), meta, '__metadata__', "'format'");
    });

    it('a Git LFS pointer and a pickle file get a specific message', async () => {
      const dir = makeTempDir();
      const lfs = writeFile(dir, 'model.safetensors',
        'version https://git-lfs.github.com/spec/v1\noid sha256:0123456789abcdef\nsize 1234567\n');
      await expectUserError(() => SafetensorsFile.open(lfs), lfs, 'Git LFS', 'git lfs pull');
      const pickle = writeFile(dir, 'pickle.safetensors', Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x28, 0x58, 0x01, 0x00, 0x00]));
      await expectUserError(() => SafetensorsFile.open(pickle), pickle, 'pickle');
    });

    it('a missing file and a folder', async () => {
      const dir = makeTempDir();
      const missing = path.join(dir, 'nope.safetensors');
      await expectUserError(() => SafetensorsFile.open(missing), missing, 'no such file');
      await expectUserError(() => SafetensorsFile.open(dir), dir, 'not a file');
    });

    it('a tensor that is not in the file, and a file changed after open', async () => {
      const dir = makeTempDir();
      const file = path.join(dir, 'x.safetensors');
      await writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) }]);
      const st = await SafetensorsFile.open(file);
      await expectUserError(async () => st.describe('b'), file, "'b'");
      await writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [3], data: Float32Array.from([1, 2, 3]) }]);
      await expectUserError(() => st.readF32('a'), file, 'changed on disk');
    });
  });

  describe('writing', () => {
    it('reproduces every golden fixture byte for byte (reference layout)', async () => {
      const dir = makeTempDir();
      const files = [VIT_TINY, CLIP_TINY, ...CLIP_BF16_SHARDS,
        path.join(GOLDEN, 'clip-tiny/pair.inputs.safetensors'), path.join(GOLDEN, 'clip-tiny/pair.outputs.safetensors'),
        path.join(GOLDEN, 'fuyu-tiny/model.safetensors')];
      // (fuyu-tiny/prompt.{inputs,outputs} were written by another tool that orders tensors by name
      // only, so they are read-tested above but are not a reference layout to reproduce.)
      for (const original of files) {
        const st = await SafetensorsFile.open(original);
        const tensors: TensorToWrite[] = [];
        for (const d of st.descriptors()) tensors.push({ name: d.name, dtype: d.dtype, shape: d.shape, data: await st.readStored(d.name) });
        const copy = path.join(dir, path.basename(original));
        await writeSafetensors(copy, tensors.reverse(), st.metadata);
        assert.ok(fs.readFileSync(copy).equals(fs.readFileSync(original)), `${original} was not reproduced`);
      }
    });

    it('matches the reference serializer test vectors', () => {
      const data = Float32Array.from([0, 1, 2, 3, 4, 5]);
      const header = (tensors: TensorToWrite[], metadata?: Record<string, string>): string =>
        Buffer.from(layoutSafetensors(tensors, metadata).header).toString('utf8');
      // 64 bytes already: no padding.
      assert.equal(header([{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data }]),
        '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}');
      assert.equal(header([{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data }]),
        `{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}${' '.repeat(7)}`);
      assert.equal(header([]), '{}      ');
      assert.equal(header([], { framework: 'pt' }), '{"__metadata__":{"framework":"pt"}}     ');
    });

    it('a planned (streamed) file has the header the writer gives the same tensors in the same order', () => {
      // Reference order already (dtype rank, then name), so the writer keeps it.
      const tensors: TensorToWrite[] = [
        { name: 'a', dtype: 'F32', shape: [2, 3], data: new Float32Array(6) },
        { name: 'b', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        { name: 'c', dtype: 'U8', shape: [5], data: new Uint8Array(5) },
      ];
      const metadata = { format: 'x', bits: '4' };
      const plan = planSafetensors(tensors, metadata);
      const { header } = layoutSafetensors(tensors, metadata);
      assert.equal(Buffer.from(plan.prefix).readBigUInt64LE(0), BigInt(header.length));
      assert.ok(Buffer.from(plan.prefix.subarray(8)).equals(Buffer.from(header)));
      assert.deepEqual([...plan.offsets.values()], [{ offset: 8 + header.length, length: 24 }, { offset: 8 + header.length + 24, length: 4 }, { offset: 8 + header.length + 28, length: 5 }]);
      assert.equal(plan.fileSize, 8 + header.length + 33);
    });

    it('round-trips every dtype, scalars and empty tensors with aligned offsets', async () => {
      const file = path.join(makeTempDir(), 'all.safetensors');
      const tensors: TensorToWrite[] = [
        { name: 'f32', dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, -2, 3.5, 1e-7]) },
        { name: 'i64', dtype: 'I64', shape: [3], data: BigInt64Array.from([1n, -2n, 9007199254740993n]) },
        { name: 'bf16', dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0xc000]) },
        { name: 'u8', dtype: 'U8', shape: [3], data: Uint8Array.from([0, 128, 255]) },
        { name: 'i32', dtype: 'I32', shape: [], data: Int32Array.from([-7]) },
        { name: 'f64', dtype: 'F64', shape: [1], data: Float64Array.from([0.25]) },
        { name: 'empty', dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
        { name: '10', dtype: 'F16', shape: [1], data: Uint16Array.from([0x3c00]) },
      ];
      // A Map keeps the metadata order exactly (a plain object would move the integer-like key first).
      await writeSafetensors(file, tensors, new Map([['format', 'pt'], ['1', 'integer-like key']]));
      const bytes = fs.readFileSync(file);
      const n = Number(bytes.readBigUInt64LE(0));
      assert.equal(n % 8, 0);
      assert.equal(bytes[8], 0x7b);
      const json = bytes.subarray(8, 8 + n).toString('utf8');
      assert.ok(json.startsWith('{"__metadata__":{"format":"pt","1":"integer-like key"}'), json);

      const st = await SafetensorsFile.open(file);
      // Descending dtype rank (I64 > F64 > F32 > I32 > BF16 > F16 > U8), then name.
      assert.deepEqual(st.tensorNames(), ['i64', 'f64', 'empty', 'f32', 'i32', 'bf16', '10', 'u8']);
      for (const d of st.descriptors()) assert.equal(d.byteOffset % DTYPE_BYTES[d.dtype], 0, d.name);
      for (const t of tensors) {
        const d = st.describe(t.name);
        assert.deepEqual(d.shape, t.shape);
        const raw = await st.readRaw(t.name);
        assert.deepEqual(Buffer.from(raw), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      }
      const all = await readSafetensorsAll(file);
      assert.deepEqual(all.get('bf16')!.data, Float32Array.from([1, -2]));
      assert.deepEqual(all.get('i64')!.data, BigInt64Array.from([1n, -2n, 9007199254740993n]));
      assert.deepEqual(all.get('i32')!.data, Int32Array.from([-7]));
      assert.deepEqual(all.get('u8')!.data, Int32Array.from([0, 128, 255]));
      assert.equal(fs.readdirSync(path.dirname(file)).length, 1, 'no temporary file is left behind');
    });

    it('leaves nothing behind when the write fails, and names the file', async () => {
      const dir = makeTempDir();
      const target = path.join(dir, 'missing-folder', 'out.safetensors');
      await expectUserError(
        () => writeSafetensors(target, [{ name: 'a', dtype: 'F32', shape: [1], data: Float32Array.from([1]) }]), target);
      assert.deepEqual(fs.readdirSync(dir), []);
      // Inconsistent input is a programming error, thrown before anything is written.
      const file = path.join(dir, 'bad.safetensors');
      await assert.rejects(() => writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [2], data: Float32Array.from([1]) }]));
      await assert.rejects(() => writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [1], data: Float64Array.from([1]) }]));
      assert.deepEqual(fs.readdirSync(dir), []);
    });

    it('replaces an existing file atomically', async () => {
      const dir = makeTempDir();
      const file = path.join(dir, 'x.safetensors');
      await writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [1], data: Float32Array.from([1]) }]);
      await writeSafetensors(file, [{ name: 'b', dtype: 'F32', shape: [1], data: Float32Array.from([2]) }]);
      assert.deepEqual((await SafetensorsFile.open(file)).tensorNames(), ['b']);
      assert.deepEqual(fs.readdirSync(dir), ['x.safetensors']);
    });
  });
});
