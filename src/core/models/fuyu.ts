/**
 * Fuyu (adept/fuyu-8b): image patches as words in a Persimmon decoder, as ONNX graphs with a KV
 * cache, following transformers' modeling_fuyu.py / modeling_persimmon.py and FuyuProcessor
 * (SPEC §5).
 *
 * The sequence is laid out as FuyuProcessor does it: per patch row one image-placeholder token per
 * patch, then one image-newline token; then BOS, the prompt, the beginning-of-answer token. The
 * placeholder rows of the token embeddings are replaced by `vision_embed_tokens(patch)`; position
 * comes only from (partial) rotary embeddings over the flat sequence.
 *
 * Two graphs per model: `prefill` (the whole prompt with the image, from an empty cache) and
 * `decode` (new tokens after a cache of past keys/values). Activations are token-major [T, D]
 * (batch 1); cached keys/values are token-major too, [past, D]. A step outputs only its own rows
 * of the cache ([T, D]); the caller keeps the cache (the engine's row state, where ORT writes the new
 * rows in place), so the whole cache is never copied out of a run.
 *
 * The `compact` prefill graph (large models) takes the cache too and serves both steps: prefill
 * with an empty past, decoding with no image patches. Each ORT session holds its own pre-packed
 * copy of the weights, so one graph for both steps is one copy of Fuyu-8B's ≈5 GB instead of two.
 */
import { UserError, check } from '../errors.js';
import { SUPPORTED_ACTIVATIONS, activation, attention, layerNorm, linear } from '../onnx/blocks.js';
import { GraphBuilder, type BuiltGraph, type Value, type WeightRef } from '../onnx/graph.js';
import { OnnxDataType } from '../onnx/proto.js';
import type { CheckpointView } from '../io/checkpoint.js';
import { QUANTIZED_OPSETS, type QuantizationPlan, type QuantizedWeights } from './quantize.js';

/** The fields of config.json that define the architecture (FuyuConfig + its Persimmon text_config). */
export interface FuyuConfig {
  model_type: 'fuyu';
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  hidden_act: string;
  layer_norm_eps: number;
  max_position_embeddings: number;
  qk_layernorm: boolean;
  rope_theta: number;
  partial_rotary_factor: number;
  vocab_size: number;
  patch_size: number;
  num_channels: number;
  /** transformers ≥ 4.4x scatters patch embeddings where input_ids == image_token_id. */
  image_token_id?: number;
  bos_token_id?: number;
  eos_token_id?: number | number[];
}

/** transformers' FuyuConfig defaults (= adept/fuyu-8b, SPEC §5.1). */
const FUYU_DEFAULTS: Omit<FuyuConfig, 'model_type'> = {
  hidden_size: 4096,
  intermediate_size: 16384,
  num_hidden_layers: 36,
  num_attention_heads: 64,
  hidden_act: 'relu2',
  layer_norm_eps: 1e-5,
  max_position_embeddings: 16384,
  qk_layernorm: true,
  rope_theta: 25000,
  partial_rotary_factor: 0.5,
  vocab_size: 262144,
  patch_size: 30,
  num_channels: 3,
};

/** Language-model fields, which `text_config` (model_type persimmon) overrides when present. */
const TEXT_FIELDS = [
  'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'hidden_act', 'layer_norm_eps',
  'max_position_embeddings', 'qk_layernorm', 'rope_theta', 'partial_rotary_factor', 'vocab_size',
] as const;

export function parseFuyuConfig(raw: Readonly<Record<string, unknown>>, file: string): FuyuConfig {
  const config = { ...FUYU_DEFAULTS, ...raw } as FuyuConfig & Record<string, unknown>;
  const text = raw['text_config'];
  if (typeof text === 'object' && text !== null) {
    for (const key of TEXT_FIELDS) {
      const value = (text as Record<string, unknown>)[key];
      if (value !== undefined) (config as Record<string, unknown>)[key] = value;
    }
  }
  // Current transformers spell the RoPE base inside rope_parameters (SPEC §5.1).
  for (const source of [raw, text]) {
    const params = (source as Record<string, unknown> | undefined)?.['rope_parameters'] as Record<string, unknown> | undefined;
    if (typeof params?.['rope_theta'] === 'number') config.rope_theta = params['rope_theta'];
  }
  for (const key of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size', 'patch_size', 'max_position_embeddings'] as const) {
    check(Number.isInteger(config[key]) && config[key] > 0, `"${key}" must be a positive integer, got ${JSON.stringify(config[key])}.`, file);
  }
  check(config.hidden_size % config.num_attention_heads === 0,
    `hidden_size ${config.hidden_size} is not divisible by num_attention_heads ${config.num_attention_heads}.`, file);
  check(config.partial_rotary_factor > 0 && config.partial_rotary_factor <= 1,
    `"partial_rotary_factor" must be in (0, 1], got ${config.partial_rotary_factor}.`, file);
  check(SUPPORTED_ACTIVATIONS.includes(config.hidden_act),
    `hidden_act "${config.hidden_act}" is not supported (supported: ${SUPPORTED_ACTIVATIONS.join(', ')}).`, file);
  check(config.num_channels === 3, `only 3-channel (RGB) models are supported, this one has num_channels ${config.num_channels}.`, file);
  return config;
}

