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
