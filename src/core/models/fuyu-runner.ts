/**
 * Running Fuyu: the checkpoint's tokenizer and special ids, the processor's token layout, the
 * engine sessions (full detail: a prefill and a decode graph; compact: one graph for both, so the
 * pre-packed weights are in memory once), and greedy generation with the KV cache, streaming
 * each token to a callback.
 *
 * The KV cache lives in the engine's worker as a row state: each run appends its new rows in place,
 * so the cache never crosses the thread boundary and is never copied whole.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { check } from '../errors.js';
import type { InferenceEngine, TensorData } from '../engine/client.js';
import { elementCount } from '../engine/tensors.js';
import { CONFIG_FILE, type Checkpoint } from '../io/checkpoint.js';
import { formatBytes } from '../io/hub-download.js';
import { graphKey, type GraphCache } from '../onnx/cache.js';
import { decodeFuyuAnswer, encodeFuyuPrompt } from '../text/fuyu-locations.js';
import { FuyuTokenizer } from '../text/fuyu-tokenizer.js';
import { QuantizedWeights, quantSpecFor, quantizedShape, readTableRows, type QuantizeProgress, type WeightPrecision } from './quantize.js';
import { FUYU_IO, Fuyu, attentionHeadGroups, fuyuLayout, layoutFromInputIds, missingImageTokenError, type FuyuDetail, type FuyuGraphKind, type FuyuLayout, type FuyuSpecialIds } from './fuyu.js';

export const GENERATION_CONFIG_FILE = 'generation_config.json';

/**
 * Bumped when Fuyu's graphs change their inputs or outputs, so graphs cached on disk by an earlier
 * version are rebuilt (2: the compact prefill graph takes `past.*` and serves decoding too; 3: `present.*`
 * are the step's new rows only; 4: quantised graphs keep the cache in float16).
 */
const FUYU_GRAPH_VERSION = 4;

/** Models up to this many parameters return every intermediate by default (`full` graphs). */
const FULL_DETAIL_MAX_PARAMETERS = 1e9;

/** Models from this many parameters run with 4-bit weights by default (fp32 Fuyu-8B would need ≈38 GB). */
const QUANTIZE_MIN_PARAMETERS = 1e9;

/** The default weights for a model: fp32 (exact, parity) for small models, int4 from 1e9 parameters. */
export function defaultWeightPrecision(model: Fuyu): WeightPrecision {
  return model.parameterCount < QUANTIZE_MIN_PARAMETERS ? 'fp32' : 'int4';
}

/** Where quantised weights are cached when the caller names no folder: beside the graph cache, else in the temp folder. */
function defaultQuantizedDir(graphs: GraphCache): string {
  return graphs.dir ? path.join(path.dirname(graphs.dir), 'quantized') : path.join(os.tmpdir(), 'vision-inspector-quantized');
}

export interface MemoryEstimate {
  /** Weights resident in the engine once loaded. */
  weightBytes: number;
  /** Keys and values of `tokens` positions: float32 with fp32 weights, float16 with quantised ones. */
  kvCacheBytes: number;
  /** The largest activations of a compact prefill chunk (MLP, one head group's scores). */
  activationBytes: number;
  totalBytes: number;
}

/**
 * What running `model` with `weights` over `tokens` positions will hold in memory (approximately:
 * ORT's own buffers and the JS heap come on top). fp32 counts every parameter as float32 (ORT casts
 * BF16/F16 weights at load); int8/int4 count the MatMulNBits blocks, their float32 scales and zero
 * points, float32 copies of the small tensors, and no embedding table (its rows are read on demand).
 */
