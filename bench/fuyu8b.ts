/**
 * Fuyu-8B at its real dimensions (36 layers, hidden 4096, 64 heads, intermediate 16384, vocab
 * 262,144, 30-pixel patches) with seeded random BF16 weights in adept's shard layout, through the
 * real path: conversion to MatMulNBits blocks (int4 by default), session creation, a 640×480
 * image + short prompt prefill, greedy decoding with the KV cache.
 *
 *   npm run bench -- fuyu8b [--layers N] [--baseline-layers n] [--weights int4|int8] [--tokens T] [--image WxH]
 *
 * Per-layer figures come from two layer counts of the same checkpoint (folders whose config.json
 * says fewer layers, sharing the shards): per layer = (t(a) − t(b)) / (a − b), the rest (patch
 * projection, lm_head, embeddings) is the fixed part. The fp32 baseline is measured at 1 and
 * `--baseline-layers` layers of a checkpoint with the same layer dimensions but a 1,024-token
 * vocabulary: fp32 Fuyu-8B itself would need ≈38 GB, and its two 262,144-row tables alone
 * (4 GB each in fp32, cast at run time because they exceed ORT's constant-folding limit) do not
 * fit beside the sessions; the per-layer cost does not depend on the vocabulary. Everything is
 * written to a temporary folder that is deleted at the end, also on failure and on SIGINT/SIGTERM.
 *
 * Peak RSS is the whole process (main thread, the engine's worker thread, ORT's native memory),
 * per phase: writing the checkpoint, converting it (same process, main thread), and inference
 * (session load + prefill + decoding). On Linux the kernel's own high-water mark (VmHWM, reset
 * per phase through /proc/self/clear_refs) is exact; elsewhere, and as a cross-check, RSS sampled
 * every 20 ms on the main thread (which stays free while the worker runs ORT).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceEngine } from '../src/core/engine/client';
import { physicalCoreCount } from '../src/core/engine/cpus';
import type { RgbImage } from '../src/core/image/types';
import { preprocessFuyu } from '../src/core/image/preprocess';
import { FuyuRunner, estimateFuyuMemory, type LoadedFuyu } from '../src/core/models/fuyu-runner';
import type { WeightPrecision } from '../src/core/models/quantize';
import { openModel } from '../src/core/models/runner';
import { GraphCache } from '../src/core/onnx/cache';
import { FUYU_8B, makeTempDir, seededRandom, writeRandomFuyuBf16 } from './lib/random-checkpoint';
import { figure, median, now } from './lib/report';

const PROMPT = 'Generate a coco-style caption.\n';
const GB = 1e9;
/** The fp32 baseline's vocabulary: above the bench tokenizer's 454 ids, small enough to leave memory to the layers. */
const BASELINE_VOCAB = 1024;

/** The kernel's peak RSS of this process (VmHWM), or undefined where /proc is not available. */
function kernelPeakRss(): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** RssAnon (heap, ORT's buffers) and RssFile (mapped files: ORT maps the external weights while loading) in bytes. */
function rssParts(): { anon: number; file: number } | undefined {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const parts = { anon: kb('RssAnon'), file: kb('RssFile') };
    return Number.isFinite(parts.anon) && Number.isFinite(parts.file) ? parts : undefined;
  } catch {
    return undefined;
  }
}

