import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../../src/core/errors';
import { InferenceEngine, type TensorData } from '../../../src/core/engine/client';
import { decodeImage } from '../../../src/core/image/decode';
import { interpolateBicubicTorch } from '../../../src/core/image/interpolate';
import { preprocess } from '../../../src/core/image/preprocess';
import { f16ToF32, readSafetensorsAll, writeSafetensors, type LoadedTensor } from '../../../src/core/io/safetensors';
import type { CLIPRunner } from '../../../src/core/models/clip-runner';
import { ModelRunner, openModel } from '../../../src/core/models/runner';
import { GOLDEN, expectClose } from '../parity';

/** Every CLIP golden example: case folder, example name, its images (manifest.json). */
const CASES: { folder: string; example: string; images: string[] }[] = [
  { folder: 'clip-tiny', example: 'pair', images: ['square.png', 'nonsquare.png'] },
  { folder: 'clip-bf16-sharded', example: 'pair', images: ['square.png', 'nonsquare.png'] },
  { folder: 'clip-photo', example: 'coffee', images: ['coffee.png'] },
];

interface Tokenization {
  cases: { text: string; input_ids: number[] }[];
}

const tokenization = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'clip-tiny', 'tokenization.json'), 'utf8')) as Tokenization;

/** The texts of an example (manifest.json). */
function textsOf(folder: string, example: string): string[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(GOLDEN, folder, 'manifest.json'), 'utf8'));
  return manifest.examples.find((e: { name: string }) => e.name === example).texts;
}

const f32 = (t: LoadedTensor): TensorData => ({ type: 'float32', dims: t.shape, data: t.data as Float32Array });

/** Worst |diff| per output name over every comparison made, for the summary printed at the end. */
const worst = new Map<string, number>();
function compareAll(label: string, got: Record<string, TensorData>, want: Map<string, LoadedTensor>): void {
  for (const [name, t] of want) {
    const g = got[name];
    assert.ok(g, `${label}: missing output ${name}`);
    assert.deepEqual(g.dims, t.shape, `${label}: ${name} shape`);
    const diff = expectClose(`${label} ${name}`, g.data as Float32Array, t.data as Float32Array);
    const kind = name.replace(/\.\d+$/, '.{i}');
    worst.set(kind, Math.max(worst.get(kind) ?? 0, diff));
  }
}

/** Runs of the engine, by session key, to see what the caches spare. */
function countRuns(engine: InferenceEngine): { count: () => number } {
  let n = 0;
  const run = engine.run.bind(engine);
  engine.run = ((...args: Parameters<InferenceEngine['run']>) => {
    n++;
    return run(...args);
  }) as InferenceEngine['run'];
  return { count: () => n };
}