// ---------------------------------------------------------------------------------------------
// Token layout (FuyuProcessor)

/** The processor's token ids, looked up in the checkpoint's tokenizer (never hard-coded). */
export interface FuyuSpecialIds {
  /** `|SPEAKER|`: one per image patch, replaced by the patch's embedding. */
  imagePlaceholder: number;
  /** `|NEWLINE|`: after each patch row. */
  imageNewline: number;
  /** `<s>`: after the image block. */
  bos: number;
  /** `<0x04>`: after the prompt; the answer follows it. */
  beginningOfAnswer: number;
  /** Generation stops at any of these (generation_config.json's eos and the tokenizer's eos). */
  stop: number[];
}

/** What one sequence position holds (for drawing the layout). */
export type FuyuSlot =
  | { kind: 'patch'; row: number; col: number; /** raster index r·cols + c */ patch: number }
  | { kind: 'newline'; row: number }
  | { kind: 'bos' }
  | { kind: 'prompt'; /** index into the prompt's tokens */ index: number }
  | { kind: 'beginning-of-answer' };

export interface FuyuLayout {
  patchRows: number;
  patchCols: number;
  /** `input_ids` of the prompt sequence (length S). */
  inputIds: number[];
  /** slots[t] says what position t holds. */
  slots: FuyuSlot[];
  /** Sequence index of each patch, in raster order ([patchRows·patchCols]). */
  patchPositions: number[];
  /** Sequence index of the BOS token: rows before it are the image block. */
  textStart: number;
  /**
   * FuyuProcessor's `image_patches_indices`: k at the k-th placeholder, −1 elsewhere, with 10
   * trailing −1 slots it reserves for generation, capped at 16 384 (SPEC §5.3).
   */
  imagePatchesIndices: number[];
}

/** FuyuProcessor's reserve after the prompt, and the length it caps `image_patches_indices` at (HF behaviour). */
const PROCESSOR_GENERATION_SLOTS = 10;
const PROCESSOR_MAX_POSITIONS = 16384;

/** The sequence FuyuProcessor builds for one image of rows×cols patches and a tokenized prompt (SPEC §5.3). */
export function fuyuLayout(patchRows: number, patchCols: number, promptIds: readonly number[], ids: FuyuSpecialIds): FuyuLayout {
  const inputIds: number[] = [];
  const slots: FuyuSlot[] = [];
  const patchPositions: number[] = [];
  for (let row = 0; row < patchRows; row++) {
    for (let col = 0; col < patchCols; col++) {
      patchPositions.push(inputIds.length);
      inputIds.push(ids.imagePlaceholder);
      slots.push({ kind: 'patch', row, col, patch: row * patchCols + col });
    }
    inputIds.push(ids.imageNewline);
    slots.push({ kind: 'newline', row });
  }
  const textStart = inputIds.length;
  inputIds.push(ids.bos);
  slots.push({ kind: 'bos' });
  promptIds.forEach((id, index) => {
    inputIds.push(id);
    slots.push({ kind: 'prompt', index });
  });
  inputIds.push(ids.beginningOfAnswer);
  slots.push({ kind: 'beginning-of-answer' });

  const imagePatchesIndices = new Array<number>(Math.min(inputIds.length + PROCESSOR_GENERATION_SLOTS, PROCESSOR_MAX_POSITIONS)).fill(-1);
  patchPositions.forEach((t, k) => {
    if (t < imagePatchesIndices.length) imagePatchesIndices[t] = k;
  });
  return { patchRows, patchCols, inputIds, slots, patchPositions, textStart, imagePatchesIndices };
}

/**
 * The layout of a processor-made `input_ids` (e.g. from a `--pixel-values` file): the image block
 * (rows of placeholders, each ended by a newline), then BOS, the prompt, beginning-of-answer.
 */
export function layoutFromInputIds(inputIds: readonly number[], ids: FuyuSpecialIds, file?: string): FuyuLayout {
  let t = 0;
  let cols = -1;
  let rows = 0;
  while (t < inputIds.length && (inputIds[t] === ids.imagePlaceholder || inputIds[t] === ids.imageNewline)) {
    let n = 0;
    while (inputIds[t] === ids.imagePlaceholder) {
      n++;
      t++;
    }
    check(inputIds[t] === ids.imageNewline && n > 0 && (cols < 0 || n === cols),
      `input_ids has no regular image block at position ${t}: every patch row must have the same number of |SPEAKER| tokens, then one |NEWLINE|.`, file);
    cols = n;
    rows++;
    t++;
  }
  check(rows > 0, 'input_ids does not start with an image block (|SPEAKER| … |NEWLINE| rows).', file);
  check(inputIds[t] === ids.bos && inputIds[inputIds.length - 1] === ids.beginningOfAnswer && inputIds.length >= t + 2,
    'input_ids must continue after the image block with <s>, the prompt and <0x04>.', file);
  const layout = fuyuLayout(rows, cols, inputIds.slice(t + 1, -1), ids);
  return layout;
}

// ---------------------------------------------------------------------------------------------
// Graphs

/** `full`: every position's logits, hidden states and attentions (small models, parity). `compact`: what an 8B model can afford. */
export type FuyuDetail = 'full' | 'compact';
export type FuyuGraphKind = 'prefill' | 'decode';

