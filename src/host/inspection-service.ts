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
import { AttentionDistanceAccumulator, attentionDistanceOverImages, maxPatchDistance } from '../core/analysis/attention-distance';
import { filterTiles, patchResponses, rankByEnergy, readPatchEmbeddingFilters } from '../core/analysis/patch-embedding';
import { readPositionTable, resizePositionTable, type PositionTable } from '../core/analysis/position-embedding';
import { rolloutFactor } from '../core/analysis/rollout';
import { InferenceEngine, type TensorData } from '../core/engine/client';
import { CancelledError, UserError } from '../core/errors';
import { decodeImageBuffer } from '../core/image/decode';
import { preprocess, preprocessFuyu, type FuyuPreprocessedImage } from '../core/image/preprocess';
import { ModelRunner, openModel, topK, type LoadedCLIP, type LoadedFuyu, type LoadedViT } from '../core/models/runner';
import type { TextAttention } from '../core/models/clip-runner';
import type { SimilarityMatrix } from '../core/models/clip-heatmap';
import type { PatchGrid } from '../core/models/vit';
import { FuyuRunner, defaultWeightPrecision, estimateFuyuMemory, formatMemoryEstimate } from '../core/models/fuyu-runner';
import { FUYU_IO } from '../core/models/fuyu';
import { WEIGHT_PRECISIONS } from '../core/models/quantize';
import { formatBytes } from '../core/io/hub-download';
import type { RgbImage } from '../core/image/types';
import { GraphCache } from '../core/onnx/cache';
import { searchForQuestion } from '../core/search/answer';
import { FuyuAnswerer } from '../core/search/fuyu-answerer';
import { CLIPSearchModel } from '../core/search/clip-search-model';
import type { SearchStep } from '../core/search/vstar';
// The report's figure helpers, so the tab and `vision-inspector report` draw the same pictures.
import { attentionDistancePlot, filterComponents, mosaic, positionSimilarityMosaic, type FilterComponents } from '../core/analysis/figures';
import { modelDisplayName } from '../core/io/hub-layout';
import { toReplay, toSearchAnswer } from './search-replay';
import type { AttentionDistanceFigure, FuyuInspection, FuyuTextToken, FuyuWeights, LabelScore, ModelInfo, PaperFigures, PatchFilterSet, RgbFigure, RolloutSettings, SearchAnswer, SearchReplay, Timings, ZeroShotScore } from '../shared/protocol';
import type { InputPlacement, TokenGrid } from '../shared/patch-geometry';
import { engineSettings } from './settings';

/** Bump when what a result holds changes, so that older cached results are not reused. */
const RESULT_VERSION = 2;
/** Results kept in memory; the newest always stays, however large (ViT-L/14@336: 511 MB of attention). */
const RESULT_CACHE_BYTES = 1024 * 1024 * 1024;
/** Principal components shown in the ViT-paper tab (the paper shows 28). */
const PAPER_PCA_COMPONENTS = 28;
/** Formats a webview's <img> cannot show; they are sent as PNG. */
const CONVERT_FOR_DISPLAY = new Set(['.tif', '.tiff']);

interface ResultBase {
  id: string;
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
  /** The model's input, float32 [1, 3, H, W] (for CLIP's text views and the learned filters). */
  pixelValues: Float32Array;
  inputShape: [1, 3, number, number];
  /** The model folder, reopened (headers only) for the requests that need its weights. */
  modelPath: string;
  patchFilters?: Promise<PatchFilterSet>;
  /** The trained position table and the filters' principal components, for the ViT-paper tab. */
  paperInputs?: Promise<{ table: PositionTable; components: FilterComponents; filterCount: number }>;
  distance?: AttentionDistanceFigure;
}

export interface ViTResult extends ResultBase {
  modelKind: 'vit';
}

/** CLIP: the vision tower's attention as for a ViT; text-side views run on request. */
export interface CLIPResult extends ResultBase {
  modelKind: 'clip';
  hasText: boolean;
}

export type InspectionResult = ViTResult | CLIPResult;

