/**
 * ViT (and DeiT) image classifiers from Hugging Face checkpoints, as ONNX graphs that expose
 * every layer's hidden states and attention probabilities.
 *
 * Follows transformers' modeling_vit.py (SPEC §3): Conv2d patch embedding, [CLS] (+ DeiT's
 * distillation token), learned position embeddings (bicubically interpolated for other input
 * sizes, SPEC §2.5), pre-LN blocks, final LayerNorm, linear classifier on the [CLS] token.
 */
import { check } from '../errors.js';
import { activation, attention, layerNorm, linear } from '../onnx/blocks.js';
import { GraphBuilder, type BuiltGraph, type Value } from '../onnx/graph.js';
import { OnnxDataType } from '../onnx/proto.js';
import { interpolateBicubicTorch } from '../image/interpolate.js';
import type { CheckpointView } from '../io/checkpoint.js';

/** The fields of config.json that define the architecture (transformers ViTConfig). */
export interface ViTConfig {
  model_type: 'vit' | 'deit';
  architectures?: string[];
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string;
  layer_norm_eps: number;
  image_size: number;
  patch_size: number;
  num_channels: number;
  qkv_bias: boolean;
  id2label?: Record<string, string>;
}

/** transformers' ViTConfig defaults (= google/vit-base-patch16-224). */
const VIT_DEFAULTS: Omit<ViTConfig, 'model_type'> = {
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: 'gelu',
  layer_norm_eps: 1e-12,
  image_size: 224,
  patch_size: 16,
  num_channels: 3,
  qkv_bias: true,
};

export function parseViTConfig(raw: Record<string, unknown>, file: string): ViTConfig {
  const config = { ...VIT_DEFAULTS, ...raw } as ViTConfig;
  for (const key of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'image_size', 'patch_size'] as const) {
    check(Number.isInteger(config[key]) && config[key] > 0, `"${key}" must be a positive integer, got ${JSON.stringify(config[key])}.`, file);
  }
  check(
    config.hidden_size % config.num_attention_heads === 0,
    `hidden_size ${config.hidden_size} is not divisible by num_attention_heads ${config.num_attention_heads}.`,
    file,
  );
  check(config.num_channels === 3, `only 3-channel (RGB) models are supported, this one has num_channels ${config.num_channels}.`, file);
  return config;
}

/** Names and shapes of what a ViT graph returns; dims without the batch axis. */
export interface ViTOutputs {
  logits?: { dims: [number] };
  hiddenStates: { name: string; dims: [number, number] }[];
  attentions: { name: string; dims: [number, number, number] }[];
}

/** Token layout of one input size: which sequence index is which patch. */
export interface PatchGrid {
  /** Input size in pixels (after preprocessing). */
  height: number;
  width: number;
  patchSize: number;
  rows: number;
  cols: number;
  /** Tokens before the first patch ([CLS], DeiT's distillation token). */
  prefixTokens: number;
  /** Sequence length = prefixTokens + rows·cols. */
  tokens: number;
}

export class ViT {
  readonly kind = 'vit';
  private readonly prefixTokens: number;
  private readonly hasClassifier: boolean;
  private readonly distilled: boolean;

  private constructor(
    readonly config: ViTConfig,
    private readonly weights: CheckpointView,
  ) {
    this.distilled = weights.has('embeddings.distillation_token');
    this.prefixTokens = this.distilled ? 2 : 1;
    this.hasClassifier = weights.has('classifier.weight') || weights.has('cls_classifier.weight');
  }

  /** Validates every tensor the graph needs against the config before anything runs. */
  static load(rawConfig: Record<string, unknown>, weights: CheckpointView, configFile: string): ViT {
    const config = parseViTConfig(rawConfig, configFile);
    const vit = new ViT(config, weights);
    vit.checkShapes();
    return vit;
  }

  /** Native grid side (image_size / patch_size), e.g. 14 for ViT-B/16 at 224. */
  get nativeGrid(): number {
    return Math.floor(this.config.image_size / this.config.patch_size);
  }

  get labels(): string[] {
    const n = this.numLabels;
    return Array.from({ length: n }, (_, i) => this.config.id2label?.[String(i)] ?? `LABEL_${i}`);
  }

  private get numLabels(): number {
    if (!this.hasClassifier) return 0;
    const head = this.weights.has('classifier.weight') ? 'classifier.weight' : 'cls_classifier.weight';
    return this.weights.get(head).shape[0];
  }

  grid(height: number, width: number): PatchGrid {
    const p = this.config.patch_size;
    const rows = Math.floor(height / p);
    const cols = Math.floor(width / p);
    return { height, width, patchSize: p, rows, cols, prefixTokens: this.prefixTokens, tokens: this.prefixTokens + rows * cols };
  }