/** Names of graph inputs and outputs (the runner and the CLI dump rely on them). */
export const FUYU_IO = {
  inputIds: 'input_ids',
  /** float [T, D]: the rows of embed_tokens for input_ids, fed by the caller in quantised graphs (see Fuyu.buildGraph). */
  tokenEmbeddings: 'token_embeddings',
  imagePatches: 'image_patches',
  /** int64 [P]: the sequence index of each patch (FuyuLayout.patchPositions). */
  imagePositions: 'image_positions',
  /** int64 [1]: first text row (FuyuLayout.textStart); rows from here on are the text rows. */
  textStart: 'text_start',
  nextTokenLogits: 'next_token_logits',
  pastKey: (i: number) => `past.${i}.key`,
  pastValue: (i: number) => `past.${i}.value`,
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
  /** [heads, text rows, P]: attention from text/generated tokens to the image patches. */
  imageAttentions: (i: number) => `image_attentions.${i}`,
  /** [text rows, P]: the same, averaged over heads. */
  imageAttentionsMean: (i: number) => `image_attentions_mean.${i}`,
} as const;

/**
 * Head groups of the compact graph's attention: each group's scores are [H/groups, T, past + T],
 * so Fuyu-8B at S ≈ 2,340 holds ≈90 MB of scores at a time instead of 1.4 GB per layer. Heads,
 * not query rows, are split because their number is fixed: a one-token decoding step computes
 * no padding rows (query chunks of a 1-row step would be 16 padded rows).
 */
export const ATTENTION_HEAD_GROUPS = 16;

/** The number of head groups for `heads` heads: the largest divisor of `heads` up to ATTENTION_HEAD_GROUPS. */
export function attentionHeadGroups(heads: number): number {
  for (let groups = Math.min(ATTENTION_HEAD_GROUPS, heads); groups > 1; groups--) if (heads % groups === 0) return groups;
  return 1;
}

/** float32 min, the additive mask value transformers uses for disallowed keys. */
const MASK_MIN = -3.4028234663852886e38;

export class Fuyu {
  readonly kind = 'fuyu';
  readonly headDim: number;
  /** Rotary dims per head: int(headDim · partial_rotary_factor). */
  readonly rotaryDims: number;

  private constructor(
    readonly config: FuyuConfig,
    /** Language-model tensors (`embed_tokens`, `layers.*`, `final_layernorm`). */
    private readonly lm: CheckpointView,
    /** `vision_embed_tokens.*` and `lm_head.weight`. */
    private readonly top: CheckpointView,
  ) {
    this.headDim = config.hidden_size / config.num_attention_heads;
    this.rotaryDims = Math.floor(this.headDim * config.partial_rotary_factor);
  }

  /**
   * Validates every tensor against the config. `lm` resolves `layers.0.…` under the checkpoint's
   * language-model prefix, `top` resolves `vision_embed_tokens.…` and `lm_head.weight`.
   */
  static load(rawConfig: Readonly<Record<string, unknown>>, lm: CheckpointView, top: CheckpointView, configFile: string): Fuyu {
    const fuyu = new Fuyu(parseFuyuConfig(rawConfig, configFile), lm, top);
    check(fuyu.rotaryDims % 2 === 0 && fuyu.rotaryDims > 0,
      `head_dim ${fuyu.headDim} × partial_rotary_factor ${fuyu.config.partial_rotary_factor} gives ${fuyu.rotaryDims} rotary dims; it must be a positive even number.`, configFile);
    fuyu.checkShapes();
    return fuyu;
  }

  /** Values per flattened patch: patch_size² · channels. */
  get patchLength(): number {
    return this.config.patch_size ** 2 * this.config.num_channels;
  }

  /** The stored name of the token-embedding table (quantised graphs take its rows as an input). */
  get tokenEmbeddingTensor(): string {
    return this.lm.get('embed_tokens.weight').name;
  }

  /** Number of parameters (for choosing defaults by model size). */
  get parameterCount(): number {
    const { hidden_size: D, intermediate_size: F, vocab_size: V, num_hidden_layers: L } = this.config;
    return 2 * V * D + L * (4 * D * D + 2 * D * F) + this.patchLength * D;
  }

