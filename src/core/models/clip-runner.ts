/**
 * Running CLIP: one engine session per tower (the vision tower per input size, the text tower for
 * every batch and length), the full CLIPModel forward with transformers' output names, and the
 * cached paths the UI and V* use — text embeddings per (model, token ids), image embeddings per
 * (model, pixel content) — with zero-shot classification and per-patch text→image heatmaps on top.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { check, UserError } from '../errors.js';
import type { InferenceEngine, TensorData } from '../engine/client.js';
import { CONFIG_FILE, type Checkpoint } from '../io/checkpoint.js';
import { graphKey, type GraphCache } from '../onnx/cache.js';
import { ClipTokenizer, missingTokenizerError, padBatch, type Padding, type TokenBatch } from '../text/tokenizer.js';
import { CLIP, poolingPositions } from './clip.js';
import { ensembleEmbedding, patchProbabilities, patchSimilarity, similarityMatrix, type SimilarityMatrix } from './clip-heatmap.js';
import type { PatchGrid } from './vit.js';

export interface LoadedCLIP {
  kind: 'clip';
  model: CLIP;
  checkpoint: Checkpoint;
}

/** A CLIPModel folder: validates the towers it has; the tokenizer is read when text is first needed. */
export function loadCLIP(checkpoint: Checkpoint): LoadedCLIP {
  return { kind: 'clip', model: CLIP.load(checkpoint.config, checkpoint.withPrefixes(['']), path.join(checkpoint.dir, CONFIG_FILE)), checkpoint };
}

export interface CLIPRunOptions {
  /** Output names to compute and return; default: all of the tower's outputs. */
  fetches?: readonly string[];
  signal?: AbortSignal;
}

export interface CLIPVisionRun {
  grid: PatchGrid;
  /** Outputs by name, with the batch axis (as transformers returns them). */
  tensors: Record<string, TensorData>;
}

/** What the image cache holds for one preprocessed image. */
export interface ImageEmbedding {
  grid: PatchGrid;
  /** `image_embeds` [P], unit length. */
  imageEmbeds: Float32Array;
  /** MaskCLIP per-patch embeddings [rows·cols, P], unit rows, row-major over the patch grid. */
  patchEmbeds: Float32Array;
}

export interface LabelScore {
  label: string;
  /** transformers' `logits_per_image` entry (for several templates: of the ensembled embedding). */
  logit: number;
  /** Softmax over the labels. */
  probability: number;
}

export interface TextHeatmap {
  text: string;
  /** cos(patch, text) per patch, row-major [rows·cols]. */
  similarity: Float32Array;
  /** Per patch, softmax over the texts of exp(logit_scale)·cos (SPEC §7.2); all 1 for a single text. */
  probability: Float32Array;
}

/** The text tower's attention on one prompt (CLIPRunner.textAttention). */
export interface TextAttention {
  /** The text after the template. */
  prompt: string;
  ids: number[];
  /** Token strings, [T]. */
  tokens: string[];
  truncated: boolean;
  layers: number;
  heads: number;
  /** [layers, heads, T, T], row = query token. */
  attentions: Float32Array;
  /** The position the text embedding is pooled at (the end-of-text token). */
  pooledAt: number;
}

export interface PromptOptions {
  /**
   * Prompt templates, `{}` standing for the label (e.g. "a photo of a {}."). Several templates
   * are ensembled (SPEC §7.2). Default: the label as it is.
   */
  templates?: readonly string[];
  signal?: AbortSignal;
}

export interface CLIPRunnerOptions {
  /** Text embeddings kept (default 4096; a B/32 entry is 2 KB). */
  textCacheEntries?: number;
  /** Image embeddings kept (default 32; an L/14 entry at 224 is 0.8 MB). */
  imageCacheEntries?: number;
  /** Texts embedded per run of the text tower (default 64). */
  textBatch?: number;
}

