/** CLIP's image × text similarity matrix and the text tower's attention, against transformers' outputs (clip-tiny). */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InferenceEngine, type TensorData } from '../../../src/core/engine/client';
import { decodeImage } from '../../../src/core/image/decode';
import { preprocess } from '../../../src/core/image/preprocess';
import { readSafetensorsAll, type LoadedTensor } from '../../../src/core/io/safetensors';
import { similarityMatrix, softmax } from '../../../src/core/models/clip-heatmap';
import type { CLIPRunner } from '../../../src/core/models/clip-runner';
import { ModelRunner, openModel } from '../../../src/core/models/runner';
import { GOLDEN, expectClose } from '../parity';

const DIR = path.join(GOLDEN, 'clip-tiny');
const manifest = JSON.parse(fs.readFileSync(path.join(DIR, 'manifest.json'), 'utf8'));
const pair = manifest.examples.find((e: { name: string }) => e.name === 'pair') as { texts: string[]; images: string[] };

let engine: InferenceEngine;
let clip: CLIPRunner;
let expected: Map<string, LoadedTensor>;
let inputs: Map<string, LoadedTensor>;
let images: TensorData[];

before(async () => {
  engine = InferenceEngine.create({ threads: 1 });
  const loaded = await openModel(DIR);
  assert.equal(loaded.kind, 'clip');
  clip = new ModelRunner(engine).clip(loaded);
  expected = await readSafetensorsAll(path.join(DIR, 'pair.outputs.safetensors'));
  inputs = await readSafetensorsAll(path.join(DIR, 'pair.inputs.safetensors'));
  images = [];
  for (const name of pair.images) {
    const processed = preprocess(await decodeImage(path.join(DIR, name)), clip.loaded.checkpoint.preprocessorConfig!, { kind: 'clip' });
    images.push({ type: 'float32', dims: processed.shape, data: processed.pixelValues });
  }
});
after(() => engine.dispose());

describe('CLIP similarity matrix', () => {
  it('images × texts from the PNGs: logits are transformers\' logits_per_image, cos = logits / exp(logit_scale), rows softmax', async () => {
    const m = await clip.similarityMatrix(images, pair.texts);
    assert.equal(m.images, 2);
    assert.equal(m.texts, 3);
    const want = expected.get('logits_per_image')!.data as Float32Array;
    expectClose('logits_per_image', m.logits, want);
    expectClose('cosine', m.cosine.map((c) => c * m.scale), want);
    for (let i = 0; i < 2; i++) {
      const row = Array.from(want.subarray(i * 3, (i + 1) * 3));
      expectClose(`probabilities row ${i}`, m.probabilities.subarray(i * 3, (i + 1) * 3), softmax(row));
    }
  });

  it('row i is zero-shot classification of image i', async () => {
    const m = await clip.similarityMatrix(images, pair.texts);
    const scores = await clip.zeroShot(images[1]!, pair.texts);
    assert.deepEqual(scores.map((s) => s.logit), Array.from(m.logits.subarray(3, 6)));
    assert.deepEqual(scores.map((s) => s.probability), Array.from(m.probabilities.subarray(3, 6)));
  });

  it('the pure matrix: cosines of unit vectors, logits scaled, each row a distribution', () => {
    const a = Float32Array.of(1, 0);
    const b = Float32Array.of(0, 1);
    const d = Float32Array.of(Math.SQRT1_2, Math.SQRT1_2);
    const m = similarityMatrix([a, b], [a, d], 100);
    assert.deepEqual(Array.from(m.cosine, (v) => Number(v.toFixed(6))), [1, 0.707107, 0, 0.707107]);
    assert.deepEqual(Array.from(m.logits, (v) => Number(v.toFixed(3))), [100, 70.711, 0, 70.711]);
    for (let i = 0; i < 2; i++) assert.ok(Math.abs(m.probabilities[2 * i]! + m.probabilities[2 * i + 1]! - 1) < 1e-6);
    assert.ok(m.probabilities[0]! > 0.99);
  });
});

describe('CLIP text-tower attention', () => {
  for (const [b, text] of pair.texts.entries()) {
    it(`"${text}": every layer's [heads, T, T] is transformers' block of the real tokens`, async () => {
      const a = await clip.textAttention(text);
      const mask = inputs.get('attention_mask')!.data as BigInt64Array;
      const S = inputs.get('attention_mask')!.shape[1]!;
      const T = [...mask.subarray(b * S, (b + 1) * S)].filter((v) => v === 1n).length;
      assert.equal(a.tokens.length, T);
      assert.deepEqual(a.ids, [...(inputs.get('input_ids')!.data as BigInt64Array).subarray(b * S, b * S + T)].map(Number));
      assert.equal(a.pooledAt, T - 1, 'pooled at the end-of-text token, the last real one');
      const H = a.heads;
      for (let l = 0; l < a.layers; l++) {
        // Reference [B, H, S, S] (padded to S): this text's rows and keys < T.
        const ref = expected.get(`text_model.attentions.${l}`)!.data as Float32Array;
        const block = new Float32Array(H * T * T);
        for (let h = 0; h < H; h++) for (let q = 0; q < T; q++) block.set(ref.subarray(((b * H + h) * S + q) * S, ((b * H + h) * S + q) * S + T), (h * T + q) * T);
        expectClose(`text_model.attentions.${l}`, a.attentions.subarray(l * H * T * T, (l + 1) * H * T * T), block);
      }
    });
  }

  it('puts the text into the template, and the upper triangle is 0 (causal)', async () => {
    const a = await clip.textAttention('cat', 'a photo of a {}');
    assert.equal(a.prompt, 'a photo of a cat');
    const T = a.tokens.length;
    for (let q = 0; q < T; q++) for (let k = q + 1; k < T; k++) assert.equal(a.attentions[q * T + k], 0);
  });
});