export function estimateFuyuMemory(model: Fuyu, weights: WeightPrecision, tokens: number): MemoryEstimate {
  const { hidden_size: D, intermediate_size: F, num_hidden_layers: L, num_attention_heads: H, vocab_size: V } = model.config;
  let weightBytes = 4 * model.parameterCount;
  if (weights !== 'fp32') {
    const spec = quantSpecFor(weights);
    // As ORT holds them (see QUANT_BLOCK_SIZE): packed codes, a float32 scale and block sum per
    // block, and the cache file's scales and zero points, mapped.
    const quantizedBytes = (n: number, k: number): number => {
      const s = quantizedShape(n, k, spec);
      return n * s.blocks * (s.blobSize + 12) + (spec.symmetric ? 0 : n * s.zeroPointBytesPerRow);
    };
    const small = model.patchLength * D + D + 2 * D + L * (3 * D + D + F + D + 4 * D + 4 * model.headDim);
    weightBytes = quantizedBytes(V, D) + L * (quantizedBytes(3 * D, D) + quantizedBytes(D, D) + quantizedBytes(F, D) + quantizedBytes(D, F)) + 4 * small;
  }
  const kvCacheBytes = tokens * 2 * L * D * (weights === 'fp32' ? 4 : 2);
  // One prefill chunk's rows against every key: its MLP and one head group's scores.
  const rows = Math.min(tokens, PREFILL_CHUNK_ROWS);
  const activationBytes = 4 * (3 * rows * F + (H / attentionHeadGroups(H)) * rows * tokens);
  return { weightBytes, kvCacheBytes, activationBytes, totalBytes: weightBytes + kvCacheBytes + activationBytes };
}

/** An estimate in words, as the CLI prints it and the Fuyu tab shows it. */
export function formatMemoryEstimate(m: MemoryEstimate): string {
  return `${formatBytes(m.totalBytes)} (weights ${formatBytes(m.weightBytes)}, KV cache ${formatBytes(m.kvCacheBytes)}, activations ${formatBytes(m.activationBytes)})`;
}

export interface LoadedFuyu {
  kind: 'fuyu';
  model: Fuyu;
  checkpoint: Checkpoint;
  tokenizer: FuyuTokenizer;
  special: FuyuSpecialIds;
}

/** A FuyuForCausalLM folder: config, weights (adept or current key names) and tokenizer, all checked. */
export async function loadFuyu(checkpoint: Checkpoint): Promise<LoadedFuyu> {
  const configFile = path.join(checkpoint.dir, CONFIG_FILE);
  // adept/fuyu-8b's names (language_model.model.*, vision_embed_tokens.*, language_model.lm_head.*)
  // and the ones current transformers saves (model.language_model.*, model.vision_embed_tokens.*, lm_head.*).
  const lm = checkpoint.withPrefixes(['language_model.model.', 'model.language_model.']);
  const top = checkpoint.withPrefixes(['', 'model.', 'language_model.']);
  const model = Fuyu.load(checkpoint.config, lm, top, configFile);
  const tokenizer = await FuyuTokenizer.fromCheckpoint(checkpoint);
  const generation = await checkpoint.readJson(GENERATION_CONFIG_FILE);
  return { kind: 'fuyu', model, checkpoint, tokenizer, special: fuyuSpecialIds(tokenizer, model, generation, configFile) };
}

/**
 * The processor's ids from the tokenizer. FuyuProcessor takes `|SPEAKER|`/`|NEWLINE|` as element
 * [1] of their encoding (after the "▁" prefix piece), i.e. their own pieces, and `<s>`/`<0x04>`
 * from the vocabulary by name. Stop ids: generation_config.json's eos (what transformers' generate
 * stops on) and the tokenizer's eos (`|ENDOFTEXT|`, SPEC §5.6).
 */
export function fuyuSpecialIds(tokenizer: FuyuTokenizer, model: Fuyu, generationConfig: unknown, configFile: string): FuyuSpecialIds {
  const lookup = (token: string): number => {
    const id = tokenizer.tokenToId(token);
    if (id === undefined) throw missingImageTokenError(tokenizer.source, token);
    return id;
  };
  const imagePlaceholder = lookup('|SPEAKER|');
  const configured = model.config.image_token_id;
  check(configured === undefined || configured === imagePlaceholder,
    `says image_token_id ${configured}, but its tokenizer's |SPEAKER| token is ${imagePlaceholder}.`, configFile,
    'The tokenizer does not belong to this checkpoint.');
  const stop = new Set<number>();
  const eos = (generationConfig as { eos_token_id?: unknown } | undefined)?.eos_token_id ?? model.config.eos_token_id;
  for (const id of Array.isArray(eos) ? eos : [eos]) if (Number.isInteger(id)) stop.add(id as number);
  const tokenizerEos = tokenizer.tokenToId(tokenizer.eosToken);
  if (tokenizerEos !== undefined) stop.add(tokenizerEos);
  for (const id of stop) check(id >= 0 && id < model.config.vocab_size, `stop token id ${id} is outside the vocabulary.`, configFile);
  return {
    imagePlaceholder,
    imageNewline: lookup('|NEWLINE|'),
    bos: lookup('<s>'),
    beginningOfAnswer: lookup('<0x04>'),
    stop: [...stop],
  };
}