  private checkShapes(): void {
    const { hidden_size: D, intermediate_size: F, patch_size: p, num_channels: C, num_hidden_layers: L } = this.config;
    const w = this.weights;
    const n = this.nativeGrid ** 2 + this.prefixTokens;
    w.expectShape('embeddings.cls_token', [1, 1, D]);
    if (this.distilled) w.expectShape('embeddings.distillation_token', [1, 1, D]);
    w.expectShape('embeddings.position_embeddings', [1, n, D]);
    w.expectShape('embeddings.patch_embeddings.projection.weight', [D, C, p, p]);
    w.expectShape('embeddings.patch_embeddings.projection.bias', [D]);
    for (let i = 0; i < L; i++) {
      const l = `encoder.layer.${i}`;
      for (const proj of ['query', 'key', 'value']) {
        w.expectShape(`${l}.attention.attention.${proj}.weight`, [D, D]);
        if (this.config.qkv_bias) w.expectShape(`${l}.attention.attention.${proj}.bias`, [D]);
      }
      w.expectShape(`${l}.attention.output.dense.weight`, [D, D]);
      w.expectShape(`${l}.intermediate.dense.weight`, [F, D]);
      w.expectShape(`${l}.output.dense.weight`, [D, F]);
      for (const ln of ['layernorm_before', 'layernorm_after']) w.expectShape(`${l}.${ln}.weight`, [D]);
    }
    w.expectShape('layernorm.weight', [D]);
    for (const head of ['classifier', 'cls_classifier', 'distillation_classifier']) {
      if (w.has(`${head}.weight`)) w.expectShape(`${head}.weight`, [this.numLabels, D]);
    }
  }

  outputs(height: number, width: number): ViTOutputs {
    const { tokens } = this.grid(height, width);
    const D = this.config.hidden_size;
    const H = this.config.num_attention_heads;
    return {
      logits: this.hasClassifier ? { dims: [this.numLabels] } : undefined,
      hiddenStates: Array.from({ length: this.config.num_hidden_layers + 1 }, (_, i) => ({ name: `hidden_states.${i}`, dims: [tokens, D] })),
      attentions: Array.from({ length: this.config.num_hidden_layers }, (_, i) => ({ name: `attentions.${i}`, dims: [H, tokens, tokens] })),
    };
  }

  /**
   * The ONNX graph for one input size. Input `pixel_values` [1, 3, height, width]; outputs
   * `logits` [1, labels], `hidden_states.{i}` [N, D] and `attentions.{i}` [heads, N, N].
   */
  async buildGraph(height: number, width: number): Promise<BuiltGraph> {
    const cfg = this.config;
    const grid = this.grid(height, width);
    check(grid.rows > 0 && grid.cols > 0, `input ${width}×${height} is smaller than one ${cfg.patch_size}×${cfg.patch_size} patch.`);
    const g = new GraphBuilder(`vit-${width}x${height}`);
    const w = this.weights;
    const D = cfg.hidden_size;

    const pixels = g.input('pixel_values', OnnxDataType.FLOAT, [1, cfg.num_channels, height, width]);
    let h = await this.embeddings(g, pixels, grid);

    const headDim = D / cfg.num_attention_heads;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      h = g.scoped(`layer.${i}`, () => this.block(g, h, i, headDim));
    }
    const outs = this.outputs(height, width);
    for (const o of [...outs.hiddenStates.slice(1), ...outs.attentions]) g.output(o.name, OnnxDataType.FLOAT, o.dims);

