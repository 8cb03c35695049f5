/**
 * Real-size checkpoints with seeded random weights in the real Hugging Face key layout, written
 * to a temporary folder by the benches (never downloaded, never committed).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../../src/core/io/safetensors';
import { planSafetensors, writeFileStreamed } from '../../src/core/models/quantize';

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

export interface FuyuShape {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  vocab: number;
  patch: number;
}

/** adept/fuyu-8b (SPEC §5.1, §5.7). */
export const FUYU_8B: FuyuShape = { hidden: 4096, layers: 36, heads: 64, intermediate: 16384, vocab: 262144, patch: 30 };

/** A tensor of the random Fuyu checkpoint: uniform values of standard deviation `std`, or a constant. */
interface FuyuTensorSpec {
  name: string;
  shape: number[];
  std?: number;
  constant?: number;
}

/** A Fuyu config.json (FuyuConfig with its Persimmon text_config) for `s`. */
export function fuyuConfig(s: FuyuShape): Record<string, unknown> {
  const text = {
    model_type: 'persimmon', hidden_size: s.hidden, intermediate_size: s.intermediate, num_hidden_layers: s.layers,
    num_attention_heads: s.heads, hidden_act: 'relu2', layer_norm_eps: 1e-5, max_position_embeddings: 16384,
    partial_rotary_factor: 0.5, qk_layernorm: true, rope_theta: 25000, vocab_size: s.vocab,
  };
  return {
    ...text, architectures: ['FuyuForCausalLM'], model_type: 'fuyu', torch_dtype: 'bfloat16',
    patch_size: s.patch, num_channels: 3, image_size: 300, bos_token_id: 1, eos_token_id: 2, text_config: text,
  };
}

/**
 * An adept/fuyu-8b-style folder: BF16 shards in the adept key layout (`language_model.model.*`,
 * `vision_embed_tokens.*`, `language_model.lm_head.weight`) with model.safetensors.index.json,
 * config.json, preprocessor_config.json (1080×1920 canvas, 30-pixel patches) and the golden
 * fuyu-tiny tokenizer (ids < 454, with the image tokens). Shards are streamed a chunk at a time,
 * so writing 18 GB takes a few tens of MB of memory. Returns the bytes written.
 */
export async function writeRandomFuyuBf16(dir: string, s: FuyuShape, options: { seed?: number; shardBytes?: number } = {}): Promise<number> {
  const D = s.hidden;
  const lm = 'language_model.model.';
  const linear = (prefix: string, out: number, inp: number): FuyuTensorSpec[] => [
    { name: `${prefix}.weight`, shape: [out, inp], std: 0.02 },
    { name: `${prefix}.bias`, shape: [out], std: 0.02 },
  ];
  const norm = (prefix: string, dim: number): FuyuTensorSpec[] => [
    { name: `${prefix}.weight`, shape: [dim], constant: 1 },
    { name: `${prefix}.bias`, shape: [dim], constant: 0 },
  ];
  const groups: FuyuTensorSpec[][] = [[
    { name: `${lm}embed_tokens.weight`, shape: [s.vocab, D], std: 0.02 },
    ...linear('vision_embed_tokens', D, s.patch * s.patch * 3),
  ]];
  for (let i = 0; i < s.layers; i++) {
    const l = `${lm}layers.${i}`;
    groups.push([
      ...norm(`${l}.input_layernorm`, D),
      ...linear(`${l}.self_attn.query_key_value`, 3 * D, D),
      ...norm(`${l}.self_attn.q_layernorm`, D / s.heads),
      ...norm(`${l}.self_attn.k_layernorm`, D / s.heads),
      ...linear(`${l}.self_attn.dense`, D, D),
      ...norm(`${l}.post_attention_layernorm`, D),
      ...linear(`${l}.mlp.dense_h_to_4h`, s.intermediate, D),
      ...linear(`${l}.mlp.dense_4h_to_h`, D, s.intermediate),
    ]);
  }
  groups.push([...norm(`${lm}final_layernorm`, D), { name: 'language_model.lm_head.weight', shape: [s.vocab, D], std: 0.02 }]);

  // Whole groups (the embeddings; a layer; the head) per shard, about shardBytes each.
  const limit = options.shardBytes ?? 4e9;
  const bytesOf = (t: FuyuTensorSpec): number => 2 * t.shape.reduce((a, b) => a * b, 1);
  const shards: FuyuTensorSpec[][] = [];
  for (const group of groups) {
    const size = group.reduce((n, t) => n + bytesOf(t), 0);
    const last = shards[shards.length - 1];
    if (last && last.reduce((n, t) => n + bytesOf(t), 0) + size <= limit) last.push(...group);
    else shards.push([...group]);
  }

  // 65,536 uniform values on [−√3, √3] (std 1) as BF16 bits; each 32-bit random number picks two.
  const unit = new Float32Array(1 << 16);
  for (let i = 0; i < unit.length; i++) unit[i] = ((i + 0.5) / unit.length * 2 - 1) * Math.sqrt(3);
  const random = seededRandom(options.seed ?? 1);
  const weightMap: Record<string, string> = {};
  let total = 0;
  const chunk = new Uint16Array(1 << 24);
  for (const [index, tensors] of shards.entries()) {
    const file = `model-${String(index + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    const layout = planSafetensors(tensors.map((t) => ({ name: t.name, dtype: 'BF16' as const, shape: t.shape })), { format: 'pt' });
    await writeFileStreamed(path.join(dir, file), layout, async (write) => {
      for (const t of tensors) {
        const table = f32ToBf16(unit.map((v) => v * (t.std ?? 0)));
        const constant = f32ToBf16(Float32Array.of(t.constant ?? 0))[0]!;
        let position = layout.offsets.get(t.name)!.offset;
        for (let left = bytesOf(t) / 2; left > 0;) {
          const n = Math.min(left, chunk.length);
          if (t.constant !== undefined) chunk.fill(constant, 0, n);
          else {
            for (let i = 0; i < n; i += 2) {
              const r = (random() * 4294967296) >>> 0;
              chunk[i] = table[r & 0xffff]!;
              chunk[i + 1] = table[r >>> 16]!;
            }
          }
          await write(new Uint8Array(chunk.buffer, 0, 2 * n), position);
          position += 2 * n;
          left -= n;
        }
        weightMap[t.name] = file;
      }
    });
    total += layout.fileSize;
  }
  await fs.writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(fuyuConfig(s), null, 2));
  const preprocessor = {
    image_processor_type: 'FuyuImageProcessor', processor_class: 'FuyuProcessor', do_resize: true, do_pad: true, do_rescale: true,
    do_normalize: true, size: { height: 1080, width: 1920 }, patch_size: { height: s.patch, width: s.patch }, resample: 2,
    padding_mode: 'constant', padding_value: 1.0, rescale_factor: 1 / 255, image_mean: 0.5, image_std: 0.5,
  };
  await fs.writeFile(path.join(dir, 'preprocessor_config.json'), JSON.stringify(preprocessor, null, 2));
  const tokenizerDir = path.join(__dirname, '..', '..', 'test', 'fixtures', 'golden', 'fuyu-tiny');
  for (const file of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    await fs.copyFile(path.join(tokenizerDir, file), path.join(dir, file));
  }
  return total;
}