/** A Fuyu model and an image, preprocessed; generation runs per request (generateFuyu). */
export interface FuyuResult {
  modelKind: 'fuyu';
  id: string;
  imagePath: string;
  imageName: string;
  displayBytes: Uint8Array;
  displayMime: string;
  modelPath: string;
  patches: FuyuPreprocessedImage;
  /** What the webview is sent (its image bytes are filled in per message). */
  inspection: Omit<FuyuInspection, 'image'> & { image: Omit<FuyuInspection['image'], 'bytes'> };
}

export interface FuyuGenerateOptions {
  prompt: string;
  maxNewTokens: number;
  weights: FuyuWeights;
  signal?: AbortSignal;
  /** The text part of the sequence as laid out, before the first token. */
  onPrompt?(tokens: FuyuTextToken[], sequenceLength: number): void;
  onToken?(index: number, piece: string, text: string): void;
  onProgress?(message: string): void;
}

export interface FuyuAnswer {
  text: string;
  stopped: 'stop-token' | 'max-new-tokens';
  layers: number;
  /** Text rows then fed-back generated tokens. */
  rows: number;
  /** [layers, rows, P], mean over heads. */
  attention: Float32Array;
}

/** Fuyu results kept (each holds one preprocessed image; no attention until generation). */
const FUYU_RESULTS_KEPT = 8;
/** Room for a short prompt and answer in the memory estimate shown before loading. */
const FUYU_ESTIMATE_TEXT_TOKENS = 64;

export interface SearchOptions {
  signal?: AbortSignal;
  onStep?(target: string, steps: number, step: SearchStep): void;
  /** A question: the answering model (if any) may propose the targets (`askTargets`) and answers it. */
  question?: string;
  askTargets?: boolean;
  /** A Fuyu model folder to answer with (ModelSelection.answeringModel). */
  answerModelPath?: string;
  /** Before each request to the answering model. */
  onAnswerPhase?(message: string): void;
}

export type Phase = 'loading-model' | 'preprocessing' | 'running';

export interface InspectOptions {
  signal?: AbortSignal;
  onPhase?(phase: Phase, message: string): void;
}

export class InspectionService implements vscode.Disposable {
  private engine: InferenceEngine | undefined;
  private runner: ModelRunner | undefined;
  private readonly results = new Map<string, InspectionResult>();
  private readonly fuyuResults = new Map<string, FuyuResult>();
  /** Fuyu runners per (checkpoint, weights): each keeps its sessions and quantised weights. */
  private readonly fuyuRunners = new Map<string, FuyuRunner>();
  /** Where the Fuyu generation in progress reports the one-time weight conversion. */
  private quantizeProgress: ((message: string) => void) | undefined;

