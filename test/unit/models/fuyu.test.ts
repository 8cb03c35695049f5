import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../../src/core/errors';
import { InferenceEngine } from '../../../src/core/engine/client';
import { decodeImage } from '../../../src/core/image/decode';
import { preprocessFuyu } from '../../../src/core/image/preprocess';
import { readSafetensorsAll, type LoadedTensor } from '../../../src/core/io/safetensors';
import { FUYU_IO } from '../../../src/core/models/fuyu';
import { FuyuRunner, type FuyuPrompt, type LoadedFuyu } from '../../../src/core/models/fuyu-runner';
import { GraphCache } from '../../../src/core/onnx/cache';
import { ModelRunner, openModel } from '../../../src/core/models/runner';
import { FuyuTokenizer } from '../../../src/core/text/fuyu-tokenizer';
import { GOLDEN, expectClose } from '../parity';

const DIR = path.join(GOLDEN, 'fuyu-tiny');
const PROMPT = 'Generate a coco-style caption.\n';
const manifest = JSON.parse(fs.readFileSync(path.join(DIR, 'manifest.json'), 'utf8'));
const example = manifest.examples[0];

const asNumbers = (t: LoadedTensor): number[] => Array.from(t.data as BigInt64Array, Number);
const f32 = (t: { data: unknown }): Float32Array => t.data as Float32Array;

async function loadFuyuTiny(): Promise<LoadedFuyu> {
  const loaded = await openModel(DIR);
  assert.equal(loaded.kind, 'fuyu');
  return loaded as LoadedFuyu;
}

