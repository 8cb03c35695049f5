/** `vision-inspector report` through the bundled CLI (out/cli.js, built by `npm run build`). */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensorsAll, writeSafetensors } from '../../src/core/io/safetensors';
import { GOLDEN } from './parity';
import { requireBuiltCli, runCli, type CliResult } from './cli-runner';

let tmp: string;

function cli(...args: string[]): Promise<CliResult> {
  return runCli(args, { env: { ...process.env, XDG_CACHE_HOME: tmp } });
}

/** A self-contained page: no scripts, every src/href a data: URI or an in-page anchor, a CSP that forbids the rest. */
function assertSelfContained(html: string): void {
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /<link/i);
  const refs = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/gi)].map((m) => m[1]!);
  assert.ok(refs.length > 0);
  for (const ref of refs) assert.ok(ref.startsWith('data:image/png;base64,') || ref.startsWith('#'), `external reference: ${ref.slice(0, 80)}`);
  assert.doesNotMatch(html, /url\(/i);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'; img-src data:/);
}

/** Section ids in page order, each followed by its method card. */
function sectionsOf(html: string): string[] {
  const ids = [...html.matchAll(/<h2 id="([^"]+)">[^<]*<\/h2><section><div>[\s\S]*?<aside class="method">/g)].map((m) => m[1]!);
  assert.equal(ids.length, (html.match(/<h2 /g) ?? []).length, 'every section has a method card');
  return ids;
}

