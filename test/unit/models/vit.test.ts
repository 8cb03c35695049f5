import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { InferenceEngine } from '../../../src/core/engine/client';
import { decodeImage } from '../../../src/core/image/decode';
import { preprocess } from '../../../src/core/image/preprocess';
import { readSafetensorsAll } from '../../../src/core/io/safetensors';
import { asViT, ModelRunner, openModel, topK } from '../../../src/core/models/runner';
import { GOLDEN, expectClose } from '../parity';

/** Every ViT golden example: (case folder, example name). */
const CASES: [string, string][] = [
  ['vit-tiny', 'square'],
  ['vit-tiny', 'nonsquare'],
  ['vit-interp', 'rect48x40'],
  ['vit-interp', 'square40'],
  ['vit-photo', 'chelsea'],
];

describe('ViT', () => {
  let engine: InferenceEngine;
  let runner: ModelRunner;
  before(() => {
    engine = InferenceEngine.create({ threads: 1 });
    runner = new ModelRunner(engine);
  });
  after(() => engine.dispose());

  describe('parity with transformers (from pixel_values)', () => {
    for (const [folder, example] of CASES) {
      it(`${folder}/${example}: logits, every hidden state and attention map`, async () => {
        const dir = path.join(GOLDEN, folder);
        const inputs = await readSafetensorsAll(path.join(dir, `${example}.inputs.safetensors`));
        const expected = await readSafetensorsAll(path.join(dir, `${example}.outputs.safetensors`));
        const pv = inputs.get('pixel_values')!;
        const loaded = await openModel(dir);
        const run = await runner.runViT(loaded, { type: 'float32', dims: pv.shape, data: pv.data as Float32Array });
        assert.deepEqual(Object.keys(run.tensors).sort(), [...expected.keys()].sort(), 'the same outputs as transformers');
        for (const [name, want] of expected) {
          const got = run.tensors[name]!;
          assert.equal(got.dims.reduce((a, b) => a * b, 1), want.shape.reduce((a, b) => a * b, 1), `${name} size`);
          expectClose(name, got.data as Float32Array, want.data as Float32Array);
        }
      });
    }

    it('fetches only the requested outputs', async () => {
      const dir = path.join(GOLDEN, 'vit-tiny');
      const inputs = await readSafetensorsAll(path.join(dir, 'square.inputs.safetensors'));
      const pv = inputs.get('pixel_values')!;
      const run = await runner.runViT(await openModel(dir), { type: 'float32', dims: pv.shape, data: pv.data as Float32Array }, { fetches: ['logits', 'attentions.1'] });
      assert.deepEqual(Object.keys(run.tensors).sort(), ['attentions.1', 'logits']);
      assert.deepEqual(run.grid, { height: 32, width: 32, patchSize: 4, rows: 8, cols: 8, prefixTokens: 1, tokens: 65 });
    });

    it('names the predicted label from id2label', async () => {
      const dir = path.join(GOLDEN, 'vit-photo');
      const inputs = await readSafetensorsAll(path.join(dir, 'chelsea.inputs.safetensors'));
      const pv = inputs.get('pixel_values')!;
      const loaded = asViT(await openModel(dir));
      const run = await runner.runViT(loaded, { type: 'float32', dims: pv.shape, data: pv.data as Float32Array }, { fetches: ['logits'] });
      const top = topK(run.tensors.logits!.data as Float32Array, loaded.model.labels, 5);
      assert.equal(top[0]!.label, 'coffee mug'); // manifest.json: predicted_label
      assert.equal(top.length, 5);
      assert.ok(Math.abs(top.reduce((s, t) => s + t.probability, 0) - 1) < 1e-6);
    });
  });

  describe('parity with transformers (from the PNG, through preprocessing)', () => {
    for (const [folder, example] of CASES) {
      it(`${folder}/${example}.png: pixel values and every output`, async () => {
        const dir = path.join(GOLDEN, folder);
        const loaded = await openModel(dir);
        const image = await decodeImage(path.join(dir, `${example}.png`));
        const processed = preprocess(image, loaded.checkpoint.preprocessorConfig!, { kind: 'vit' });
        const inputs = await readSafetensorsAll(path.join(dir, `${example}.inputs.safetensors`));
        const expected = await readSafetensorsAll(path.join(dir, `${example}.outputs.safetensors`));
        assert.deepEqual(processed.shape, inputs.get('pixel_values')!.shape);
        expectClose('pixel_values', processed.pixelValues, inputs.get('pixel_values')!.data as Float32Array);
        const run = await runner.runViT(loaded, { type: 'float32', dims: processed.shape, data: processed.pixelValues });
        for (const [name, want] of expected) expectClose(name, run.tensors[name]!.data as Float32Array, want.data as Float32Array);
      });
    }
  });
});
