/** The bundled CLI (out/cli.js, built by `npm test`'s pretest) on CLIP checkpoints. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensorsAll, type LoadedTensor } from '../../../src/core/io/safetensors';
import { GOLDEN, expectClose } from '../parity';
import { requireBuiltCli, runCli, type CliResult } from '../cli-runner';

let tmp: string;

function cli(...args: string[]): Promise<CliResult> {
  return runCli(args, { env: { ...process.env, XDG_CACHE_HOME: tmp } });
}

function textsOf(folder: string, example: string): string[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(GOLDEN, folder, 'manifest.json'), 'utf8'));
  return manifest.examples.find((e: { name: string }) => e.name === example).texts;
}

/** Every golden output is in the dump with its shape and within DESIGN §3 tolerances. */
async function expectDumpMatches(dump: string, outputsFile: string): Promise<Map<string, LoadedTensor>> {
  const got = await readSafetensorsAll(dump);
  const want = await readSafetensorsAll(outputsFile);
  assert.deepEqual([...got.keys()].sort(), [...want.keys(), 'pixel_values', 'input_ids', 'attention_mask'].sort());
  for (const [name, t] of want) {
    assert.deepEqual(got.get(name)!.shape, t.shape, name);
    expectClose(name, got.get(name)!.data as Float32Array, t.data as Float32Array);
  }
  return got;
}

describe('vision-inspector infer on CLIP (CLI)', () => {
  before(function () {
    requireBuiltCli();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-clip-cli-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('--pixel-values with input_ids and attention_mask: --dump holds every output under transformers\' names', async () => {
    const dir = path.join(GOLDEN, 'clip-bf16-sharded');
    const out = path.join(tmp, 'pair.safetensors');
    const r = await cli('infer', '--model', dir, '--pixel-values', path.join(dir, 'pair.inputs.safetensors'), '--dump', out);
    assert.equal(r.code, 0, r.stderr);
    const got = await expectDumpMatches(out, path.join(dir, 'pair.outputs.safetensors'));
    const inputs = await readSafetensorsAll(path.join(dir, 'pair.inputs.safetensors'));
    for (const name of ['pixel_values', 'input_ids', 'attention_mask']) assert.deepEqual(got.get(name), inputs.get(name), name);
  });

  it('--image with --text --dump: pixel values, token ids (padded to the context) and outputs as CLIPProcessor + CLIPModel', async () => {
    const dir = path.join(GOLDEN, 'clip-photo');
    const out = path.join(tmp, 'coffee.safetensors');
    const texts = textsOf('clip-photo', 'coffee');
    const r = await cli('infer', '--model', dir, '--image', path.join(dir, 'coffee.png'), ...texts.flatMap((t) => ['--text', t]), '--dump', out);
    assert.equal(r.code, 0, r.stderr);
    const got = await expectDumpMatches(out, path.join(dir, 'coffee.outputs.safetensors'));
    const inputs = await readSafetensorsAll(path.join(dir, 'coffee.inputs.safetensors'));
    expectClose('pixel_values', got.get('pixel_values')!.data as Float32Array, inputs.get('pixel_values')!.data as Float32Array);
    for (const name of ['input_ids', 'attention_mask']) assert.deepEqual(got.get(name), inputs.get(name), name);
  });

  it('without --dump prints the zero-shot table, most probable first, with transformers\' logits', async () => {
    const dir = path.join(GOLDEN, 'clip-photo');
    const texts = textsOf('clip-photo', 'coffee');
    const r = await cli('infer', '--model', dir, '--image', path.join(dir, 'coffee.png'), ...texts.flatMap((t) => ['--text', t]));
    assert.equal(r.code, 0, r.stderr);
    const [header, ...rows] = r.stdout.trim().split('\n');
    assert.match(header!, /32×32 input, 8×8 patches, 3 labels/);
    const logits = (await readSafetensorsAll(path.join(dir, 'coffee.outputs.safetensors'))).get('logits_per_image')!.data as Float32Array;
    const max = Math.max(...logits);
    const sum = [...logits].reduce((s, v) => s + Math.exp(v - max), 0);
    const expected = texts.map((text, i) => ({ text, logit: logits[i]!, percent: (100 * Math.exp(logits[i]! - max)) / sum })).sort((a, b) => b.percent - a.percent);
    assert.equal(rows.length, 3);
    rows.forEach((row, i) => {
      const m = /^\s*([\d.]+) %\s+(.+?)\s+\(logit (-?[\d.]+)\)$/.exec(row);
      assert.ok(m, row);
      assert.equal(m[2], expected[i]!.text);
      assert.ok(Math.abs(Number(m[1]) - expected[i]!.percent) <= 0.006, row);
      assert.ok(Math.abs(Number(m[3]) - expected[i]!.logit) <= 0.0006, row);
    });
  });

  it('--template fills each --text into the prompt; --top limits the rows', async () => {
    const dir = path.join(GOLDEN, 'clip-tiny');
    const templated = await cli('infer', '--model', dir, '--image', path.join(dir, 'square.png'), '--template', 'a photo of a {}', '--text', 'cat', '--text', 'dog', '--text', 'car', '--top', '2');
    const literal = await cli('infer', '--model', dir, '--image', path.join(dir, 'square.png'), '--text', 'a photo of a cat', '--text', 'a photo of a dog', '--text', 'a photo of a car', '--top', '2');
    assert.equal(templated.code, 0, templated.stderr);
    assert.equal(templated.stdout.trim().split('\n').length, 3);
    // The table names each label as given; the numbers are those of the filled-in prompts.
    assert.equal(templated.stdout.replace(/%  (\w+)  \(/g, '%  a photo of a $1  ('), literal.stdout);
  });

  it('a text longer than the context is cut, with a note on stderr', async () => {
    const dir = path.join(GOLDEN, 'clip-tiny');
    const r = await cli('infer', '--model', dir, '--image', path.join(dir, 'square.png'), '--text', 'a photo of a cat. a photo of a dog? yes!!', '--text', 'a cat');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /more than 16 tokens/);
  });

  describe('bad input: one clear message, exit code 1', () => {
    it('CLIP without --text or --dump asks for labels', async () => {
      const dir = path.join(GOLDEN, 'clip-tiny');
      const r = await cli('infer', '--model', dir, '--image', path.join(dir, 'square.png'));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--text/);
    });

    it('--text on a ViT model', async () => {
      const dir = path.join(GOLDEN, 'vit-tiny');
      const r = await cli('infer', '--model', dir, '--image', path.join(dir, 'square.png'), '--text', 'a cat');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /vit model/);
      assert.match(r.stderr, /CLIP/);
    });

    it('--text and input_ids in the --pixel-values file at once', async () => {
      const dir = path.join(GOLDEN, 'clip-tiny');
      const r = await cli('infer', '--model', dir, '--pixel-values', path.join(dir, 'pair.inputs.safetensors'), '--text', 'a cat');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /pair\.inputs\.safetensors/);
    });

    it('a CLIP folder without tokenizer files names the folder', async () => {
      const dir = path.join(tmp, 'no-tokenizer');
      fs.cpSync(path.join(GOLDEN, 'clip-tiny'), dir, { recursive: true });
      for (const f of ['tokenizer.json', 'vocab.json', 'merges.txt']) fs.rmSync(path.join(dir, f));
      const r = await cli('infer', '--model', dir, '--image', path.join(dir, 'square.png'), '--text', 'a cat');
      assert.equal(r.code, 1);
      assert.ok(r.stderr.includes(fs.realpathSync(dir)), r.stderr);
      assert.match(r.stderr, /tokenizer\.json/);
    });
  });
});