describe('vision-inspector report (CLI)', () => {
  before(function () {
    requireBuiltCli();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-report-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('ViT: every view with its method card, self-contained, written without leftovers', async () => {
    const dir = path.join(GOLDEN, 'vit-photo');
    const out = path.join(tmp, 'vit.html');
    const r = await cli('report', '--model', dir, '--image', path.join(dir, 'chelsea.png'), '--image', path.join(GOLDEN, 'vit-tiny', 'nonsquare.png'), '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const html = fs.readFileSync(out, 'utf8');
    assertSelfContained(html);
    assert.deepEqual(sectionsOf(html), ['input', 'labels', 'attention', 'filters', 'pca', 'positions', 'distance', 'kernels']);
    assert.match(html, /coffee mug/); // manifest.json: predicted_label
    assert.match(html, /2 image\(s\)/);
    assert.match(html, /excluded as a query and as a key/); // method-cards' wording, as the inspector's
    assert.match(html, /Averaged over 2 images/);
    assert.match(html, /cross-correlation/);
    assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp')), []);
  });

  it('ViT without a classification head: the labels section says so (the model runs once, for attentions)', async () => {
    const dir = path.join(tmp, 'vit-headless');
    fs.cpSync(path.join(GOLDEN, 'vit-tiny'), dir, { recursive: true });
    const file = path.join(dir, 'model.safetensors');
    const tensors = [...(await readSafetensorsAll(file))].filter(([name]) => !name.startsWith('classifier.'));
    assert.ok(tensors.length > 0);
    await writeSafetensors(file, tensors.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data as ArrayBufferView })), { format: 'pt' });
    const out = path.join(tmp, 'headless.html');
    const r = await cli('report', '--model', dir, '--image', path.join(GOLDEN, 'vit-tiny', 'nonsquare.png'), '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const html = fs.readFileSync(out, 'utf8');
    assert.match(html, /no classification head/);
    assert.ok(sectionsOf(html).includes('attention'));
  });

  it('CLIP with --text: zero-shot bars with transformers\' probabilities, one heatmap per phrase', async () => {
    const dir = path.join(GOLDEN, 'clip-photo');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const texts: string[] = manifest.examples.find((e: { name: string }) => e.name === 'coffee').texts;
    const out = path.join(tmp, 'clip.html');
    const r = await cli('report', '--model', dir, '--image', path.join(dir, 'coffee.png'), ...texts.flatMap((t) => ['--text', t]), '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const html = fs.readFileSync(out, 'utf8');
    assertSelfContained(html);
    // Several --text: the 1 × texts similarity matrix too.
    assert.deepEqual(sectionsOf(html), ['input', 'clip', 'clip-matrix', 'attention', 'filters', 'pca', 'positions', 'distance', 'kernels']);
    const logits = (await readSafetensorsAll(path.join(dir, 'coffee.outputs.safetensors'))).get('logits_per_image')!.data as Float32Array;
    const max = Math.max(...logits);
    const sum = [...logits].reduce((s, v) => s + Math.exp(v - max), 0);
    texts.forEach((text, i) => {
      const shown = html.match(new RegExp(`<td class="label">${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}</td><td class="bar">.*?</td><td class="num">([\\d.]+) %`));
      assert.ok(shown, text);
      assert.ok(Math.abs(Number(shown[1]) - (100 * Math.exp(logits[i]! - max)) / sum) < 0.006, `${text}: ${shown[1]} %`);
      assert.ok(html.includes(`alt="heatmap: ${text}"`), text);
    });
  });

  it('CLIP with several --image and --text: the similarity matrix, 100·cos of transformers\' logits_per_image', async () => {
    const dir = path.join(GOLDEN, 'clip-tiny');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const pair = manifest.examples.find((e: { name: string }) => e.name === 'pair');
    const out = path.join(tmp, 'clip-matrix.html');
    const r = await cli('report', '--model', dir, ...pair.images.flatMap((i: string) => ['--image', path.join(dir, i)]), ...pair.texts.flatMap((t: string) => ['--text', t]), '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const html = fs.readFileSync(out, 'utf8');
    assertSelfContained(html);
    assert.deepEqual(sectionsOf(html), ['input', 'clip', 'clip-matrix', 'attention', 'filters', 'pca', 'positions', 'distance', 'kernels']);
    const logits = (await readSafetensorsAll(path.join(dir, 'pair.outputs.safetensors'))).get('logits_per_image')!.data as Float32Array;
    const section = html.slice(html.indexOf('<h2 id="clip-matrix">'), html.indexOf('<h2 id="attention">'));
    // The first table: 100·cos per cell, rows the images in order; cos = logits_per_image / exp(logit_scale).
    const scale = Number(/learned exp\(s\) = ([\d.]+)/.exec(section)![1]);
    const first = section.slice(0, section.indexOf('</table>'));
    const cells = [...first.matchAll(/<td class="num"[^>]*>([-\d.]+)<\/td>/g)].map((m) => Number(m[1]));
    assert.equal(cells.length, 6);
    cells.forEach((v, k) => assert.ok(Math.abs(v - (100 * logits[k]!) / scale) < 0.051, `cell ${k}: ${v} vs ${(100 * logits[k]!) / scale}`));
    assert.match(section, /square\.png/);
    assert.match(html, /Averaged over 2 images/);
  });

  it('Fuyu: answer, token layout, attention to the image, projection filters', async () => {
    const dir = path.join(GOLDEN, 'fuyu-tiny');
    const out = path.join(tmp, 'fuyu.html');
    const r = await cli('report', '--model', dir, '--image', path.join(dir, 'image60x90.png'), '--max-new-tokens', '3', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const html = fs.readFileSync(out, 'utf8');
    assertSelfContained(html);
    assert.deepEqual(sectionsOf(html), ['answer', 'attention', 'filters', 'kernels']);
    assert.match(html, /5×8 image tokens, 5 image-newline tokens/);
  });

  it('never writes into the model folder, and names what is wrong', async () => {
    const model = path.join(tmp, 'model');
    fs.cpSync(path.join(GOLDEN, 'vit-tiny'), model, { recursive: true });
    const before = fs.readdirSync(model).sort();
    const r = await cli('report', '--model', model, '--image', path.join(model, 'square.png'), '--out', path.join(model, 'report.html'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /model folder/);
    assert.deepEqual(fs.readdirSync(model).sort(), before);

    const missing = await cli('report', '--model', model, '--image', path.join(model, 'square.png'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--out/);
    const text = await cli('report', '--model', model, '--image', path.join(model, 'square.png'), '--text', 'a cat', '--out', path.join(tmp, 'x.html'));
    assert.equal(text.code, 1);
    assert.match(text.stderr, /--text is for CLIP/);
  });
});
