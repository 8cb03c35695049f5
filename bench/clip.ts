/**
 * CLIP ViT-B/32 and ViT-L/14 at 224 with seeded random weights in the real key layout: one image
 * against 10 labels ("a photo of a {}."), as the zero-shot API runs it.
 *
 * Per model, from one run: cold start (safetensors → first probabilities: open, build both graphs,
 * create both sessions, tokenize, run), warm with nothing cached (fresh embedding caches, sessions
 * loaded), bare ORT in-process on the very same two graphs fetching only the embeddings (the
 * baseline; interleaved with ours), their ratio and GFLOP/s, each tower alone, and the cache paths:
 * texts cached with a new image, everything cached, 10 cached text embeddings.
 *
 * Then weight storage for B/32 (SPEC §1.4; the issue asks which is better): F32 weights, BF16 weights
 * cast to float inside the graph (what the product does), and BF16 converted once to an F32 copy:
 * session creation, memory taken by the sessions, and warm speed — each variant in a fresh process
 * (memory freed by one would hide the next), three interleaved rounds.
 *
 * `npm run bench -- clip [b32|l14|storage]` runs one part only.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { InferenceEngine, type TensorData } from '../src/core/engine/client';
import { physicalCoreCount } from '../src/core/engine/cpus';
import { readSafetensorsAll, writeSafetensors } from '../src/core/io/safetensors';
import { CLIPRunner, type LoadedCLIP } from '../src/core/models/clip-runner';
import { poolingPositions } from '../src/core/models/clip';
import { ModelRunner, openModel } from '../src/core/models/runner';
import { GraphCache } from '../src/core/onnx/cache';
import { CLIP_B32, CLIP_L14, makeTempDir, seededRandom, writeRandomClip, type CLIPShape, type CLIPTowerShape } from './lib/random-checkpoint';
import { bareSession } from './lib/bare-ort';
import { figure, median, now } from './lib/report';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LABELS = ['cat', 'dog', 'horse', 'astronaut', 'coffee cup', 'field', 'snow', 'dogs playing', 'night', 'two dogs'];
const TEMPLATES = ['a photo of a {}.'];
const threads = physicalCoreCount();

/** Multiply-accumulates of one pre-LN encoder over N tokens (SPEC §8's formula, per sequence). */
function encoderMacs(t: CLIPTowerShape, N: number): number {
  const d = t.hidden;
  return t.layers * (N * d * 3 * d + 2 * N * N * d + N * d * d + 2 * N * d * t.intermediate);
}

function gflop(s: CLIPShape, textRows: number, textLength: number): number {
  const n = Math.floor(s.vision.image / s.vision.patch) ** 2;
  const vision = encoderMacs(s.vision, n + 1) + n * s.vision.hidden * 3 * s.vision.patch ** 2 + s.vision.hidden * s.projection;
  const text = textRows * (encoderMacs(s.text, textLength) + s.text.hidden * s.projection);
  return (2 * (vision + text)) / 1e9;
}

function randomPixels(seed: number): TensorData {
  const random = seededRandom(seed);
  return { type: 'float32', dims: [1, 3, 224, 224], data: Float32Array.from({ length: 3 * 224 * 224 }, () => random() * 4 - 2) };
}

async function openCLIP(dir: string): Promise<LoadedCLIP> {
  const loaded = await openModel(dir);
  if (loaded.kind !== 'clip') throw new Error(`${dir} is not a CLIP model`);
  return loaded;
}