  private checkShapes(): void {
    const { hidden_size: D, intermediate_size: F, vocab_size: V, num_hidden_layers: L } = this.config;
    const dh = this.headDim;
    const { lm, top } = this;
    top.expectShape('vision_embed_tokens.weight', [D, this.patchLength]);
    top.expectShape('vision_embed_tokens.bias', [D]);
    top.expectShape('lm_head.weight', [V, D]);
    lm.expectShape('embed_tokens.weight', [V, D]);
    for (let i = 0; i < L; i++) {
      const l = `layers.${i}`;
      for (const ln of ['input_layernorm', 'post_attention_layernorm']) {
        lm.expectShape(`${l}.${ln}.weight`, [D]);
        lm.expectShape(`${l}.${ln}.bias`, [D]);
      }
      lm.expectShape(`${l}.self_attn.query_key_value.weight`, [3 * D, D]);
      lm.expectShape(`${l}.self_attn.query_key_value.bias`, [3 * D]);
      if (this.config.qk_layernorm) {
        for (const ln of ['q_layernorm', 'k_layernorm']) {
          lm.expectShape(`${l}.self_attn.${ln}.weight`, [dh]);
          lm.expectShape(`${l}.self_attn.${ln}.bias`, [dh]);
        }
      }
      lm.expectShape(`${l}.self_attn.dense.weight`, [D, D]);
      lm.expectShape(`${l}.self_attn.dense.bias`, [D]);
      lm.expectShape(`${l}.mlp.dense_h_to_4h.weight`, [F, D]);
      lm.expectShape(`${l}.mlp.dense_h_to_4h.bias`, [F]);
      lm.expectShape(`${l}.mlp.dense_4h_to_h.weight`, [D, F]);
      lm.expectShape(`${l}.mlp.dense_4h_to_h.bias`, [D]);
    }
    lm.expectShape('final_layernorm.weight', [D]);
    lm.expectShape('final_layernorm.bias', [D]);
  }

  /**
   * What a quantised graph needs: the decoder's and lm_head's linear weights as MatMulNBits blocks,
   * float32 copies of every other tensor it reads (biases, norms, the small patch projection) —
   * all in the one cache folder ORT resolves external data against. `embed_tokens` is neither:
   * its rows are looked up outside the graph and fed as `token_embeddings`.
   */
  quantizationPlan(): QuantizationPlan {
    const { lm, top } = this;
    const quantize = [top.get('lm_head.weight').name];
    const copy = ['vision_embed_tokens.weight', 'vision_embed_tokens.bias'].map((n) => top.get(n).name);
    copy.push(lm.get('final_layernorm.weight').name, lm.get('final_layernorm.bias').name);
    const norms = ['input_layernorm', 'post_attention_layernorm', ...(this.config.qk_layernorm ? ['self_attn.q_layernorm', 'self_attn.k_layernorm'] : [])];
    for (let i = 0; i < this.config.num_hidden_layers; i++) {
      const l = `layers.${i}`;
      for (const linearName of ['self_attn.query_key_value', 'self_attn.dense', 'mlp.dense_h_to_4h', 'mlp.dense_4h_to_h']) {
        quantize.push(lm.get(`${l}.${linearName}.weight`).name);
        copy.push(lm.get(`${l}.${linearName}.bias`).name);
      }
      for (const norm of norms) copy.push(lm.get(`${l}.${norm}.weight`).name, lm.get(`${l}.${norm}.bias`).name);
    }
    return { quantize, copy };
  }

  /** Output names of a graph variant (the runner checks fetches against them). */
  outputNames(kind: FuyuGraphKind, detail: FuyuDetail): string[] {
    const L = this.config.num_hidden_layers;
    const names: string[] = [FUYU_IO.nextTokenLogits];
    for (let i = 0; i < L; i++) {
      names.push(FUYU_IO.presentKey(i), FUYU_IO.presentValue(i), FUYU_IO.imageAttentions(i), FUYU_IO.imageAttentionsMean(i));
    }
    if (detail === 'full') {
      names.push('logits');
      for (let i = 0; i <= L; i++) names.push(`hidden_states.${i}`);
      for (let i = 0; i < L; i++) names.push(`attentions.${i}`);
    }
    return names;
  }

