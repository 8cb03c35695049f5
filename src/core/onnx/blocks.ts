/**
 * Transformer building blocks shared by ViT, CLIP and Fuyu graphs.
 *
 * Activations are 2-D, token-major `[N, D]` (batch 1: the tool inspects one image at a time),
 * so every Linear is a single Gemm reading the PyTorch `[out, in]` weight in place (transB=1):
 * no transposed copy of the weights, and ORT pre-packs them at load.
 */
import type { GraphBuilder, Value, WeightRef } from './graph.js';

export function linear(g: GraphBuilder, x: Value, weight: WeightRef, bias?: WeightRef, name?: string): Value {
  const inputs = [x, g.weight(weight)];
  if (bias) inputs.push(g.weight(bias));
  return g.op('Gemm', inputs, { transB: 1 }, { name });
}

export function layerNorm(g: GraphBuilder, x: Value, weight: WeightRef, bias: WeightRef, eps: number, name?: string): Value {
  return g.op('LayerNormalization', [x, g.weight(weight), g.weight(bias)], { axis: -1, epsilon: { float: eps } }, { name });
}

/** Activations by their `hidden_act` name in config.json (SPEC §2.2). */
export function activation(g: GraphBuilder, x: Value, hiddenAct: string): Value {
  switch (hiddenAct) {
    case 'gelu': {
      // Exact erf GELU: 0.5·x·(1 + erf(x/√2)); ORT fuses this pattern into its Gelu kernel.
      const erf = g.op('Erf', [g.op('Div', [x, g.scalar('sqrt2', Math.SQRT2)])]);
      const onePlus = g.op('Add', [erf, g.scalar('one', 1)]);
      return g.op('Mul', [g.op('Mul', [x, onePlus]), g.scalar('half', 0.5)]);
    }
    case 'quick_gelu':
      return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.scalar('quick_gelu_alpha', 1.702)])])]);
    case 'relu2': {
      const r = g.op('Relu', [x]);
      return g.op('Mul', [r, r]);
    }
    case 'relu':
      return g.op('Relu', [x]);
    default:
      throw new Error(`unsupported hidden_act "${hiddenAct}" (supported: ${SUPPORTED_ACTIVATIONS.join(', ')})`);
  }
}

export interface AttentionOptions {
  heads: number;
  headDim: number;
  /** Additive mask broadcastable to [heads, N, N] (0 allowed, large negative disallowed). */
  mask?: Value;
  /** Name for the probabilities value, so it can be a graph output. */
  probsName?: string;
}

/**
 * Eager multi-head attention over [N, D] projections, exposing the probabilities (SPEC §2.3):
 * P_h = softmax(Q_h K_hᵀ · dh^-0.5 + M), O_h = P_h V_h, heads concatenated in order.
 * Returns the context [N, D] (before the output projection) and the probabilities [heads, N, N].
 */
export function attention(g: GraphBuilder, q: Value, k: Value, v: Value, opts: AttentionOptions): { context: Value; probs: Value } {
  const { heads, headDim } = opts;
  const splitHeads = g.ints('split_heads', [0, heads, headDim]); // 0 = keep N
  const qh = g.op('Transpose', [g.op('Reshape', [q, splitHeads])], { perm: [1, 0, 2] }); // [H, N, dh]
  const kt = g.op('Transpose', [g.op('Reshape', [k, splitHeads])], { perm: [1, 2, 0] }); // [H, dh, N]
  const vh = g.op('Transpose', [g.op('Reshape', [v, splitHeads])], { perm: [1, 0, 2] }); // [H, N, dh]
  let scores = g.op('Mul', [g.op('MatMul', [qh, kt]), g.scalar('attn_scale', headDim ** -0.5)]); // [H, N, N]
  if (opts.mask) scores = g.op('Add', [scores, opts.mask]);
  const probs = g.op('Softmax', [scores], { axis: -1 }, { name: opts.probsName }); // [H, N, N]
  const ctx = g.op('MatMul', [probs, vh]); // [H, N, dh]
  const merged = g.op('Reshape', [g.op('Transpose', [ctx], { perm: [1, 0, 2] }), g.ints('merge_heads', [0, heads * headDim])]); // [N, D]
  return { context: merged, probs };
}

/** The `hidden_act` names `activation` implements, for config checks that name the file. */
export const SUPPORTED_ACTIVATIONS: readonly string[] = ['gelu', 'quick_gelu', 'relu2', 'relu'];

export interface BatchedAttentionOptions extends AttentionOptions {
  /** int64 [4] value holding [B, T, heads, headDim], to split the flat [B·T, D] projections. */
  splitShape: Value;
}

/**
 * `attention` for a batch of sequences: q, k, v are [B·T, D] (the token-major layout every Linear
 * works on, batch-major), the mask broadcasts to [B, heads, T, T]. Returns the context [B·T, D]
 * and the probabilities [B, heads, T, T].
 */
export function batchedAttention(g: GraphBuilder, q: Value, k: Value, v: Value, opts: BatchedAttentionOptions): { context: Value; probs: Value } {
  const { heads, headDim, splitShape } = opts;
  const qh = g.op('Transpose', [g.op('Reshape', [q, splitShape])], { perm: [0, 2, 1, 3] }); // [B, H, T, dh]
  const kt = g.op('Transpose', [g.op('Reshape', [k, splitShape])], { perm: [0, 2, 3, 1] }); // [B, H, dh, T]
  const vh = g.op('Transpose', [g.op('Reshape', [v, splitShape])], { perm: [0, 2, 1, 3] }); // [B, H, T, dh]
  let scores = g.op('Mul', [g.op('MatMul', [qh, kt]), g.scalar('attn_scale', headDim ** -0.5)]); // [B, H, T, T]
  if (opts.mask) scores = g.op('Add', [scores, opts.mask]);
  const probs = g.op('Softmax', [scores], { axis: -1 }, { name: opts.probsName }); // [B, H, T, T]
  const ctx = g.op('MatMul', [probs, vh]); // [B, H, T, dh]
  const merged = g.op('Reshape', [g.op('Transpose', [ctx], { perm: [0, 2, 1, 3] }), g.ints('merge_heads', [-1, heads * headDim])]); // [B·T, D]
  return { context: merged, probs };
}

/** x / ‖x‖₂ along the last axis (no ε), as transformers' CLIP normalises embeddings (`_get_vector_norm`). */
export function l2Normalize(g: GraphBuilder, x: Value, name?: string): Value {
  const norm = g.op('ReduceL2', [x], { axes: [-1], keepdims: 1 });
  return g.op('Div', [x, norm], undefined, { name });
}
