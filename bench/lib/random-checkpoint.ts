/**
 * Real-size checkpoints with seeded random weights in the real Hugging Face key layout, written
 * to a temporary folder by the benches (never downloaded, never committed).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../../src/core/io/safetensors';

/** mulberry32: tiny, fast, seedable; quality is irrelevant for timing. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Builds tensors with uniform values of standard deviation `std` (HF's init uses 0.02), or a constant. */
export class TensorFactory {
  readonly tensors: TensorToWrite[] = [];
  private readonly random: () => number;
  constructor(seed: number) {
    this.random = seededRandom(seed);
  }
  random_(name: string, shape: number[], std = 0.02): void {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const half = std * Math.sqrt(3); // uniform on [−a, a] has std a/√3
    for (let i = 0; i < n; i++) data[i] = (this.random() * 2 - 1) * half;
    this.tensors.push({ name, dtype: 'F32', shape, data });
  }
  constant(name: string, shape: number[], value: number): void {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value);
    this.tensors.push({ name, dtype: 'F32', shape, data });
  }
  layerNorm(prefix: string, dim: number): void {
    this.constant(`${prefix}.weight`, [dim], 1);
    this.constant(`${prefix}.bias`, [dim], 0);
  }
  linear(prefix: string, out: number, inp: number, bias = true): void {
    this.random_(`${prefix}.weight`, [out, inp]);
    if (bias) this.random_(`${prefix}.bias`, [out]);
  }
}

export async function makeTempDir(tag: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `vision-inspector-bench-${tag}-`));
}

export interface ViTShape {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  image: number;
  patch: number;
  labels: number;
}

export const VIT_B16: ViTShape = { hidden: 768, layers: 12, heads: 12, intermediate: 3072, image: 224, patch: 16, labels: 1000 };

/** A google/vit-base-patch16-224-style folder: config.json, preprocessor_config.json, model.safetensors. */
export async function writeRandomViT(dir: string, s: ViTShape, seed = 1): Promise<void> {
  const f = new TensorFactory(seed);
  const D = s.hidden;
  const grid = s.image / s.patch;
  f.random_('vit.embeddings.cls_token', [1, 1, D]);
  f.random_('vit.embeddings.position_embeddings', [1, grid * grid + 1, D]);
  f.random_('vit.embeddings.patch_embeddings.projection.weight', [D, 3, s.patch, s.patch]);
  f.random_('vit.embeddings.patch_embeddings.projection.bias', [D]);
  for (let i = 0; i < s.layers; i++) {
    const l = `vit.encoder.layer.${i}`;
    for (const p of ['query', 'key', 'value']) f.linear(`${l}.attention.attention.${p}`, D, D);
    f.linear(`${l}.attention.output.dense`, D, D);
    f.linear(`${l}.intermediate.dense`, s.intermediate, D);
    f.linear(`${l}.output.dense`, D, s.intermediate);
    f.layerNorm(`${l}.layernorm_before`, D);
    f.layerNorm(`${l}.layernorm_after`, D);
  }
  f.layerNorm('vit.layernorm', D);
  f.linear('classifier', s.labels, D);
  await writeSafetensors(path.join(dir, 'model.safetensors'), f.tensors, { format: 'pt' });
  const id2label = Object.fromEntries(Array.from({ length: s.labels }, (_, i) => [String(i), `class ${i}`]));
  const config = {
    architectures: ['ViTForImageClassification'],
    model_type: 'vit',
    hidden_size: D,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    intermediate_size: s.intermediate,
    hidden_act: 'gelu',
    layer_norm_eps: 1e-12,
    image_size: s.image,
    patch_size: s.patch,
    num_channels: 3,
    qkv_bias: true,
    id2label,
  };
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const preprocessor = { do_normalize: true, do_resize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 2, size: 224 };
  await fs.writeFile(path.join(dir, 'preprocessor_config.json'), JSON.stringify(preprocessor, null, 2));
}

export interface CLIPTowerShape {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
}

export interface CLIPShape {
  vision: CLIPTowerShape & { image: number; patch: number };
  text: CLIPTowerShape & { vocab: number; context: number };
  projection: number;
}

/** openai/clip-vit-base-patch32 (SPEC §4.1). */
export const CLIP_B32: CLIPShape = {
  vision: { hidden: 768, layers: 12, heads: 12, intermediate: 3072, image: 224, patch: 32 },
  text: { hidden: 512, layers: 12, heads: 8, intermediate: 2048, vocab: 49408, context: 77 },
  projection: 512,
};