  /**
   * The ONNX graph of one variant; every dimension is symbolic, so one session serves every
   * image size and prompt. Inputs: `input_ids` int64 [T], `image_positions` int64 [P]; prefill
   * also `image_patches` float [P, patchLength] and `text_start` int64 [1]; decode also
   * `past.{i}.key|value` [past, D]. The compact prefill takes all of them and is any step: the
   * prompt in chunks of rows [past, past + T), then one new token at a time. `image_positions` and
   * `text_start` stay the prompt's; `image_patches` are the patches whose positions fall in the
   * step's rows (none when decoding), written at image_positions − past; text rows start at
   * max(text_start − past, 0).
   * Outputs (see FUYU_IO): `next_token_logits` [1, V],
   * `present.{i}.key|value` [T, D] (this step's rows of the cache, which the caller keeps),
   * `image_attentions.{i}` [H, text rows, P] and its head mean; `full` adds `logits` [T, V], `hidden_states.{i}` [T, D], `attentions.{i}` [H, T, past + T].
   *
   * With `quantized` (the cache of `quantizationPlan()`), every linear but the patch projection is
   * a MatMulNBits over 4/8-bit blocks, all weights come from the cache file, and the graph takes
   * `token_embeddings` float [T, D] (embed_tokens rows of input_ids) instead of reading the
   * 262,144-row table; `input_ids` stays an input (it gives T).
   */
  buildGraph(kind: FuyuGraphKind, detail: FuyuDetail, quantized?: QuantizedWeights): BuiltGraph {
    const cfg = this.config;
    const { hidden_size: D, num_hidden_layers: L, num_attention_heads: H, vocab_size: V } = cfg;
    const g = new GraphBuilder(`fuyu-${kind}-${detail}`);
    const full = detail === 'full';
    // The compact prefill is also the decode step (one session, one copy of the weights).
    const withPast = kind === 'decode' || !full;
    const T = withPast ? 'T' : 'S';
    const keys = withPast ? 'past_plus_T' : 'S';
    const w = new FuyuWeights(quantized);
    // Quantised (large) models keep their KV cache in float16: half the memory, a rounding of
    // 2^-11 relative, far below the 4/8-bit weights' error; fp32 models keep float32 (parity).
    const cacheType = quantized ? OnnxDataType.FLOAT16 : OnnxDataType.FLOAT;
    const pastInput = (name: string): Value => {
      const input = g.input(name, cacheType, ['past', D]);
      return cacheType === OnnxDataType.FLOAT ? input : g.op('Cast', [input], { to: OnnxDataType.FLOAT }); // [past, D]
    };

    const inputIds = g.input(FUYU_IO.inputIds, OnnxDataType.INT64, [T]);
    const imagePositions = g.input(FUYU_IO.imagePositions, OnnxDataType.INT64, ['P']);
    const scalarZero = g.constant('index0', BigInt64Array.of(0n), []);
    const count = g.op('Gather', [g.op('Shape', [inputIds]), scalarZero]); // scalar T

    let h: Value;
    let pastLength: Value;
    let textRows: Value | undefined;
    const past: { key: Value; value: Value }[] = [];
    if (!withPast) {
      const patches = g.input(FUYU_IO.imagePatches, OnnxDataType.FLOAT, ['P', this.patchLength]);
      textRows = g.input(FUYU_IO.textStart, OnnxDataType.INT64, [1]);
      const tokens = quantized
        ? g.input(FUYU_IO.tokenEmbeddings, OnnxDataType.FLOAT, [T, D])
        : g.op('Gather', [g.weight(this.lm.get('embed_tokens.weight')), inputIds], { axis: 0 }); // [S, D]
      h = this.embeddings(g, w, tokens, patches, imagePositions);
      pastLength = scalarZero;
    } else if (kind === 'prefill') {
      // Compact prefill = any step: the prompt from past [0, D], or new tokens after a cache.
      const patches = g.input(FUYU_IO.imagePatches, OnnxDataType.FLOAT, ['patches', this.patchLength]); // P, or 0 when decoding
      const textStart = g.input(FUYU_IO.textStart, OnnxDataType.INT64, [1]);
      for (let i = 0; i < L; i++) {
        past.push({ key: pastInput(FUYU_IO.pastKey(i)), value: pastInput(FUYU_IO.pastValue(i)) });
      }
      pastLength = g.op('Gather', [g.op('Shape', [past[0]!.key]), scalarZero]); // scalar past
      const tokens = quantized
        ? g.input(FUYU_IO.tokenEmbeddings, OnnxDataType.FLOAT, [T, D])
        : g.op('Gather', [g.weight(this.lm.get('embed_tokens.weight')), inputIds], { axis: 0 }); // [T, D]
      // This step's patches are those whose positions fall in its rows [past, past + T): all of
      // them in a whole prefill, some in a prefill chunk, none in a decoding step.
      const relative = g.op('Sub', [imagePositions, pastLength]); // [P]
      const inStep = g.op('And', [g.op('GreaterOrEqual', [relative, scalarZero]), g.op('Less', [relative, count])]); // [P] bool
      const rows = g.op('Compress', [relative, inStep], { axis: 0 }); // [patches]
      h = this.embeddings(g, w, tokens, patches, rows);
      // Text rows of this step: from text_start − past on (all rows when decoding).
      textRows = g.op('Max', [g.op('Sub', [textStart, pastLength]), g.ints('zero', [0])]); // [1]
    } else {
      for (let i = 0; i < L; i++) {
        past.push({ key: pastInput(FUYU_IO.pastKey(i)), value: pastInput(FUYU_IO.pastValue(i)) });
      }
      h = quantized
        ? g.op('Identity', [g.input(FUYU_IO.tokenEmbeddings, OnnxDataType.FLOAT, [T, D])], undefined, { name: 'hidden_states.0' })
        : g.op('Gather', [g.weight(this.lm.get('embed_tokens.weight')), inputIds], { axis: 0 }, { name: 'hidden_states.0' }); // [T, D]
      pastLength = g.op('Gather', [g.op('Shape', [past[0]!.key]), scalarZero]); // scalar past
    }
    if (full) g.output(h, OnnxDataType.FLOAT, [T, D]);

    const one = g.constant('one', BigInt64Array.of(1n), []);
    const queryPositions = g.op('Range', [pastLength, g.op('Add', [pastLength, count]), one]); // [T] int64
    const keyPositions = g.op('Range', [scalarZero, g.op('Add', [pastLength, count]), one]); // [past + T]
    const mask = this.causalMask(g, queryPositions, keyPositions); // [T, past + T]
    // The image keys the text rows attend to. A prefill chunk before the text has no text rows but
    // may not hold every patch's key yet: clamped, its (empty) gather stays in bounds; a step
    // with text rows holds every patch, which all come before the text.
    const lastKey = g.op('Sub', [g.op('Add', [pastLength, count]), one]); // scalar
    const imageKeys = g.op('Min', [imagePositions, lastKey]); // [P]
    const rotary = this.rotaryTables(g, queryPositions); // cos, sin: [T, 1, rotaryDims]

    for (let i = 0; i < L; i++) {
      h = g.scoped(`layer.${i}`, () => {
        const headGroups = kind === 'prefill' && !full ? attentionHeadGroups(H) : undefined;
        const out = this.decoderLayer(g, w, h, i, { mask, rotary, past: past[i], imagePositions: imageKeys, textRows, full, headGroups, cacheType });
        g.output(out.presentKey, cacheType, [T, D]);
        g.output(out.presentValue, cacheType, [T, D]);
        g.output(out.imageAttentions, OnnxDataType.FLOAT, [H, 'text_rows', 'P']);
        g.output(out.imageAttentionsMean, OnnxDataType.FLOAT, ['text_rows', 'P']);
        if (full) g.output(out.probs!, OnnxDataType.FLOAT, [H, T, keys]);
        return out.hidden;
      });
      if (full && i < L - 1) g.output(h, OnnxDataType.FLOAT, [T, D]);
    }

    // transformers returns the *normed* final state as the last hidden state (SPEC §2.7).
    const lm = this.lm;
    const normed = layerNorm(g, h, w.ref(lm, 'final_layernorm.weight'), w.ref(lm, 'final_layernorm.bias'), cfg.layer_norm_eps, full ? `hidden_states.${L}` : undefined);
    if (full) g.output(normed, OnnxDataType.FLOAT, [T, D]);
    const last = g.op('Slice', [normed, g.ints('last', [-1]), g.ints('end', [Number.MAX_SAFE_INTEGER]), g.ints('axis0', [0])]); // [1, D]
    g.output(w.linear(g, last, this.top, 'lm_head', { bias: false, name: FUYU_IO.nextTokenLogits }), OnnxDataType.FLOAT, [1, V]);
    if (full) g.output(w.linear(g, normed, this.top, 'lm_head', { bias: false, name: 'logits' }), OnnxDataType.FLOAT, [T, V]);
    const weights = quantized ? `int${quantized.spec.bits}` : 'checkpoint';
    return g.build(quantized ? QUANTIZED_OPSETS : undefined, { model_type: 'fuyu', graph: `${kind}-${detail}`, weights });
  }