/** Both towers of one loaded CLIP in one engine; created by ModelRunner.clip(), which keeps its caches. */
export class CLIPRunner {
  private readonly textCache: LruMap<string, Float32Array>;
  private readonly imageCache: LruMap<string, ImageEmbedding>;
  private readonly textBatch: number;
  private tokenizerLoad: Promise<ClipTokenizer | undefined> | undefined;
  private scaleLoad: Promise<number> | undefined;

  constructor(
    readonly engine: InferenceEngine,
    readonly graphs: GraphCache,
    readonly loaded: LoadedCLIP,
    options: CLIPRunnerOptions = {},
  ) {
    this.textCache = new LruMap(options.textCacheEntries ?? 4096);
    this.imageCache = new LruMap(options.imageCacheEntries ?? 32);
    this.textBatch = options.textBatch ?? 64;
  }

  get model(): CLIP {
    return this.loaded.model;
  }

  /** The checkpoint's tokenizer; a UserError naming the folder if it has none. */
  async tokenizer(): Promise<ClipTokenizer> {
    this.tokenizerLoad ??= ClipTokenizer.fromCheckpoint(this.loaded.checkpoint);
    const tokenizer = await this.tokenizerLoad.catch((err: unknown) => {
      this.tokenizerLoad = undefined; // a fixed file is picked up next time
      throw err;
    });
    if (!tokenizer) throw missingTokenizerError(this.loaded.checkpoint.dir);
    return tokenizer;
  }

  /** Token ids of `texts` as one batch, each cut to the model's context (see ClipTokenizer.encode). */
  async tokenize(texts: readonly string[], padding: Padding = 'longest'): Promise<TokenBatch & { truncated: boolean[] }> {
    this.model.requireText();
    return (await this.tokenizer()).encodeBatch(texts, this.model.maxTextLength, padding);
  }

  /** exp(logit_scale), read once. */
  logitScale(): Promise<number> {
    this.scaleLoad ??= this.model.logitScale();
    return this.scaleLoad;
  }

  /** Loads (or reuses) the vision session for one input size; returns its key. */
  async prepareVision(height: number, width: number, signal?: AbortSignal): Promise<string> {
    const key = graphKey({ kind: 'clip-vision', checkpoint: this.loaded.checkpoint.identity(), height, width });
    return this.graphs.loadSession(this.engine, key, () => this.model.buildVisionGraph(height, width), signal);
  }

  /** Loads (or reuses) the text session; returns its key. */
  async prepareText(signal?: AbortSignal): Promise<string> {
    const key = graphKey({ kind: 'clip-text', checkpoint: this.loaded.checkpoint.identity() });
    return this.graphs.loadSession(this.engine, key, async () => this.model.buildTextGraph(), signal);
  }

  /** The vision tower on `pixelValues` float32 [B, 3, H, W]. */
  async runVision(pixelValues: TensorData, options: CLIPRunOptions = {}): Promise<CLIPVisionRun> {
    this.model.requireVision();
    check(
      pixelValues.type === 'float32' && pixelValues.dims.length === 4 && pixelValues.dims[0]! > 0 && pixelValues.dims[1] === 3,
      `pixel_values must be float32 [B, 3, H, W], got ${pixelValues.type} [${pixelValues.dims.join(', ')}].`,
    );
    const [, , height, width] = pixelValues.dims as [number, number, number, number];
    const key = await this.prepareVision(height, width, options.signal);
    const fetches = checkFetches(options.fetches, this.model.visionOutputNames());
    const tensors = await this.engine.run(key, { pixel_values: pixelValues }, fetches, options.signal);
    return { grid: this.model.grid(height, width), tensors };
  }

