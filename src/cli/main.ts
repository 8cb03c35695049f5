/**
 * `vision-inspector` command line (DESIGN §3):
 *
 *   vision-inspector infer --model <dir or hub id> (--image <file> | --pixel-values <file.safetensors>) [--text <t>]... [--dump <out.safetensors>]
 *   vision-inspector models [--dir <folder>]
 *   vision-inspector search --model <clip> --image <file> (--target <t>... | --question <q>) [--answer-model <fuyu>] [--dump <steps.json>]
 *   vision-inspector report --model <dir or hub id> --image <file>... [--text <t>]... [--prompt <p>] --out <report.html>   (report.ts)
 *
 * Without --dump it prints a readable summary (ViT: top-5 labels; CLIP: the zero-shot table of
 * the --text labels); with --dump it writes every output under the names transformers uses,
 * plus the `pixel_values` (and for CLIP `input_ids`, `attention_mask`) it computed.
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
import { ModelRunner, SUPPORTED_MODEL_TYPES, openModel, topK, type LoadedModel } from '../core/models/runner.js';
import { findWorkspaceModels, hubCacheDir, isLoadable, listCachedModels, resolveModelReference, type ModelFiles } from '../core/io/hub-cache.js';
import { formatBytes, type DownloadProgress } from '../core/io/hub-download.js';
import type { CLIPRunner, LabelScore } from '../core/models/clip-runner.js';
import { softmax } from '../core/models/clip-heatmap.js';
import type { TokenBatch } from '../core/text/tokenizer.js';
import { CLIPSearchModel } from '../core/search/clip-search-model.js';
import { searchForQuestion, targetsFromQuestion } from '../core/search/answer.js';
import { FuyuAnswerer } from '../core/search/fuyu-answerer.js';
import { describeResult, describeStep } from '../core/search/report.js';
import { createFuyuRunner, inferFuyu } from './fuyu.js';
import { REPORT_USAGE, report } from './report.js';
import { modelDisplayName } from '../core/io/hub-layout.js';

const USAGE = `Usage:
  vision-inspector infer --model <model folder or hub id> (--image <image> | --pixel-values <inputs.safetensors>)
                         [--text <text>]... [--template <prompt>]
                         [--prompt <prompt> [--max-new-tokens <n>] [--weights fp32|int8|int4]]
                         [--dump <out.safetensors>] [--top <k>] [--threads <n>] [--no-cache]

  --model          a Hugging Face model folder (config.json + *.safetensors), or a Hub id such as
                   google/vit-base-patch16-224 (optionally @revision): taken from the Hugging Face
                   cache when it is there, else downloaded into it (HF_HUB_OFFLINE=1: cache only;
                   HF_TOKEN for gated models; HF_ENDPOINT for a mirror)
  --image          an image file (png, jpeg, webp, gif, tiff, bmp…), preprocessed as the
                   model's preprocessor_config.json says
  --pixel-values   a safetensors file holding "pixel_values" [1, 3, H, W], skipping preprocessing
                   (CLIP: [B, 3, H, W], and optionally "input_ids" [T, L] + "attention_mask"
                   instead of --text)
  --text           CLIP: a text to compare the image with (repeat for several labels)
  --template       CLIP: a prompt with {} for each --text, e.g. "a photo of a {}."
  --dump           write every output (logits, hidden_states.{i}, attentions.{i}, pixel_values;
                   CLIP: logits_per_image, image_embeds, vision_model.*, text_model.*, …; texts
                   padded to the model context as CLIPProcessor(padding="max_length") does)
  --prompt         Fuyu: the prompt; the answer is printed as it is generated (with --dump: logits,
                   hidden_states.{i}, attentions.{i} of the prompt, generated_new_token_ids,
                   image_patches, input_ids). --pixel-values then holds image_patches + input_ids.
  --max-new-tokens Fuyu: at most this many generated tokens (default 20)
  --weights        Fuyu: fp32 (the checkpoint's weights; default below 1e9 parameters) or int8/int4
                   (MatMulNBits blocks, converted once into ~/.cache/vision-inspector/quantized;
                   int4 is the default from 1e9 parameters, e.g. Fuyu-8B)
  --top            how many labels to print without --dump (default 5)
  --threads        inference threads (default: one per physical core)
  --no-cache       rebuild the model graph instead of reusing the cached one

  vision-inspector models [--dir <folder>]

  Lists the models in the Hugging Face cache and the model folders under --dir (default: the
  current folder), with model_type, size and whether they can be loaded.

  vision-inspector search --model <CLIP model> --image <image> (--target <object>... | --question <q>)
                          [--answer-model <Fuyu model> [--weights fp32|int8|int4]]
                          [--dump <steps.json>] [--min-size <px>] [--max-nodes <n>]
                          [--resolution <px>] [--batch-size <n>] [--threads <n>] [--no-cache]

  V* guided visual search with CLIP as the search model (SPEC §6, §7): prints every step
  and the box found per target. --question takes the targets from the question's noun
  phrases (the targets given with --target win). --answer-model (with --question): a Fuyu model
  first asked which objects the question needs (its list replaces the noun phrases when it
  names any), then given the found crops (one zoom image) and the question; its prompts and
  replies are printed. --dump writes every step (boxes, heatmaps, scores, queue) as JSON. --min-size is
  the smallest sub-image side searched (default 224), --resolution the side crops are
  resized to (default the model's image_size), --batch-size crops per model run (default 8).
  The thresholds were calibrated on synthetic scenes only, not with real CLIP weights (README).

${REPORT_USAGE}`;

/** Where converted graphs are kept between runs (they hold no weights, only structure). */
function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'vision-inspector', 'graphs');
}

