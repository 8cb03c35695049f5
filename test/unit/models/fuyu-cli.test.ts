/** `vision-inspector infer` on a Fuyu model, through the bundled CLI (out/cli.js, built by `npm run build`). */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensorsAll } from '../../../src/core/io/safetensors';
import { FuyuTokenizer } from '../../../src/core/text/fuyu-tokenizer';
import { GOLDEN, expectClose } from '../parity';
import { requireBuiltCli, runCli, type CliResult } from '../cli-runner';

const DIR = path.join(GOLDEN, 'fuyu-tiny');
const example = JSON.parse(fs.readFileSync(path.join(DIR, 'manifest.json'), 'utf8')).examples[0];
let tmp: string;

function cli(...args: string[]): Promise<CliResult> {
  return runCli(args, { env: { ...process.env, XDG_CACHE_HOME: tmp } });
}

describe('vision-inspector infer on Fuyu (CLI)', () => {
  before(() => {
    requireBuiltCli();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-fuyu-cli-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('--image --prompt --dump: prints the answer, dumps the prompt outputs, inputs and generated ids as transformers', async () => {
    const out = path.join(tmp, 'fuyu.safetensors');
    const r = await cli('infer', '--model', DIR, '--image', path.join(DIR, example.image), '--prompt', example.prompt, '--max-new-tokens', '8', '--dump', out);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${example.generated_text}\n`);
    const got = await readSafetensorsAll(out);
    const want = await readSafetensorsAll(path.join(DIR, example.outputs_file));
    const inputs = await readSafetensorsAll(path.join(DIR, example.inputs_file));
    for (const name of ['logits', 'hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'attentions.0', 'attentions.1']) {
      assert.deepEqual(got.get(name)!.shape, want.get(name)!.shape, name);
      expectClose(name, got.get(name)!.data as Float32Array, want.get(name)!.data as Float32Array);
    }
    assert.deepEqual(got.get('generated_new_token_ids')!.data, want.get('generated_new_token_ids')!.data);
    assert.deepEqual(got.get('input_ids')!.data, inputs.get('input_ids')!.data);
    assert.deepEqual(got.get('image_patches')!.shape, inputs.get('image_patches')!.shape);
    expectClose('image_patches', got.get('image_patches')!.data as Float32Array, inputs.get('image_patches')!.data as Float32Array);
  });

  it('--pixel-values takes the processor\'s image_patches and input_ids', async () => {
    const r = await cli('infer', '--model', DIR, '--pixel-values', path.join(DIR, example.inputs_file), '--max-new-tokens', '2');
    assert.equal(r.code, 0, r.stderr);
    const tokenizer = FuyuTokenizer.fromJson(JSON.parse(fs.readFileSync(path.join(DIR, 'tokenizer.json'), 'utf8')), 'tokenizer.json');
    assert.equal(r.stdout, `${tokenizer.decode(example.generated_new_token_ids.slice(0, 2))}\n`);
  });

  it('bad arguments are one clear message', async () => {
    const noPrompt = await cli('infer', '--model', DIR, '--image', path.join(DIR, example.image));
    assert.equal(noPrompt.code, 1);
    assert.match(noPrompt.stderr, /Fuyu needs a --prompt/);
    const badCount = await cli('infer', '--model', DIR, '--image', path.join(DIR, example.image), '--prompt', 'x', '--max-new-tokens', '0');
    assert.equal(badCount.code, 1);
    assert.match(badCount.stderr, /--max-new-tokens must be a positive integer/);
    const tooLong = await cli('infer', '--model', DIR, '--image', path.join(DIR, example.image), '--prompt', 'x', '--max-new-tokens', '100');
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stderr, /more than the model's context of 128 positions/);
  });
});