/** One image and prompt, laid out and ready to run. */
export interface FuyuPrompt {
  layout: FuyuLayout;
  /** `image_patches` [patchRows·patchCols, patchLength]. */
  imagePatches: Float32Array;
  /** Resized / original size: maps <box>/<point> coordinates between the original image and the model's. */
  scaleFactor: number;
}

/** The patch grid of a preprocessed image (FuyuPreprocessedImage has these fields). */
export interface FuyuPatches {
  imagePatches: Float32Array;
  patchRows: number;
  patchCols: number;
  /** `image_scale_factors` (1 when absent: the image was not resized). */
  scaleFactor?: number;
}

export interface FuyuRunOptions {
  /** Output names to compute and return (Fuyu.outputNames); default: all of them. */
  fetches?: readonly string[];
  signal?: AbortSignal;
}

export interface FuyuToken {
  /** 0 for the first generated token. */
  index: number;
  id: number;
  /**
   * The answer decoded so far (special tokens skipped; an unfinished UTF-8 byte sequence at the
   * end held back until it completes or generation ends), and what this token added to it.
   */
  text: string;
  delta: string;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Called once per generated token, in order, as soon as it is chosen. */
  onToken?: (token: FuyuToken) => void;
  signal?: AbortSignal;
  /** false: recompute the whole sequence for every token (no cache; slow, for checking). */
  useCache?: boolean;
  /** Prefill outputs to return besides what generation needs (e.g. logits, attentions.{i}). */
  prefillFetches?: readonly string[];
}

export interface FuyuGeneration {
  /** Generated ids, including a final stop token if one was produced. */
  newTokenIds: number[];
  text: string;
  /** Per generated token: the logits [V] that chose it. */
  stepLogits: Float32Array[];
  /** Why generation ended. */
  stopped: 'stop-token' | 'max-new-tokens';
  /** The requested prefill outputs. */
  prefill: Record<string, TensorData>;
  /**
   * Per layer: attention from each generated token (after the first, which the prompt's last row
   * chose) to the image patches, [steps, heads, P] and its head mean [steps, P].
   */
  generatedImageAttentions: Float32Array[];
  generatedImageAttentionsMean: Float32Array[];
}

export interface FuyuRunnerOptions {
  detail?: FuyuDetail;
  /** Default: defaultWeightPrecision(model). */
  weights?: WeightPrecision;
  /** Folder of the quantised-weights cache (int8/int4); never the model folder. */
  quantizedCacheDir?: string;
  /** Progress of the one-time conversion to int8/int4. */
  onQuantizeProgress?: (progress: QuantizeProgress) => void;
  /** Rows per run of the compact prefill (default PREFILL_CHUNK_ROWS). */
  prefillChunkRows?: number;
}

/** One loaded Fuyu in one engine; created by ModelRunner.fuyu(). */
export class FuyuRunner {
  /** `full` graphs return every intermediate; `compact` ones only what fits an 8B model. */
  readonly detail: FuyuDetail;
  /** fp32: the checkpoint's weights as they are; int8/int4: MatMulNBits blocks from the quantised cache. */
  readonly weights: WeightPrecision;
  readonly quantizedCacheDir: string;
  private quantized: Promise<QuantizedWeights> | undefined;

  constructor(
    readonly engine: InferenceEngine,
    readonly graphs: GraphCache,
    readonly loaded: LoadedFuyu,
    private readonly options: FuyuRunnerOptions = {},
  ) {
    this.detail = options.detail ?? (loaded.model.parameterCount <= FULL_DETAIL_MAX_PARAMETERS ? 'full' : 'compact');
    this.weights = options.weights ?? defaultWeightPrecision(loaded.model);
    this.quantizedCacheDir = options.quantizedCacheDir ?? defaultQuantizedDir(graphs);
  }