/** Where int8/int4 weights converted from checkpoints are kept (never in the model folder). */
function defaultQuantizedDir(): string {
  return path.join(path.dirname(defaultCacheDir()), 'quantized');
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
      text: { type: 'string', multiple: true },
      template: { type: 'string' },
      prompt: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      weights: { type: 'string' },
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

  const loaded = await openModel(await resolveModel(values.model));
  check(loaded.kind === 'clip' || (values.text === undefined && values.template === undefined),
    `is a ${loaded.kind} model; --text and --template are for CLIP models.`, loaded.checkpoint.dir);
  check(loaded.kind === 'fuyu' || (values.prompt === undefined && values['max-new-tokens'] === undefined && values.weights === undefined),
    `is a ${loaded.kind} model; --prompt, --max-new-tokens and --weights are for Fuyu models.`, loaded.checkpoint.dir);
  // Fuyu cuts images into patches itself (and --pixel-values holds image_patches).
  const pixelValues = loaded.kind === 'fuyu' ? undefined : await pixelValuesFor(loaded, values);
  const engine = InferenceEngine.create({ threads });
  try {
    const runner = new ModelRunner(engine, new GraphCache(values['no-cache'] ? undefined : defaultCacheDir()));
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    if (loaded.kind === 'fuyu') {
      await inferFuyu(createFuyuRunner(runner, loaded, values.weights, defaultQuantizedDir()), values, controller.signal);
      return;
    }
    if (loaded.kind === 'clip') {
      await inferCLIP(runner.clip(loaded), pixelValues!, { ...values, top }, controller.signal);
      return;
    }
    const run = await runner.runViT(loaded, pixelValues!, { signal: controller.signal, fetches: values.dump ? undefined : ['logits'] });
    if (values.dump) {
      const out = path.resolve(values.dump);
      const tensors: TensorToWrite[] = [withBatchAxis('pixel_values', { ...pixelValues!, dims: pixelValues!.dims.slice(1) })];
      for (const [name, t] of Object.entries(run.tensors)) tensors.push(withBatchAxis(name, t));
      await writeSafetensors(out, tensors, { format: 'pt', producer: 'vision-inspector' });
      console.log(`wrote ${tensors.length} tensors to ${out}`);
      return;
    }
    const logits = run.tensors.logits;
    check(logits, 'has no classification head (no classifier.weight), so there are no labels to print.', loaded.checkpoint.dir, 'Use --dump to get its hidden states and attention maps.');
    const { rows, cols, height, width } = run.grid;
    console.log(`${modelDisplayName(loaded.checkpoint.dir)}: ${width}×${height} input, ${rows}×${cols} patches`);
    for (const t of topK(logits.data as Float32Array, loaded.model.labels, top)) {
      console.log(`${(t.probability * 100).toFixed(2).padStart(6)} %  ${t.label}`);
    }
  } finally {
    await engine.dispose();
  }
}

interface CLIPArgs {
  'pixel-values'?: string;
  text?: string[];
  template?: string;
  dump?: string;
  top: number;
}