  /** The text tower on a [B, T] batch of ids (T ≤ max_position_embeddings). */
  async runText(batch: TokenBatch, options: CLIPRunOptions = {}): Promise<Record<string, TensorData>> {
    this.model.requireText();
    const [B, T] = batch.dims;
    const { vocab_size: V, max_position_embeddings: maxT } = this.model.config.text_config;
    check(B > 0 && T > 0, `input_ids must be a non-empty [B, T] batch, got [${B}, ${T}].`);
    check(T <= maxT, `input_ids has ${T} tokens per row, more than this model's ${maxT} positions (max_position_embeddings).`, undefined,
      'Tokenize with truncation to the model context.');
    check(batch.inputIds.length === B * T && batch.attentionMask.length === B * T, `input_ids and attention_mask must both hold ${B}×${T} values.`);
    for (const id of batch.inputIds) check(id >= 0n && id < BigInt(V), `token id ${id} is outside the vocabulary (vocab_size ${V}).`);
    const key = await this.prepareText(options.signal);
    const fetches = checkFetches(options.fetches, this.model.textOutputNames());
    const feeds: Record<string, TensorData> = {
      input_ids: { type: 'int64', dims: [B, T], data: batch.inputIds },
      attention_mask: { type: 'int64', dims: [B, T], data: batch.attentionMask },
      pooled_positions: { type: 'int64', dims: [B], data: poolingPositions(batch.inputIds, [B, T], await this.eosId()) },
    };
    return this.engine.run(key, feeds, fetches, options.signal);
  }

  /**
   * Everything transformers' CLIPModel returns with output_attentions and output_hidden_states,
   * under its names (DESIGN §3): `logits_per_image` [I, T], `logits_per_text` [T, I],
   * `image_embeds`, `text_embeds`, `{vision,text}_model.{hidden_states,attentions}.{i}`,
   * `{vision,text}_model.{last_hidden_state,pooler_output}`. Either input may be absent; then only
   * the other tower's outputs (and no logits) are returned.
   */
  async forward(pixelValues: TensorData | undefined, batch: TokenBatch | undefined, signal?: AbortSignal): Promise<Record<string, TensorData>> {
    const out: Record<string, TensorData> = {};
    if (pixelValues) {
      const vision = await this.runVision(pixelValues, { fetches: this.model.visionOutputNames().filter((n) => n !== 'vision_model.patch_embeds'), signal });
      Object.assign(out, vision.tensors);
      // transformers' last_hidden_state is the last layer's output (no LayerNorm on the sequence).
      out['vision_model.last_hidden_state'] = vision.tensors[`vision_model.hidden_states.${this.model.config.vision_config.num_hidden_layers}`]!;
    }
    if (batch) Object.assign(out, await this.runText(batch, { signal }));
    const images = out['image_embeds'];
    const texts = out['text_embeds'];
    if (images && texts) {
      const I = images.dims[0]!;
      const T = texts.dims[0]!;
      const { logits } = similarityMatrix(rowsOf(images), rowsOf(texts), await this.logitScale());
      // logits_per_text is the transpose: [T, I].
      const perText = new Float32Array(T * I);
      for (let i = 0; i < I; i++) for (let t = 0; t < T; t++) perText[t * I + i] = logits[i * T + t]!;
      out['logits_per_image'] = { type: 'float32', dims: [I, T], data: logits };
      out['logits_per_text'] = { type: 'float32', dims: [T, I], data: perText };
    }
    return out;
  }

  /** Unit-length `text_embeds` of each text, cached per token ids; misses run in batches. */
  async embedTexts(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    this.model.requireText();
    const tokenizer = await this.tokenizer();
    const P = this.model.config.projection_dim;
    const found = new Map<string, Float32Array>();
    const missing = new Map<string, number[]>();
    const keys = texts.map((text) => {
      const ids = tokenizer.encode(text, this.model.maxTextLength).ids;
      const key = ids.join(',');
      const cached = this.textCache.get(key);
      if (cached) found.set(key, cached);
      else missing.set(key, ids);
      return key;
    });
    const pending = [...missing];
    for (let start = 0; start < pending.length; start += this.textBatch) {
      const chunk = pending.slice(start, start + this.textBatch);
      const tensors = await this.runText(padBatch(chunk.map(([, ids]) => ids), tokenizer.padId), { fetches: ['text_embeds'], signal });
      const embeds = tensors['text_embeds']!.data as Float32Array;
      chunk.forEach(([key], b) => {
        const embed = embeds.slice(b * P, (b + 1) * P);
        found.set(key, embed);
        this.textCache.set(key, embed);
      });
    }
    return keys.map((key) => found.get(key)!);
  }

