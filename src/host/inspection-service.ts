/**
 * Runs models on images for the views, and keeps the results. Inference runs in the engine's
 * worker thread; what runs here (hashing, preprocessing, slicing attention rows, rollout factors)
 * is short or yields between layers, so the extension host stays responsive.
 *
 * Results are cached per (image content hash, model identity, options): reopening an image, or
 * a second view of it, is instant.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import * as vscode from 'vscode';
import { rolloutFactor } from '../core/analysis/rollout';
import { InferenceEngine } from '../core/engine/client';
import { CancelledError, UserError } from '../core/errors';
import { decodeImageBuffer } from '../core/image/decode';
import { preprocess } from '../core/image/preprocess';
import { ModelRunner, openModel, topK, type LoadedViT } from '../core/models/runner';
import { GraphCache } from '../core/onnx/cache';
import type { LabelScore, ModelInfo, RolloutSettings, Timings } from '../shared/protocol';
import type { InputPlacement, TokenGrid } from '../shared/patch-geometry';
import { engineSettings } from './settings';

/** Bump when what a result holds changes, so that older cached results are not reused. */
const RESULT_VERSION = 1;
/** Results kept in memory; the newest always stays, however large (ViT-L/14@336: 511 MB of attention). */
const RESULT_CACHE_BYTES = 1024 * 1024 * 1024;
/** Formats a webview's <img> cannot show; they are sent as PNG. */
const CONVERT_FOR_DISPLAY = new Set(['.tif', '.tiff']);

export interface ViTResult {
  id: string;
  modelKind: 'vit';
  imagePath: string;
  imageName: string;
  /** The file's bytes (PNG for formats browsers cannot show), sent to the webview once per view. */
  displayBytes: Uint8Array;
  displayMime: string;
  width: number;
  height: number;
  model: ModelInfo;
  grid: TokenGrid;
  placement: InputPlacement;
  labels: LabelScore[];
  /** Per layer: [heads, tokens, tokens]. */
  attentions: Float32Array[];
  timings: Timings;
  /** Rollout factors per settings key, [layers, tokens, tokens] in one buffer. */
  rollouts: Map<string, Promise<Float32Array>>;
}

export type InspectionResult = ViTResult;

export type Phase = 'loading-model' | 'preprocessing' | 'running';

export interface InspectOptions {
  signal?: AbortSignal;
  onPhase?(phase: Phase, message: string): void;
}

export class InspectionService implements vscode.Disposable {
  private engine: InferenceEngine | undefined;
  private runner: ModelRunner | undefined;
  private readonly results = new Map<string, InspectionResult>();