/** CLIP: --dump writes CLIPModel's outputs; otherwise a zero-shot table per image. */
async function inferCLIP(clip: CLIPRunner, pixelValues: TensorData, args: CLIPArgs, signal: AbortSignal): Promise<void> {
  const template = args.template;
  check(template === undefined || template.includes('{}'), `--template "${template}" has no {} where the text goes.`);
  const texts = (args.text ?? []).map((t) => (template ? template.replaceAll('{}', t) : t));
  const fromFile = args['pixel-values'] ? await tokenBatchFrom(path.resolve(args['pixel-values'])) : undefined;
  check(!(fromFile && texts.length > 0), 'has input_ids; give texts either there or with --text, not both.', args['pixel-values']);

  let batch: TokenBatch | undefined = fromFile;
  if (!batch && texts.length > 0) {
    // Padded to the context, as CLIPProcessor(padding="max_length") makes the golden inputs.
    const tokenized = await clip.tokenize(texts, 'max_length');
    tokenized.truncated.forEach((cut, i) => {
      if (cut) console.error(`note: "${texts[i]}" has more than ${clip.model.maxTextLength} tokens; cut as CLIP's tokenizer does.`);
    });
    batch = tokenized;
  }

  if (args.dump) {
    const outputs = await clip.forward(clip.model.hasVision ? pixelValues : undefined, batch, signal);
    const inputs: Record<string, TensorData> = { pixel_values: pixelValues };
    if (batch) {
      inputs.input_ids = { type: 'int64', dims: batch.dims, data: batch.inputIds };
      inputs.attention_mask = { type: 'int64', dims: batch.dims, data: batch.attentionMask };
    }
    const tensors = Object.entries({ ...inputs, ...outputs }).map(([name, t]) => asWritten(name, t));
    const out = path.resolve(args.dump);
    await writeSafetensors(out, tensors, { format: 'pt', producer: 'vision-inspector' });
    console.log(`wrote ${tensors.length} tensors to ${out}`);
    return;
  }

  check(batch, 'zero-shot classification needs labels: give them with --text (repeatable).', undefined, USAGE);
  const [images, , height, width] = pixelValues.dims as [number, number, number, number];
  const { rows, cols } = clip.model.grid(height, width);
  console.log(`${modelDisplayName(clip.loaded.checkpoint.dir)}: ${width}×${height} input, ${rows}×${cols} patches, ${batch.dims[0]} labels`);
  const perImage: LabelScore[][] = [];
  if (texts.length > 0) {
    const imageSize = 3 * height * width;
    for (let i = 0; i < images; i++) {
      const image: TensorData = { type: 'float32', dims: [1, 3, height, width], data: (pixelValues.data as Float32Array).subarray(i * imageSize, (i + 1) * imageSize) };
      perImage.push(await clip.zeroShot(image, args.text!, { templates: template ? [template] : undefined, signal }));
    }
  } else {
    const logits = (await clip.forward(pixelValues, batch, signal))['logits_per_image']!.data as Float32Array;
    const T = batch.dims[0];
    for (let i = 0; i < images; i++) {
      const row = Array.from(logits.subarray(i * T, (i + 1) * T));
      const probabilities = softmax(row);
      perImage.push(row.map((logit, t) => ({ label: `input_ids[${t}]`, logit, probability: probabilities[t]! })));
    }
  }
  perImage.forEach((scores, i) => {
    if (images > 1) console.log(`image ${i}:`);
    for (const s of [...scores].sort((a, b) => b.probability - a.probability).slice(0, args.top)) {
      console.log(`${(s.probability * 100).toFixed(2).padStart(6)} %  ${s.label}  (logit ${s.logit.toFixed(3)})`);
    }
  });
}

/** `input_ids` (+ `attention_mask`) of a processor-output file, when it has them. */
async function tokenBatchFrom(file: string): Promise<TokenBatch | undefined> {
  const tensors = await readSafetensorsAll(file);
  const ids = tensors.get('input_ids');
  if (!ids) return undefined;
  check(ids.shape.length === 2 && !(ids.data instanceof Float32Array), `"input_ids" must be an integer [T, L] tensor, it is ${ids.dtype} [${ids.shape.join(', ')}].`, file);
  const dims: [number, number] = [ids.shape[0]!, ids.shape[1]!];
  const asInt64 = (data: Int32Array | BigInt64Array): BigInt64Array => (data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v)));
  const mask = tensors.get('attention_mask');
  check(!mask || (mask.shape.join() === ids.shape.join() && !(mask.data instanceof Float32Array)),
    '"attention_mask" must be an integer tensor shaped like "input_ids".', file);
  return {
    inputIds: asInt64(ids.data as Int32Array | BigInt64Array),
    attentionMask: mask ? asInt64(mask.data as Int32Array | BigInt64Array) : new BigInt64Array(dims[0] * dims[1]).fill(1n),
    dims,
  };
}