    const normed = layerNorm(g, h, w.get('layernorm.weight'), w.get('layernorm.bias'), cfg.layer_norm_eps, 'last_hidden_state');
    g.output(normed, OnnxDataType.FLOAT, [grid.tokens, D]);
    if (this.hasClassifier) {
      const cls = g.op('Slice', [normed, g.ints('start', [0]), g.ints('end', [1]), g.ints('axis', [0])]); // [1, D]
      let logits: Value;
      if (w.has('classifier.weight')) {
        logits = linear(g, cls, w.get('classifier.weight'), w.get('classifier.bias'), 'logits');
      } else {
        // DeiTForImageClassificationWithTeacher: mean of the [CLS] head and the distillation-token head.
        const dist = g.op('Slice', [normed, g.ints('start', [1]), g.ints('end', [2]), g.ints('axis', [0])]); // [1, D]
        const a = linear(g, cls, w.get('cls_classifier.weight'), w.get('cls_classifier.bias'));
        const b = linear(g, dist, w.get('distillation_classifier.weight'), w.get('distillation_classifier.bias'));
        logits = g.op('Mul', [g.op('Add', [a, b]), g.scalar('half', 0.5)], undefined, { name: 'logits' });
      }
      g.output(logits, OnnxDataType.FLOAT, [1, this.numLabels]);
    }
    return g.build(undefined, { model_type: cfg.model_type, input: `${width}x${height}` });
  }

  /** Patch embedding + prefix tokens + position embeddings → hidden_states.0 [N, D]. */
  private async embeddings(g: GraphBuilder, pixels: Value, grid: PatchGrid): Promise<Value> {
    const cfg = this.config;
    const w = this.weights;
    const D = cfg.hidden_size;
    const p = cfg.patch_size;
    const conv = g.op('Conv', [pixels, g.weight(w.get('embeddings.patch_embeddings.projection.weight')), g.weight(w.get('embeddings.patch_embeddings.projection.bias'))], {
      kernel_shape: [p, p],
      strides: [p, p],
    }); // [1, D, rows, cols]
    const patches = g.op('Transpose', [g.op('Reshape', [conv, g.ints('flat_grid', [D, grid.rows * grid.cols])])], { perm: [1, 0] }); // [rows·cols, D]
    const rowOf = (name: string) => g.op('Reshape', [g.weight(w.get(name)), g.ints('row', [1, D])]); // [1, D]
    const prefix = [rowOf('embeddings.cls_token')];
    if (this.distilled) prefix.push(rowOf('embeddings.distillation_token'));
    const tokens = g.op('Concat', [...prefix, patches], { axis: 0 }); // [N, D]
    const positions = await this.positionEmbeddings(g, grid);
    const h0 = g.op('Add', [tokens, positions], undefined, { name: 'hidden_states.0' });
    g.output(h0, OnnxDataType.FLOAT, [grid.tokens, D]); // [N, D]
    return h0;
  }

  /**
   * Position embeddings [N, D]. At the native grid they are the checkpoint's tensor; at any other
   * input size the patch rows are resized with PyTorch's bicubic (A = −0.75, align_corners=False,
   * target *size*, as transformers' interpolate_pos_encoding does), computed here once per size.
   * Like transformers, interpolation is skipped when the patch count matches and the input is square.
   */
  private async positionEmbeddings(g: GraphBuilder, grid: PatchGrid): Promise<Value> {
    const D = this.config.hidden_size;
    const G = this.nativeGrid;
    const native = grid.rows * grid.cols === G * G && grid.height === grid.width;
    if (native) return g.op('Reshape', [g.weight(this.weights.get('embeddings.position_embeddings')), g.ints('tokens', [grid.tokens, D])]); // [N, D]
    const table = await this.weights.readF32('embeddings.position_embeddings'); // [1, prefix + G·G, D]
    const prefixLen = this.prefixTokens * D;
    const resized = interpolateBicubicTorch(table.subarray(prefixLen), G, G, D, grid.rows, grid.cols); // [rows·cols, D]
    const out = new Float32Array(grid.tokens * D);
    out.set(table.subarray(0, prefixLen));
    out.set(resized, prefixLen);
    return g.constant('position_embeddings_interpolated', out, [grid.tokens, D]);
  }

  /** One pre-LN encoder block: h + Attn(LN(h)), then + MLP(LN(·)). */
  private block(g: GraphBuilder, h: Value, i: number, headDim: number): Value {
    const cfg = this.config;
    const w = this.weights;
    const l = `encoder.layer.${i}`;
    const bias = (name: string) => (cfg.qkv_bias ? w.get(name) : undefined);
    const x = layerNorm(g, h, w.get(`${l}.layernorm_before.weight`), w.get(`${l}.layernorm_before.bias`), cfg.layer_norm_eps);
    const q = linear(g, x, w.get(`${l}.attention.attention.query.weight`), bias(`${l}.attention.attention.query.bias`)); // [N, D]
    const k = linear(g, x, w.get(`${l}.attention.attention.key.weight`), bias(`${l}.attention.attention.key.bias`));
    const v = linear(g, x, w.get(`${l}.attention.attention.value.weight`), bias(`${l}.attention.attention.value.bias`));
    const { context } = attention(g, q, k, v, { heads: cfg.num_attention_heads, headDim, probsName: `attentions.${i}` });
    const attnOut = linear(g, context, w.get(`${l}.attention.output.dense.weight`), w.get(`${l}.attention.output.dense.bias`));
    const h1 = g.op('Add', [h, attnOut]);
    const y = layerNorm(g, h1, w.get(`${l}.layernorm_after.weight`), w.get(`${l}.layernorm_after.bias`), cfg.layer_norm_eps);
    const mlp = activation(g, linear(g, y, w.get(`${l}.intermediate.dense.weight`), w.get(`${l}.intermediate.dense.bias`)), cfg.hidden_act);
    const out = linear(g, mlp, w.get(`${l}.output.dense.weight`), w.get(`${l}.output.dense.bias`));
    return g.op('Add', [h1, out], undefined, { name: `hidden_states.${i + 1}` });
  }
}
