/**
 * `vision-inspector infer` for Fuyu checkpoints: image + prompt → the answer, streamed to stdout
 * as it is generated; with --dump, the prompt's outputs under transformers' names (DESIGN §3).
 */
import * as path from 'node:path';
import { check } from '../core/errors.js';
import type { TensorData } from '../core/engine/client.js';
import { decodeImage } from '../core/image/decode.js';
import { preprocessFuyu } from '../core/image/preprocess.js';
import { formatBytes } from '../core/io/hub-download.js';
import { readSafetensorsAll, writeSafetensors, type TensorToWrite } from '../core/io/safetensors.js';
import { FuyuRunner, estimateFuyuMemory, formatMemoryEstimate, type FuyuPrompt, type LoadedFuyu } from '../core/models/fuyu-runner.js';
import { WEIGHT_PRECISIONS, type WeightPrecision } from '../core/models/quantize.js';
import type { ModelRunner } from '../core/models/runner.js';
import { modelDisplayName } from '../core/io/hub-layout.js';

export interface FuyuArgs {
  image?: string;
  'pixel-values'?: string;
  prompt?: string;
  'max-new-tokens'?: string;
  dump?: string;
  weights?: string;
}

/**
 * The runner for `--weights` (default: fp32 below 1e9 parameters, int4 above), with quantised
 * weights cached in `quantizedCacheDir` and the one-time conversion's progress on stderr.
 */
export function createFuyuRunner(models: ModelRunner, loaded: LoadedFuyu, weights: string | undefined, quantizedCacheDir: string): FuyuRunner {
  check(weights === undefined || (WEIGHT_PRECISIONS as readonly string[]).includes(weights),
    `--weights must be one of ${WEIGHT_PRECISIONS.join(', ')}, got "${weights}".`);
  let shown = -1;
  return new FuyuRunner(models.engine, models.graphs, loaded, {
    weights: weights as WeightPrecision | undefined,
    quantizedCacheDir,
    onQuantizeProgress: ({ done, total }) => {
      const percent = Math.floor((100 * done) / total);
      if (percent < shown + 10 && done < total) return;
      shown = percent;
      process.stderr.write(`converting the weights (once): ${percent} % of ${formatBytes(total)}\n`);
    },
  });
}

export const DEFAULT_MAX_NEW_TOKENS = 20;

export async function inferFuyu(fuyu: FuyuRunner, args: FuyuArgs, signal: AbortSignal): Promise<void> {
  const maxNewTokens = args['max-new-tokens'] === undefined ? DEFAULT_MAX_NEW_TOKENS : Number(args['max-new-tokens']);
  check(Number.isInteger(maxNewTokens) && maxNewTokens > 0, `--max-new-tokens must be a positive integer, got "${args['max-new-tokens']}".`);
  const prompt = await promptFor(fuyu, args, maxNewTokens);
  const { patchRows, patchCols, inputIds } = prompt.layout;
  process.stderr.write(`${modelDisplayName(fuyu.loaded.checkpoint.dir)}: ${patchRows}×${patchCols} patches, ${inputIds.length} prompt tokens\n`);
  const chosen = args.weights === undefined ? ' (the default for this model size; --weights fp32|int8|int4 to change)' : '';
  const how = fuyu.weights === 'fp32' ? 'the checkpoint\'s weights computed in float32' : `${fuyu.weights.slice(3)}-bit MatMulNBits blocks cached in ${fuyu.quantizedCacheDir}`;
  process.stderr.write(`weights: ${fuyu.weights}, ${how}${chosen}\n`);
  const memory = estimateFuyuMemory(fuyu.model, fuyu.weights, inputIds.length + maxNewTokens);
  process.stderr.write(`estimated memory: ${formatMemoryEstimate(memory)}\n`);

  const full = fuyu.detail === 'full';
  const L = fuyu.model.config.num_hidden_layers;
  const prefillFetches = args.dump && full
    ? ['logits', ...Array.from({ length: L + 1 }, (_, i) => `hidden_states.${i}`), ...Array.from({ length: L }, (_, i) => `attentions.${i}`)]
    : [];
  const generation = await fuyu.generate(prompt, {
    maxNewTokens,
    signal,
    prefillFetches,
    onToken: (token) => process.stdout.write(token.delta),
  });
  process.stdout.write('\n');

  if (args.dump) {
    const out = path.resolve(args.dump);
    const tensors: TensorToWrite[] = [
      int64('input_ids', inputIds),
      { name: 'image_patches', dtype: 'F32', shape: [1, prompt.layout.patchPositions.length, fuyu.model.patchLength], data: prompt.imagePatches },
      int64('generated_new_token_ids', generation.newTokenIds),
    ];
    for (const [name, t] of Object.entries(generation.prefill)) tensors.push(withBatchAxis(name, t));
    await writeSafetensors(out, tensors, { format: 'pt', producer: 'vision-inspector' });
    const note = full ? '' : ' (a large model: only the generated ids; per-position outputs would not fit in memory)';
    process.stderr.write(`wrote ${tensors.length} tensors to ${out}${note}\n`);
  }
}

/** From --image + --prompt (the processor), or from a --pixel-values file holding `image_patches` and `input_ids`. */
async function promptFor(fuyu: FuyuRunner, args: FuyuArgs, maxNewTokens: number): Promise<FuyuPrompt> {
  if (args['pixel-values']) {
    const file = path.resolve(args['pixel-values']);
    check(args.prompt === undefined, 'has the prompt in its input_ids; --prompt is for --image.', file);
    const tensors = await readSafetensorsAll(file);
    const patches = tensors.get('image_patches');
    const ids = tensors.get('input_ids');
    check(patches && patches.data instanceof Float32Array, 'needs a float tensor "image_patches" [1, P, patch length] for a Fuyu model.', file);
    check(ids && !(ids.data instanceof Float32Array) && ids.shape.length <= 2, 'needs an integer tensor "input_ids" [1, S] for a Fuyu model.', file);
    return fuyu.fromProcessorOutputs(Array.from(ids.data as BigInt64Array | Int32Array, Number), patches.data, maxNewTokens, file);
  }
  check(args.prompt !== undefined, 'Fuyu needs a --prompt, e.g. --prompt "Generate a coco-style caption." (a newline at the end helps).');
  const file = path.resolve(args.image!);
  const processorFile = path.join(fuyu.loaded.checkpoint.dir, 'preprocessor_config.json');
  const image = preprocessFuyu(await decodeImage(file), fuyu.loaded.checkpoint.preprocessorConfig ?? {}, { file: processorFile });
  return fuyu.prepare(image, args.prompt, maxNewTokens);
}

function int64(name: string, values: readonly number[]): TensorToWrite {
  return { name, dtype: 'I64', shape: [1, values.length], data: BigInt64Array.from(values, (v) => BigInt(v)) };
}

/** Outputs come back without the batch axis; dumps carry it, as transformers' outputs do. */
function withBatchAxis(name: string, t: TensorData): TensorToWrite {
  check(t.type === 'float32', `output ${name} is ${t.type}, expected float32`);
  return { name, dtype: 'F32', shape: [1, ...t.dims], data: t.data };
}