/** CLIP tensors as they are dumped: outputs already carry their batch axis. */
function asWritten(name: string, t: TensorData): TensorToWrite {
  if (t.type === 'int64') return { name, dtype: 'I64', shape: [...t.dims], data: t.data };
  check(t.type === 'float32', `output ${name} is ${t.type}, expected float32`);
  return { name, dtype: 'F32', shape: [...t.dims], data: t.data };
}

/** --model: a folder as it is; a Hub id from the HF cache, downloaded first if needed, with a progress line on stderr. */
async function resolveModel(ref: string): Promise<string> {
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  const line = new ProgressLine(process.stderr);
  try {
    const resolved = await resolveModelReference(ref, {
      signal: controller.signal,
      modelTypes: SUPPORTED_MODEL_TYPES,
      onProgress: (p) => line.update(p),
    });
    line.end(resolved.source === 'download' ? `${resolved.repoId} is in ${resolved.folder}` : undefined);
    return resolved.folder;
  } catch (err) {
    line.end();
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/**
 * "downloading org/name: 12.3 MB / 346 MB (3 %), 10.2 MB/s, model.safetensors": rewritten in place
 * on a terminal; elsewhere (logs, CI) one line per file, so the output stays readable.
 */
class ProgressLine {
  private lastFile = '';
  private shown = false;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(p: DownloadProgress): void {
    const percent = p.total > 0 ? Math.floor((100 * p.bytes) / p.total) : 0;
    const text = `downloading ${p.repoId}: ${formatBytes(p.bytes)} / ${formatBytes(p.total)} (${percent} %), ${formatBytes(Math.round(p.rate))}/s, ${p.file}`;
    if (this.stream.isTTY) {
      this.stream.write(`\r${text}\x1b[K`);
      this.shown = true;
    } else if (p.file !== this.lastFile) {
      this.stream.write(`${text}\n`);
    }
    this.lastFile = p.file;
  }

  end(message?: string): void {
    if (this.shown) this.stream.write('\n');
    this.shown = false;
    if (message) this.stream.write(`${message}\n`);
  }
}

/** Each line of `text` indented, so that prompts stand apart from the log. */
function indent(text: string): string {
  return text.split('\n').map((line) => `    | ${line}`).join('\n');
}

/** `vision-inspector search`: V* search for each target, every step printed. */
async function search(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      image: { type: 'string' },
      target: { type: 'string', multiple: true },
      question: { type: 'string' },
      'answer-model': { type: 'string' },
      weights: { type: 'string' },
      dump: { type: 'string' },
      'min-size': { type: 'string' },
      'max-nodes': { type: 'string' },
      resolution: { type: 'string' },
      'batch-size': { type: 'string' },
      threads: { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
    },
    strict: true,
  });
  check(values.model && values.image, 'search needs --model and --image.', undefined, USAGE);
  const positive = (name: string): number | undefined => {
    const raw = (values as Record<string, unknown>)[name] as string | undefined;
    if (raw === undefined) return undefined;
    const n = Number(raw);
    check(Number.isInteger(n) && n > 0, `--${name} must be a positive integer, got "${raw}".`);
    return n;
  };
  const targets = values.target ?? (values.question ? targetsFromQuestion(values.question) : []);
  check(targets.length > 0, values.question ? `found no object names in the question; give them with --target.` : 'give what to look for with --target (repeatable) or --question.', undefined, USAGE);
  check(values['answer-model'] === undefined || values.question !== undefined, '--answer-model answers a --question; give one.', undefined, USAGE);
  check(values.weights === undefined || values['answer-model'] !== undefined, '--weights is for the --answer-model (Fuyu).', undefined, USAGE);
  if (values.dump) check(fs.existsSync(path.dirname(path.resolve(values.dump))), 'does not exist; --dump writes into an existing folder.', path.dirname(path.resolve(values.dump)));

  const loaded = await openModel(await resolveModel(values.model));
  check(loaded.kind === 'clip', `is a ${loaded.kind} model; search needs a CLIP model.`, loaded.checkpoint.dir);
  const answerModel = values['answer-model'] ? await openModel(await resolveModel(values['answer-model'])) : undefined;
  check(answerModel === undefined || answerModel.kind === 'fuyu', `is a ${answerModel?.kind} model; --answer-model needs a Fuyu model.`, answerModel?.checkpoint.dir);
  const file = path.resolve(values.image);
  const image = await decodeImage(file);
  const engine = InferenceEngine.create({ threads: positive('threads') });
  try {
    const runner = new ModelRunner(engine, new GraphCache(values['no-cache'] ? undefined : defaultCacheDir()));
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    const answerer = answerModel?.kind === 'fuyu' ? new FuyuAnswerer(createFuyuRunner(runner, answerModel, values.weights, defaultQuantizedDir())) : undefined;
    let model: CLIPSearchModel | undefined;
    const searchModel = (list: readonly string[]): CLIPSearchModel =>
      (model = new CLIPSearchModel(runner.clip(loaded), image, { otherTargets: list, resolution: positive('resolution'), batchSize: positive('batch-size') }));
    console.log(`${path.basename(file)}: ${image.width}×${image.height}; searching with ${modelDisplayName(loaded.checkpoint.dir)}${answerer ? `, answering with ${answerer.name}` : ''}`);
    const done = await searchForQuestion(values.question ?? '', image, targets, searchModel, answerer, {
      // Targets given with --target are the user's choice: the answering model is not asked for others.
      askTargets: values.target === undefined,
      minimumSize: positive('min-size'),
      maxNodes: positive('max-nodes'),
      signal: controller.signal,
      onPhase: (_phase, message) => console.log(message),
      onStep: (target, step) => {
        if (step.index === 0) console.log(`target "${target}":`);
        for (const line of describeStep(step)) console.log(`  ${line}`);
      },
    });
    const results = done.results;
    for (const r of results) console.log(describeResult(r));
    if (done.proposal) {
      console.log(`${answerer!.name} was asked which objects the question needs:\n${indent(done.proposal.prompt)}\nand replied ${JSON.stringify(done.proposal.text)}: ` +
        (done.targetsFrom === 'model' ? `searched its targets ${done.targets.map((t) => `"${t}"`).join(', ')}` : `no usable target, searched the question's noun phrases`));
    }
    if (done.answer) {
      console.log(`${answerer!.name} got the ${done.answer.imageBox.width}×${done.answer.imageBox.height} region at ${done.answer.imageBox.x},${done.answer.imageBox.y} and:\n${indent(done.answer.prompt)}`);
      console.log(`answer: ${done.answer.text}`);
    }
    if (values.dump) {
      const out = path.resolve(values.dump);
      const dump = { image: file, model: loaded.checkpoint.dir, targets: done.targets, targetsFrom: done.targetsFrom, proposal: done.proposal, found: done.found, zoom: done.zoom, answer: done.answer, stats: model!.stats, results };
      await fs.promises.writeFile(out, JSON.stringify(dump, null, 1));
      console.log(`wrote ${results.reduce((n, r) => n + r.steps.length, 0)} steps to ${out}`);
    }
  } finally {
    await engine.dispose();
  }
}