  /**
   * The quantised weights (int8/int4 only), converted on first use and cached on disk; later
   * runners over the same checkpoint reuse the file.
   */
  quantizedWeights(signal?: AbortSignal): Promise<QuantizedWeights> {
    check(this.weights !== 'fp32', 'this runner uses the fp32 weights of the checkpoint; there are no quantised weights.');
    if (!this.quantized) {
      const { checkpoint, model } = this.loaded;
      this.quantized = QuantizedWeights.open(checkpoint, model.quantizationPlan(), quantSpecFor(this.weights), this.quantizedCacheDir, {
        signal,
        onProgress: this.options.onQuantizeProgress,
      });
      this.quantized.catch(() => (this.quantized = undefined)); // a failed or cancelled conversion is retried next time
    }
    return this.quantized;
  }

  get model(): Fuyu {
    return this.loaded.model;
  }

  /**
   * The processor's sequence for a preprocessed image and a prompt, checked against the model:
   * the patch length, and room in the context for the prompt plus `maxNewTokens`.
   */
  prepare(image: FuyuPatches, prompt: string, maxNewTokens = 0): FuyuPrompt {
    const { patchRows, patchCols } = image;
    check(patchRows > 0 && patchCols > 0, 'the image is smaller than one patch; Fuyu needs at least one whole patch.');
    const scaleFactor = image.scaleFactor ?? 1;
    const layout = fuyuLayout(patchRows, patchCols, encodeFuyuPrompt(this.loaded.tokenizer, prompt, scaleFactor), this.loaded.special);
    return this.checked(layout, image.imagePatches, maxNewTokens, scaleFactor);
  }

  /** A prompt from processor outputs (`input_ids` [S], `image_patches` [P·patchLength]), e.g. read from a file. */
  fromProcessorOutputs(inputIds: readonly number[], imagePatches: Float32Array, maxNewTokens = 0, file?: string): FuyuPrompt {
    return this.checked(layoutFromInputIds(inputIds, this.loaded.special, file), imagePatches, maxNewTokens, 1, file);
  }

  private checked(layout: FuyuLayout, imagePatches: Float32Array, maxNewTokens: number, scaleFactor: number, file?: string): FuyuPrompt {
    const patches = layout.patchPositions.length;
    const length = this.model.patchLength;
    check(imagePatches.length === patches * length,
      `image_patches has ${imagePatches.length} values; ${layout.patchRows}×${layout.patchCols} patches of ${length} need ${patches * length}.`, file);
    const limit = this.model.config.max_position_embeddings;
    check(layout.inputIds.length + maxNewTokens <= limit,
      `the image and prompt take ${layout.inputIds.length} tokens${maxNewTokens > 0 ? ` and ${maxNewTokens} more are to be generated` : ''}, more than the model's context of ${limit} positions.`,
      undefined, 'Use a shorter prompt, a smaller image, or fewer new tokens.');
    return { layout, imagePatches, scaleFactor };
  }

  /**
   * Loads (or reuses) the sessions generate() uses: the prefill graph, and (with the cache) the
   * graph of the decoding steps, which for compact detail is the same session.
   */
  async prepareGeneration(options: { useCache?: boolean; signal?: AbortSignal } = {}): Promise<{ prefill: string; decode?: string }> {
    const prefill = await this.prepareGraph('prefill', this.detail, options.signal);
    if (options.useCache === false) return { prefill };
    // Full-detail prefill graphs return every position's tensors and take no cache, so full
    // detail decodes with the compact decode graph (a second session, affordable for small
    // models); the compact prefill graph takes the cache itself.
    return { prefill, decode: this.detail === 'compact' ? prefill : await this.prepareGraph('decode', 'compact', options.signal) };
  }

  /** Loads (or reuses) the session of one graph; returns its key. */
  async prepareGraph(kind: FuyuGraphKind, detail: FuyuDetail, signal?: AbortSignal): Promise<string> {
    const quantized = this.weights === 'fp32' ? undefined : await this.quantizedWeights(signal);
    const key = graphKey({ kind: `fuyu-${kind}`, version: FUYU_GRAPH_VERSION, detail, checkpoint: this.loaded.checkpoint.identity(), weights: quantized?.file });
    return this.graphs.loadSession(this.engine, key, async () => this.model.buildGraph(kind, detail, quantized), signal);
  }