  /**
   * `image_embeds` and MaskCLIP patch embeddings of one image (`pixelValues` [1, 3, H, W]),
   * cached per pixel content.
   */
  async embedImage(pixelValues: TensorData, signal?: AbortSignal): Promise<ImageEmbedding> {
    check(pixelValues.dims[0] === 1, `embedImage takes one image ([1, 3, H, W]), got [${pixelValues.dims.join(', ')}].`);
    const data = pixelValues.data as Float32Array;
    const key = createHash('sha256')
      .update(pixelValues.dims.join('x'))
      .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
      .digest('hex');
    const cached = this.imageCache.get(key);
    if (cached) return cached;
    const run = await this.runVision(pixelValues, { fetches: ['image_embeds', 'vision_model.patch_embeds'], signal });
    const embedding: ImageEmbedding = {
      grid: run.grid,
      imageEmbeds: run.tensors['image_embeds']!.data as Float32Array,
      patchEmbeds: run.tensors['vision_model.patch_embeds']!.data as Float32Array,
    };
    this.imageCache.set(key, embedding);
    return embedding;
  }

  /**
   * Zero-shot classification of one image over `labels`: each label through the templates,
   * logits as transformers' `logits_per_image`, probabilities by softmax. Labels keep their order.
   */
  async zeroShot(pixelValues: TensorData, labels: readonly string[], options: PromptOptions = {}): Promise<LabelScore[]> {
    check(labels.length > 0, 'zero-shot classification needs at least one label.', undefined, 'Give the candidate labels (e.g. --text "a cat" --text "a dog").');
    const { logits, probabilities } = await this.similarityMatrix([pixelValues], labels, options);
    return labels.map((label, i) => ({ label, logit: logits[i]!, probability: probabilities[i]! }));
  }

  /**
   * Text→image heatmaps of one image on its patch grid: per text, the cosine similarity of every
   * MaskCLIP patch embedding with the text embedding, and the per-patch softmax over the texts.
   */
  async heatmaps(pixelValues: TensorData, texts: readonly string[], options: PromptOptions = {}): Promise<{ grid: PatchGrid; maps: TextHeatmap[] }> {
    check(texts.length > 0, 'a heatmap needs at least one text.');
    const textEmbeds = await this.labelEmbeddings(texts, options);
    const image = await this.embedImage(pixelValues, options.signal);
    const similarities = textEmbeds.map((e) => patchSimilarity(image.patchEmbeds, e));
    const probabilities = patchProbabilities(similarities, await this.logitScale());
    return { grid: image.grid, maps: texts.map((text, k) => ({ text, similarity: similarities[k]!, probability: probabilities[k]! })) };
  }

  /**
   * Every image against every label: rows the images (each `pixelValues` [1, 3, H, W], embedded
   * through the image cache), columns the labels through the templates as in zeroShot; row i is
   * zeroShot(images[i], labels).
   */
  async similarityMatrix(images: readonly TensorData[], labels: readonly string[], options: PromptOptions = {}): Promise<SimilarityMatrix> {
    check(images.length > 0 && labels.length > 0, 'a similarity matrix needs at least one image and one text.');
    const textEmbeds = await this.labelEmbeddings(labels, options);
    const imageEmbeds: Float32Array[] = [];
    for (const pixels of images) imageEmbeds.push((await this.embedImage(pixels, options.signal)).imageEmbeds);
    return similarityMatrix(imageEmbeds, textEmbeds, await this.logitScale());
  }