/** `vision-inspector models`: what the HF cache and the workspace hold. */
async function listModels(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { dir: { type: 'string', default: '.' } }, strict: true });
  const status = (files: ModelFiles): string =>
    isLoadable(files) ? 'ready' : files.pickleOnly ? 'pickle weights only (never loaded)' : !files.config ? 'no config.json' : 'incomplete: no complete safetensors weights';
  const table = (rows: string[][]): void => {
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) console.log(`  ${r.map((cell, c) => (c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd()}`);
  };

  const cacheDir = hubCacheDir();
  const cached = await listCachedModels(cacheDir);
  console.log(`Hugging Face cache (${cacheDir}): ${cached.length === 0 ? 'no models' : ''}`.trimEnd());
  if (cached.length > 0) {
    table(cached.map((m) => [
      m.refs.includes('main') ? m.repoId : `${m.repoId}@${m.refs[0] ?? m.commit}`,
      m.modelType ?? '?', formatBytes(m.sizeBytes), status(m.files),
    ]));
  }
  const root = path.resolve(values.dir!);
  const local = await findWorkspaceModels(root);
  console.log(`Model folders under ${root}: ${local.length === 0 ? 'none' : ''}`.trimEnd());
  if (local.length > 0) {
    table(local.map((m) => [path.relative(root, m.folder) || '.', m.modelType ?? '?', formatBytes(m.sizeBytes), status(m.files)]));
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'infer':
        await infer(rest);
        return 0;
      case 'models':
        await listModels(rest);
        return 0;
      case 'search':
        await search(rest);
        return 0;
      case 'report':
        await report(rest, { resolveModel, graphCacheDir: defaultCacheDir(), quantizedDir: defaultQuantizedDir() });
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