  /** The prompt's forward pass (transformers' `model(...)` on the processor output), without batch axes. */
  async forward(prompt: FuyuPrompt, options: FuyuRunOptions = {}): Promise<Record<string, TensorData>> {
    return this.prefill(prompt, prompt.layout.inputIds, options.fetches, options.signal);
  }

  /**
   * The prompt's pass. `full` graphs run it at once (appending its keys and values to `cache`,
   * a row state, when given). The compact graph runs it in chunks of PREFILL_CHUNK_ROWS rows
   * through a row state (`cache`, or one of its own), so the activations, and the cache rows each
   * run returns, are bounded whatever the image size; its outputs are joined across chunks.
   */
  private async prefill(prompt: FuyuPrompt, ids: readonly number[], fetches: readonly string[] | undefined, signal?: AbortSignal, cache?: string): Promise<Record<string, TensorData>> {
    const compact = this.detail === 'compact';
    const all = this.model.outputNames('prefill', this.detail).filter((name) => !(compact && isCacheOutput(name)));
    const wanted = fetches ? [...fetches] : all;
    for (const name of wanted) {
      check(all.includes(name), compact && isCacheOutput(name)
        ? `the compact graph's keys and values ("${name}") stay in the engine; they are not returned.`
        : `unknown output "${name}"; this Fuyu graph has ${all.slice(0, 8).join(', ')}, ….`);
    }
    const key = await this.prepareGraph('prefill', this.detail, signal);
    if (!compact) {
      const state = cache ? { key: cache, rows: ids.length } : undefined;
      return this.engine.run(key, await this.stepFeeds(prompt, ids, 0, ids.length), wanted, signal, { state });
    }
    const own = cache ? undefined : await this.createCache(ids.length);
    try {
      const chunks: Record<string, TensorData>[] = [];
      const chunkRows = this.options.prefillChunkRows ?? PREFILL_CHUNK_ROWS;
      for (let start = 0; start < ids.length; start += chunkRows) {
        const end = Math.min(ids.length, start + chunkRows);
        const state = { key: cache ?? own!.key, rows: end - start };
        chunks.push(await this.engine.run(key, await this.stepFeeds(prompt, ids, start, end), wanted, signal, { state }));
      }
      return joinChunks(chunks, wanted);
    } finally {
      await own?.dispose();
    }
  }

  /** Inputs of the prefill graphs for rows [start, end) of `ids`: their tokens and the patches placed in them. */
  private async stepFeeds(prompt: FuyuPrompt, ids: readonly number[], start: number, end: number): Promise<Record<string, TensorData>> {
    const { layout, imagePatches } = prompt;
    const length = this.model.patchLength;
    const first = countBelow(layout.patchPositions, start);
    const last = countBelow(layout.patchPositions, end);
    const rows = ids.slice(start, end);
    return {
      ...(await this.tokenEmbeddings(rows)),
      [FUYU_IO.inputIds]: int64(rows),
      [FUYU_IO.imagePatches]: { type: 'float32', dims: [last - first, length], data: imagePatches.subarray(first * length, last * length) },
      [FUYU_IO.imagePositions]: int64(layout.patchPositions),
      [FUYU_IO.textStart]: int64([layout.textStart]),
    };
  }

  /** Quantised graphs take the embedding rows of `ids` as an input (read from the checkpoint, exact); fp32 graphs look them up themselves. */
  private async tokenEmbeddings(ids: readonly number[]): Promise<Record<string, TensorData>> {
    if (this.weights === 'fp32') return {};
    const rows = await readTableRows(this.loaded.checkpoint, this.model.tokenEmbeddingTensor, ids);
    return { [FUYU_IO.tokenEmbeddings]: { type: 'float32', dims: [ids.length, this.model.config.hidden_size], data: rows } };
  }

