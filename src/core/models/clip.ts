/**
 * CLIP (`CLIPModel` checkpoints: openai/clip-vit-base-patch32, -patch16, -large-patch14, …) as two
 * ONNX graphs, one per tower, so that text and image embeddings can be computed and cached
 * separately. Both expose every layer's hidden states and attention probabilities.
 *
 * Follows transformers' modeling_clip.py (SPEC §4):
 * - vision: Conv2d patch embedding without bias, class embedding, position embeddings
 *   (bicubically interpolated for other input sizes, SPEC §2.5), `pre_layrnorm` (whose output is
 *   hidden_states.0), pre-LN blocks, `post_layernorm` on the class token only, `visual_projection`;
 * - text: token + position embeddings, pre-LN blocks under a causal mask and the padding mask,
 *   `final_layer_norm`, pooling at the first end-of-text token, `text_projection`;
 * - both embeddings L2-normalised in the graph; logits (normalised dot products × exp(logit_scale))
 *   are left to the caller, which caches embeddings.
 *
 * The vision graph also returns MaskCLIP per-patch embeddings (SPEC §4.8) for text→image heatmaps.
 * Activations are token-major [B·N, D] so every Linear is one Gemm on the stored weight.
 */
import { check } from '../errors.js';
import { activation, batchedAttention, layerNorm, linear, l2Normalize, SUPPORTED_ACTIVATIONS } from '../onnx/blocks.js';
import { GraphBuilder, type BuiltGraph, type Value } from '../onnx/graph.js';
import { OnnxDataType } from '../onnx/proto.js';
import { interpolateBicubicTorch } from '../image/interpolate.js';
import type { CheckpointView } from '../io/checkpoint.js';
import type { PatchGrid } from './vit.js';

export interface CLIPTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: string;
  layer_norm_eps: number;
  /** Legacy configs (openai/*) say 2, which is not the real end-of-text id (SPEC §4.1). */
  eos_token_id?: number;
}

export interface CLIPVisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  image_size: number;
  patch_size: number;
  num_channels: number;
  hidden_act: string;
  layer_norm_eps: number;
}

/** The fields of config.json that define the architecture (transformers CLIPConfig). */
export interface CLIPConfig {
  model_type: 'clip';
  projection_dim: number;
  text_config: CLIPTextConfig;
  vision_config: CLIPVisionConfig;
}

/** transformers' CLIPTextConfig / CLIPVisionConfig defaults (= openai/clip-vit-base-patch32). */
const TEXT_DEFAULTS: CLIPTextConfig = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};
const VISION_DEFAULTS: CLIPVisionConfig = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  image_size: 224,
  patch_size: 32,
  num_channels: 3,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};

/** float32's most negative value: transformers' additive mask for a blocked position. */
const MASK_MIN = -3.4028234663852886e38;