  /** Token embeddings with the patch embeddings written over rows `patchRows` (int64 [P]) → hidden_states.0 [T, D]. */
  private embeddings(g: GraphBuilder, w: FuyuWeights, tokens: Value, patches: Value, patchRows: Value): Value {
    const projected = w.linear(g, patches, this.top, 'vision_embed_tokens'); // [P, D]
    const rows = g.op('Unsqueeze', [patchRows, g.ints('last_axis', [-1])]); // [P, 1]
    return g.op('ScatterND', [tokens, rows, projected], undefined, { name: 'hidden_states.0' }); // [S, D]
  }

  /** 0 where key position ≤ query position, float32 min elsewhere: [T, past + T]. */
  private causalMask(g: GraphBuilder, queryPositions: Value, keyPositions: Value): Value {
    const q = g.op('Unsqueeze', [queryPositions, g.ints('axis1', [1])]); // [T, 1]
    const k = g.op('Unsqueeze', [keyPositions, g.ints('axis0', [0])]); // [1, past + T]
    return g.op('Where', [g.op('Greater', [k, q]), g.scalar('mask_min', MASK_MIN), g.scalar('zero', 0)]); // [T, past + T]
  }

  /**
   * cos/sin of the rotary angles p·inv_freq_i for the query positions, as transformers computes
   * them in float32 (inv_freq_i = θ^(−2i/r), angles duplicated for rotate-half): [T, 1, r] each.
   */
  private rotaryTables(g: GraphBuilder, positions: Value): { cos: Value; sin: Value } {
    const r = this.rotaryDims;
    const theta = Math.fround(this.config.rope_theta);
    const invFreq = Float32Array.from({ length: r / 2 }, (_, i) => Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / r))));
    const p = g.op('Unsqueeze', [g.op('Cast', [positions], { to: OnnxDataType.FLOAT }), g.ints('axis1', [1])]); // [T, 1]
    const angles = g.op('Mul', [p, g.constant('inv_freq', invFreq, [1, r / 2])]); // [T, r/2]
    const emb = g.op('Unsqueeze', [g.op('Concat', [angles, angles], { axis: -1 }), g.ints('axis1', [1])]); // [T, 1, r]
    return { cos: g.op('Cos', [emb]), sin: g.op('Sin', [emb]) };
  }

  /** Rotate-half RoPE on the first r dims of x [T, H, dh]; the other dims pass through. */
  private applyRotary(g: GraphBuilder, x: Value, rotary: { cos: Value; sin: Value }): Value {
    const r = this.rotaryDims;
    const dh = this.headDim;
    const slice = (from: number, to: number): Value => g.op('Slice', [x, g.ints('start', [from]), g.ints('end', [to]), g.ints('axis2', [2])]);
    const x1 = slice(0, r / 2); // [T, H, r/2]
    const x2 = slice(r / 2, r);
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: 2 }); // rotate_half: [T, H, r]
    const xr = g.op('Concat', [x1, x2], { axis: 2 });
    const embedded = g.op('Add', [g.op('Mul', [xr, rotary.cos]), g.op('Mul', [rotated, rotary.sin])]); // [T, H, r]
    return r === dh ? embedded : g.op('Concat', [embedded, slice(r, dh)], { axis: 2 }); // [T, H, dh]
  }

  /** One Persimmon layer: h + dense(Attn(LN(h))), then + MLP(LN(·)); returns the cache and attention views too. */
  private decoderLayer(
    g: GraphBuilder,
    w: FuyuWeights,
    h: Value,
    i: number,
    ctx: {
      mask: Value;
      rotary: { cos: Value; sin: Value };
      past?: { key: Value; value: Value };
      imagePositions: Value;
      textRows?: Value;
      full: boolean;
      /** Attention in this many groups of heads, one after the other (no [H, T, past + T] tensor). */
      headGroups?: number;
      /** The element type of the cache rows this layer outputs (FLOAT or FLOAT16). */
      cacheType: OnnxDataType;
    },
  ): { hidden: Value; presentKey: Value; presentValue: Value; probs?: Value; imageAttentions: Value; imageAttentionsMean: Value } {
    const cfg = this.config;
    const lm = this.lm;
    const l = `layers.${i}`;
    const { hidden_size: D, num_attention_heads: H } = cfg;
    const dh = this.headDim;
    const eps = cfg.layer_norm_eps;

    const norm = (x: Value, prefix: string): Value => layerNorm(g, x, w.ref(lm, `${prefix}.weight`), w.ref(lm, `${prefix}.bias`), eps);
    const u = norm(h, `${l}.input_layernorm`);
    const fused = w.linear(g, u, lm, `${l}.self_attn.query_key_value`); // [T, 3D]
    // Rows are head-interleaved: head g owns [q(dh) | k(dh) | v(dh)] (SPEC §5.5).
    const perHead = g.op('Reshape', [fused, g.ints('split_qkv', [0, H, 3, dh])]); // [T, H, 3, dh]
    const part = (slot: number): Value => g.op('Gather', [perHead, g.constant(`slot${slot}`, BigInt64Array.of(BigInt(slot)), [])], { axis: 2 }); // [T, H, dh]
    let q = part(0);
    let k = part(1);
    if (cfg.qk_layernorm) {
      q = norm(q, `${l}.self_attn.q_layernorm`); // per head, over dh
      k = norm(k, `${l}.self_attn.k_layernorm`);
    }
    q = this.applyRotary(g, q, ctx.rotary);
    k = this.applyRotary(g, k, ctx.rotary);
    const mergeHeads = g.ints('merge_heads', [0, D]);
    const qFlat = g.op('Reshape', [q, mergeHeads]); // [T, D]
    // The cache's new rows are the outputs; the whole cache lives with the caller (the engine's row state).
    const float = ctx.cacheType === OnnxDataType.FLOAT;
    const kNew = g.op('Reshape', [k, mergeHeads], undefined, { name: float ? FUYU_IO.presentKey(i) : undefined }); // [T, D]
    const vNew = g.op('Reshape', [part(2), mergeHeads], undefined, { name: float ? FUYU_IO.presentValue(i) : undefined }); // [T, D]
    const presentKey = float ? kNew : g.op('Cast', [kNew], { to: ctx.cacheType }, { name: FUYU_IO.presentKey(i) });
    const presentValue = float ? vNew : g.op('Cast', [vNew], { to: ctx.cacheType }, { name: FUYU_IO.presentValue(i) });
    const keys = ctx.past ? g.op('Concat', [ctx.past.key, kNew], { axis: 0 }) : kNew; // [past + T, D]
    const values = ctx.past ? g.op('Concat', [ctx.past.value, vNew], { axis: 0 }) : vNew;

    const options = { heads: H, headDim: dh };
    let context: Value;
    let probs: Value | undefined;
    let imageAttentions: Value;
    if (ctx.headGroups && ctx.textRows) {
      const grouped = groupedAttention(g, qFlat, keys, values, ctx.mask, ctx.textRows, ctx.imagePositions, ctx.headGroups, options);
      context = grouped.context; // [T, D]
      imageAttentions = g.op('Identity', [grouped.imageAttentions], undefined, { name: FUYU_IO.imageAttentions(i) }); // [H, text rows, P]
    } else {
      const whole = attention(g, qFlat, keys, values, { ...options, mask: ctx.mask, probsName: ctx.full ? `attentions.${i}` : undefined }); // probs [H, T, past + T]
      context = whole.context;
      probs = whole.probs;
      // Text (and generated) rows → image patches: only [H, text rows, P] ever leaves the graph.
      const textProbs = ctx.textRows
        ? g.op('Slice', [probs, ctx.textRows, g.ints('end', [Number.MAX_SAFE_INTEGER]), g.ints('axis1', [1])]) // [H, text rows, past + T]
        : probs;
      imageAttentions = g.op('Gather', [textProbs, ctx.imagePositions], { axis: 2 }, { name: FUYU_IO.imageAttentions(i) }); // [H, text rows, P]
    }
    const attnOut = w.linear(g, context, lm, `${l}.self_attn.dense`);
    const imageAttentionsMean = g.op('ReduceMean', [imageAttentions], { axes: [0], keepdims: 0 }, { name: FUYU_IO.imageAttentionsMean(i) }); // [text rows, P]
    // ORT may run nodes that feed only graph outputs (the image attentions) at the end of the run,
    // which keeps every layer's attention probabilities alive until then (measured on Fuyu-8B's
    // dimensions: 1.8 GB per layer for a 2,351-row prefill, 100 MB per layer in chunks of 128).
    // Adding 0 × their sum to the residual makes the next layer wait for them; h + 0 is exact.
    const settled = g.op('Mul', [g.op('ReduceSum', [imageAttentionsMean], { keepdims: 0 }), g.scalar('zero', 0)]); // scalar 0
    const h1 = g.op('Add', [g.op('Add', [h, attnOut]), settled]);

    const y = norm(h1, `${l}.post_attention_layernorm`);
    const mlp = activation(g, w.linear(g, y, lm, `${l}.mlp.dense_h_to_4h`), cfg.hidden_act);
    const out = w.linear(g, mlp, lm, `${l}.mlp.dense_4h_to_h`);
    const hidden = g.op('Add', [h1, out], undefined, { name: ctx.full && i < cfg.num_hidden_layers - 1 ? `hidden_states.${i + 1}` : undefined });
    return { hidden, presentKey, presentValue, probs, imageAttentions, imageAttentionsMean };
  }
}