  /** Greedy generation (transformers' `generate(do_sample=False, num_beams=1)`), streaming tokens to `onToken`. */
  async generate(prompt: FuyuPrompt, options: GenerateOptions): Promise<FuyuGeneration> {
    const { maxNewTokens, signal, useCache = true } = options;
    check(Number.isInteger(maxNewTokens) && maxNewTokens > 0, `max new tokens must be a positive integer, got ${maxNewTokens}.`);
    const promptLength = prompt.layout.inputIds.length;
    const limit = this.model.config.max_position_embeddings;
    check(promptLength + maxNewTokens <= limit,
      `the image and prompt take ${promptLength} tokens and ${maxNewTokens} more are to be generated, more than the model's context of ${limit} positions.`,
      undefined, 'Use a shorter prompt, a smaller image, or fewer new tokens.');
    const prefillFetches = [...new Set([FUYU_IO.nextTokenLogits, ...(options.prefillFetches ?? [])])];
    const cache = useCache ? await this.createCache(promptLength + maxNewTokens) : undefined;
    try {
      return await this.generateWith(prompt, options, prefillFetches, cache?.key);
    } finally {
      await cache?.dispose();
    }
  }

  /** Generated ids as text, boxes and points in the original image's pixels. */
  answerText(prompt: FuyuPrompt, ids: readonly number[]): string {
    return decodeFuyuAnswer(this.loaded.tokenizer, ids, prompt.scaleFactor, { skipSpecialTokens: true });
  }

  /**
   * Room in the engine's worker for `rows` positions of every layer's keys and values, [rows, D]
   * each, float32 (fp32 weights) or float16 (quantised; Fuyu-8B at 400 positions: 0.24 GB),
   * allocated once.
   */
  private createCache(rows: number): Promise<{ key: string; dispose(): Promise<void> }> {
    const slots = Array.from({ length: this.model.config.num_hidden_layers }, (_, i) => [
      { input: FUYU_IO.pastKey(i), output: FUYU_IO.presentKey(i) },
      { input: FUYU_IO.pastValue(i), output: FUYU_IO.presentValue(i) },
    ]).flat();
    const type = this.weights === 'fp32' ? 'float32' : 'float16'; // as the graphs keep it (Fuyu.buildGraph)
    return this.engine.createState(`fuyu-kv-cache-${++cacheCount}`, { slots, width: this.model.config.hidden_size, capacity: rows, type });
  }

  private async generateWith(prompt: FuyuPrompt, options: GenerateOptions, prefillFetches: string[], cacheKey: string | undefined): Promise<FuyuGeneration> {
    const { maxNewTokens, signal } = options;
    const useCache = cacheKey !== undefined;
    const L = this.model.config.num_hidden_layers;
    const attentionNames = Array.from({ length: L }, (_, i) => [FUYU_IO.imageAttentions(i), FUYU_IO.imageAttentionsMean(i)]).flat();
    const extra = options.prefillFetches ?? [];
    const prefill = await this.prefill(prompt, prompt.layout.inputIds, prefillFetches, signal, cacheKey);
    let logits = prefill[FUYU_IO.nextTokenLogits]!.data as Float32Array;
    const returned: Record<string, TensorData> = {};
    for (const name of extra) returned[name] = prefill[name]!;

    const stop = new Set(this.loaded.special.stop);
    const newTokenIds: number[] = [];
    const stepLogits: Float32Array[] = [];
    const stepAttentions: Float32Array[][] = Array.from({ length: L }, () => []);
    const stepAttentionsMean: Float32Array[][] = Array.from({ length: L }, () => []);
    let text = '';
    let stopped: FuyuGeneration['stopped'] = 'max-new-tokens';
    const decodeKey = (await this.prepareGeneration({ useCache, signal })).decode;
    // The compact graph decodes too: it takes its prefill inputs, with no image patches to place
    // (new buffers every step: the feeds are transferred to the worker).
    const decodeOnly = (): Record<string, TensorData> => this.detail === 'compact'
      ? {
          [FUYU_IO.imagePatches]: { type: 'float32', dims: [0, this.model.patchLength], data: new Float32Array(0) },
          [FUYU_IO.textStart]: int64([prompt.layout.textStart]),
        }
      : {};
    for (let step = 0; ; step++) {
      const id = argmax(logits);
      newTokenIds.push(id);
      stepLogits.push(logits);
      const last = stop.has(id) || newTokenIds.length >= maxNewTokens;
      // A trailing run of byte tokens may still become a multi-byte character: stream text only up
      // to it (a prefix of every later decoding), and everything once generation ends.
      const stable = last ? newTokenIds : this.loaded.tokenizer.withoutTrailingBytes(newTokenIds);
      const shown = this.answerText(prompt, stable);
      options.onToken?.({ index: step, id, text: shown, delta: shown.slice(text.length) });
      text = shown;
      if (stop.has(id)) {
        stopped = 'stop-token';
        break;
      }
      if (newTokenIds.length >= maxNewTokens) break;
      if (decodeKey) {
        const feeds: Record<string, TensorData> = {
          ...decodeOnly(),
          ...(await this.tokenEmbeddings([id])),
          [FUYU_IO.inputIds]: int64([id]),
          [FUYU_IO.imagePositions]: int64(prompt.layout.patchPositions),
        };
        // The worker feeds the cache so far and writes this token's keys and values after it.
        const out = await this.engine.run(decodeKey, feeds, [FUYU_IO.nextTokenLogits, ...attentionNames], signal, {
          transferInputs: true,
          state: { key: cacheKey!, rows: 1 },
        });
        for (let i = 0; i < L; i++) {
          stepAttentions[i]!.push(out[FUYU_IO.imageAttentions(i)]!.data as Float32Array);
          stepAttentionsMean[i]!.push(out[FUYU_IO.imageAttentionsMean(i)]!.data as Float32Array);
        }
        logits = out[FUYU_IO.nextTokenLogits]!.data as Float32Array;
      } else {
        const out = await this.prefill(prompt, [...prompt.layout.inputIds, ...newTokenIds], [FUYU_IO.nextTokenLogits], signal);
        logits = out[FUYU_IO.nextTokenLogits]!.data as Float32Array;
      }
    }
    return {
      newTokenIds,
      text: this.answerText(prompt, newTokenIds),
      stepLogits,
      stopped,
      prefill: returned,
      generatedImageAttentions: stepAttentions.map(concat),
      generatedImageAttentionsMean: stepAttentionsMean.map(concat),
    };
  }
}

