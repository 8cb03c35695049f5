/**
 * `vision-inspector` command line (DESIGN §3):
 *
 *   vision-inspector infer --model <dir> (--image <file> | --pixel-values <file.safetensors>) [--dump <out.safetensors>]
 *
 * Without --dump it prints a readable summary (top-5 labels); with --dump it writes every
 * output under the names transformers uses, plus the `pixel_values` it computed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { CancelledError, UserError, check } from '../core/errors.js';
import { InferenceEngine, type TensorData } from '../core/engine/client.js';
import { decodeImage } from '../core/image/decode.js';
import { preprocess } from '../core/image/preprocess.js';
import { readSafetensorsAll, writeSafetensors, type TensorToWrite } from '../core/io/safetensors.js';
import { GraphCache } from '../core/onnx/cache.js';
import { ModelRunner, openModel, topK, type LoadedModel } from '../core/models/runner.js';

const USAGE = `Usage:
  vision-inspector infer --model <model folder> (--image <image> | --pixel-values <inputs.safetensors>)
                         [--dump <out.safetensors>] [--top <k>] [--threads <n>] [--no-cache]

  --model          a Hugging Face model folder (config.json + *.safetensors)
  --image          an image file (png, jpeg, webp, gif, tiff, bmp…), preprocessed as the
                   model's preprocessor_config.json says
  --pixel-values   a safetensors file holding "pixel_values" [1, 3, H, W], skipping preprocessing
  --dump           write every output (logits, hidden_states.{i}, attentions.{i}, pixel_values)
  --top            how many labels to print without --dump (default 5)
  --threads        inference threads (default: one per physical core)
  --no-cache       rebuild the model graph instead of reusing the cached one`;

/** Where converted graphs are kept between runs (they hold no weights, only structure). */
function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'vision-inspector', 'graphs');
}

async function pixelValuesFor(loaded: LoadedModel, values: { image?: string; 'pixel-values'?: string }): Promise<TensorData> {
  if (values['pixel-values']) {
    const file = path.resolve(values['pixel-values']);
    const tensors = await readSafetensorsAll(file);
    const pv = tensors.get('pixel_values');
    check(pv, 'has no tensor named "pixel_values".', file, 'Write the processor output with safetensors, e.g. save_file(dict(inputs), ...).');
    check(pv.data instanceof Float32Array, `"pixel_values" must be a float tensor, it is ${pv.dtype}.`, file);
    return { type: 'float32', dims: [...pv.shape], data: pv.data };
  }
  const file = path.resolve(values.image!);
  const image = await decodeImage(file);
  const processed = preprocess(image, loaded.checkpoint.preprocessorConfig ?? {}, {
    kind: loaded.kind,
    file: path.join(loaded.checkpoint.dir, 'preprocessor_config.json'),
  });
  return { type: 'float32', dims: processed.shape, data: processed.pixelValues };
}

/** Outputs come back without the batch axis; dumps carry it, as transformers' outputs do. */
function withBatchAxis(name: string, t: TensorData): TensorToWrite {
  check(t.type === 'float32', `output ${name} is ${t.type}, expected float32`);
  return { name, dtype: 'F32', shape: [1, ...t.dims], data: t.data };
}

async function infer(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      image: { type: 'string' },
      'pixel-values': { type: 'string' },
      dump: { type: 'string' },
      top: { type: 'string', default: '5' },
      threads: { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
    },
    strict: true,
  });
  check(values.model, 'missing --model.', undefined, USAGE);
  check(Boolean(values.image) !== Boolean(values['pixel-values']), 'give exactly one of --image and --pixel-values.', undefined, USAGE);
  const top = Number(values.top);
  check(Number.isInteger(top) && top > 0, `--top must be a positive integer, got "${values.top}".`);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  check(threads === undefined || (Number.isInteger(threads) && threads > 0), `--threads must be a positive integer, got "${values.threads}".`);

  if (values.dump) {
    const folder = path.dirname(path.resolve(values.dump));
    check(fs.existsSync(folder), 'does not exist; --dump writes into an existing folder.', folder);
  }

  const loaded = await openModel(path.resolve(values.model));
  const pixelValues = await pixelValuesFor(loaded, values);
  const engine = InferenceEngine.create({ threads });
  try {
    const runner = new ModelRunner(engine, new GraphCache(values['no-cache'] ? undefined : defaultCacheDir()));
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    const run = await runner.runViT(loaded, pixelValues, { signal: controller.signal, fetches: values.dump ? undefined : ['logits'] });
    if (values.dump) {
      const out = path.resolve(values.dump);
      const tensors: TensorToWrite[] = [withBatchAxis('pixel_values', { ...pixelValues, dims: pixelValues.dims.slice(1) })];
      for (const [name, t] of Object.entries(run.tensors)) tensors.push(withBatchAxis(name, t));
      await writeSafetensors(out, tensors, { format: 'pt', producer: 'vision-inspector' });
      console.log(`wrote ${tensors.length} tensors to ${out}`);
      return;
    }
    const logits = run.tensors.logits;
    check(logits, 'has no classification head (no classifier.weight), so there are no labels to print.', loaded.checkpoint.dir, 'Use --dump to get its hidden states and attention maps.');
    const { rows, cols, height, width } = run.grid;
    console.log(`${path.basename(loaded.checkpoint.dir)}: ${width}×${height} input, ${rows}×${cols} patches`);
    for (const t of topK(logits.data as Float32Array, loaded.model.labels, top)) {
      console.log(`${(t.probability * 100).toFixed(2).padStart(6)} %  ${t.label}`);
    }
  } finally {
    await engine.dispose();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'infer':
        await infer(rest);
        return 0;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UserError(`unknown command "${command}".`, undefined, USAGE);
    }
  } catch (err) {
    if (err instanceof UserError || err instanceof CancelledError) {
      console.error(`vision-inspector: ${err.message}`);
      return 1;
    }
    // parseArgs errors (unknown option, missing value) are the user's too.
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      console.error(`vision-inspector: ${err.message}\n${USAGE}`);
      return 1;
    }
    console.error(err);
    return 2;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