  /**
   * The text tower's attention on one text (put into `template`, default as it is), unpadded:
   * the tokens as the tokenizer spells them and every layer's [heads, T, T] (causal: row q
   * attends to keys ≤ q). CLIP pools the text at `pooledAt`, the end-of-text token.
   */
  async textAttention(text: string, template = '{}', signal?: AbortSignal): Promise<TextAttention> {
    check(template.includes('{}'), `the prompt template "${template}" has no "{}" where the text goes.`);
    const prompt = template.replaceAll('{}', text);
    const tokenizer = await this.tokenizer();
    const { ids, truncated } = tokenizer.encode(prompt, this.model.maxTextLength);
    const batch = padBatch([ids], tokenizer.padId);
    const L = this.model.config.text_config.num_hidden_layers;
    const H = this.model.config.text_config.num_attention_heads;
    const names = Array.from({ length: L }, (_, i) => `text_model.attentions.${i}`);
    const tensors = await this.runText(batch, { fetches: names, signal });
    const T = ids.length;
    // Each text_model.attentions.{i} is [1, H, T, T]: with one row the batch axis changes nothing in the flat data.
    const attentions = new Float32Array(L * H * T * T);
    names.forEach((name, l) => attentions.set(tensors[name]!.data as Float32Array, l * H * T * T));
    const pooledAt = Number(poolingPositions(batch.inputIds, batch.dims, await this.eosId())[0]);
    return { prompt, ids, tokens: tokenizer.tokens(ids), truncated, layers: L, heads: H, attentions, pooledAt };
  }

  /**
   * One unit embedding per label: the template ensemble of SPEC §7.2 (a single template: that
   * prompt's embedding). Cached through embedTexts; public for the V* search model.
   */
  async labelEmbeddings(labels: readonly string[], options: PromptOptions): Promise<Float32Array[]> {
    const templates = options.templates ?? ['{}'];
    check(templates.length > 0, 'give at least one prompt template.');
    for (const t of templates) check(t.includes('{}'), `the prompt template "${t}" has no "{}" where the label goes.`);
    const prompts = labels.flatMap((label) => templates.map((t) => t.replaceAll('{}', label)));
    const embeds = await this.embedTexts(prompts, options.signal);
    return labels.map((_, i) => ensembleEmbedding(embeds.slice(i * templates.length, (i + 1) * templates.length)));
  }

  /**
   * The id the text tower pools at: the tokenizer's end-of-text token; without a tokenizer,
   * config's eos_token_id unless it is the legacy 2 (then undefined: pool at the largest id).
   */
  private async eosId(): Promise<number | undefined> {
    this.tokenizerLoad ??= ClipTokenizer.fromCheckpoint(this.loaded.checkpoint);
    const tokenizer = await this.tokenizerLoad.catch(() => undefined);
    if (tokenizer) return tokenizer.eosId;
    const configured = this.model.config.text_config.eos_token_id;
    return configured === undefined || configured === 2 ? undefined : configured;
  }
}

/** The rows of a [B, P] float32 tensor, as views. */
function rowsOf(t: TensorData): Float32Array[] {
  const [B, P] = t.dims as [number, number];
  return Array.from({ length: B }, (_, b) => (t.data as Float32Array).subarray(b * P, (b + 1) * P));
}

/** `requested` checked against a graph's outputs (all of them when undefined). */
function checkFetches(requested: readonly string[] | undefined, all: readonly string[]): string[] {
  if (!requested) return [...all];
  for (const name of requested) {
    if (!all.includes(name)) throw new UserError(`unknown output "${name}"; this tower has ${all.join(', ')}.`);
  }
  return [...requested];
}

/** A Map that forgets its least recently used entries beyond `capacity`. */
class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly capacity: number) {}

  has(key: K): boolean {
    return this.map.has(key);
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
  }
}