describe('Fuyu', () => {
  let engine: InferenceEngine;
  let fuyu: FuyuRunner;
  let prompt: FuyuPrompt;
  let inputs: Map<string, LoadedTensor>;
  let expected: Map<string, LoadedTensor>;
  let tmp: string;

  before(async () => {
    engine = InferenceEngine.create({ threads: 1 });
    const loaded = await loadFuyuTiny();
    fuyu = new ModelRunner(engine).fuyu(loaded);
    const image = preprocessFuyu(await decodeImage(path.join(DIR, example.image)), loaded.checkpoint.preprocessorConfig!);
    prompt = fuyu.prepare(image, PROMPT, 8);
    inputs = await readSafetensorsAll(path.join(DIR, example.inputs_file));
    expected = await readSafetensorsAll(path.join(DIR, example.outputs_file));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-fuyu-'));
  });
  after(async () => {
    await engine.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('tokenizer (Unigram with byte fallback)', () => {
    const cases = JSON.parse(fs.readFileSync(path.join(DIR, 'tokenization.json'), 'utf8')).cases as {
      text: string; input_ids_no_special: number[]; input_ids_with_special: number[]; tokens_no_special: string[];
    }[];
    let tokenizer: FuyuTokenizer;
    before(() => {
      tokenizer = fuyu.loaded.tokenizer;
    });

    for (const c of cases) {
      it(`${JSON.stringify(c.text)}: ids and pieces as the reference`, () => {
        assert.deepEqual(tokenizer.encode(c.text), c.input_ids_no_special);
        assert.deepEqual(tokenizer.encode(c.text, { addSpecialTokens: true }), c.input_ids_with_special);
        assert.deepEqual(tokenizer.tokens(c.input_ids_no_special), c.tokens_no_special);
        assert.equal(tokenizer.decode(c.input_ids_no_special), c.text, 'decoding gives the text back');
      });
    }

    it('decodes invalid UTF-8 byte runs to one U+FFFD per byte, as the reference generated_text', () => {
      assert.equal(tokenizer.decode(example.generated_new_token_ids, { skipSpecialTokens: true }), example.generated_text);
    });

    it('skips special tokens on request', () => {
      const ids = tokenizer.encode('Hello', { addSpecialTokens: true });
      assert.equal(tokenizer.decode(ids), '<s> Hello');
      assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), 'Hello');
    });
  });

  describe('processor: token layout', () => {
    it('input_ids and image_patches_indices as FuyuProcessor', () => {
      assert.deepEqual(prompt.layout.inputIds, asNumbers(inputs.get('input_ids')!));
      assert.deepEqual(prompt.layout.imagePatchesIndices, asNumbers(inputs.get('image_patches_indices')!));
      expectClose('image_patches', prompt.imagePatches, f32(inputs.get('image_patches')!));
    });

    it('exposes which position is which patch, newline, BOS, prompt token, beginning of answer', () => {
      const { layout } = prompt;
      const ids = manifest.special_token_ids as Record<string, number>;
      assert.equal(layout.patchRows, 5);
      assert.equal(layout.patchCols, 8);
      assert.equal(layout.slots.length, example.prompt_length);
      assert.deepEqual(layout.slots[0], { kind: 'patch', row: 0, col: 0, patch: 0 });
      assert.deepEqual(layout.slots[8], { kind: 'newline', row: 0 });
      assert.deepEqual(layout.slots[9 + 3], { kind: 'patch', row: 1, col: 3, patch: 11 });
      assert.equal(layout.textStart, 45);
      assert.deepEqual(layout.slots[45], { kind: 'bos' });
      assert.deepEqual(layout.slots[46], { kind: 'prompt', index: 0 });
      assert.deepEqual(layout.slots[55], { kind: 'beginning-of-answer' });
      assert.equal(layout.patchPositions.length, example.num_image_patch_tokens);
      for (const [k, t] of layout.patchPositions.entries()) {
        assert.equal(layout.inputIds[t], ids['|SPEAKER|']);
        assert.deepEqual(layout.slots[t], { kind: 'patch', row: Math.floor(k / 8), col: k % 8, patch: k });
      }
      assert.equal(layout.slots.filter((s) => s.kind === 'newline').length, example.num_image_newline_tokens);
    });

    it('takes the special ids from the tokenizer', () => {
      const ids = manifest.special_token_ids as Record<string, number>;
      assert.deepEqual(fuyu.loaded.special, {
        imagePlaceholder: ids['|SPEAKER|'],
        imageNewline: ids['|NEWLINE|'],
        bos: ids['<s>'],
        beginningOfAnswer: ids['<0x04>'],
        stop: [2, ids['|ENDOFTEXT|']], // generation_config.json's eos, then the tokenizer's
      });
    });
  });

  describe('decoder: prompt outputs', () => {
    it('logits, every hidden state (the last after final_layernorm) and attention map within DESIGN §3 tolerances', async () => {
      const out = await fuyu.forward(prompt);
      const names = [...expected.keys()].filter((n) => /^(logits|hidden_states\.\d+|attentions\.\d+)$/.test(n));
      assert.equal(names.length, 1 + 3 + 2);
      for (const name of names) {
        assert.deepEqual([1, ...out[name]!.dims], expected.get(name)!.shape, name);
        expectClose(name, f32(out[name]!), f32(expected.get(name)!));
      }
    });

    it('image attentions are the text rows × patch columns of the full maps, and their head mean', async () => {
      const out = await fuyu.forward(prompt);
      const { textStart, patchPositions } = prompt.layout;
      const S = prompt.layout.inputIds.length;
      const P = patchPositions.length;
      const rows = S - textStart;
      for (let i = 0; i < 2; i++) {
        const full = f32(out[`attentions.${i}`]!); // [H, S, S]
        const perHead = out[FUYU_IO.imageAttentions(i)]!;
        const mean = f32(out[FUYU_IO.imageAttentionsMean(i)]!);
        assert.deepEqual(perHead.dims, [4, rows, P]);
        const want = new Float32Array(4 * rows * P);
        const wantMean = new Float32Array(rows * P);
        for (let h = 0; h < 4; h++) {
          for (let r = 0; r < rows; r++) {
            for (let p = 0; p < P; p++) {
              const v = full[(h * S + textStart + r) * S + patchPositions[p]!]!;
              want[(h * rows + r) * P + p] = v;
              wantMean[r * P + p]! += v / 4;
            }
          }
        }
        expectClose(`attentions.${i} image rows`, f32(perHead), want);
        expectClose(`attentions.${i} image mean`, mean, wantMean);
      }
    });
  });

  describe('generation', () => {
    it('greedy with the KV cache: the 8 reference tokens exactly, each step\'s logits, streamed in order', async () => {
      const streamed: { index: number; id: number; delta: string }[] = [];
      const gen = await fuyu.generate(prompt, { maxNewTokens: 8, onToken: (t) => streamed.push(t) });
      assert.deepEqual(gen.newTokenIds, asNumbers(expected.get('generated_new_token_ids')!));
      assert.equal(gen.stopped, 'max-new-tokens');
      for (let i = 0; i < 8; i++) expectClose(`generate_logits.${i}`, gen.stepLogits[i]!, f32(expected.get(`generate_logits.${i}`)!));
      assert.deepEqual(streamed.map((t) => [t.index, t.id]), gen.newTokenIds.map((id, i) => [i, id]));
      assert.equal(streamed.map((t) => t.delta).join(''), gen.text);
      assert.equal(gen.text, example.generated_text);
    });

    it('the cached and uncached paths agree (tokens and logits)', async () => {
      const cached = await fuyu.generate(prompt, { maxNewTokens: 5 });
      const uncached = await fuyu.generate(prompt, { maxNewTokens: 5, useCache: false });
      assert.deepEqual(cached.newTokenIds, uncached.newTokenIds);
      for (let i = 0; i < 5; i++) expectClose(`step ${i} logits`, cached.stepLogits[i]!, uncached.stepLogits[i]!);
    });

    it('generated tokens\' image attentions equal the last row of a full pass over the longer sequence', async () => {
      const gen = await fuyu.generate(prompt, { maxNewTokens: 3 });
      const ids = [...prompt.layout.inputIds, ...gen.newTokenIds.slice(0, 2)];
      const full = await fuyu.forward({ ...prompt, layout: { ...prompt.layout, inputIds: ids } }, { fetches: ['attentions.1'] });
      const S = ids.length;
      const P = prompt.layout.patchPositions.length;
      const got = gen.generatedImageAttentions[1]!; // [steps = 2, H, P]
      assert.equal(got.length, 2 * 4 * P);
      for (let step = 0; step < 2; step++) {
        const row = S - 2 + step;
        const want = Float32Array.from({ length: 4 * P }, (_, j) => f32(full['attentions.1']!)[(Math.floor(j / P) * S + row) * S + prompt.layout.patchPositions[j % P]!]!);
        expectClose('attentions.1 generated rows', got.subarray(step * 4 * P, (step + 1) * 4 * P), want);
      }
    });

    it('stops at a stop token', async () => {
      // Make the reference's second token a stop token: generation ends there and includes it.
      const loaded = { ...fuyu.loaded, special: { ...fuyu.loaded.special, stop: [example.generated_new_token_ids[1]] } };
      const runner = new ModelRunner(engine).fuyu(loaded);
      const gen = await runner.generate(prompt, { maxNewTokens: 8 });
      assert.deepEqual(gen.newTokenIds, example.generated_new_token_ids.slice(0, 2));
      assert.equal(gen.stopped, 'stop-token');
    });
  });

  describe('compact graphs (large models: no per-position outputs, attention in head groups, one session)', () => {
    it('give the same next-token logits, image attentions and greedy tokens as the full graphs', async () => {
      const compact = new FuyuRunner(engine, new GraphCache(undefined), fuyu.loaded, { detail: 'compact' });
      const names = compact.model.outputNames('prefill', 'compact');
      assert.ok(!names.includes('logits') && !names.some((n) => n.startsWith('attentions.') || n.startsWith('hidden_states.')));
      const fetches = [FUYU_IO.nextTokenLogits, FUYU_IO.imageAttentions(0), FUYU_IO.imageAttentions(1), FUYU_IO.imageAttentionsMean(1)];
      const small = await compact.forward(prompt, { fetches });
      const big = await fuyu.forward(prompt, { fetches });
      for (const name of fetches) {
        assert.deepEqual(small[name]!.dims, big[name]!.dims, name);
        expectClose(name.replace('image_', ''), f32(small[name]!), f32(big[name]!));
      }
      expectClose('logits', f32(small[FUYU_IO.nextTokenLogits]!), f32(expected.get('logits')!).subarray(55 * 454));
      const gen = await compact.generate(prompt, { maxNewTokens: 8 });
      assert.deepEqual(gen.newTokenIds, asNumbers(expected.get('generated_new_token_ids')!));

      // A very short sequence (one patch, a one-letter prompt; text rows start at row 2).
      const short = fuyu.prepare({ imagePatches: prompt.imagePatches.subarray(0, 192), patchRows: 1, patchCols: 1 }, 'a');
      assert.ok(short.layout.inputIds.length < 16);
      const a = await compact.forward(short, { fetches });
      const b = await fuyu.forward(short, { fetches });
      for (const name of fetches) expectClose(name.replace('image_', ''), f32(a[name]!), f32(b[name]!));
    });

    it('a prefill in chunks of rows (some holding patches, some splitting the text rows) gives what one pass gives', async () => {
      const fetches = [FUYU_IO.nextTokenLogits, FUYU_IO.imageAttentions(1), FUYU_IO.imageAttentionsMean(0)];
      const whole = await fuyu.forward(prompt, { fetches });
      // 56 rows: image rows 0–44 (5 patch rows of 8 + newline), text rows 45–55.
      assert.equal(prompt.layout.textStart, 45);
      for (const chunkRows of [7, 50]) {
        const chunked = new FuyuRunner(engine, new GraphCache(undefined), fuyu.loaded, { detail: 'compact', prefillChunkRows: chunkRows });
        const out = await chunked.forward(prompt, { fetches });
        for (const name of fetches) {
          assert.deepEqual(out[name]!.dims, whole[name]!.dims, `${name}, chunks of ${chunkRows}`);
          expectClose(`${name} (chunks of ${chunkRows})`.replace('image_', ''), f32(out[name]!), f32(whole[name]!));
        }
        const gen = await chunked.generate(prompt, { maxNewTokens: 8 });
        assert.deepEqual(gen.newTokenIds, asNumbers(expected.get('generated_new_token_ids')!), `tokens, chunks of ${chunkRows}`);
      }
      const compact = new FuyuRunner(engine, new GraphCache(undefined), fuyu.loaded, { detail: 'compact' });
      await assert.rejects(compact.forward(prompt, { fetches: [FUYU_IO.presentKey(0)] }), /keys and values \("present.0.key"\) stay in the engine/);
    });
  });

  describe('compact: one session for prefill and decoding', () => {
    /** A compact runner on its own engine, recording the sessions it loads. */
    async function compactRunner(): Promise<{ runner: FuyuRunner; loads: string[]; dispose: () => Promise<void> }> {
      const own = InferenceEngine.create({ threads: 1 });
      const loads: string[] = [];
      const load = own.loadSession.bind(own);
      own.loadSession = (key, source, options) => {
        loads.push(key);
        return load(key, source, options);
      };
      return { runner: new FuyuRunner(own, new GraphCache(undefined), fuyu.loaded, { detail: 'compact' }), loads, dispose: () => own.dispose() };
    }

    it('loads one session, and generates the tokens, step logits and image attentions of the two-session path', async () => {
      const { runner, loads, dispose } = await compactRunner();
      try {
        const gen = await runner.generate(prompt, { maxNewTokens: 8 });
        assert.equal(loads.length, 1, `sessions loaded: ${loads.join(', ')}`);
        const keys = await runner.prepareGeneration();
        assert.equal(keys.prefill, await runner.prepareGraph('prefill', 'compact'));
        assert.equal(keys.decode, keys.prefill, 'decoding reuses the prefill session');
        assert.deepEqual(loads, [keys.prefill], 'and nothing else was loaded');

        // The reference tokens, and what the full prefill + separate decode graph (two sessions) computes.
        assert.deepEqual(gen.newTokenIds, asNumbers(expected.get('generated_new_token_ids')!));
        const twoSessions = await fuyu.generate(prompt, { maxNewTokens: 8 });
        assert.deepEqual(gen.newTokenIds, twoSessions.newTokenIds);
        for (let i = 0; i < 8; i++) {
          expectClose(`generate_logits.${i}`, gen.stepLogits[i]!, f32(expected.get(`generate_logits.${i}`)!));
          expectClose(`step ${i} logits`, gen.stepLogits[i]!, twoSessions.stepLogits[i]!);
        }
        for (const i of [0, 1]) {
          expectClose(`attentions.${i} generated rows`, gen.generatedImageAttentions[i]!, twoSessions.generatedImageAttentions[i]!);
          expectClose(`attentions.${i} generated mean`, gen.generatedImageAttentionsMean[i]!, twoSessions.generatedImageAttentionsMean[i]!);
        }
        assert.equal(gen.generatedImageAttentions[1]!.length, 7 * 4 * prompt.layout.patchPositions.length, '7 decoding steps × heads × patches');

        const uncached = await runner.generate(prompt, { maxNewTokens: 5, useCache: false });
        assert.deepEqual(uncached.newTokenIds, gen.newTokenIds.slice(0, 5));
        for (let i = 0; i < 5; i++) expectClose(`uncached step ${i} logits`, uncached.stepLogits[i]!, gen.stepLogits[i]!);
      } finally {
        await dispose();
      }
    });
  });

  describe('bad input', () => {
    it('an image with no whole patch', () => {
      assert.throws(() => fuyu.prepare({ imagePatches: new Float32Array(0), patchRows: 0, patchCols: 3 }, PROMPT), (err: Error) =>
        err instanceof UserError && /smaller than one patch/.test(err.message));
    });

    it('a prompt longer than the context', () => {
      const long = 'a '.repeat(200);
      assert.throws(() => fuyu.prepare({ imagePatches: prompt.imagePatches, patchRows: 5, patchCols: 8 }, long), (err: Error) =>
        err instanceof UserError && /more than the model's context of 128 positions/.test(err.message));
      assert.throws(() => fuyu.prepare({ imagePatches: prompt.imagePatches, patchRows: 5, patchCols: 8 }, PROMPT, 100), /100 more are to be generated/);
    });

    it('a tokenizer without the image tokens', async () => {
      const dir = path.join(tmp, 'no-speaker');
      fs.cpSync(DIR, dir, { recursive: true });
      const file = path.join(dir, 'tokenizer.json');
      const json = JSON.parse(fs.readFileSync(file, 'utf8'));
      json.model.vocab = json.model.vocab.map(([piece, score]: [string, number]) => [piece === '|SPEAKER|' ? 'SPEAKER' : piece, score]);
      fs.writeFileSync(file, JSON.stringify(json));
      await assert.rejects(openModel(dir), (err: Error) => err instanceof UserError && err.message.includes('tokenizer.json') && err.message.includes('"|SPEAKER|"'));
    });

    it('a checkpoint whose tensor does not match config.json', async () => {
      const dir = path.join(tmp, 'bad-config');
      fs.cpSync(DIR, dir, { recursive: true });
      const file = path.join(dir, 'config.json');
      const config = JSON.parse(fs.readFileSync(file, 'utf8'));
      config.text_config.intermediate_size = 40;
      fs.writeFileSync(file, JSON.stringify(config));
      await assert.rejects(openModel(dir), (err: Error) => err instanceof UserError && /dense_h_to_4h\.weight' has shape \[37, 32\]/.test(err.message));
    });
  });
});