/**
 * Where a graph's weights come from: the checkpoint's own tensors (computed in fp32), or a
 * quantised cache, whose planned linears become MatMulNBits and whose float32 copies replace every
 * other tensor (one external-data folder).
 */
class FuyuWeights {
  constructor(private readonly quantized: QuantizedWeights | undefined) {}

  ref(view: CheckpointView, canonical: string): WeightRef {
    const stored = view.get(canonical);
    return this.quantized ? this.quantized.describe(stored.name) : stored;
  }

  /** `x · Wᵀ + b` for the Linear `prefix` (`prefix.weight`, `prefix.bias`). */
  linear(g: GraphBuilder, x: Value, view: CheckpointView, prefix: string, options: { bias?: boolean; name?: string } = {}): Value {
    const weight = view.get(`${prefix}.weight`);
    const bias = options.bias === false ? undefined : view.get(`${prefix}.bias`);
    if (this.quantized?.isQuantized(weight.name)) return this.quantized.linear(g, x, weight.name, bias?.name, options.name);
    return linear(g, x, this.ref(view, `${prefix}.weight`), bias && this.ref(view, `${prefix}.bias`), options.name);
  }
}

/**
 * `attention` computed for `groups` groups of heads in turn, so no [H, T, keys] tensor exists; each
 * group also gives its text rows' attention to the image patches. Heads are independent, so the
 * result equals the ungrouped one. Returns the context [T, D] and [H, text rows, P].
 */