  constructor(
    private readonly workerPath: string,
    private readonly graphCacheDir: string,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** A cached result by id, for requests from a webview. */
  get(id: string): InspectionResult | undefined {
    return this.results.get(id);
  }

  async inspect(imagePath: string, modelPath: string, options: InspectOptions = {}): Promise<InspectionResult> {
    const { signal, onPhase } = options;
    const started = performance.now();
    const throwIfCancelled = (): void => {
      if (signal?.aborted) throw new CancelledError();
    };

    onPhase?.('loading-model', `Opening ${path.basename(modelPath)}…`);
    const bytes = await readImageFile(imagePath);
    const opened = await openModel(modelPath);
    if (opened.kind !== 'vit') {
      throw new UserError(
        `is a ${opened.checkpoint.modelType ?? opened.kind} model; the inspector's ${opened.kind.toUpperCase()} view is not available yet.`,
        opened.checkpoint.dir,
        'Choose a ViT or DeiT image classifier with "Vision Inspector: Select Model…".',
      );
    }
    const loaded = opened;
    throwIfCancelled();
    const id = createHash('sha256')
      .update(JSON.stringify({ v: RESULT_VERSION, image: createHash('sha256').update(bytes).digest('hex'), model: loaded.checkpoint.identity(), options: { autoOrient: true } }))
      .digest('hex')
      .slice(0, 32);
    const cached = this.results.get(id);
    if (cached) {
      // Refresh its place in the LRU order, and report this request's own timing.
      this.results.delete(id);
      this.results.set(id, cached);
      this.log.info(`${path.basename(imagePath)}: result from cache (${id.slice(0, 8)})`);
      return { ...cached, imagePath, imageName: path.basename(imagePath), timings: { totalMs: performance.now() - started, loadMs: 0, inferenceMs: 0, cached: true } };
    }

    onPhase?.('preprocessing', `Decoding ${path.basename(imagePath)}…`);
    const image = await decodeImageBuffer(bytes, imagePath);
    const processed = preprocess(image, loaded.checkpoint.preprocessorConfig ?? {}, { kind: loaded.kind, file: path.join(loaded.checkpoint.dir, 'preprocessor_config.json') });
    throwIfCancelled();

    await e2eDelay(imagePath, signal);
    onPhase?.('running', `Running ${path.basename(loaded.checkpoint.dir)} on a ${processed.shape[3]}×${processed.shape[2]} input…`);
    const runner = this.getRunner();
    const loadStarted = performance.now();
    await runner.prepareViT(loaded, processed.shape[2], processed.shape[3], signal);
    const loadMs = performance.now() - loadStarted;
    const inferenceStarted = performance.now();
    const run = await runner.runViT(loaded, { type: 'float32', dims: processed.shape, data: processed.pixelValues }, { signal });
    const inferenceMs = performance.now() - inferenceStarted;

    const { model } = loaded;
    const layers = model.config.num_hidden_layers;
    const heads = model.config.num_attention_heads;
    const attentions = Array.from({ length: layers }, (_, i) => {
      const t = run.tensors[`attentions.${i}`];
      if (!t || t.type !== 'float32') throw new Error(`the run returned no float32 attentions.${i}`);
      return t.data;
    });
    const logits = run.tensors.logits;
    const display = await displayImage(imagePath, bytes);
    const result: ViTResult = {
      id,
      modelKind: 'vit',
      imagePath,
      imageName: path.basename(imagePath),
      displayBytes: display.bytes,
      displayMime: display.mime,
      width: image.width,
      height: image.height,
      model: describeModel(loaded, layers, heads),
      grid: {
        inputWidth: run.grid.width,
        inputHeight: run.grid.height,
        patchSize: run.grid.patchSize,
        rows: run.grid.rows,
        cols: run.grid.cols,
        prefixTokens: run.grid.prefixTokens,
        tokens: run.grid.tokens,
      },
      placement: { sourceWidth: processed.sourceWidth, sourceHeight: processed.sourceHeight, sourceBox: processed.sourceBox },
      labels: logits && logits.type === 'float32' ? topK(logits.data, model.labels, 5) : [],
      attentions,
      timings: { totalMs: performance.now() - started, loadMs, inferenceMs, cached: false },
      rollouts: new Map(),
    };
    this.store(result);
    this.log.info(
      `${result.imageName}: ${result.model.name} ${result.grid.cols}×${result.grid.rows} patches, ${layers}×${heads} maps in ${inferenceMs.toFixed(0)} ms ` +
        `(model load ${loadMs.toFixed(0)} ms, total ${result.timings.totalMs.toFixed(0)} ms)${result.labels[0] ? `; top: ${result.labels[0].label} ${(result.labels[0].probability * 100).toFixed(1)} %` : ''}`,
    );
    return result;
  }

  /** A copy of one layer's [heads, tokens, tokens] (the cached result keeps the original). */
  layerAttention(result: InspectionResult, layer: number): ArrayBuffer {
    const data = result.attentions[layer];
    if (!data) throw new UserError(`layer ${layer} does not exist; the model has ${result.attentions.length}.`);
    return data.slice().buffer;
  }

  /** Token `token`'s attention rows in every layer and head: [layers, heads, tokens]. */
  tokenRows(result: InspectionResult, token: number): Float32Array {
    const { tokens } = result.grid;
    if (token >= tokens) throw new UserError(`token ${token} does not exist; the model has ${tokens}.`);
    const heads = result.model.heads;
    const out = new Float32Array(result.attentions.length * heads * tokens);
    result.attentions.forEach((layer, l) => {
      for (let h = 0; h < heads; h++) {
        const from = (h * tokens + token) * tokens;
        out.set(layer.subarray(from, from + tokens), (l * heads + h) * tokens);
      }
    });
    return out;
  }

  /** Every layer's rollout factor for these settings, [layers, tokens, tokens]; computed once per settings. */
  rolloutFactors(result: InspectionResult, settings: RolloutSettings): Promise<Float32Array> {
    const key = `${settings.headFusion}:${settings.discardRatio}`;
    let pending = result.rollouts.get(key);
    if (!pending) {
      pending = (async () => {
        const { tokens } = result.grid;
        const out = new Float32Array(result.attentions.length * tokens * tokens);
        for (let l = 0; l < result.attentions.length; l++) {
          out.set(rolloutFactor(result.attentions[l]!, result.model.heads, tokens, settings), l * tokens * tokens);
          // ≈10–20 ms per layer at 577 tokens: give the host's event loop a turn in between.
          await new Promise((resolve) => setImmediate(resolve));
        }
        return out;
      })();
      result.rollouts.set(key, pending);
      pending.catch(() => result.rollouts.delete(key));
    }
    return pending;
  }

  /** Settings for threads or the execution provider changed: the next run starts a new worker. */
  restartEngine(): void {
    const engine = this.engine;
    this.engine = undefined;
    this.runner = undefined;
    if (engine) void engine.dispose();
  }

  clearResults(): void {
    this.results.clear();
  }

  dispose(): void {
    this.restartEngine();
    this.results.clear();
  }

  private getRunner(): ModelRunner {
    if (!this.runner) {
      const settings = engineSettings();
      this.engine = InferenceEngine.create({ workerPath: this.workerPath, threads: settings.threads, executionProviders: settings.executionProviders });
      this.runner = new ModelRunner(this.engine, new GraphCache(this.graphCacheDir));
      this.log.info(`inference worker started (threads: ${settings.threads ?? 'one per core'}, providers: ${settings.executionProviders.join(', ')})`);
    }
    return this.runner;
  }

  private store(result: InspectionResult): void {
    this.results.set(result.id, result);
    let total = 0;
    for (const r of this.results.values()) total += resultBytes(r);
    for (const [id, r] of this.results) {
      if (total <= RESULT_CACHE_BYTES || id === result.id) break;
      this.results.delete(id);
      total -= resultBytes(r);
    }
  }
}

function resultBytes(r: InspectionResult): number {
  return r.attentions.reduce((sum, a) => sum + a.byteLength, 0) + r.displayBytes.byteLength;
}

function describeModel(loaded: LoadedViT, layers: number, heads: number): ModelInfo {
  return {
    kind: loaded.kind,
    name: path.basename(loaded.checkpoint.dir),
    path: loaded.checkpoint.dir,
    modelType: loaded.checkpoint.modelType ?? 'unknown',
    layers,
    heads,
  };
}

async function readImageFile(imagePath: string): Promise<Uint8Array> {
  try {
    return await fsp.readFile(imagePath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError('image file not found.', imagePath);
    if (code === 'EISDIR') throw new UserError('is a folder, not an image file.', imagePath);
    throw new UserError(`cannot read this image (${(err as Error).message}).`, imagePath);
  }
}

async function displayImage(imagePath: string, bytes: Uint8Array): Promise<{ bytes: Uint8Array; mime: string }> {
  const ext = path.extname(imagePath).toLowerCase();
  if (CONVERT_FOR_DISPLAY.has(ext)) {
    // rotate() applies the EXIF orientation, as the decoder did for the model.
    return { bytes: await sharp(bytes).rotate().png().toBuffer(), mime: 'image/png' };
  }
  const mime: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp', '.bmp': 'image/bmp' };
  return { bytes, mime: mime[ext] ?? 'application/octet-stream' };
}

/**
 * Test hook for the end-to-end test of Cancel: with VISION_INSPECTOR_E2E_DELAY_MS set in the
 * extension host's environment, images named `slow-*` wait that long before inference, so the
 * test can press Cancel while the run is in progress. Unset, it does nothing.
 */
async function e2eDelay(imagePath: string, signal: AbortSignal | undefined): Promise<void> {
  const ms = Number(process.env.VISION_INSPECTOR_E2E_DELAY_MS);
  if (!(ms > 0) || !path.basename(imagePath).startsWith('slow-')) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new CancelledError());
    }, { once: true });
  });
}
