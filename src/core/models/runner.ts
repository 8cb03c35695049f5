/**
 * From a model folder to named output tensors: opens the checkpoint, picks the model code by
 * `model_type`, builds (or reuses) the graph for the input size, and runs it in the engine's worker.
 * The CLI, the extension host and the benches all go through here.
 */
import * as path from 'node:path';
import { UserError, check } from '../errors.js';
import { Checkpoint, CONFIG_FILE } from '../io/checkpoint.js';
import type { InferenceEngine, TensorData } from '../engine/client.js';
import { GraphCache, graphKey } from '../onnx/cache.js';
import { ViT, type PatchGrid } from './vit.js';
import { CLIPRunner, loadCLIP, type LoadedCLIP } from './clip-runner.js';
import { FuyuRunner, loadFuyu, type LoadedFuyu } from './fuyu-runner.js';

export const SUPPORTED_MODEL_TYPES = ['vit', 'deit', 'clip', 'fuyu'] as const;

export interface LoadedViT {
  kind: 'vit';
  model: ViT;
  checkpoint: Checkpoint;
}

export type { LoadedCLIP } from './clip-runner.js';
export type { LoadedFuyu } from './fuyu-runner.js';
export type LoadedModel = LoadedViT | LoadedCLIP | LoadedFuyu;

/** Opens a Hugging Face model folder and validates its weights against its config.json. */
export async function openModel(folder: string): Promise<LoadedModel> {
  const checkpoint = await Checkpoint.open(folder);
  const configFile = path.join(checkpoint.dir, CONFIG_FILE);
  const modelType = checkpoint.modelType;
  switch (modelType) {
    case 'vit':
    case 'deit':
      // ViTForImageClassification stores `vit.*`; a bare ViTModel has no prefix.
      return { kind: 'vit', model: ViT.load(checkpoint.config, checkpoint.withPrefixes([`${modelType}.`, '']), configFile), checkpoint };
    case 'clip':
      return loadCLIP(checkpoint);
    case 'fuyu':
      return loadFuyu(checkpoint);
    default:
      throw new UserError(
        modelType === undefined ? 'has no "model_type".' : `has model_type "${modelType}", which Vision Inspector does not support.`,
        configFile,
        `Supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}.`,
      );
  }
}

/** `loaded` as a ViT, or a UserError saying it is another kind of model (callers that only handle ViT narrow with it). */
export function asViT(loaded: LoadedModel): LoadedViT {
  check(loaded.kind === 'vit', `is a ${loaded.checkpoint.modelType} model, not a ViT classifier.`, loaded.checkpoint.dir,
    'CLIP models run through ModelRunner.clip() (zero-shot labels, embeddings, heatmaps).');
  return loaded;
}

export interface ViTRun {
  grid: PatchGrid;
  /** Every fetched output by its transformers name, without the batch axis (logits are [labels]). */
  tensors: Record<string, TensorData>;
}

export interface RunViTOptions {
  /** Output names to compute and return; default: all of them. */
  fetches?: readonly string[];
  signal?: AbortSignal;
}

/** Runs models in one InferenceEngine, one session per (checkpoint, graph variant). */
export class ModelRunner {
  constructor(
    readonly engine: InferenceEngine,
    readonly graphs: GraphCache = new GraphCache(undefined),
  ) {}

  private readonly clipRunners = new Map<string, CLIPRunner>();
  private readonly fuyuRunners = new Map<string, FuyuRunner>();

  /** The Fuyu runner of a loaded checkpoint; the same one while the checkpoint is unchanged. */
  fuyu(loaded: LoadedFuyu): FuyuRunner {
    const key = loaded.checkpoint.identity();
    let runner = this.fuyuRunners.get(key);
    if (!runner) {
      runner = new FuyuRunner(this.engine, this.graphs, loaded);
      this.fuyuRunners.set(key, runner);
    }
    return runner;
  }

  /** The CLIP runner of a loaded checkpoint; the same one (and its embedding caches) while the checkpoint is unchanged. */
  clip(loaded: LoadedCLIP): CLIPRunner {
    const key = loaded.checkpoint.identity();
    let runner = this.clipRunners.get(key);
    if (!runner) {
      runner = new CLIPRunner(this.engine, this.graphs, loaded);
      this.clipRunners.set(key, runner);
    }
    return runner;
  }

  /** Loads (or reuses) the ViT session for an input size; returns its session key. */
  async prepareViT(loaded: LoadedViT, height: number, width: number, signal?: AbortSignal): Promise<string> {
    const key = graphKey({ kind: 'vit', checkpoint: loaded.checkpoint.identity(), height, width });
    return this.graphs.loadSession(this.engine, key, () => loaded.model.buildGraph(height, width), signal);
  }

  /** `pixelValues`: float32 [1, 3, H, W] as the model's image processor makes it. */
  async runViT(model: LoadedModel, pixelValues: TensorData, options: RunViTOptions = {}): Promise<ViTRun> {
    const loaded = asViT(model);
    check(
      pixelValues.type === 'float32' && pixelValues.dims.length === 4 && pixelValues.dims[0] === 1 && pixelValues.dims[1] === 3,
      `pixel_values must be float32 [1, 3, H, W], got ${pixelValues.type} [${pixelValues.dims.join(', ')}].`,
    );
    const [, , height, width] = pixelValues.dims as [number, number, number, number];
    const key = await this.prepareViT(loaded, height, width, options.signal);
    const outs = loaded.model.outputs(height, width);
    const all = [...(outs.logits ? ['logits'] : []), ...outs.hiddenStates.map((o) => o.name), ...outs.attentions.map((o) => o.name)];
    const fetches = options.fetches ? [...options.fetches] : all;
    for (const name of fetches) check(all.includes(name), `unknown output "${name}"; this model has ${all.join(', ')}.`);
    const tensors = await this.engine.run(key, { pixel_values: pixelValues }, fetches, options.signal);
    if (tensors.logits) tensors.logits = { ...tensors.logits, dims: [tensors.logits.dims[1]!] };
    return { grid: loaded.model.grid(height, width), tensors };
  }
}

export interface LabelScore {
  index: number;
  label: string;
  logit: number;
  probability: number;
}

/** The k highest logits with their softmax probabilities. */
export function topK(logits: Float32Array, labels: readonly string[], k: number): LabelScore[] {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return Array.from(logits, (logit, index) => ({ index, label: labels[index] ?? `LABEL_${index}`, logit, probability: Math.exp(logit - max) / sum }))
    .sort((a, b) => b.logit - a.logit)
    .slice(0, k);
}