let engine: InferenceEngine;
let tmp: string;
before(() => {
  engine = InferenceEngine.create({ threads: 1 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-clip-'));
});
after(async () => {
  await engine.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`      CLIP parity, worst |diff| per output: ${[...worst].map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
});

async function clipFor(folder: string, runner = new ModelRunner(engine)): Promise<CLIPRunner> {
  const loaded = await openModel(folder);
  assert.equal(loaded.kind, 'clip');
  return runner.clip(loaded);
}

describe('CLIP parity with transformers (from the fixtures\' inputs)', () => {
  for (const { folder, example } of CASES) {
    it(`${folder}/${example}: logits, embeddings, every hidden state and attention map of both towers`, async () => {
      const dir = path.join(GOLDEN, folder);
      const inputs = await readSafetensorsAll(path.join(dir, `${example}.inputs.safetensors`));
      const expected = await readSafetensorsAll(path.join(dir, `${example}.outputs.safetensors`));
      const ids = inputs.get('input_ids')!;
      const clip = await clipFor(dir);
      const out = await clip.forward(f32(inputs.get('pixel_values')!), {
        inputIds: ids.data as BigInt64Array,
        attentionMask: inputs.get('attention_mask')!.data as BigInt64Array,
        dims: [ids.shape[0]!, ids.shape[1]!],
      });
      assert.deepEqual(Object.keys(out).sort(), [...expected.keys()].sort(), 'the same outputs as transformers');
      compareAll(`${folder}/${example}`, out, expected);
    });
  }
});

describe('CLIP parity with transformers (from the PNGs and the texts)', () => {
  for (const { folder, example, images } of CASES) {
    it(`${folder}/${example}: pixel values, token ids and every output`, async () => {
      const dir = path.join(GOLDEN, folder);
      const clip = await clipFor(dir);
      const inputs = await readSafetensorsAll(path.join(dir, `${example}.inputs.safetensors`));
      const expected = await readSafetensorsAll(path.join(dir, `${example}.outputs.safetensors`));

      const planes: Float32Array[] = [];
      for (const name of images) {
        const processed = preprocess(await decodeImage(path.join(dir, name)), clip.loaded.checkpoint.preprocessorConfig!, { kind: 'clip' });
        planes.push(processed.pixelValues);
      }
      const pixels = new Float32Array(planes.reduce((n, p) => n + p.length, 0));
      planes.reduce((at, p) => (pixels.set(p, at), at + p.length), 0);
      const wantPixels = inputs.get('pixel_values')!;
      expectClose('pixel_values', pixels, wantPixels.data as Float32Array);

      const batch = await clip.tokenize(textsOf(folder, example), 'max_length');
      assert.deepEqual(batch.dims, inputs.get('input_ids')!.shape);
      assert.deepEqual([...batch.inputIds], [...(inputs.get('input_ids')!.data as BigInt64Array)]);
      assert.deepEqual([...batch.attentionMask], [...(inputs.get('attention_mask')!.data as BigInt64Array)]);

      const out = await clip.forward({ type: 'float32', dims: wantPixels.shape, data: pixels }, batch);
      compareAll(`${folder}/${example} (png)`, out, expected);
    });
  }

  it('tokenization.json: the token ids of every reference text', async () => {
    const clip = await clipFor(path.join(GOLDEN, 'clip-tiny'));
    const tokenizer = await clip.tokenizer();
    for (const c of tokenization.cases) assert.deepEqual(tokenizer.encode(c.text, 1000).ids, c.input_ids, c.text);
  });
});

describe('CLIP text longer than the context', () => {
  const long = tokenization.cases.filter((c) => c.input_ids.length > 16);

  it('is cut to max_position_embeddings keeping the end-of-text token, as the reference truncates', async () => {
    assert.ok(long.length >= 2, 'the fixtures have texts longer than 16 tokens');
    const clip = await clipFor(path.join(GOLDEN, 'clip-tiny'));
    const batch = await clip.tokenize(long.map((c) => c.text));
    assert.deepEqual(batch.dims, [long.length, 16]);
    assert.deepEqual(batch.truncated, long.map(() => true));
    long.forEach((c, b) => {
      const eos = c.input_ids.at(-1)!;
      assert.deepEqual([...batch.inputIds.subarray(b * 16, (b + 1) * 16)].map(Number), [...c.input_ids.slice(0, 15), eos]);
    });
  });

  it('embeds as its truncation, pooled at the forced end-of-text token', async () => {
    const clip = await clipFor(path.join(GOLDEN, 'clip-tiny'));
    const [embedded] = await clip.embedTexts([long[0]!.text]);
    const ids = [...long[0]!.input_ids.slice(0, 15), long[0]!.input_ids.at(-1)!];
    const run = await clip.runText({ inputIds: BigInt64Array.from(ids, BigInt), attentionMask: new BigInt64Array(16).fill(1n), dims: [1, 16] }, { fetches: ['text_embeds'] });
    expectClose('text_embeds', embedded!, run['text_embeds']!.data as Float32Array);
  });

  it('given as ids longer than the context, is refused with the limit named', async () => {
    const clip = await clipFor(path.join(GOLDEN, 'clip-tiny'));
    const ids = BigInt64Array.from(long[0]!.input_ids, BigInt);
    await assert.rejects(
      clip.runText({ inputIds: ids, attentionMask: new BigInt64Array(ids.length).fill(1n), dims: [1, ids.length] }),
      (err: Error) => err instanceof UserError && /19 tokens/.test(err.message) && /max_position_embeddings/.test(err.message),
    );
  });
});

describe('CLIP zero-shot classification', () => {
  it('gives the softmax of transformers\' logits_per_image, labels in their order', async () => {
    const dir = path.join(GOLDEN, 'clip-photo');
    const clip = await clipFor(dir);
    const inputs = await readSafetensorsAll(path.join(dir, 'coffee.inputs.safetensors'));
    const expected = (await readSafetensorsAll(path.join(dir, 'coffee.outputs.safetensors'))).get('logits_per_image')!.data as Float32Array;
    const labels = textsOf('clip-photo', 'coffee');
    const scores = await clip.zeroShot(f32(inputs.get('pixel_values')!), labels);
    assert.deepEqual(scores.map((s) => s.label), labels);
    expectClose('logits_per_image', scores.map((s) => s.logit), expected);
    const max = Math.max(...expected);
    const sum = [...expected].reduce((a, v) => a + Math.exp(v - max), 0);
    expectClose('probabilities', scores.map((s) => s.probability), [...expected].map((v) => Math.exp(v - max) / sum));
  });

  it('fills prompt templates and ensembles several of them', async () => {
    const dir = path.join(GOLDEN, 'clip-tiny');
    const clip = await clipFor(dir);
    const pv = f32((await readSafetensorsAll(path.join(dir, 'pair.inputs.safetensors'))).get('pixel_values')!);
    const first: TensorData = { type: 'float32', dims: [1, 3, 32, 32], data: (pv.data as Float32Array).slice(0, 3 * 32 * 32) };
    const templated = await clip.zeroShot(first, ['cat', 'dog'], { templates: ['a photo of a {}'] });
    const literal = await clip.zeroShot(first, ['a photo of a cat', 'a photo of a dog']);
    assert.deepEqual(templated.map((s) => s.logit), literal.map((s) => s.logit));

    const templates = ['a photo of a {}', 'two {}s playing in the snow!'];
    const ensembled = await clip.zeroShot(first, ['cat', 'dog'], { templates });
    const [a, b] = await clip.embedTexts(['a photo of a cat', 'two cats playing in the snow!']);
    const mean = a!.map((v, i) => v + b![i]!);
    const norm = Math.hypot(...mean);
    const image = await clip.embedImage(first);
    const logit = (await clip.logitScale()) * image.imageEmbeds.reduce((s, v, i) => s + v * (mean[i]! / norm), 0);
    assert.ok(Math.abs(ensembled[0]!.logit - logit) < 1e-4, `${ensembled[0]!.logit} vs ${logit}`);
    assert.notEqual(ensembled[0]!.logit, templated[0]!.logit);
  });

  it('an empty label list is a UserError, before anything runs', async () => {
    const clip = await clipFor(path.join(GOLDEN, 'clip-tiny'));
    const runs = countRuns(engine);
    const pv: TensorData = { type: 'float32', dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) };
    await assert.rejects(clip.zeroShot(pv, []), (err: Error) => err instanceof UserError && /at least one label/.test(err.message));
    assert.equal(runs.count(), 0);
  });
});

describe('CLIP embedding caches', () => {
  it('text embeddings are computed once per (model, text); image embeddings once per pixel content', async () => {
    const dir = path.join(GOLDEN, 'clip-tiny');
    const runner = new ModelRunner(engine);
    const clip = await clipFor(dir, runner);
    const runs = countRuns(engine);
    const pv = f32((await readSafetensorsAll(path.join(dir, 'pair.inputs.safetensors'))).get('pixel_values')!);
    const image = (i: number): TensorData => ({ type: 'float32', dims: [1, 3, 32, 32], data: (pv.data as Float32Array).slice(i * 3072, (i + 1) * 3072) });

    const first = await clip.zeroShot(image(0), ['a photo of a cat', 'hello world', 'coffee cup 42']);
    assert.equal(runs.count(), 2, 'one text run for the three labels, one vision run');
    // Same model opened again: ModelRunner hands back the same CLIPRunner and its caches.
    const again = await (await clipFor(dir, runner)).zeroShot(image(0), ['A Photo of a CAT', 'coffee cup 42']);
    assert.equal(runs.count(), 2, 'texts with the same token ids and the same pixels hit the caches');
    assert.equal(again[0]!.logit, first[0]!.logit);
    await clip.zeroShot(image(1), ['hello world', 'zebra xylophone quiz']);
    assert.equal(runs.count(), 4, 'a new image and one new text run once each');
  });
});

/** LayerNorm over rows of width D (float64), as the reference defines it. */
function layerNormRows(x: Float32Array, D: number, w: Float32Array, b: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    const row = x.subarray(r * D, (r + 1) * D);
    const mean = row.reduce((s, v) => s + v, 0) / D;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / D;
    for (let j = 0; j < D; j++) out[r * D + j] = ((row[j]! - mean) / Math.sqrt(variance + eps)) * w[j]! + b[j]!;
  }
  return out;
}

/** x [rows, in] · Wᵀ [in, out] + b, PyTorch's Linear. */
function linearRows(x: Float32Array, inDim: number, w: Float32Array, b?: Float32Array): Float32Array {
  const outDim = w.length / inDim;
  const rows = x.length / inDim;
  const out = new Float32Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inDim; i++) s += x[r * inDim + i]! * w[o * inDim + i]!;
      out[r * outDim + o] = s;
    }
  }
  return out;
}

describe('CLIP text→image heatmaps (MaskCLIP per-patch features)', () => {
  it('are cos(value-path patch embedding, text embedding) on the patch grid, computed from transformers\' hidden states', async () => {
    const dir = path.join(GOLDEN, 'clip-photo');
    const clip = await clipFor(dir);
    const weights = await readSafetensorsAll(path.join(dir, 'model.safetensors'));
    const w = (name: string): Float32Array => weights.get(name)!.data as Float32Array;
    const expected = await readSafetensorsAll(path.join(dir, 'coffee.outputs.safetensors'));
    const inputs = await readSafetensorsAll(path.join(dir, 'coffee.inputs.safetensors'));

    // SPEC §4.8 from the reference's input to the last layer (hidden_states.1 of 2), patch tokens only.
    const D = 32;
    const x = (expected.get('vision_model.hidden_states.1')!.data as Float32Array).slice(D); // [64, D]
    const l = 'vision_model.encoder.layers.1';
    const v = linearRows(layerNormRows(x, D, w(`${l}.layer_norm1.weight`), w(`${l}.layer_norm1.bias`), 1e-5), D, w(`${l}.self_attn.v_proj.weight`), w(`${l}.self_attn.v_proj.bias`));
    const attn = linearRows(v, D, w(`${l}.self_attn.out_proj.weight`), w(`${l}.self_attn.out_proj.bias`));
    const z = linearRows(layerNormRows(attn, D, w('vision_model.post_layernorm.weight'), w('vision_model.post_layernorm.bias'), 1e-5), D, w('visual_projection.weight')); // [64, 16]

    const texts = textsOf('clip-photo', 'coffee');
    const { grid, maps } = await clip.heatmaps(f32(inputs.get('pixel_values')!), texts);
    assert.equal(grid.rows, 8);
    assert.equal(grid.cols, 8);
    const textEmbeds = expected.get('text_embeds')!.data as Float32Array;
    const P = 16;
    maps.forEach((map, k) => {
      assert.equal(map.text, texts[k]);
      const t = textEmbeds.subarray(k * P, (k + 1) * P);
      const want = Array.from({ length: 64 }, (_, i) => {
        const zi = z.subarray(i * P, (i + 1) * P);
        return zi.reduce((s, val, j) => s + val * t[j]!, 0) / Math.hypot(...zi);
      });
      expectClose(`similarity[${k}]`, map.similarity, want);
    });
    // Per patch, the probabilities over the texts sum to 1 and follow the similarities.
    for (let i = 0; i < 64; i++) {
      assert.ok(Math.abs(maps.reduce((s, m) => s + m.probability[i]!, 0) - 1) < 1e-5);
      const best = maps.reduce((a, m, k) => (m.similarity[i]! > maps[a]!.similarity[i]! ? k : a), 0);
      assert.ok(maps.every((m) => m.probability[i]! <= maps[best]!.probability[i]!));
    }
  });
});

describe('CLIP at other input sizes (interpolate_pos_encoding)', () => {
  it('a 40×48 input: 10×12 patches, position table resized bicubically behind the class token', async () => {
    const dir = path.join(GOLDEN, 'clip-tiny');
    const clip = await clipFor(dir);
    const weights = await readSafetensorsAll(path.join(dir, 'model.safetensors'));
    const w = (name: string): Float32Array => weights.get(name)!.data as Float32Array;
    const [H, W, p, D] = [40, 48, 4, 32];
    let seed = 1;
    const pixels = Float32Array.from({ length: 3 * H * W }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 4 - 2);
    const run = await clip.runVision({ type: 'float32', dims: [1, 3, H, W], data: pixels }, { fetches: ['vision_model.hidden_states.0', 'vision_model.patch_embeds'] });
    assert.deepEqual([run.grid.rows, run.grid.cols, run.grid.tokens], [10, 12, 121]);
    assert.deepEqual(run.tensors['vision_model.patch_embeds']!.dims, [1, 120, 16]);

    // Embeddings by the definition (SPEC §4.3): conv without bias, class row, resized positions, pre_layrnorm.
    const conv = w('vision_model.embeddings.patch_embedding.weight');
    const pos = w('vision_model.embeddings.position_embedding.weight');
    const resized = interpolateBicubicTorch(pos.subarray(D), 8, 8, D, 10, 12);
    const tokens = new Float32Array(121 * D);
    for (let j = 0; j < D; j++) tokens[j] = w('vision_model.embeddings.class_embedding')[j]! + pos[j]!;
    for (let py = 0; py < 10; py++) {
      for (let px = 0; px < 12; px++) {
        const t = 1 + py * 12 + px;
        for (let o = 0; o < D; o++) {
          let s = 0;
          for (let c = 0; c < 3; c++) {
            for (let ky = 0; ky < p; ky++) {
              for (let kx = 0; kx < p; kx++) s += conv[((o * 3 + c) * p + ky) * p + kx]! * pixels[(c * H + py * p + ky) * W + px * p + kx]!;
            }
          }
          tokens[t * D + o] = s + resized[(t - 1) * D + o]!;
        }
      }
    }
    const want = layerNormRows(tokens, D, w('vision_model.pre_layrnorm.weight'), w('vision_model.pre_layrnorm.bias'), 1e-5);
    expectClose('vision_model.hidden_states.0', run.tensors['vision_model.hidden_states.0']!.data as Float32Array, want);
  });
});

describe('CLIP text pooling', () => {
  /** clip-tiny with openai-style legacy special ids in config.json (SPEC §4.1), minus the files in `drop`. */
  function legacyCopy(name: string, drop: string[]): string {
    const dir = path.join(tmp, name);
    fs.cpSync(path.join(GOLDEN, 'clip-tiny'), dir, { recursive: true });
    for (const f of drop) fs.rmSync(path.join(dir, f));
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    Object.assign(config.text_config, { bos_token_id: 0, eos_token_id: 2, pad_token_id: 1 });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  }

  for (const [what, drop] of [['the tokenizer\'s end-of-text id', []], ['the largest id when there is no tokenizer', ['tokenizer.json', 'vocab.json', 'merges.txt']]] as const) {
    it(`with legacy eos_token_id 2 in config.json, pools at ${what}`, async () => {
      const dir = legacyCopy(`legacy-${drop.length}`, [...drop]);
      const inputs = await readSafetensorsAll(path.join(GOLDEN, 'clip-tiny', 'pair.inputs.safetensors'));
      const expected = await readSafetensorsAll(path.join(GOLDEN, 'clip-tiny', 'pair.outputs.safetensors'));
      const ids = inputs.get('input_ids')!;
      const clip = await clipFor(dir);
      const out = await clip.runText(
        { inputIds: ids.data as BigInt64Array, attentionMask: inputs.get('attention_mask')!.data as BigInt64Array, dims: [ids.shape[0]!, ids.shape[1]!] },
        { fetches: ['text_model.pooler_output', 'text_embeds'] },
      );
      for (const name of ['text_model.pooler_output', 'text_embeds']) expectClose(name, out[name]!.data as Float32Array, expected.get(name)!.data as Float32Array);
    });
  }
});

describe('CLIP with F16 weights', () => {
  /** Nearest binary16 bit pattern of a small float (weights here are far from overflow). */
  function toF16Bits(x: number): number {
    const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
    const a = Math.abs(x);
    if (a < 2 ** -24) return sign;
    const e = Math.max(Math.floor(Math.log2(a)), -14);
    const m = Math.round((a / 2 ** e) * 1024); // 1024..2048 for normals, less for subnormals
    return e === -14 && m < 1024 ? sign | m : sign | (((e + 15) << 10) + (m - 1024));
  }

  it('cast in the graph computes what F32 weights of the same values compute', async () => {
    const source = await readSafetensorsAll(path.join(GOLDEN, 'clip-tiny', 'model.safetensors'));
    const asF16 = [...source].map(([name, t]) => ({ name, bits: Uint16Array.from(t.data as Float32Array, toF16Bits), shape: t.shape }));
    const dirs: string[] = [];
    for (const [name, dtype] of [['f16', 'F16'], ['f16-as-f32', 'F32']] as const) {
      const dir = path.join(tmp, name);
      fs.cpSync(path.join(GOLDEN, 'clip-tiny'), dir, { recursive: true });
      await writeSafetensors(path.join(dir, 'model.safetensors'), asF16.map((t) => ({ name: t.name, dtype, shape: t.shape, data: dtype === 'F16' ? t.bits : f16ToF32(t.bits) })));
      dirs.push(dir);
    }
    const inputs = await readSafetensorsAll(path.join(GOLDEN, 'clip-tiny', 'pair.inputs.safetensors'));
    const ids = inputs.get('input_ids')!;
    const batch = { inputIds: ids.data as BigInt64Array, attentionMask: inputs.get('attention_mask')!.data as BigInt64Array, dims: [ids.shape[0]!, ids.shape[1]!] as [number, number] };
    const [half, full] = await Promise.all(dirs.map(async (d) => (await clipFor(d)).forward(f32(inputs.get('pixel_values')!), batch)));
    const reference = await readSafetensorsAll(path.join(GOLDEN, 'clip-tiny', 'pair.outputs.safetensors'));
    let moved = 0;
    for (const name of Object.keys(full!)) {
      expectClose(name, half![name]!.data as Float32Array, full![name]!.data as Float32Array);
      const r = reference.get(name)!.data as Float32Array;
      (full![name]!.data as Float32Array).forEach((v, i) => (moved = Math.max(moved, Math.abs(v - r[i]!))));
    }
    assert.ok(moved > 1e-4, 'F16 rounding changed the weights (else this test compares nothing)');
  });
});

describe('CLIP checkpoints that cannot do text', () => {
  /** A copy of clip-tiny, with only the tensors `keep` accepts and without the files in `drop`. */
  async function copyOfTiny(name: string, keep: (tensor: string) => boolean, drop: string[] = []): Promise<string> {
    const dir = path.join(tmp, name);
    fs.cpSync(path.join(GOLDEN, 'clip-tiny'), dir, { recursive: true });
    for (const f of drop) fs.rmSync(path.join(dir, f));
    const tensors = await readSafetensorsAll(path.join(dir, 'model.safetensors'));
    const kept = [...tensors].filter(([n]) => keep(n)).map(([n, t]) => ({ name: n, dtype: t.dtype, shape: t.shape, data: t.data }));
    await writeSafetensors(path.join(dir, 'model.safetensors'), kept);
    return dir;
  }

  it('without a text tower: images still embed; text is a UserError naming the weights file', async () => {
    const dir = await copyOfTiny('vision-only', (n) => !n.startsWith('text_') && n !== 'logit_scale');
    const clip = await clipFor(dir);
    const pv: TensorData = { type: 'float32', dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) };
    assert.equal((await clip.embedImage(pv)).imageEmbeds.length, 16);
    const weightsFile = path.join(fs.realpathSync(dir), 'model.safetensors');
    for (const attempt of [clip.zeroShot(pv, ['a cat']), clip.embedTexts(['a cat']), clip.tokenize(['a cat'])]) {
      await assert.rejects(attempt, (err: Error) => err instanceof UserError && err.message.includes(weightsFile) && /no text tower/.test(err.message));
    }
  });

  it('without tokenizer files: a UserError naming the folder and the files it needs', async () => {
    const dir = await copyOfTiny('no-tokenizer', () => true, ['tokenizer.json', 'vocab.json', 'merges.txt']);
    const clip = await clipFor(dir);
    const pv: TensorData = { type: 'float32', dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) };
    await assert.rejects(clip.zeroShot(pv, ['a cat']), (err: Error) =>
      err instanceof UserError && err.message.includes(fs.realpathSync(dir)) && /tokenizer\.json/.test(err.message) && /merges\.txt/.test(err.message));
    // Token ids given directly still work (e.g. --pixel-values with input_ids).
    const ids = BigInt64Array.from(tokenization.cases[0]!.input_ids, BigInt);
    const out = await clip.runText({ inputIds: ids, attentionMask: new BigInt64Array(ids.length).fill(1n), dims: [1, ids.length] }, { fetches: ['text_embeds'] });
    assert.deepEqual(out['text_embeds']!.dims, [1, 16]);
  });

  it('a tower whose tensors do not match config.json names the tensor and both shapes', async () => {
    const dir = path.join(tmp, 'wrong-projection');
    fs.cpSync(path.join(GOLDEN, 'clip-tiny'), dir, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    config.projection_dim = 8;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    await assert.rejects(openModel(dir), (err: Error) =>
      err instanceof UserError && /visual_projection\.weight/.test(err.message) && /\[16, 32\]/.test(err.message) && /\[8, 32\]/.test(err.message));
  });
});