/** openai/clip-vit-large-patch14 (SPEC §4.1). */
export const CLIP_L14: CLIPShape = {
  vision: { hidden: 1024, layers: 24, heads: 16, intermediate: 4096, image: 224, patch: 14 },
  text: { hidden: 768, layers: 12, heads: 12, intermediate: 3072, vocab: 49408, context: 77 },
  projection: 768,
};

/** float32 → bfloat16 bits, rounding to nearest even (as torch's `.to(torch.bfloat16)`). */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  return Uint16Array.from(bits, (b) => (b + 0x7fff + ((b >>> 16) & 1)) >>> 16);
}

/**
 * An openai/clip-vit-*-style CLIPModel folder: config.json, preprocessor_config.json,
 * model.safetensors (F32, or BF16 like checkpoints saved in bfloat16) and tokenizer files. The
 * tokenizer is the golden clip-tiny one (ids < 592, valid for any vocabulary at least that large;
 * whole-word tokens for the words the benches use), so prompts have realistic lengths.
 */
export async function writeRandomClip(dir: string, s: CLIPShape, options: { seed?: number; dtype?: 'F32' | 'BF16' } = {}): Promise<void> {
  const f = new TensorFactory(options.seed ?? 1);
  const tower = (prefix: string, t: CLIPTowerShape): void => {
    for (let i = 0; i < t.layers; i++) {
      const l = `${prefix}.encoder.layers.${i}`;
      for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) f.linear(`${l}.self_attn.${p}`, t.hidden, t.hidden);
      f.layerNorm(`${l}.layer_norm1`, t.hidden);
      f.layerNorm(`${l}.layer_norm2`, t.hidden);
      f.linear(`${l}.mlp.fc1`, t.intermediate, t.hidden);
      f.linear(`${l}.mlp.fc2`, t.hidden, t.intermediate);
    }
  };
  const { vision: v, text: t } = s;
  const grid = Math.floor(v.image / v.patch);
  f.random_('vision_model.embeddings.class_embedding', [v.hidden]);
  f.random_('vision_model.embeddings.patch_embedding.weight', [v.hidden, 3, v.patch, v.patch]);
  f.random_('vision_model.embeddings.position_embedding.weight', [grid * grid + 1, v.hidden]);
  f.layerNorm('vision_model.pre_layrnorm', v.hidden);
  tower('vision_model', v);
  f.layerNorm('vision_model.post_layernorm', v.hidden);
  f.linear('visual_projection', s.projection, v.hidden, false);
  f.random_('text_model.embeddings.token_embedding.weight', [t.vocab, t.hidden]);
  f.random_('text_model.embeddings.position_embedding.weight', [t.context, t.hidden], 0.01);
  tower('text_model', t);
  f.layerNorm('text_model.final_layer_norm', t.hidden);
  f.linear('text_projection', s.projection, t.hidden, false);
  f.constant('logit_scale', [], Math.log(100));
  const tensors = options.dtype === 'BF16' ? f.tensors.map((x) => ({ ...x, dtype: 'BF16' as const, data: f32ToBf16(x.data as Float32Array) })) : f.tensors;
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });

  const towerConfig = (x: CLIPTowerShape) => ({
    hidden_size: x.hidden,
    num_hidden_layers: x.layers,
    num_attention_heads: x.heads,
    intermediate_size: x.intermediate,
    hidden_act: 'quick_gelu',
    layer_norm_eps: 1e-5,
  });
  const config = {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: s.projection,
    logit_scale_init_value: 2.6592,
    text_config: { ...towerConfig(t), vocab_size: t.vocab, max_position_embeddings: t.context, bos_token_id: 0, eos_token_id: 2, pad_token_id: 1 },
    vision_config: { ...towerConfig(v), image_size: v.image, patch_size: v.patch, num_channels: 3 },
  };
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const preprocessor = {
    image_processor_type: 'CLIPImageProcessor',
    do_resize: true,
    size: { shortest_edge: v.image },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: v.image, width: v.image },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_std: [0.26862954, 0.26130258, 0.27577711],
  };
  await fs.writeFile(path.join(dir, 'preprocessor_config.json'), JSON.stringify(preprocessor, null, 2));
  const tokenizerDir = path.join(__dirname, '..', '..', 'test', 'fixtures', 'golden', 'clip-tiny');
  for (const file of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    await fs.copyFile(path.join(tokenizerDir, file), path.join(dir, file));
  }
}