export function parseCLIPConfig(raw: Record<string, unknown>, file: string): CLIPConfig {
  const section = (name: string): Record<string, unknown> => {
    const value = raw[name];
    check(value === undefined || value === null || (typeof value === 'object' && !Array.isArray(value)), `"${name}" must be an object.`, file);
    return (value ?? {}) as Record<string, unknown>;
  };
  // Old checkpoints carry *_config_dict, which overrides *_config key by key (SPEC §4.1).
  const text = { ...TEXT_DEFAULTS, ...section('text_config'), ...section('text_config_dict') } as CLIPTextConfig;
  const vision = { ...VISION_DEFAULTS, ...section('vision_config'), ...section('vision_config_dict') } as CLIPVisionConfig;
  const config: CLIPConfig = { model_type: 'clip', projection_dim: (raw['projection_dim'] as number | undefined) ?? 512, text_config: text, vision_config: vision };

  const positive = (value: unknown, key: string): void =>
    check(Number.isInteger(value) && (value as number) > 0, `"${key}" must be a positive integer, got ${JSON.stringify(value)}.`, file);
  positive(config.projection_dim, 'projection_dim');
  for (const [name, tower] of [['text_config', text], ['vision_config', vision]] as const) {
    for (const key of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads'] as const) positive(tower[key], `${name}.${key}`);
    check(
      tower.hidden_size % tower.num_attention_heads === 0,
      `${name}.hidden_size ${tower.hidden_size} is not divisible by num_attention_heads ${tower.num_attention_heads}.`,
      file,
    );
    check(
      SUPPORTED_ACTIVATIONS.includes(tower.hidden_act),
      `${name}.hidden_act "${tower.hidden_act}" is not supported (supported: ${SUPPORTED_ACTIVATIONS.join(', ')}).`,
      file,
    );
  }
  for (const key of ['vocab_size', 'max_position_embeddings'] as const) positive(text[key], `text_config.${key}`);
  for (const key of ['image_size', 'patch_size'] as const) positive(vision[key], `vision_config.${key}`);
  check(vision.num_channels === 3, `only 3-channel (RGB) models are supported, this one has num_channels ${vision.num_channels}.`, file);
  return config;
}

type Tower = 'vision_model' | 'text_model';

/** How one graph attends: heads, the [B, T, heads, dh] split shape, and the additive mask if any. */
interface AttentionLayout {
  heads: number;
  headDim: number;
  splitShape: Value;
  mask?: Value;
}

export class CLIP {
  readonly kind = 'clip';
  /** Whether the checkpoint has each tower (a CLIPModel has both; a stripped one may not). */
  readonly hasVision: boolean;
  readonly hasText: boolean;

  private constructor(
    readonly config: CLIPConfig,
    private readonly weights: CheckpointView,
  ) {
    this.hasVision = weights.has('vision_model.embeddings.patch_embedding.weight');
    this.hasText = weights.has('text_model.embeddings.token_embedding.weight');
  }

  /** Validates every tensor of the towers present against the config before anything runs. */
  static load(rawConfig: Record<string, unknown>, weights: CheckpointView, configFile: string): CLIP {
    const clip = new CLIP(parseCLIPConfig(rawConfig, configFile), weights);
    check(
      clip.hasVision || clip.hasText,
      "has neither a vision tower ('vision_model.*') nor a text tower ('text_model.*').",
      weights.checkpoint.weightsSource,
      'Choose the folder of a CLIPModel checkpoint.',
    );
    clip.checkShapes();
    return clip;
  }

  /** Native grid side (image_size / patch_size), e.g. 7 for B/32 at 224. */
  get nativeGrid(): number {
    return Math.floor(this.config.vision_config.image_size / this.config.vision_config.patch_size);
  }

  /** The longest token sequence the text tower takes (77 for OpenAI's models). */
  get maxTextLength(): number {
    return this.config.text_config.max_position_embeddings;
  }

  grid(height: number, width: number): PatchGrid {
    const p = this.config.vision_config.patch_size;
    const rows = Math.floor(height / p);
    const cols = Math.floor(width / p);
    return { height, width, patchSize: p, rows, cols, prefixTokens: 1, tokens: 1 + rows * cols };
  }

  /** Throws a UserError naming the weights file when the checkpoint has no text tower. */
  requireText(): void {
    check(this.hasText, "has no text tower (no 'text_model.*' tensors), so it cannot embed text.", this.weights.checkpoint.weightsSource,
      'Use a full CLIPModel checkpoint for text, zero-shot labels and heatmaps.');
  }

  requireVision(): void {
    check(this.hasVision, "has no vision tower (no 'vision_model.*' tensors), so it cannot embed images.", this.weights.checkpoint.weightsSource,
      'Use a full CLIPModel checkpoint for images.');
  }

  /** exp(logit_scale) in float32, the temperature HF multiplies cosine similarities by. */
  async logitScale(): Promise<number> {
    const [value] = await this.weights.readF32('logit_scale');
    return Math.fround(Math.exp(value!));
  }

  /** Output names of the vision graph, in graph order. */
  visionOutputNames(): string[] {
    const L = this.config.vision_config.num_hidden_layers;
    return [
      ...Array.from({ length: L + 1 }, (_, i) => `vision_model.hidden_states.${i}`),
      ...Array.from({ length: L }, (_, i) => `vision_model.attentions.${i}`),
      'vision_model.pooler_output',
      'image_embeds',
      'vision_model.patch_embeds',
    ];
  }

  /** Output names of the text graph, in graph order. */
  textOutputNames(): string[] {
    const L = this.config.text_config.num_hidden_layers;
    return [
      ...Array.from({ length: L + 1 }, (_, i) => `text_model.hidden_states.${i}`),
      ...Array.from({ length: L }, (_, i) => `text_model.attentions.${i}`),
      'text_model.last_hidden_state',
      'text_model.pooler_output',
      'text_embeds',
    ];
  }

  private checkShapes(): void {
    const w = this.weights;
    const P = this.config.projection_dim;
    if (this.hasVision) {
      const { hidden_size: D, patch_size: p, num_channels: C } = this.config.vision_config;
      w.expectShape('vision_model.embeddings.class_embedding', [D]);
      w.expectShape('vision_model.embeddings.patch_embedding.weight', [D, C, p, p]);
      w.expectShape('vision_model.embeddings.position_embedding.weight', [this.nativeGrid ** 2 + 1, D]);
      for (const ln of ['pre_layrnorm', 'post_layernorm']) this.expectLayerNorm(`vision_model.${ln}`, D);
      this.checkEncoder('vision_model', this.config.vision_config);
      w.expectShape('visual_projection.weight', [P, D]);
    }
    if (this.hasText) {
      const { hidden_size: D, vocab_size: V, max_position_embeddings: T } = this.config.text_config;
      w.expectShape('text_model.embeddings.token_embedding.weight', [V, D]);
      w.expectShape('text_model.embeddings.position_embedding.weight', [T, D]);
      this.expectLayerNorm('text_model.final_layer_norm', D);
      this.checkEncoder('text_model', this.config.text_config);
      w.expectShape('text_projection.weight', [P, D]);
    }
    if (this.hasVision && this.hasText) w.expectShape('logit_scale', []);
  }

  private checkEncoder(tower: Tower, cfg: CLIPTextConfig | CLIPVisionConfig): void {
    const w = this.weights;
    const { hidden_size: D, intermediate_size: F } = cfg;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const l = `${tower}.encoder.layers.${i}`;
      for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
        w.expectShape(`${l}.self_attn.${proj}.weight`, [D, D]);
        w.expectShape(`${l}.self_attn.${proj}.bias`, [D]);
      }
      this.expectLayerNorm(`${l}.layer_norm1`, D);
      this.expectLayerNorm(`${l}.layer_norm2`, D);
      w.expectShape(`${l}.mlp.fc1.weight`, [F, D]);
      w.expectShape(`${l}.mlp.fc1.bias`, [F]);
      w.expectShape(`${l}.mlp.fc2.weight`, [D, F]);
      w.expectShape(`${l}.mlp.fc2.bias`, [D]);
    }
  }

  private expectLayerNorm(prefix: string, D: number): void {
    this.weights.expectShape(`${prefix}.weight`, [D]);
    this.weights.expectShape(`${prefix}.bias`, [D]);
  }

  /**
   * The vision tower for one input size, any batch. Input `pixel_values` [B, 3, height, width];
   * outputs `vision_model.hidden_states.{i}` [B, N, D], `vision_model.attentions.{i}` [B, heads, N, N],
   * `vision_model.pooler_output` [B, D], `image_embeds` [B, P] (unit length) and
   * `vision_model.patch_embeds` [B, rows·cols, P] (MaskCLIP, unit length).
   */
  async buildVisionGraph(height: number, width: number): Promise<BuiltGraph> {
    this.requireVision();
    const cfg = this.config.vision_config;
    const grid = this.grid(height, width);
    check(grid.rows > 0 && grid.cols > 0, `input ${width}×${height} is smaller than one ${cfg.patch_size}×${cfg.patch_size} patch.`);
    const g = new GraphBuilder(`clip-vision-${width}x${height}`);
    const w = this.weights;
    const { hidden_size: D, num_attention_heads: H, num_hidden_layers: L } = cfg;
    const N = grid.tokens;
    const P = this.config.projection_dim;

    const pixels = g.input('pixel_values', OnnxDataType.FLOAT, ['batch', cfg.num_channels, height, width]);
    const embeddings = await this.visionEmbeddings(g, pixels, grid); // [B, N, D]
    const h0 = layerNorm(g, embeddings, w.get('vision_model.pre_layrnorm.weight'), w.get('vision_model.pre_layrnorm.bias'), cfg.layer_norm_eps, 'vision_model.hidden_states.0');
    g.output(h0, OnnxDataType.FLOAT, ['batch', N, D]);

    const tokensShape = g.ints('tokens', [-1, N, D]);
    const layout: AttentionLayout = { heads: H, headDim: D / H, splitShape: g.ints('split_heads', [-1, N, H, D / H]) };
    let h = g.op('Reshape', [h0, g.ints('flat', [-1, D])]); // [B·N, D]
    let lastValues = h;
    for (let i = 0; i < L; i++) {
      const out = g.scoped(`vision.${i}`, () => this.block(g, 'vision_model', cfg, h, i, layout));
      h = out.h; // [B·N, D]
      lastValues = out.values;
      g.output(g.op('Reshape', [h, tokensShape], undefined, { name: `vision_model.hidden_states.${i + 1}` }), OnnxDataType.FLOAT, ['batch', N, D]);
    }
    for (let i = 0; i < L; i++) g.output(`vision_model.attentions.${i}`, OnnxDataType.FLOAT, ['batch', H, N, N]);

    const last = `vision_model.hidden_states.${L}`; // [B, N, D]
    const cls = g.op('Gather', [last, g.constant('cls_index', BigInt64Array.of(0n), [])], { axis: 1 }); // [B, D]
    const postLN = (x: Value, name?: string): Value =>
      layerNorm(g, x, w.get('vision_model.post_layernorm.weight'), w.get('vision_model.post_layernorm.bias'), cfg.layer_norm_eps, name);
    const pooled = postLN(cls, 'vision_model.pooler_output'); // [B, D]
    g.output(pooled, OnnxDataType.FLOAT, ['batch', D]);
    const imageEmbeds = l2Normalize(g, linear(g, pooled, w.get('visual_projection.weight')), 'image_embeds'); // [B, P]
    g.output(imageEmbeds, OnnxDataType.FLOAT, ['batch', P]);

    // MaskCLIP (SPEC §4.8): the last block's value path only — out_proj(v_proj(layer_norm1(x))) —
    // then the head the class token goes through, applied to every patch token.
    const lastLayer = `vision_model.encoder.layers.${L - 1}.self_attn.out_proj`;
    const valuePath = linear(g, lastValues, w.get(`${lastLayer}.weight`), w.get(`${lastLayer}.bias`)); // [B·N, D]
    const projected = linear(g, postLN(valuePath), w.get('visual_projection.weight')); // [B·N, P]
    const perToken = g.op('Reshape', [projected, g.ints('tokens_proj', [-1, N, P])]); // [B, N, P]
    const patches = g.op('Slice', [perToken, g.ints('first_patch', [1]), g.ints('end', [N]), g.ints('token_axis', [1])]); // [B, rows·cols, P]
    g.output(l2Normalize(g, patches, 'vision_model.patch_embeds'), OnnxDataType.FLOAT, ['batch', N - 1, P]);

    return g.build(undefined, { model_type: 'clip', tower: 'vision', input: `${width}x${height}` });
  }

  /** Patch embedding + class embedding + position embeddings → [B, N, D] (before pre_layrnorm). */
  private async visionEmbeddings(g: GraphBuilder, pixels: Value, grid: PatchGrid): Promise<Value> {
    const w = this.weights;
    const D = this.config.vision_config.hidden_size;
    const p = this.config.vision_config.patch_size;
    const conv = g.op('Conv', [pixels, g.weight(w.get('vision_model.embeddings.patch_embedding.weight'))], {
      kernel_shape: [p, p],
      strides: [p, p],
    }); // [B, D, rows, cols]
    const patches = g.op('Transpose', [g.op('Reshape', [conv, g.ints('flat_grid', [0, D, grid.rows * grid.cols])])], { perm: [0, 2, 1] }); // [B, rows·cols, D]
    const batch = g.op('Slice', [g.op('Shape', [pixels]), g.ints('batch_start', [0]), g.ints('batch_end', [1])]); // [1] = [B]
    const clsRow = g.op('Reshape', [g.weight(w.get('vision_model.embeddings.class_embedding')), g.ints('cls_row', [1, 1, D])]); // [1, 1, D]
    const cls = g.op('Expand', [clsRow, g.op('Concat', [batch, g.ints('cls_tail', [1, D])], { axis: 0 })]); // [B, 1, D]
    const tokens = g.op('Concat', [cls, patches], { axis: 1 }); // [B, N, D]
    return g.op('Add', [tokens, await this.positionEmbeddings(g, grid)]); // [B, N, D]
  }

  /**
   * Position embeddings [N, D]: the checkpoint's table at the native grid; for any other input
   * size the patch rows resized with PyTorch's bicubic as transformers' `interpolate_pos_encoding`
   * does (skipped, like there, when the patch count matches and the input is square).
   */
  private async positionEmbeddings(g: GraphBuilder, grid: PatchGrid): Promise<Value> {
    const name = 'vision_model.embeddings.position_embedding.weight';
    const D = this.config.vision_config.hidden_size;
    const G = this.nativeGrid;
    if (grid.rows * grid.cols === G * G && grid.height === grid.width) return g.weight(this.weights.get(name)); // [N, D]
    const table = await this.weights.readF32(name); // [1 + G·G, D]
    const resized = interpolateBicubicTorch(table.subarray(D), G, G, D, grid.rows, grid.cols); // [rows·cols, D]
    const out = new Float32Array(grid.tokens * D);
    out.set(table.subarray(0, D));
    out.set(resized, D);
    return g.constant('position_embedding_interpolated', out, [grid.tokens, D]);
  }

  /**
   * The text tower, any batch and length ≤ max_position_embeddings. Inputs `input_ids` and
   * `attention_mask` [B, T] (int64) and `pooled_positions` [B] (the row's first end-of-text
   * index); outputs `text_model.hidden_states.{i}` [B, T, D], `text_model.attentions.{i}`
   * [B, heads, T, T], `text_model.last_hidden_state` [B, T, D], `text_model.pooler_output` [B, D]
   * and `text_embeds` [B, P] (unit length).
   */
  buildTextGraph(): BuiltGraph {
    this.requireText();
    const cfg = this.config.text_config;
    const g = new GraphBuilder('clip-text');
    const w = this.weights;
    const { hidden_size: D, num_attention_heads: H, num_hidden_layers: L } = cfg;
    const P = this.config.projection_dim;

    const ids = g.input('input_ids', OnnxDataType.INT64, ['batch', 'sequence']);
    const mask = g.input('attention_mask', OnnxDataType.INT64, ['batch', 'sequence']);
    const pooledPositions = g.input('pooled_positions', OnnxDataType.INT64, ['batch']);

    const shape = g.op('Shape', [ids]); // [2] = [B, T]
    const length = g.op('Slice', [shape, g.ints('seq_start', [1]), g.ints('seq_end', [2])]); // [1] = [T]
    const tokens = g.op('Gather', [g.weight(w.get('text_model.embeddings.token_embedding.weight')), ids]); // [B, T, D]
    const positions = g.op('Slice', [g.weight(w.get('text_model.embeddings.position_embedding.weight')), g.ints('pos_start', [0]), length, g.ints('pos_axis', [0])]); // [T, D]
    const h0 = g.op('Add', [tokens, positions], undefined, { name: 'text_model.hidden_states.0' }); // [B, T, D]
    g.output(h0, OnnxDataType.FLOAT, ['batch', 'sequence', D]);

    const tokensShape = g.op('Concat', [shape, g.ints('width', [D])], { axis: 0 }); // [3] = [B, T, D]
    const layout: AttentionLayout = {
      heads: H,
      headDim: D / H,
      splitShape: g.op('Concat', [shape, g.ints('heads', [H, D / H])], { axis: 0 }), // [4] = [B, T, H, dh]
      mask: this.textMask(g, mask, length),
    };
    let h = g.op('Reshape', [h0, g.ints('flat', [-1, D])]); // [B·T, D]
    for (let i = 0; i < L; i++) {
      h = g.scoped(`text.${i}`, () => this.block(g, 'text_model', cfg, h, i, layout)).h; // [B·T, D]
      g.output(g.op('Reshape', [h, tokensShape], undefined, { name: `text_model.hidden_states.${i + 1}` }), OnnxDataType.FLOAT, ['batch', 'sequence', D]);
    }
    for (let i = 0; i < L; i++) g.output(`text_model.attentions.${i}`, OnnxDataType.FLOAT, ['batch', H, 'sequence', 'sequence']);

    const normed = layerNorm(g, h, w.get('text_model.final_layer_norm.weight'), w.get('text_model.final_layer_norm.bias'), cfg.layer_norm_eps); // [B·T, D]
    const last = g.op('Reshape', [normed, tokensShape], undefined, { name: 'text_model.last_hidden_state' }); // [B, T, D]
    g.output(last, OnnxDataType.FLOAT, ['batch', 'sequence', D]);
    const at = g.op('Unsqueeze', [pooledPositions, g.ints('last_axis', [-1])]); // [B, 1]
    const pooled = g.op('GatherND', [last, at], { batch_dims: 1 }, { name: 'text_model.pooler_output' }); // [B, D]
    g.output(pooled, OnnxDataType.FLOAT, ['batch', D]);
    const textEmbeds = l2Normalize(g, linear(g, pooled, w.get('text_projection.weight')), 'text_embeds'); // [B, P]
    g.output(textEmbeds, OnnxDataType.FLOAT, ['batch', P]);

    return g.build(undefined, { model_type: 'clip', tower: 'text' });
  }

  /**
   * The additive mask [B, 1, T, T]: a query may attend to keys at or before it (causal) that are
   * not padding (attention_mask 0). transformers adds its two masks, so a key blocked twice gets
   * −inf rather than float32's minimum; softmax gives exactly 0 either way.
   */
  private textMask(g: GraphBuilder, attentionMask: Value, length: Value): Value {
    const int64 = (hint: string, v: bigint): Value => g.constant(hint, BigInt64Array.of(v), []);
    const T = g.op('Squeeze', [length, g.ints('squeeze_axis', [0])]); // scalar
    const index = g.op('Range', [int64('zero', 0n), T, int64('one', 1n)]); // [T]
    const keys = g.op('Unsqueeze', [index, g.ints('key_axis', [0])]); // [1, T]
    const queries = g.op('Unsqueeze', [index, g.ints('query_axis', [1])]); // [T, 1]
    const future = g.op('Greater', [keys, queries]); // [T, T]
    const padding = g.op('Unsqueeze', [g.op('Equal', [attentionMask, int64('pad', 0n)]), g.ints('mask_axes', [1, 2])]); // [B, 1, 1, T]
    const blocked = g.op('Or', [future, padding]); // [B, 1, T, T]
    return g.op('Where', [blocked, g.scalar('mask_min', MASK_MIN), g.scalar('mask_zero', 0)]); // [B, 1, T, T]
  }

  /**
   * One pre-LN encoder layer (CLIPEncoderLayer): h + out_proj(attn(layer_norm1(h))), then
   * + fc2(act(fc1(layer_norm2(·)))). Also returns v_proj's output, which MaskCLIP reuses.
   */
  private block(g: GraphBuilder, tower: Tower, cfg: CLIPTextConfig | CLIPVisionConfig, h: Value, i: number, layout: AttentionLayout): { h: Value; values: Value } {
    const w = this.weights;
    const l = `${tower}.encoder.layers.${i}`;
    const proj = (name: string, x: Value): Value => linear(g, x, w.get(`${l}.${name}.weight`), w.get(`${l}.${name}.bias`));
    const x = layerNorm(g, h, w.get(`${l}.layer_norm1.weight`), w.get(`${l}.layer_norm1.bias`), cfg.layer_norm_eps); // [B·N, D]
    const q = proj('self_attn.q_proj', x);
    const k = proj('self_attn.k_proj', x);
    const v = proj('self_attn.v_proj', x);
    const { context } = batchedAttention(g, q, k, v, { ...layout, probsName: `${tower}.attentions.${i}` }); // [B·N, D]
    const h1 = g.op('Add', [h, proj('self_attn.out_proj', context)]);
    const y = layerNorm(g, h1, w.get(`${l}.layer_norm2.weight`), w.get(`${l}.layer_norm2.bias`), cfg.layer_norm_eps);
    const mlp = proj('mlp.fc2', activation(g, proj('mlp.fc1', y), cfg.hidden_act)); // [B·N, D]
    return { h: g.op('Add', [h1, mlp]), values: v };
  }
}

/**
 * Where the text tower pools each row of a [B, T] batch: the first `eosId`; without a known
 * end-of-text id, the first largest id (transformers' legacy `argmax(input_ids)`, which finds
 * `<|endoftext|>` in OpenAI's vocabulary). A row without it pools at 0, as argmax of all-false does.
 */
export function poolingPositions(inputIds: BigInt64Array, dims: readonly [number, number], eosId: number | undefined): BigInt64Array {
  const [B, T] = dims;
  const out = new BigInt64Array(B);
  for (let b = 0; b < B; b++) {
    const row = inputIds.subarray(b * T, (b + 1) * T);
    let at = 0;
    if (eosId === undefined) {
      for (let t = 1; t < T; t++) if (row[t]! > row[at]!) at = t;
    } else {
      const found = row.indexOf(BigInt(eosId));
      at = found < 0 ? 0 : found;
    }
    out[b] = BigInt(at);
  }
  return out;
}
