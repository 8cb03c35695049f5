/** The bundled CLI (out/cli.js, built by `npm test`'s pretest) as a user runs it. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensorsAll } from '../../src/core/io/safetensors';
import { GOLDEN, expectClose } from './parity';
import { requireBuiltCli, runCli, type CliResult } from './cli-runner';


function cli(...args: string[]): Promise<CliResult> {
  return runCli(args, { env: { ...process.env, XDG_CACHE_HOME: tmp } });
}

let tmp: string;

/** A copy of the vit-tiny model folder with `edit` applied to its config.json. */
function modelCopy(name: string, edit?: (config: Record<string, unknown>) => void): string {
  const dir = path.join(tmp, name);
  fs.cpSync(path.join(GOLDEN, 'vit-tiny'), dir, { recursive: true });
  if (edit) {
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    edit(config);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  }
  return dir;
}

describe('vision-inspector infer (CLI)', () => {
  before(function () {
    requireBuiltCli();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-cli-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('--dump writes every output with transformers names and shapes, matching the golden outputs', async () => {
    const dir = path.join(GOLDEN, 'vit-interp');
    const out = path.join(tmp, 'rect.safetensors');
    const r = await cli('infer', '--model', dir, '--pixel-values', path.join(dir, 'rect48x40.inputs.safetensors'), '--dump', out);
    assert.equal(r.code, 0, r.stderr);
    const got = await readSafetensorsAll(out);
    const want = await readSafetensorsAll(path.join(dir, 'rect48x40.outputs.safetensors'));
    assert.deepEqual([...got.keys()].sort(), [...want.keys(), 'pixel_values'].sort());
    for (const [name, t] of want) {
      assert.deepEqual(got.get(name)!.shape, t.shape, name);
      expectClose(name, got.get(name)!.data as Float32Array, t.data as Float32Array);
    }
    assert.deepEqual(got.get('pixel_values')!.shape, [1, 3, 48, 40]);
  });

  it('--image prints the top labels, computing pixel values as the processor does', async () => {
    const dir = path.join(GOLDEN, 'vit-photo');
    const r = await cli('infer', '--model', dir, '--image', path.join(dir, 'chelsea.png'));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /32×32 input, 8×8 patches/);
    assert.match(lines[1]!, /coffee mug/); // manifest.json: predicted_label
    assert.equal(lines.length, 6);
  });

  it('--image with --dump also dumps the pixel values it computed', async () => {
    const dir = path.join(GOLDEN, 'vit-tiny');
    const out = path.join(tmp, 'nonsquare.safetensors');
    const r = await cli('infer', '--model', dir, '--image', path.join(dir, 'nonsquare.png'), '--dump', out);
    assert.equal(r.code, 0, r.stderr);
    const got = await readSafetensorsAll(out);
    const want = await readSafetensorsAll(path.join(dir, 'nonsquare.inputs.safetensors'));
    expectClose('pixel_values', got.get('pixel_values')!.data as Float32Array, want.get('pixel_values')!.data as Float32Array);
  });

  describe('bad input: one clear message naming the file, exit code 1', () => {
    it('a folder without config.json', async () => {
      const r = await cli('infer', '--model', tmp, '--image', path.join(GOLDEN, 'vit-tiny', 'square.png'));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /config\.json/);
      assert.ok(r.stderr.includes(fs.realpathSync(tmp)), r.stderr);
    });

    it('a pickle checkpoint is refused and safetensors is suggested', async () => {
      const dir = path.join(tmp, 'pickle');
      fs.mkdirSync(dir);
      fs.copyFileSync(path.join(GOLDEN, 'vit-tiny', 'config.json'), path.join(dir, 'config.json'));
      fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00]));
      const r = await cli('infer', '--model', dir, '--image', path.join(GOLDEN, 'vit-tiny', 'square.png'));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /pytorch_model\.bin/);
      assert.match(r.stderr, /safetensors/);
    });

    it('an unknown model_type names config.json and the supported types', async () => {
      const dir = modelCopy('unknown-type', (c) => (c.model_type = 'swin'));
      const r = await cli('infer', '--model', dir, '--image', path.join(GOLDEN, 'vit-tiny', 'square.png'));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /config\.json/);
      assert.match(r.stderr, /"swin"/);
      assert.match(r.stderr, /vit/);
    });

    it('weights that do not match config.json name the tensor and both shapes', async () => {
      const dir = modelCopy('wrong-patch', (c) => (c.patch_size = 8));
      const r = await cli('infer', '--model', dir, '--image', path.join(GOLDEN, 'vit-tiny', 'square.png'));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /model\.safetensors/);
      assert.match(r.stderr, /position_embeddings/);
      assert.match(r.stderr, /\[1, 65, 32\]/);
    });

    it('an unreadable image names the image file', async () => {
      const bad = path.join(tmp, 'not-an-image.png');
      fs.writeFileSync(bad, 'this is text, not a PNG');
      const r = await cli('infer', '--model', path.join(GOLDEN, 'vit-tiny'), '--image', bad);
      assert.equal(r.code, 1);
      assert.ok(r.stderr.includes(bad), r.stderr);
    });

    it('a dump into a missing folder fails without leaving a file behind', async () => {
      const out = path.join(tmp, 'no-such-dir', 'out.safetensors');
      const r = await cli('infer', '--model', path.join(GOLDEN, 'vit-tiny'), '--image', path.join(GOLDEN, 'vit-tiny', 'square.png'), '--dump', out);
      assert.equal(r.code, 1);
      assert.ok(r.stderr.includes(path.dirname(out)), r.stderr);
      assert.equal(fs.existsSync(path.dirname(out)), false);
    });

    it('missing --model and unknown options print the usage', async () => {
      let r = await cli('infer', '--image', 'x.png');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--model/);
      r = await cli('infer', '--model', 'm', '--image', 'x.png', '--bogus');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Usage/);
    });
  });
});
