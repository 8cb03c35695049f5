/**
 * The bundled CLI (out/cli.js, built by `npm test`'s pretest) with Hub ids, against the local
 * mock hub: `infer --model org/name` downloads into HF_HUB_CACHE with a progress line, later runs
 * use the cache (also offline), two processes downloading at once share one transfer, and
 * `models` lists what is there.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GOLDEN, makeTempDir, removeTempDirs } from './helpers';
import { MockHub, commitOf, fixtureRepo, sha256 } from './hub-mock';
import { requireBuiltCli, runCli, type CliResult } from '../cli-runner';

const VIT_FILES = ['config.json', 'preprocessor_config.json', 'model.safetensors'];
const IMAGE = path.join(GOLDEN, 'vit-photo', 'chelsea.png');

let mock: MockHub;
let tmp: string;
let cache: string;

/** The machine's environment without any HF_* setting, pointed at the mock and temp folders. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(HF_|HUGGING|TRANSFORMERS_OFFLINE)/.test(k)));
  return { ...clean, HF_HOME: tmp, HF_HUB_CACHE: cache, HF_ENDPOINT: mock.endpoint, XDG_CACHE_HOME: tmp, ...extra };
}

function cli(args: string[], extraEnv: Record<string, string> = {}, cwd = tmp): Promise<CliResult> {
  return runCli(args, { env: env(extraEnv), cwd });
}

describe('vision-inspector CLI with Hub ids (mock hub)', () => {
  before(async function () {
    requireBuiltCli();
    mock = await MockHub.start({
      'tiny-org/vit-photo': fixtureRepo('vit-photo', VIT_FILES),
      'pickle-org/vit-bin': { files: { 'config.json': fs.readFileSync(path.join(GOLDEN, 'vit-photo', 'config.json')), 'pytorch_model.bin': Buffer.from([0x80, 0x02]) } },
    });
  });
  after(async () => {
    await mock.close();
    removeTempDirs();
  });
  beforeEach(() => {
    mock.reset();
    tmp = makeTempDir();
    cache = path.join(tmp, 'hub');
  });

  it('infer --model org/name downloads with a progress line, then runs from the cache (also offline)', async () => {
    const first = await cli(['infer', '--model', 'tiny-org/vit-photo', '--image', IMAGE]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /coffee mug/); // the fixture's predicted label
    assert.match(first.stderr, /downloading tiny-org\/vit-photo: .* \/ 75\.3 kB \(\d+ %\), .*\/s, model\.safetensors/);
    const snapshot = path.join(cache, 'models--tiny-org--vit-photo', 'snapshots', commitOf('tiny-org/vit-photo', 'main'));
    assert.ok(first.stderr.includes(snapshot), first.stderr);

    mock.reset();
    const second = await cli(['infer', '--model', 'tiny-org/vit-photo', '--image', IMAGE]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    assert.equal(second.stderr, '');
    assert.equal(mock.requests.length, 0);

    const offline = await cli(['infer', '--model', 'tiny-org/vit-photo', '--image', IMAGE], { HF_HUB_OFFLINE: '1' });
    assert.equal(offline.code, 0, offline.stderr);
    assert.equal(mock.requests.length, 0);
  });

  it('offline without the model in the cache: one clear message, no request', async () => {
    const r = await cli(['infer', '--model', 'tiny-org/vit-photo', '--image', IMAGE], { HF_HUB_OFFLINE: '1' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /tiny-org\/vit-photo: is not in the Hugging Face cache .* HF_HUB_OFFLINE/);
    assert.equal(mock.requests.length, 0);
  });

  it('a pickle-only repo is refused with the safetensors message', async () => {
    const r = await cli(['infer', '--model', 'pickle-org/vit-bin', '--image', IMAGE]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /pytorch_model\.bin/);
    assert.match(r.stderr, /safetensors/);
  });

  it('two processes downloading the same model at once both succeed, with one transfer', async () => {
    const weights = sha256(fs.readFileSync(path.join(GOLDEN, 'vit-photo', 'model.safetensors')));
    mock.cdnBehaviour.set(weights, { slow: { bytes: 4000, intervalMs: 20 } }); // ≈0.4 s: the second process arrives meanwhile
    const [a, b] = await Promise.all([
      cli(['infer', '--model', 'tiny-org/vit-photo', '--image', IMAGE]),
      cli(['infer', '--model', 'tiny-org/vit-photo', '--image', IMAGE]),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(a.stdout, b.stdout);
    assert.equal(mock.requests.filter((r) => r.server === 'cdn').length, 1);
  });

  it('models lists the cache and the model folders under --dir', async () => {
    assert.equal((await cli(['infer', '--model', 'tiny-org/vit-photo', '--image', IMAGE])).code, 0);
    const work = path.join(tmp, 'work');
    fs.mkdirSync(path.join(work, 'checkpoints', 'vit'), { recursive: true });
    for (const f of VIT_FILES) fs.copyFileSync(path.join(GOLDEN, 'vit-tiny', f), path.join(work, 'checkpoints', 'vit', f));
    const r = await cli(['models', '--dir', work]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(`Hugging Face cache (${cache})`), r.stdout);
    assert.match(r.stdout, /tiny-org\/vit-photo\s+vit\s+75\.3 kB\s+ready/);
    assert.match(r.stdout, /checkpoints\/vit\s+vit\s+75\.3 kB\s+ready/);
  });
});