/**
 * Rows per run of the compact prefill. Each run holds its activations (the MLP's [rows, 16384]
 * for Fuyu-8B) and returns its rows of the cache; smaller chunks mean lower peaks, more runs (each
 * reads every weight once). Measured on Fuyu-8B's dimensions: see bench/fuyu8b.ts.
 */
const PREFILL_CHUNK_ROWS = 128;

function isCacheOutput(name: string): boolean {
  return name.startsWith('present.');
}

/** How many of the ascending `values` are below `limit`. */
function countBelow(values: readonly number[], limit: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! < limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The outputs of a chunked prefill as one run's: the last chunk's next-token logits; the text rows'
 * image attentions ([H, rows, P] and their mean [rows, P]) concatenated over the chunks' rows.
 */
function joinChunks(chunks: readonly Record<string, TensorData>[], names: readonly string[]): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const name of names) {
    const parts = chunks.map((c) => c[name]!);
    const last = parts[parts.length - 1]!;
    if (name === FUYU_IO.nextTokenLogits || parts.length === 1) {
      out[name] = last;
      continue;
    }
    // Rows are axis 1 of [H, rows, P], axis 0 of [rows, P].
    const axis = last.dims.length - 2;
    const outer = elementCount(last.dims.slice(0, axis));
    const inner = elementCount(last.dims.slice(axis + 1));
    const rows = parts.reduce((n, p) => n + p.dims[axis]!, 0);
    const data = new Float32Array(outer * rows * inner);
    let offset = 0;
    for (const part of parts) {
      const partRows = part.dims[axis]!;
      for (let o = 0; o < outer; o++) data.set((part.data as Float32Array).subarray(o * partRows * inner, (o + 1) * partRows * inner), (o * rows + offset) * inner);
      offset += partRows;
    }
    out[name] = { type: 'float32', dims: [...last.dims.slice(0, axis), rows, ...last.dims.slice(axis + 1)], data };
  }
  return out;
}

/** Numbers the KV caches of this process's generations (row-state keys are per engine, engines may be shared). */
let cacheCount = 0;

/** Index of the largest value; the first one on ties, as torch.argmax. */
export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function int64(values: readonly number[]): TensorData {
  return { type: 'int64', dims: [values.length], data: BigInt64Array.from(values, (v) => BigInt(v)) };
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
