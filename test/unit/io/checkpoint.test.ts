import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpoint } from '../../../src/core/io/checkpoint.js';
import { SafetensorsFile, writeSafetensors } from '../../../src/core/io/safetensors.js';
import {
  GOLDEN, copyFixture, expectUserError, makeTempDir, removeTempDirs, roundToBf16, writeFile,
} from './helpers.js';

const VIT_TINY = path.join(GOLDEN, 'vit-tiny');
const CLIP_TINY = path.join(GOLDEN, 'clip-tiny');
const CLIP_BF16 = path.join(GOLDEN, 'clip-bf16-sharded');
const SHARD_2 = 'model-00002-of-00002.safetensors';

/** A folder with a config.json and the given files. */
function modelFolder(files: Record<string, string | Uint8Array>, config: object | string = { model_type: 'vit' }): string {
  const dir = makeTempDir();
  writeFile(dir, 'config.json', typeof config === 'string' ? config : JSON.stringify(config));
  for (const [name, bytes] of Object.entries(files)) writeFile(dir, name, bytes);
  return dir;
}

describe('io/checkpoint', () => {
  after(removeTempDirs);

  describe('opening the golden fixtures', () => {
    it('opens a single-file checkpoint with its configs', async () => {
      const ckpt = await Checkpoint.open(VIT_TINY);
      assert.equal(ckpt.dir, fs.realpathSync(VIT_TINY));
      assert.equal(ckpt.modelType, 'vit');
      assert.equal(ckpt.config['hidden_size'], 32);
      assert.ok(ckpt.preprocessorConfig !== undefined, 'preprocessor_config.json is parsed');
      assert.equal(ckpt.tensorNames().length, 40);
      assert.equal(ckpt.weightsSource, path.join(ckpt.dir, 'model.safetensors'));
      assert.deepEqual(ckpt.weightFilePaths(), [fs.realpathSync(path.join(VIT_TINY, 'model.safetensors'))]);
      assert.equal(await ckpt.readJson('does-not-exist.json'), undefined);
      assert.equal(((await ckpt.readJson('config.json')) as { model_type: string }).model_type, 'vit');
    });

    it('finds canonical names under optional prefixes and checks shapes', async () => {
      const ckpt = await Checkpoint.open(VIT_TINY);
      const vit = ckpt.withPrefixes(['vit.', '']);
      assert.equal(vit.resolve('embeddings.cls_token'), 'vit.embeddings.cls_token');
      assert.equal(vit.resolve('classifier.weight'), 'classifier.weight');
      assert.equal(vit.resolve('no.such.tensor'), undefined);
      const d = vit.expectShape('embeddings.patch_embeddings.projection.weight', [32, 3, 4, 4]);
      assert.equal(d.name, 'vit.embeddings.patch_embeddings.projection.weight');
      assert.equal(d.dtype, 'F32');
      const values = await vit.readF32('embeddings.position_embeddings');
      assert.equal(values.length, 65 * 32);
    });

    it('opens a sharded BF16 checkpoint whose values equal the F32 one rounded to bfloat16', async () => {
      const sharded = await Checkpoint.open(CLIP_BF16);
      const f32 = await Checkpoint.open(CLIP_TINY);
      assert.equal(sharded.modelType, 'clip');
      assert.equal(sharded.weightsSource, path.join(sharded.dir, 'model.safetensors.index.json'));
      assert.deepEqual([...sharded.tensorNames()].sort(), [...f32.tensorNames()].sort());
      assert.equal(sharded.weightFilePaths().length, 2);
      for (const name of sharded.tensorNames()) {
        const d = sharded.describe(name);
        assert.equal(d.dtype, 'BF16');
        assert.deepEqual(d.shape, f32.describe(name).shape);
        const got = await sharded.readF32(name);
        const reference = await f32.readF32(name);
        for (let i = 0; i < got.length; i++) assert.equal(got[i], roundToBf16(reference[i]!), `${name}[${i}]`);
      }
    });

    it('describes tensors with the real path of their shard, for ORT external data', async () => {
      const ckpt = await Checkpoint.open(CLIP_BF16);
      const index = JSON.parse(fs.readFileSync(path.join(CLIP_BF16, 'model.safetensors.index.json'), 'utf8'));
      for (const name of ['logit_scale', 'visual_projection.weight']) {
        const d = ckpt.describe(name);
        assert.equal(d.file, fs.realpathSync(path.join(CLIP_BF16, index.weight_map[name])));
        const direct = (await SafetensorsFile.open(d.file)).describe(name);
        assert.equal(d.byteOffset, direct.byteOffset);
        assert.equal(d.byteLength, direct.byteLength);
      }
    });

    it('lists the tensors nothing has used', async () => {
      const ckpt = await Checkpoint.open(VIT_TINY);
      const vit = ckpt.withPrefixes(['vit.', '']);
      assert.equal(ckpt.unusedTensorNames().length, 40);
      vit.has('embeddings.cls_token'); // probing does not count as using
      assert.equal(ckpt.unusedTensorNames().length, 40);
      vit.get('embeddings.cls_token');
      await ckpt.readF32('classifier.weight');
      ckpt.describe('classifier.bias');
      const unused = ckpt.unusedTensorNames();
      assert.equal(unused.length, 37);
      assert.ok(!unused.includes('vit.embeddings.cls_token') && !unused.includes('classifier.weight'), unused.join(', '));
    });
  });

  describe('a Hugging Face cache snapshot (symlinks into blobs)', () => {
    it('resolves the folder and gives descriptors the real blob path', async function () {
      const root = makeTempDir();
      const blobs = path.join(root, 'blobs');
      const snapshot = path.join(root, 'snapshots', 'abc123');
      fs.mkdirSync(blobs, { recursive: true });
      fs.mkdirSync(snapshot, { recursive: true });
      fs.copyFileSync(path.join(VIT_TINY, 'model.safetensors'), path.join(blobs, 'weights-blob'));
      fs.copyFileSync(path.join(VIT_TINY, 'config.json'), path.join(blobs, 'config-blob'));
      try {
        fs.symlinkSync('../../blobs/weights-blob', path.join(snapshot, 'model.safetensors'));
        fs.symlinkSync('../../blobs/config-blob', path.join(snapshot, 'config.json'));
        fs.symlinkSync(snapshot, path.join(root, 'link-to-snapshot'));
      } catch {
        this.skip(); // no symlink permission (Windows without developer mode)
      }
      const ckpt = await Checkpoint.open(path.join(root, 'link-to-snapshot'));
      assert.equal(ckpt.dir, fs.realpathSync(snapshot));
      assert.equal(ckpt.modelType, 'vit');
      assert.equal(ckpt.describe('vit.embeddings.cls_token').file, fs.realpathSync(path.join(blobs, 'weights-blob')));
      // Messages keep the path the user knows.
      assert.equal(ckpt.displayPath('vit.embeddings.cls_token'), path.join(ckpt.dir, 'model.safetensors'));
    });
  });

  describe('identity()', () => {
    it('is stable across opens and changes with config.json or the weights', async () => {
      const dir = copyFixture('vit-tiny');
      const first = (await Checkpoint.open(dir)).identity();
      assert.match(first, /^[0-9a-f]{64}$/);
      assert.equal((await Checkpoint.open(dir)).identity(), first);

      const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, layer_norm_eps: 1e-6 }));
      const afterConfig = (await Checkpoint.open(dir)).identity();
      assert.notEqual(afterConfig, first);

      const weights = path.join(dir, 'model.safetensors');
      const later = new Date(fs.statSync(weights).mtimeMs + 5000);
      fs.utimesSync(weights, later, later);
      assert.notEqual((await Checkpoint.open(dir)).identity(), afterConfig);
    });
  });

  describe('refusing bad folders with a UserError naming the file', () => {
    it('a folder without config.json', async () => {
      const dir = makeTempDir();
      fs.copyFileSync(path.join(VIT_TINY, 'model.safetensors'), path.join(dir, 'model.safetensors'));
      const err = await expectUserError(() => Checkpoint.open(dir), dir, 'config.json', 'Hugging Face model folder');
      assert.equal(err.file, fs.realpathSync(dir));
    });

    it('a config.json that is not valid JSON, or not an object', async () => {
      const dir = modelFolder({}, '{"model_type": "vit",');
      await expectUserError(() => Checkpoint.open(dir), path.join(fs.realpathSync(dir), 'config.json'), 'not valid JSON');
      const array = modelFolder({}, '[1, 2]');
      await expectUserError(() => Checkpoint.open(array), path.join(fs.realpathSync(array), 'config.json'), 'JSON object');
    });

    it('an invalid preprocessor_config.json', async () => {
      const dir = modelFolder({ 'preprocessor_config.json': '{nope' });
      await expectUserError(() => Checkpoint.open(dir), 'preprocessor_config.json', 'not valid JSON');
    });

    it('a missing folder, and a file instead of a folder', async () => {
      const missing = path.join(makeTempDir(), 'nope');
      await expectUserError(() => Checkpoint.open(missing), missing, 'no such file');
      const file = path.join(VIT_TINY, 'model.safetensors');
      await expectUserError(() => Checkpoint.open(file), file, 'not a model folder', 'config.json');
    });

    it('a folder with only pytorch_model.bin (pickle) weights', async () => {
      const dir = modelFolder({ 'pytorch_model.bin': Buffer.from([0x80, 0x02, 0x7d, 0x71]) });
      await expectUserError(() => Checkpoint.open(dir),
        path.join(fs.realpathSync(dir), 'pytorch_model.bin'), 'pickle', 'can run arbitrary code', 'safetensors', 'Hugging Face Hub');
      for (const name of ['weights.pt', 'model.ckpt', 'pytorch_model.bin.index.json']) {
        const other = modelFolder({ [name]: 'x' });
        await expectUserError(() => Checkpoint.open(other), name, 'pickle');
      }
    });

    it('a folder with no weights at all', async () => {
      const dir = modelFolder({ 'README.md': '# model' });
      await expectUserError(() => Checkpoint.open(dir), fs.realpathSync(dir), 'no model weights');
    });

    it('uses a single *.safetensors of any name, and refuses several without an index', async () => {
      const dir = modelFolder({});
      fs.copyFileSync(path.join(VIT_TINY, 'model.safetensors'), path.join(dir, 'weights.safetensors'));
      assert.equal((await Checkpoint.open(dir)).tensorNames().length, 40);
      fs.copyFileSync(path.join(VIT_TINY, 'model.safetensors'), path.join(dir, 'other.safetensors'));
      await expectUserError(() => Checkpoint.open(dir), fs.realpathSync(dir), 'other.safetensors', 'weights.safetensors');
    });

    it('a shard listed in the index that is missing', async () => {
      const dir = copyFixture('clip-bf16-sharded');
      fs.rmSync(path.join(dir, SHARD_2));
      await expectUserError(() => Checkpoint.open(dir),
        path.join(fs.realpathSync(dir), SHARD_2), 'model.safetensors.index.json', 'missing', 'download the model again');
    });

    it('an index that places a tensor in a shard without it', async () => {
      const dir = copyFixture('clip-bf16-sharded');
      const indexPath = path.join(dir, 'model.safetensors.index.json');
      const index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
      index.weight_map['text_model.extra.weight'] = SHARD_2;
      fs.writeFileSync(indexPath, JSON.stringify(index));
      await expectUserError(() => Checkpoint.open(dir), path.join(fs.realpathSync(dir), SHARD_2), "'text_model.extra.weight'");
    });

    it('an index whose shard names leave the folder, or without weight_map', async () => {
      const dir = copyFixture('clip-bf16-sharded');
      const indexPath = path.join(dir, 'model.safetensors.index.json');
      const index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
      index.weight_map['logit_scale'] = '../model-00001-of-00002.safetensors';
      fs.writeFileSync(indexPath, JSON.stringify(index));
      await expectUserError(() => Checkpoint.open(dir), indexPath.replace(dir, fs.realpathSync(dir)), "'logit_scale'", 'not a file name');
      fs.writeFileSync(indexPath, JSON.stringify({ metadata: {} }));
      await expectUserError(() => Checkpoint.open(dir), 'weight_map');
    });

    it('a damaged weights file is reported with its path', async () => {
      const dir = modelFolder({ 'model.safetensors': fs.readFileSync(path.join(VIT_TINY, 'model.safetensors')).subarray(0, 5000) });
      await expectUserError(() => Checkpoint.open(dir), path.join(fs.realpathSync(dir), 'model.safetensors'), 'truncated');
    });

    it('a tensor of the wrong shape (expectShape)', async () => {
      const ckpt = await Checkpoint.open(VIT_TINY);
      const err = await expectUserError(
        async () => ckpt.withPrefixes(['vit.', '']).expectShape('embeddings.position_embeddings', [1, 197, 32]),
        path.join(ckpt.dir, 'model.safetensors'), "'vit.embeddings.position_embeddings'", '[1, 65, 32]', '[1, 197, 32]',
        'does not match its config.json');
      assert.equal(err.file, path.join(ckpt.dir, 'model.safetensors'));
      await expectUserError(async () => ckpt.expectShape('classifier.bias', [5, 1]), "'classifier.bias'", '[5]', '[5, 1]');
    });

    it('a tensor the model needs but the checkpoint lacks', async () => {
      const ckpt = await Checkpoint.open(VIT_TINY);
      await expectUserError(async () => ckpt.withPrefixes(['vit.', '']).get('encoder.layer.7.output.dense.weight'),
        path.join(ckpt.dir, 'model.safetensors'), "'vit.encoder.layer.7.output.dense.weight'",
        "'encoder.layer.7.output.dense.weight'", "model_type 'vit'");
      await expectUserError(() => ckpt.readF32('nope'), "'nope'");
    });

    it('refuses a float read of an integer tensor through the checkpoint', async () => {
      const dir = modelFolder({});
      await writeSafetensors(path.join(dir, 'model.safetensors'), [
        { name: 'position_ids', dtype: 'I64', shape: [1, 3], data: BigInt64Array.from([0n, 1n, 2n]) },
      ]);
      const ckpt = await Checkpoint.open(dir);
      await expectUserError(() => ckpt.readF32('position_ids'), "'position_ids'", 'I64', 'model.safetensors');
      assert.deepEqual(await ckpt.readI32('position_ids'), Int32Array.from([0, 1, 2]));
    });
  });
});