  constructor(
    private readonly workerPath: string,
    private readonly graphCacheDir: string,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** A cached result by id, for requests from a webview. */
  get(id: string): InspectionResult | undefined {
    return this.results.get(id);
  }

  getFuyu(id: string): FuyuResult | undefined {
    return this.fuyuResults.get(id);
  }

  async inspect(imagePath: string, modelPath: string, options: InspectOptions = {}): Promise<InspectionResult | FuyuResult> {
    const { signal, onPhase } = options;
    const started = performance.now();
    const throwIfCancelled = (): void => {
      if (signal?.aborted) throw new CancelledError();
    };

    onPhase?.('loading-model', `Opening ${path.basename(modelPath)}…`);
    const bytes = await readImageFile(imagePath);
    const opened = await openModel(modelPath);
    if (opened.kind === 'fuyu') return this.inspectFuyu(imagePath, bytes, opened, started, options);
    if (opened.kind === 'clip') opened.model.requireVision();
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
    const pixels = { type: 'float32' as const, dims: processed.shape, data: processed.pixelValues };
    const run = loaded.kind === 'vit' ? await this.runViT(loaded, pixels, signal) : await this.runCLIPVision(loaded, pixels, signal);
    const { loadMs, inferenceMs } = run.timing();

    const attentions = run.attentions;
    const layers = attentions.length;
    const heads = run.heads;
    const display = await displayImage(imagePath, bytes);
    const base = {
      id,
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
      labels: run.labels,
      attentions,
      timings: { totalMs: performance.now() - started, loadMs, inferenceMs, cached: false },
      rollouts: new Map(),
      pixelValues: processed.pixelValues,
      inputShape: processed.shape,
      modelPath: loaded.checkpoint.dir,
    };
    const result: InspectionResult = loaded.kind === 'clip' ? { ...base, modelKind: 'clip', hasText: loaded.model.hasText } : { ...base, modelKind: 'vit' };
    this.store(result);
    this.log.info(
      `${result.imageName}: ${result.model.name} ${result.grid.cols}×${result.grid.rows} patches, ${layers}×${heads} maps in ${inferenceMs.toFixed(0)} ms ` +
        `(model load ${loadMs.toFixed(0)} ms, total ${result.timings.totalMs.toFixed(0)} ms)${result.labels[0] ? `; top: ${result.labels[0].label} ${(result.labels[0].probability * 100).toFixed(1)} %` : ''}`,
    );
    return result;
  }

  /**
   * Fuyu: only the processor runs here (no weights are loaded), so the view can show the patch
   * grid and each weight precision's memory estimate before the user starts generating.
   */
  private async inspectFuyu(imagePath: string, bytes: Uint8Array, loaded: LoadedFuyu, started: number, options: InspectOptions): Promise<FuyuResult> {
    const id = createHash('sha256')
      .update(JSON.stringify({ v: RESULT_VERSION, image: createHash('sha256').update(bytes).digest('hex'), model: loaded.checkpoint.identity(), fuyu: true }))
      .digest('hex')
      .slice(0, 32);
    const cached = this.fuyuResults.get(id);
    if (cached) {
      const imageName = path.basename(imagePath);
      return { ...cached, imagePath, imageName, inspection: { ...cached.inspection, image: { ...cached.inspection.image, name: imageName, path: imagePath } } };
    }
    options.onPhase?.('preprocessing', `Decoding ${path.basename(imagePath)}…`);
    const image = await decodeImageBuffer(bytes, imagePath);
    const processorFile = path.join(loaded.checkpoint.dir, 'preprocessor_config.json');
    const patches = preprocessFuyu(image, loaded.checkpoint.preprocessorConfig ?? {}, { file: processorFile });
    if (options.signal?.aborted) throw new CancelledError();
    const { model } = loaded;
    const estimateTokens = patches.patchRows * (patches.patchCols + 1) + FUYU_ESTIMATE_TEXT_TOKENS;
    const display = await displayImage(imagePath, bytes);
    const result: FuyuResult = {
      modelKind: 'fuyu',
      id,
      imagePath,
      imageName: path.basename(imagePath),
      displayBytes: display.bytes,
      displayMime: display.mime,
      modelPath: loaded.checkpoint.dir,
      patches,
      inspection: {
        modelKind: 'fuyu',
        resultId: id,
        image: { name: path.basename(imagePath), path: imagePath, mime: display.mime, width: image.width, height: image.height },
        model: {
          kind: 'fuyu',
          name: modelDisplayName(loaded.checkpoint.dir),
          path: loaded.checkpoint.dir,
          modelType: loaded.checkpoint.modelType ?? 'fuyu',
          layers: model.config.num_hidden_layers,
          heads: model.config.num_attention_heads,
        },
        patchRows: patches.patchRows,
        patchCols: patches.patchCols,
        patchWidth: patches.patchWidth,
        patchHeight: patches.patchHeight,
        scaleFactor: patches.scaleFactor,
        parameterCount: model.parameterCount,
        contextLength: model.config.max_position_embeddings,
        defaultWeights: defaultWeightPrecision(model),
        estimateTokens,
        // The runner's precisions; assigning them to the protocol's type checks that the lists agree.
        memory: WEIGHT_PRECISIONS.map((weights) => {
          const m = estimateFuyuMemory(model, weights, estimateTokens);
          return { weights, ...m, summary: formatMemoryEstimate(m) };
        }),
        timings: { totalMs: performance.now() - started, loadMs: 0, inferenceMs: 0, cached: false },
      },
    };
    this.fuyuResults.set(id, result);
    for (const key of this.fuyuResults.keys()) {
      if (this.fuyuResults.size <= FUYU_RESULTS_KEPT) break;
      this.fuyuResults.delete(key);
    }
    this.log.info(`${result.imageName}: ${result.inspection.model.name}, ${patches.patchRows}×${patches.patchCols} patches (Fuyu: generation on request)`);
    return result;
  }

  /**
   * Greedy generation as `vision-inspector infer` does it, each token streamed as it is chosen;
   * returns the answer and, per layer, every text and fed-back token's attention to the image
   * patches (mean over heads): the prompt's rows from the prefill, the generated ones from decoding.
   */
  async generateFuyu(result: FuyuResult, options: FuyuGenerateOptions): Promise<FuyuAnswer> {
    const loaded = await openModel(result.modelPath);
    if (loaded.kind !== 'fuyu') throw new UserError('is no longer a Fuyu model; run the inspection again.', result.modelPath);
    const fuyu = this.fuyuRunner(loaded, options.weights);
    const prompt = fuyu.prepare(result.patches, options.prompt, options.maxNewTokens);
    const { layout } = prompt;
    const piece = (id: number): string => loaded.tokenizer.idToToken(id) ?? `<${id}>`;
    const kinds: Record<string, FuyuTextToken['kind']> = { bos: 'bos', prompt: 'prompt', 'beginning-of-answer': 'beginning-of-answer' };
    const textTokens = layout.slots.slice(layout.textStart).map((slot, i) => ({ kind: kinds[slot.kind] ?? 'prompt', piece: piece(layout.inputIds[layout.textStart + i]!) }));
    options.onPrompt?.(textTokens, layout.inputIds.length);
    const memory = estimateFuyuMemory(fuyu.model, fuyu.weights, layout.inputIds.length + options.maxNewTokens);
    options.onProgress?.(`Loading ${result.inspection.model.name} (${fuyu.weights}, about ${formatBytes(memory.totalBytes)})…`);
    this.quantizeProgress = options.onProgress;
    try {
      await fuyu.prepareGeneration({ signal: options.signal });
    } finally {
      this.quantizeProgress = undefined;
    }
    options.onProgress?.('Generating…');
    const L = fuyu.model.config.num_hidden_layers;
    const names = Array.from({ length: L }, (_, i) => FUYU_IO.imageAttentionsMean(i));
    const generation = await fuyu.generate(prompt, {
      maxNewTokens: options.maxNewTokens,
      signal: options.signal,
      prefillFetches: names,
      onToken: (token) => options.onToken?.(token.index, piece(token.id), token.text),
    });
    const P = layout.patchPositions.length;
    const textRows = layout.inputIds.length - layout.textStart;
    const steps = generation.generatedImageAttentionsMean[0]!.length / P;
    const rows = textRows + steps;
    const attention = new Float32Array(L * rows * P);
    names.forEach((name, l) => {
      const prefill = float32Output(generation.prefill, name);
      if (prefill.length !== textRows * P) throw new Error(`${name} has ${prefill.length} values, expected ${textRows}×${P}`);
      attention.set(prefill, l * rows * P);
      attention.set(generation.generatedImageAttentionsMean[l]!, (l * rows + textRows) * P);
    });
    return { text: generation.text, stopped: generation.stopped, layers: L, rows, attention };
  }

  private fuyuRunner(loaded: LoadedFuyu, weights: FuyuWeights): FuyuRunner {
    const key = `${loaded.checkpoint.identity()}:${weights}`;
    let fuyu = this.fuyuRunners.get(key);
    if (!fuyu) {
      const models = this.getRunner();
      fuyu = new FuyuRunner(models.engine, models.graphs, loaded, {
        weights,
        onQuantizeProgress: ({ done, total }) => this.quantizeProgress?.(`Converting the weights to ${weights} (once): ${Math.floor((100 * done) / total)} % of ${formatBytes(total)}`),
      });
      this.fuyuRunners.set(key, fuyu);
    }
    return fuyu;
  }

  private async runViT(loaded: LoadedViT, pixels: TensorData, signal: AbortSignal | undefined): Promise<ModelRun> {
    const runner = this.getRunner();
    const t0 = performance.now();
    await runner.prepareViT(loaded, pixels.dims[2]!, pixels.dims[3]!, signal);
    const t1 = performance.now();
    // Only what the views use: the hidden states would be copied out of ORT and sent for nothing.
    const outputs = loaded.model.outputs(pixels.dims[2]!, pixels.dims[3]!);
    const attentionNames = outputs.attentions.map((o) => o.name);
    const run = await runner.runViT(loaded, pixels, { signal, fetches: [...(outputs.logits ? ['logits'] : []), ...attentionNames] });
    const t2 = performance.now();
    const logits = run.tensors.logits;
    return {
      grid: run.grid,
      heads: loaded.model.config.num_attention_heads,
      attentions: attentionNames.map((n) => float32Output(run.tensors, n)),
      labels: logits && logits.type === 'float32' ? topK(logits.data, loaded.model.labels, 5) : [],
      timing: () => ({ loadMs: t1 - t0, inferenceMs: t2 - t1 }),
    };
  }

  /** CLIP's vision tower with its attentions, which the attention tab shows as for a ViT. */
  private async runCLIPVision(loaded: LoadedCLIP, pixels: TensorData, signal: AbortSignal | undefined): Promise<ModelRun> {
    const clip = this.getRunner().clip(loaded);
    const vision = loaded.model.config.vision_config;
    const t0 = performance.now();
    await clip.prepareVision(pixels.dims[2]!, pixels.dims[3]!, signal);
    const t1 = performance.now();
    const names = Array.from({ length: vision.num_hidden_layers }, (_, i) => `vision_model.attentions.${i}`);
    const run = await clip.runVision(pixels, { fetches: names, signal });
    const t2 = performance.now();
    return {
      grid: run.grid,
      heads: vision.num_attention_heads,
      // [1, heads, T, T]: the batch axis of one image changes nothing in the flat data.
      attentions: names.map((n) => float32Output(run.tensors, n)),
      labels: [],
      timing: () => ({ loadMs: t1 - t0, inferenceMs: t2 - t1 }),
    };
  }

  /** The CLIP runner of a CLIP result (its text and image embeddings are cached there). */
  private async clipOf(result: InspectionResult): Promise<{ clip: ReturnType<ModelRunner['clip']>; pixels: TensorData }> {
    if (result.modelKind !== 'clip') throw new UserError('this view needs a CLIP model.', result.modelPath);
    const loaded = await openModel(result.modelPath);
    if (loaded.kind !== 'clip') throw new UserError('is no longer a CLIP model; run the inspection again.', result.modelPath);
    return { clip: this.getRunner().clip(loaded), pixels: { type: 'float32', dims: result.inputShape, data: result.pixelValues } };
  }

  /** CLIP zero-shot probabilities of the result's image over `labels`, each put into `template`. */
  async zeroShot(result: InspectionResult, labels: readonly string[], template: string): Promise<ZeroShotScore[]> {
    const { clip, pixels } = await this.clipOf(result);
    return clip.zeroShot(pixels, labels, { templates: [template] });
  }

  /** cos(MaskCLIP patch embedding, phrase embedding) per patch of the result's grid. */
  async textHeatmap(result: InspectionResult, phrase: string, template: string): Promise<Float32Array> {
    const { clip, pixels } = await this.clipOf(result);
    const { maps } = await clip.heatmaps(pixels, [phrase], { templates: [template] });
    return maps[0]!.similarity;
  }

  /**
   * CLIP's image × text matrix: the result's image, then each of `paths` (decoded and preprocessed
   * as the inspection was), against `labels` put into `template`.
   */
  async clipMatrix(result: InspectionResult, paths: readonly string[], labels: readonly string[], template: string, signal?: AbortSignal): Promise<SimilarityMatrix> {
    const { clip, pixels } = await this.clipOf(result);
    const images = [pixels];
    for (const file of paths) images.push(await this.modelInput(clip.loaded, file, signal));
    return clip.similarityMatrix(images, labels, { templates: [template], signal });
  }

  /** The CLIP text tower's attention on `text` put into `template`. */
  async textAttention(result: InspectionResult, text: string, template: string): Promise<TextAttention> {
    const { clip } = await this.clipOf(result);
    return clip.textAttention(text, template);
  }

  /**
   * Mean attention distance averaged over the images of `paths` (the result's own attention when
   * it is among them), one image in the worker at a time, drawn as the single-image plot is.
   */
  async distanceOverImages(result: InspectionResult, paths: readonly string[], options: { signal?: AbortSignal; onImage?(done: number, total: number): void } = {}): Promise<AttentionDistanceFigure> {
    const loaded = await openModel(result.modelPath);
    if (loaded.kind === 'fuyu') throw new UserError('mean attention distance needs a ViT or CLIP model.', result.modelPath);
    const { layers, heads } = result.model;
    const summary = await attentionDistanceOverImages(paths.length, layers, heads, async (i) => {
      if (paths[i] === result.imagePath) return { grid: patchGridOf(result.grid), attentions: result.attentions };
      await e2eDelay(paths[i]!, options.signal);
      const pixels = await this.modelInput(loaded, paths[i]!, options.signal);
      return loaded.kind === 'vit' ? this.runViT(loaded, pixels, options.signal) : this.runCLIPVision(loaded, pixels, options.signal);
    }, options);
    return distanceFigure(summary.distance, layers, heads, summary.images, result.grid.patchSize, summary.maxDistance);
  }

  /** `imagePath` as the model's input, float32 [1, 3, H, W], preprocessed as inspect() does. */
  private async modelInput(loaded: LoadedViT | LoadedCLIP, imagePath: string, signal?: AbortSignal): Promise<TensorData> {
    const image = await decodeImageBuffer(await readImageFile(imagePath), imagePath);
    if (signal?.aborted) throw new CancelledError();
    const processed = preprocess(image, loaded.checkpoint.preprocessorConfig ?? {}, { kind: loaded.kind, file: path.join(loaded.checkpoint.dir, 'preprocessor_config.json') });
    return { type: 'float32', dims: processed.shape, data: processed.pixelValues };
  }

  /**
   * ViT paper Fig. 7 for the result's model, drawn by the report's figure helpers: the position
   * similarities on a rows×cols grid (the trained table resized as the model would) and the
   * filters' first principal components. The table and PCA are computed once per result.
   */
  async paperFigures(result: InspectionResult, rows: number, cols: number): Promise<PaperFigures> {
    result.paperInputs ??= (async () => {
      const loaded = await openModel(result.modelPath);
      const filters = await readPatchEmbeddingFilters(loaded);
      return { table: await readPositionTable(loaded), components: filterComponents(filters, PAPER_PCA_COMPONENTS), filterCount: filters.count };
    })();
    result.paperInputs.catch(() => (result.paperInputs = undefined));
    const { table, components, filterCount } = await result.paperInputs;
    const figure = (image: RgbImage): RgbFigure => ({ width: image.width, height: image.height, data: image.data.slice().buffer });
    return {
      trainedRows: table.rows,
      trainedCols: table.cols,
      rows,
      cols,
      positions: figure(positionSimilarityMosaic(resizePositionTable(table, rows, cols))),
      components: figure(mosaic(components.tiles, 7, 2)),
      componentCount: components.tiles.length,
      explainedRatio: Array.from(components.explainedRatio),
      filterCount,
      filterDims: components.dims,
      distance: (result.distance ??= attentionDistanceFigure(result)),
    };
  }

  /** The model's patch-embedding filters as tiles and their responses on the result's input; once per result. */
  patchFilters(result: InspectionResult): Promise<PatchFilterSet> {
    result.patchFilters ??= (async () => {
      const filters = await readPatchEmbeddingFilters(await openModel(result.modelPath));
      const [, , height, width] = result.inputShape;
      const responses = patchResponses(result.pixelValues, height, width, filters);
      const tiles = new Uint8Array(filters.count * filters.patchSize ** 2 * 3);
      filterTiles(filters).forEach((t, d) => tiles.set(t.data, d * t.data.length));
      return {
        tensor: filters.tensor,
        hasBias: filters.bias !== undefined,
        patchSize: filters.patchSize,
        count: filters.count,
        tiles: tiles.buffer,
        rows: responses.rows,
        cols: responses.cols,
        responses: responses.maps.buffer as ArrayBuffer,
        ranking: rankByEnergy(responses),
      };
    })();
    result.patchFilters.catch(() => (result.patchFilters = undefined));
    return result.patchFilters;
  }

  /**
   * V* search (vstar.ts) with CLIP as the search model, on the full-resolution image, for each
   * target in turn; the other targets compete as negatives, as in the CLI. With a question and a
   * Fuyu model, Fuyu proposes the targets (else `targets` are used) and answers on the found crops.
   */
  async search(result: InspectionResult, targets: readonly string[], options: SearchOptions = {}): Promise<{ searches: SearchReplay[]; stats: { runs: number; crops: number }; answer: SearchAnswer | null }> {
    const { clip } = await this.clipOf(result);
    const image = await decodeImageBuffer(await readImageFile(result.imagePath), result.imagePath);
    const question = options.question?.trim() ?? '';
    let answerer: FuyuAnswerer | undefined;
    if (question && options.answerModelPath) {
      const loaded = await openModel(options.answerModelPath);
      if (loaded.kind !== 'fuyu') throw new UserError(`is a ${loaded.kind} model; V* answers need a Fuyu model.`, options.answerModelPath, 'Pick a Fuyu model with "Vision Inspector: Select Model…".');
      answerer = new FuyuAnswerer(this.fuyuRunner(loaded, defaultWeightPrecision(loaded.model)));
    }
    let model: CLIPSearchModel | undefined;
    const counts = new Map<string, number>();
    const done = await searchForQuestion(question, image, targets, (list) => (model = new CLIPSearchModel(clip, image, { otherTargets: list })), answerer, {
      askTargets: options.askTargets,
      signal: options.signal,
      onPhase: (_phase, message) => options.onAnswerPhase?.(message),
      onStep: (target, step) => {
        counts.set(target, (counts.get(target) ?? 0) + 1);
        options.onStep?.(target, counts.get(target)!, step);
      },
    });
    const stats = { runs: model!.stats.runs, crops: model!.stats.crops };
    return { searches: done.results.map(toReplay), stats, answer: question ? toSearchAnswer(done, answerer?.name ?? null) : null };
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
    this.fuyuRunners.clear();
    if (engine) void engine.dispose();
  }

  dispose(): void {
    this.restartEngine();
    this.results.clear();
    this.fuyuResults.clear();
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

interface ModelRun {
  grid: { width: number; height: number; patchSize: number; rows: number; cols: number; prefixTokens: number; tokens: number };
  heads: number;
  /** Per layer: [heads, tokens, tokens]. */
  attentions: Float32Array[];
  labels: LabelScore[];
  timing(): { loadMs: number; inferenceMs: number };
}

function float32Output(tensors: Record<string, TensorData>, name: string): Float32Array {
  const t = tensors[name];
  if (!t || t.type !== 'float32') throw new Error(`the run returned no float32 ${name}`);
  return t.data as Float32Array;
}

/** The protocol's token grid as the core's patch grid. */
function patchGridOf(grid: TokenGrid): PatchGrid {
  return { width: grid.inputWidth, height: grid.inputHeight, patchSize: grid.patchSize, rows: grid.rows, cols: grid.cols, prefixTokens: grid.prefixTokens, tokens: grid.tokens };
}

/** Mean attention distance of the result's image, plotted as the report plots it. */
function attentionDistanceFigure(result: InspectionResult): AttentionDistanceFigure {
  const { grid, attentions } = result;
  const heads = result.model.heads;
  const accumulator = new AttentionDistanceAccumulator(attentions.length, heads);
  attentions.forEach((a, l) => accumulator.add(l, a, patchGridOf(grid)));
  return distanceFigure(accumulator.summary().distance, attentions.length, heads, 1, grid.patchSize, maxPatchDistance(grid));
}

function distanceFigure(distance: Float64Array, layers: number, heads: number, images: number, patchSize: number, maxDistance: number): AttentionDistanceFigure {
  return { images, svg: attentionDistancePlot(distance, layers, heads, 0), layers, heads, values: Array.from(distance), patchSize, maxDistance };
}

function resultBytes(r: InspectionResult): number {
  return r.attentions.reduce((sum, a) => sum + a.byteLength, 0) + r.displayBytes.byteLength + r.pixelValues.byteLength;
}

function describeModel(loaded: LoadedViT | LoadedCLIP, layers: number, heads: number): ModelInfo {
  return {
    kind: loaded.kind,
    name: modelDisplayName(loaded.checkpoint.dir),
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
 * Test hook for the end-to-end tests of Cancel: with VISION_INSPECTOR_E2E_DELAY_MS set in the
 * extension host's environment, images named `slow-*` wait that long before inference (an
 * inspection, or one image of a mean-attention-distance run), so the test can press Cancel while
 * the run is in progress. Unset, it does nothing.
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