function groupedAttention(
  g: GraphBuilder, q: Value, k: Value, v: Value, mask: Value, textRows: Value, imagePositions: Value, groups: number,
  options: { heads: number; headDim: number },
): { context: Value; imageAttentions: Value } {
  const { heads, headDim } = options;
  const per = heads / groups;
  const splitHeads = g.ints('split_heads', [0, heads, headDim]); // 0 = keep T
  const qh = g.op('Transpose', [g.op('Reshape', [q, splitHeads])], { perm: [1, 0, 2] }); // [H, T, dh]
  const kt = g.op('Transpose', [g.op('Reshape', [k, splitHeads])], { perm: [1, 2, 0] }); // [H, dh, keys]
  const vh = g.op('Transpose', [g.op('Reshape', [v, splitHeads])], { perm: [1, 0, 2] }); // [H, keys, dh]
  const axis0 = g.ints('axis0', [0]);
  const axis1 = g.ints('axis1', [1]);
  const toEnd = g.ints('end', [Number.MAX_SAFE_INTEGER]);
  const contexts: Value[] = [];
  const images: Value[] = [];
  for (let j = 0; j < groups; j++) {
    const from = g.ints(`heads${j * per}`, [j * per]);
    const to = g.ints(`heads${(j + 1) * per}`, [(j + 1) * per]);
    const group = (x: Value): Value => g.op('Slice', [x, from, to, axis0]);
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [group(qh), group(kt)]), g.scalar('attn_scale', headDim ** -0.5)]), mask]); // [h, T, keys]
    const probs = g.op('Softmax', [scores], { axis: -1 }); // [h, T, keys]
    contexts.push(g.op('MatMul', [probs, group(vh)])); // [h, T, dh]
    const text = g.op('Slice', [probs, textRows, toEnd, axis1]); // [h, text rows, keys]
    images.push(g.op('Gather', [text, imagePositions], { axis: 2 })); // [h, text rows, P]
  }
  const context = g.op('Concat', contexts, { axis: 0 }); // [H, T, dh]
  const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: [1, 0, 2] }), g.ints('merge_heads', [0, heads * headDim])]); // [T, D]
  return { context: merged, imageAttentions: g.op('Concat', images, { axis: 0 }) };
}

/** The error for a tokenizer without Fuyu's image tokens. */
export function missingImageTokenError(source: string, token: string): UserError {
  return new UserError(`has no "${token}" token, so it cannot lay out an image for Fuyu.`, source,
    'Use the tokenizer saved with the Fuyu checkpoint (it has |SPEAKER|, |NEWLINE| and <0x04>).');
}