/** Peak process RSS (main thread + the engine's worker + ORT's native memory) since the last reset. */
class PeakRss {
  private peak = 0;
  /** Sampled peak of RssAnon alone: file-backed pages are clean page cache the kernel can drop under pressure. */
  private peakAnon = 0;
  private readonly timer = setInterval(() => this.sample(), 20);
  /** Whether the kernel's high-water mark could be reset (then `kernelBytes` is this phase's peak). */
  private kernelReset = false;
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
    const parts = rssParts();
    if (parts) this.peakAnon = Math.max(this.peakAnon, parts.anon);
  }
  /** Sampled peak of anonymous memory (NaN where /proc is not available). */
  get anonBytes(): number {
    this.sample();
    return rssParts() ? this.peakAnon : NaN;
  }
  reset(): void {
    (globalThis as { gc?: () => void }).gc?.();
    this.peak = 0;
    this.peakAnon = 0;
    this.sample();
    try {
      writeFileSync('/proc/self/clear_refs', '5'); // "5": reset the peak RSS to the current RSS (Linux ≥ 4.0)
      this.kernelReset = true;
    } catch {
      this.kernelReset = false;
    }
  }
  /** Sampled peak. */
  get bytes(): number {
    this.sample();
    return this.peak;
  }
  /** The kernel's peak since reset(), else the sampled one. */
  get exactBytes(): number {
    const kernel = this.kernelReset ? kernelPeakRss() : undefined;
    return kernel ?? this.bytes;
  }
  get source(): string {
    return this.kernelReset ? 'VmHWM' : 'sampled';
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

interface RunFigures {
  layers: number;
  promptTokens: number;
  convertS?: number;
  cacheBytes?: number;
  /** Peak RSS of the conversion (kernel high-water mark where available) and sampled. */
  convertPeakRss?: number;
  convertPeakRssSampled?: number;
  estimateBytes: number;
  loadS: number;
  /** Number of ORT sessions generation used. */
  sessions: number;
  /** RSS once the sessions are loaded. */
  rssAfterLoad: number;
  /** Peak RSS of the session load alone. */
  peakRssLoad: number;
  /** Peak RSS from the start of the load to the first token (load + prefill). */
  peakRssToFirstToken: number;
  /** RSS split at the end of the load. */
  afterLoadParts?: { anon: number; file: number };
  /** Sampled peak of anonymous RSS over inference. */
  peakAnon: number;
  prefillS: number;
  decodeMs: number;
  /** Peak RSS of inference: session load + prefill + decoding. */
  peakRss: number;
  peakRssSampled: number;
  rssSource: string;
}

/** A folder that shares `dir`'s shards (symlinks) but whose config.json has `layers` layers. */
async function withLayers(dir: string, layers: number): Promise<string> {
  const out = `${dir}-L${layers}`;
  await fs.mkdir(out);
  for (const name of await fs.readdir(dir)) {
    if (name !== 'config.json') await fs.symlink(path.join(dir, name), path.join(out, name));
  }
  const config = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8'));
  config.num_hidden_layers = layers;
  config.text_config.num_hidden_layers = layers;
  await fs.writeFile(path.join(out, 'config.json'), JSON.stringify(config, null, 2));
  return out;
}

async function measure(folder: string, weights: WeightPrecision, cacheDir: string, image: RgbImage, tokens: number, rss: PeakRss): Promise<RunFigures> {
  rss.reset();
  const engine = InferenceEngine.create({ threads: physicalCoreCount() });
  try {
    const opened = (await openModel(folder)) as LoadedFuyu;
    // Random weights may pick a stop token early; the bench wants every decode step.
    const loaded: LoadedFuyu = { ...opened, special: { ...opened.special, stop: [] } };
    const runner = new FuyuRunner(engine, new GraphCache(undefined), loaded, { weights, quantizedCacheDir: cacheDir });
    const prompt = runner.prepare(preprocessFuyu(image, loaded.checkpoint.preprocessorConfig!), PROMPT, tokens);
    const promptTokens = prompt.layout.inputIds.length;
    const figures: Partial<RunFigures> = {
      layers: loaded.model.config.num_hidden_layers,
      promptTokens,
      estimateBytes: estimateFuyuMemory(loaded.model, weights, promptTokens + tokens).totalBytes,
    };
    let t = now();
    if (weights !== 'fp32') {
      const quantized = await runner.quantizedWeights();
      figures.convertS = (now() - t) / 1000;
      figures.cacheBytes = quantized.byteSize;
      figures.convertPeakRss = rss.exactBytes;
      figures.convertPeakRssSampled = rss.bytes;
    }
    rss.reset(); // inference from here: the conversion's buffers are garbage now
    t = now();
    const sessions = await runner.prepareGeneration();
    figures.sessions = new Set(Object.values(sessions)).size;
    figures.loadS = (now() - t) / 1000;
    figures.rssAfterLoad = process.memoryUsage().rss;
    figures.afterLoadParts = rssParts();
    figures.peakRssLoad = rss.exactBytes;
    const stamps: number[] = [];
    t = now();
    await runner.generate(prompt, {
      maxNewTokens: tokens,
      onToken: (token) => {
        stamps.push(now());
        if (token.index === 0) figures.peakRssToFirstToken = rss.exactBytes;
      },
    });
    figures.prefillS = (stamps[0]! - t) / 1000;
    figures.decodeMs = median(stamps.slice(1).map((s, i) => s - stamps[i]!));
    figures.peakRss = rss.exactBytes;
    figures.peakRssSampled = rss.bytes;
    figures.peakAnon = rss.anonBytes;
    figures.rssSource = rss.source;
    return figures as RunFigures;
  } finally {
    await engine.dispose();
  }
}

function print(tag: string, f: RunFigures): void {
  console.log(`${tag}: ${f.layers} layers, ${f.promptTokens} prompt tokens, ${f.sessions} ORT session(s); peak RSS from ${f.rssSource}`);
  if (f.convertS !== undefined) figure(`fuyu8b.${tag}.convert_s`, f.convertS, 's', 1);
  if (f.cacheBytes !== undefined) figure(`fuyu8b.${tag}.cache_gb`, f.cacheBytes / GB, 'GB');
  if (f.convertPeakRss !== undefined) figure(`fuyu8b.${tag}.convert_peak_rss_gb`, f.convertPeakRss / GB, 'GB');
  if (f.convertPeakRssSampled !== undefined) figure(`fuyu8b.${tag}.convert_peak_rss_sampled_gb`, f.convertPeakRssSampled / GB, 'GB');
  figure(`fuyu8b.${tag}.estimated_memory_gb`, f.estimateBytes / GB, 'GB');
  figure(`fuyu8b.${tag}.session_load_s`, f.loadS, 's', 1);
  figure(`fuyu8b.${tag}.prefill_s`, f.prefillS, 's', 2);
  figure(`fuyu8b.${tag}.decode_ms_per_token`, f.decodeMs, 'ms', 1);
  figure(`fuyu8b.${tag}.rss_after_load_gb`, f.rssAfterLoad / GB, 'GB');
  if (f.afterLoadParts) {
    figure(`fuyu8b.${tag}.rss_after_load_anon_gb`, f.afterLoadParts.anon / GB, 'GB');
    figure(`fuyu8b.${tag}.rss_after_load_file_gb`, f.afterLoadParts.file / GB, 'GB');
  }
  figure(`fuyu8b.${tag}.peak_rss_load_gb`, f.peakRssLoad / GB, 'GB');
  figure(`fuyu8b.${tag}.peak_rss_load_and_prefill_gb`, f.peakRssToFirstToken / GB, 'GB');
  figure(`fuyu8b.${tag}.peak_rss_gb`, f.peakRss / GB, 'GB'); // inference: load + prefill + decode
  figure(`fuyu8b.${tag}.peak_rss_sampled_gb`, f.peakRssSampled / GB, 'GB');
  figure(`fuyu8b.${tag}.peak_rss_anon_sampled_gb`, f.peakAnon / GB, 'GB'); // without mapped-file pages
}

/** Per-layer cost and the fixed rest from two layer counts; with `extrapolate`, the 36-layer estimate. */
function perLayer(tag: string, big: RunFigures, small: RunFigures, extrapolate: boolean): void {
  // Per-layer cost only when the fixed part is not Fuyu-8B's (the baseline's small vocabulary).
  const layers = big.layers - small.layers;
  const prefill = (big.prefillS - small.prefillS) / layers;
  const decode = (big.decodeMs - small.decodeMs) / layers;
  figure(`fuyu8b.${tag}.per_layer_prefill_ms`, prefill * 1000, 'ms', 0);
  figure(`fuyu8b.${tag}.per_layer_decode_ms`, decode, 'ms', 2);
  // Memory the same way: per layer, and the fixed rest (tables, lm_head, runtime) at the smaller count.
  const rssPerLayer = (big.rssAfterLoad - small.rssAfterLoad) / layers;
  const peakPerLayer = (big.peakRss - small.peakRss) / layers;
  figure(`fuyu8b.${tag}.per_layer_rss_after_load_mb`, rssPerLayer / 1e6, 'MB', 0);
  figure(`fuyu8b.${tag}.per_layer_peak_rss_mb`, peakPerLayer / 1e6, 'MB', 0);
  figure(`fuyu8b.${tag}.fixed_rss_after_load_gb`, (small.rssAfterLoad - small.layers * rssPerLayer) / GB, 'GB');
  figure(`fuyu8b.${tag}.fixed_peak_rss_gb`, (small.peakRss - small.layers * peakPerLayer) / GB, 'GB');
  if (extrapolate) {
    figure(`fuyu8b.${tag}.fixed_prefill_ms`, (small.prefillS - small.layers * prefill) * 1000, 'ms', 0);
    figure(`fuyu8b.${tag}.fixed_decode_ms`, small.decodeMs - small.layers * decode, 'ms', 1);
    const L = FUYU_8B.layers;
    figure(`fuyu8b.${tag}.extrapolated_${L}_layers_prefill_s`, small.prefillS + (L - small.layers) * prefill, 's', 1);
    figure(`fuyu8b.${tag}.extrapolated_${L}_layers_decode_ms_per_token`, small.decodeMs + (L - small.layers) * decode, 'ms', 0);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      layers: { type: 'string', default: String(FUYU_8B.layers) },
      'baseline-layers': { type: 'string', default: '2' },
      weights: { type: 'string', default: 'int4' },
      tokens: { type: 'string', default: '8' },
      /** The photo's size: 640x480 (the figure), or e.g. 1920x1080 (Fuyu's largest, ≈2,300 positions). */
      image: { type: 'string', default: '640x480' },
    },
  });
  const layers = Number(values.layers);
  const baselineLayers = Number(values['baseline-layers']);
  const tokens = Number(values.tokens);
  const weights = values.weights as WeightPrecision;
  const [width, height] = /^(\d+)x(\d+)$/.exec(values.image)?.slice(1).map(Number) ?? [];
  if (!width || !height) throw new Error('--image must be WIDTHxHEIGHT, e.g. 1920x1080');
  if (!(Number.isInteger(layers) && layers >= 1 && Number.isInteger(baselineLayers) && baselineLayers >= 2 && tokens >= 2)) {
    throw new Error('--layers ≥ 1, --baseline-layers ≥ 2 and --tokens ≥ 2 must be integers');
  }
  if (weights !== 'int4' && weights !== 'int8') throw new Error('--weights must be int4 or int8');

  const root = await makeTempDir('fuyu8b');
  // `finally` does not run when the process is killed by a signal: delete the ~18 GB there too.
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`${signal}: deleting ${root}`);
    rmSync(root, { recursive: true, force: true });
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const rss = new PeakRss();
  try {
    const model = path.join(root, 'model');
    const cache = path.join(root, 'quantized');
    await fs.mkdir(model);
    let t = now();
    rss.reset();
    const bytes = await writeRandomFuyuBf16(model, { ...FUYU_8B, layers });
    console.log(`threads: ${physicalCoreCount()}; temp folder ${root}`);
    figure('fuyu8b.layers', layers, '', 0);
    figure('fuyu8b.checkpoint_gb', bytes / GB, 'GB');
    figure('fuyu8b.write_checkpoint_s', (now() - t) / 1000, 's', 1);
    figure('fuyu8b.write_checkpoint_peak_rss_gb', rss.exactBytes / GB, 'GB');

    const random = seededRandom(3);
    const image: RgbImage = { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => (random() * 256) | 0) };

    // The quantised model first, so its peak RSS is not inflated by the fp32 runs' heap.
    const main = await measure(model, weights, cache, image, tokens, rss);
    print(weights, main);

    if (layers > 1) perLayer(weights, main, await measure(await withLayers(model, 1), weights, cache, image, tokens, rss), layers < FUYU_8B.layers);
    await fs.rm(model, { recursive: true }); // disk: the baseline needs its own shards

    const baselineDir = path.join(root, 'baseline');
    await fs.mkdir(baselineDir);
    await writeRandomFuyuBf16(baselineDir, { ...FUYU_8B, layers: baselineLayers, vocab: BASELINE_VOCAB });
    const baseline = await measure(baselineDir, 'fp32', cache, image, tokens, rss);
    print('fp32', baseline);
    perLayer('fp32', baseline, await measure(await withLayers(baselineDir, 1), 'fp32', cache, image, tokens, rss), false);
  } finally {
    rss.stop();
    await fs.rm(root, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