async function benchModel(tag: string, shape: CLIPShape): Promise<void> {
  const dir = await makeTempDir(`clip-${tag}`);
  try {
    let t = now();
    await writeRandomClip(dir, shape);
    console.log(`generated CLIP ${tag} random checkpoint in ${((now() - t) / 1000).toFixed(1)} s`);
    const engine = InferenceEngine.create({ threads });
    const graphs = new GraphCache(undefined);
    const runner = new ModelRunner(engine, graphs);
    let seed = 100;

    // Cold: open + validate, build both graphs, create both sessions, load the tokenizer, run.
    t = now();
    const loaded = await openCLIP(dir);
    const first = await runner.clip(loaded).zeroShot(randomPixels(seed++), LABELS, { templates: TEMPLATES });
    const coldMs = now() - t;
    if (first.length !== LABELS.length) throw new Error('zero-shot returned the wrong number of labels');

    // Bare ORT on the same two graphs, in-process, embeddings only, same token batch.
    const fresh = (): CLIPRunner => new CLIPRunner(engine, graphs, loaded);
    const prompts = LABELS.map((l) => TEMPLATES[0]!.replace('{}', l));
    const batch = await fresh().tokenize(prompts);
    const [B, T] = batch.dims;
    const vision = await bareSession(await loaded.model.buildVisionGraph(224, 224), threads);
    const text = await bareSession(loaded.model.buildTextGraph(), threads);
    const eos = (await fresh().tokenizer()).eosId;
    const textFeeds = {
      input_ids: new ort.Tensor('int64', batch.inputIds, [B, T]),
      attention_mask: new ort.Tensor('int64', batch.attentionMask, [B, T]),
      pooled_positions: new ort.Tensor('int64', poolingPositions(batch.inputIds, [B, T], eos), [B]),
    };

    const warm: number[] = [];
    const bare: number[] = [];
    const visionOnly: number[] = [];
    const textOnly: number[] = [];
    const newImageCachedTexts: number[] = [];
    const allCached: number[] = [];
    const textCacheHit: number[] = [];
    const cached = fresh();
    await cached.zeroShot(randomPixels(1), LABELS, { templates: TEMPLATES }); // fills its text cache
    for (let i = 0; i < RUNS + 1; i++) {
      const pixels = randomPixels(seed++);
      t = now();
      await vision.run({ pixel_values: new ort.Tensor('float32', pixels.data as Float32Array, [1, 3, 224, 224]) }, ['image_embeds']);
      await text.run(textFeeds, ['text_embeds']);
      const bareMs = now() - t;

      t = now();
      await fresh().zeroShot(randomPixels(seed++), LABELS, { templates: TEMPLATES });
      const warmMs = now() - t;

      t = now();
      await fresh().embedImage(randomPixels(seed++));
      const visionMs = now() - t;
      t = now();
      await fresh().embedTexts(prompts);
      const textMs = now() - t;

      const image = randomPixels(seed++);
      t = now();
      await cached.zeroShot(image, LABELS, { templates: TEMPLATES });
      const newImageMs = now() - t;
      t = now();
      await cached.zeroShot(image, LABELS, { templates: TEMPLATES });
      const allCachedMs = now() - t;
      t = now();
      await cached.embedTexts(prompts);
      const hitMs = now() - t;
      if (i > 0) {
        // the first iteration warms both sides
        bare.push(bareMs);
        warm.push(warmMs);
        visionOnly.push(visionMs);
        textOnly.push(textMs);
        newImageCachedTexts.push(newImageMs);
        allCached.push(allCachedMs);
        textCacheHit.push(hitMs);
      }
    }
    await vision.release();
    await text.release();
    await engine.dispose();

    const work = gflop(shape, B, T);
    const warmMed = median(warm);
    const bareMed = median(bare);
    console.log(`CLIP ${tag}: image 224² + ${B} labels (${T} tokens padded), ${work.toFixed(1)} GFLOP, threads ${threads}, runs ${RUNS} (medians)`);
    figure(`clip.${tag}.cold_ms`, coldMs, 'ms', 0);
    figure(`clip.${tag}.warm_ms`, warmMed, 'ms', 1);
    figure(`clip.${tag}.bare_ort_ms`, bareMed, 'ms', 1);
    figure(`clip.${tag}.ratio_warm_vs_bare`, warmMed / bareMed, 'x');
    figure(`clip.${tag}.gflops_warm`, work / (warmMed / 1000), 'GFLOP/s', 0);
    figure(`clip.${tag}.gflops_bare`, work / (bareMed / 1000), 'GFLOP/s', 0);
    figure(`clip.${tag}.vision_ms`, median(visionOnly), 'ms', 1);
    figure(`clip.${tag}.text10_ms`, median(textOnly), 'ms', 1);
    figure(`clip.${tag}.new_image_cached_texts_ms`, median(newImageCachedTexts), 'ms', 1);
    figure(`clip.${tag}.all_cached_ms`, median(allCached), 'ms', 2);
    figure(`clip.${tag}.text_cache_hit_ms`, median(textCacheHit), 'ms', 3);
    figure(`clip.${tag}.peak_rss_mb`, process.resourceUsage().maxRSS / 1024, 'MB', 0);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

interface StorageResult {
  sessionMs: number;
  /** Resident memory the process gained while both sessions were created. */
  rssMb: number;
  /** Peak resident memory above the start, including transient copies during creation. */
  peakRssMb: number;
  warmMs: number;
}

/**
 * One weights folder in a fresh process (`bench/clip.ts storage-variant <dir>`), so that memory
 * freed by an earlier variant cannot hide this one's: both sessions' creation, then warm runs.
 */
async function measureStorageHere(dir: string): Promise<StorageResult> {
  const engine = InferenceEngine.create({ threads });
  try {
    const loaded = await openCLIP(dir);
    const clip = new ModelRunner(engine).clip(loaded);
    await clip.tokenizer();
    (globalThis as { gc?: () => void }).gc?.();
    const rssBefore = process.memoryUsage().rss;
    const t = now();
    await clip.prepareVision(224, 224);
    await clip.prepareText();
    const sessionMs = now() - t;
    const rssMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    const peakRssMb = (process.resourceUsage().maxRSS * 1024 - rssBefore) / 2 ** 20;
    const runs: number[] = [];
    for (let i = 0; i < RUNS + 1; i++) {
      const start = now();
      await new CLIPRunner(engine, new GraphCache(undefined), loaded).zeroShot(randomPixels(500 + i), LABELS, { templates: TEMPLATES });
      if (i > 0) runs.push(now() - start);
    }
    return { sessionMs, rssMb, peakRssMb, warmMs: median(runs) };
  } finally {
    await engine.dispose();
  }
}

function measureStorage(dir: string): StorageResult {
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', __filename, 'storage-variant', dir], { encoding: 'utf8' });
  const line = child.stdout.split('\n').find((l) => l.startsWith('{'));
  if (child.status !== 0 || !line) throw new Error(`storage measurement of ${dir} failed: ${child.stderr}`);
  return JSON.parse(line) as StorageResult;
}

async function benchStorage(): Promise<void> {
  const base = await makeTempDir('clip-storage');
  try {
    const [f32, bf16, converted] = ['f32', 'bf16', 'bf16-converted'].map((d) => path.join(base, d));
    for (const d of [f32, bf16, converted]) await fs.mkdir(d);
    // The same weights: BF16-representable values, so all three compute the same function.
    await writeRandomClip(bf16, CLIP_B32, { dtype: 'BF16' });
    let t = now();
    const decoded = await readSafetensorsAll(path.join(bf16, 'model.safetensors'));
    await writeSafetensors(path.join(converted, 'model.safetensors'), [...decoded].map(([name, x]) => ({ name, dtype: 'F32' as const, shape: x.shape, data: x.data })));
    const convertMs = now() - t;
    decoded.clear();
    for (const file of await fs.readdir(bf16)) {
      if (file !== 'model.safetensors') {
        await fs.copyFile(path.join(bf16, file), path.join(converted, file));
        await fs.copyFile(path.join(bf16, file), path.join(f32, file));
      }
    }
    await fs.copyFile(path.join(converted, 'model.safetensors'), path.join(f32, 'model.safetensors'));

    // Interleaved rounds, one fresh process each, so order and machine noise hit all three alike.
    const variants = { f32, bf16_cast: bf16, bf16_converted: converted };
    const results = new Map<string, StorageResult[]>(Object.keys(variants).map((k) => [k, []]));
    for (let round = 0; round < 3; round++) {
      for (const [name, dir] of Object.entries(variants)) results.get(name)!.push(measureStorage(dir));
    }
    console.log('CLIP B/32 weight storage: F32 file, BF16 file cast in-graph, BF16 converted once to an F32 copy (3 rounds, medians)');
    figure('clip.b32.bf16_convert_once_ms', convertMs, 'ms', 0);
    for (const [name, rs] of results) {
      figure(`clip.b32.${name}_session_ms`, median(rs.map((r) => r.sessionMs)), 'ms', 0);
      figure(`clip.b32.${name}_session_rss_mb`, median(rs.map((r) => r.rssMb)), 'MB', 0);
      figure(`clip.b32.${name}_session_peak_rss_mb`, median(rs.map((r) => r.peakRssMb)), 'MB', 0);
      figure(`clip.b32.${name}_warm_ms`, median(rs.map((r) => r.warmMs)), 'ms', 1);
    }
  } finally {
    await fs.rm(base, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const [only, dir] = process.argv.slice(2);
  if (only === 'storage-variant') {
    console.log(JSON.stringify(await measureStorageHere(dir!)));
    return;
  }
  if (!only || only === 'b32') await benchModel('b32', CLIP_B32);
  if (!only || only === 'l14') await benchModel('l14', CLIP_L14);
  if (!only || only === 'storage') await benchStorage();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
