/**
 * `vision-inspector report`: the inspector's views as one self-contained HTML page (static
 * figures, method cards), for sharing results outside VS Code.
 *
 * ViT/CLIP: input with patch grid; top labels (ViT) or zero-shot bars and phrase heatmaps (CLIP,
 * --text); [CLS] attention per layer and its rollout; patch-embedding filters with their response
 * maps and their principal components; position-embedding similarity; mean attention distance
 * over every --image. Fuyu: the answer to --prompt, the token layout, the answer token's attention
 * to the image per layer, and the patch-projection filters. All: the classic-kernel gallery.
 *
 * The page is written atomically (temp file + rename) and never into the model's folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { check, UserError } from '../core/errors.js';
import { InferenceEngine, type TensorData } from '../core/engine/client.js';
import { decodeImage, type DecodedImage } from '../core/image/decode.js';
import { preprocess, preprocessFuyu, resolveImageProcessorConfig, type ImageProcessorKind } from '../core/image/preprocess.js';
import { resizeRGB8 } from '../core/image/resample.js';
import type { RgbImage } from '../core/image/types.js';
import {
  CLASSIC_FILTERS, applyClassicFilter, applyKernel, classicKernel, displayMappingFor, embossKernel, gaussianKernel, laplacianKernel,
  sobelXKernel, stackKernels, toDisplayRgb, toFloatImage, LUMA_601, type ApplyOptions, type Kernel,
} from '../core/image/kernels.js';
import { GraphCache } from '../core/onnx/cache.js';
import { ModelRunner, openModel, topK, type LoadedModel } from '../core/models/runner.js';
import type { LoadedCLIP } from '../core/models/clip-runner.js';
import type { LoadedFuyu } from '../core/models/fuyu-runner.js';
import type { PatchGrid } from '../core/models/vit.js';
import { FUYU_IO } from '../core/models/fuyu.js';
import { attentionDistanceOverImages } from '../core/analysis/attention-distance.js';
import { clsAttentionMap, clsRolloutMaps } from '../core/analysis/attention-maps.js';
import { filterTiles, patchResponses, rankByEnergy, readPatchEmbeddingFilters, type PatchEmbeddingFilters } from '../core/analysis/patch-embedding.js';
import { readPositionTable, resizePositionTable, type PositionTable } from '../core/analysis/position-embedding.js';
import { DEFAULT_ROLLOUT_OPTIONS } from '../core/analysis/rollout.js';
import { createFuyuRunner, DEFAULT_MAX_NEW_TOKENS } from './fuyu.js';
import { attentionDistanceCard, clipCard, clipMatrixCard, filterPcaCard, fuyuAttentionCard, fuyuSequenceCard, learnedFiltersCard, positionSimilarityCard } from '../shared/method-cards.js';
import { attentionDistancePlot, colorGrid, filterComponents, heatmapOverlay, mosaic, positionSimilarityMosaic, upscale } from '../core/analysis/figures.js';
import { valueRange } from '../shared/colormap.js';
import { barsHtml, escapeHtml, figure, imgTag, matrixHtml, methodCardHtml, patchGridSvg, reportPage, type ReportSection } from './report-html.js';
import { modelDisplayName } from '../core/io/hub-layout.js';

export const REPORT_USAGE = `  vision-inspector report --model <model> --image <image> [--image <more images>]... --out <report.html>
                          [--text <label>]... [--template <prompt>] [--prompt <prompt>]
                          [--max-new-tokens <n>] [--weights fp32|int8|int4] [--threads <n>] [--no-cache]

  A self-contained HTML page (no scripts, no external requests) with the inspector's views as
  static figures, each with its method card. The first --image is the one shown; mean attention
  distance averages over all of them. CLIP: --text gives the zero-shot labels and heatmap
  phrases (--template e.g. "a photo of a {}."). Fuyu: --prompt (default: a caption prompt).`;

/** What main.ts shares with the command (its model resolution and cache folders). */
export interface ReportContext {
  resolveModel(ref: string): Promise<string>;
  graphCacheDir: string | undefined;
  quantizedDir: string;
}

/** Patch-embedding filters shown in the mosaic (ViT-L has 1024); PCA components shown (the paper shows 28). */
const MAX_FILTER_TILES = 256;
const PCA_COMPONENTS = 28;
const RESPONSE_MAPS = 8;
const DEFAULT_FUYU_PROMPT = 'Generate a coco-style caption.\n';
/** Longest side of the image the kernel gallery filters (the explorer's lesson needs no more). */
const KERNEL_GALLERY_SIDE = 256;

export async function report(argv: string[], context: ReportContext): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      image: { type: 'string', multiple: true },
      out: { type: 'string' },
      text: { type: 'string', multiple: true },
      template: { type: 'string' },
      prompt: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      weights: { type: 'string' },
      threads: { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
    },
    strict: true,
  });
  check(values.model && values.image && values.image.length > 0 && values.out, 'report needs --model, --image and --out.', undefined, REPORT_USAGE);
  const out = path.resolve(values.out);
  const outDir = path.dirname(out);
  check(fs.existsSync(outDir) && fs.statSync(outDir).isDirectory(), 'does not exist; --out writes into an existing folder.', outDir);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  check(threads === undefined || (Number.isInteger(threads) && threads > 0), `--threads must be a positive integer, got "${values.threads}".`);
  const template = values.template;
  check(template === undefined || template.includes('{}'), `--template "${template}" has no {} where the text goes.`);

  const loaded = await openModel(await context.resolveModel(values.model));
  check(!isInside(fs.realpathSync(outDir), loaded.checkpoint.dir), 'is inside the model folder; the report is never written there.', out,
    'Choose another --out folder.');
  check(loaded.kind === 'clip' || !values.text, `is a ${loaded.kind} model; --text is for CLIP models.`, loaded.checkpoint.dir);
  check(loaded.kind === 'fuyu' || (values.prompt === undefined && values['max-new-tokens'] === undefined && values.weights === undefined),
    `is a ${loaded.kind} model; --prompt, --max-new-tokens and --weights are for Fuyu models.`, loaded.checkpoint.dir);
  const files = values.image.map((f) => path.resolve(f));
  const images = await Promise.all(files.map((f) => decodeImage(f)));

  const engine = InferenceEngine.create({ threads });
  let sections: ReportSection[];
  try {
    const runner = new ModelRunner(engine, new GraphCache(values['no-cache'] ? undefined : context.graphCacheDir));
    const controller = new AbortController();
    const onSigint = (): void => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      sections = loaded.kind === 'fuyu'
        ? await fuyuSections(runner, loaded, images[0]!, { ...values, quantizedDir: context.quantizedDir }, controller.signal)
        : await visionSections(runner, loaded, images, files.map((f) => path.basename(f)), { texts: values.text ?? [], template }, controller.signal);
    } finally {
      process.off('SIGINT', onSigint);
    }
  } finally {
    await engine.dispose();
  }
  sections.push(await kernelGallery(images[0]!));
  const subtitle = `${escapeHtml(modelDisplayName(loaded.checkpoint.dir))} (${escapeHtml(loaded.checkpoint.modelType ?? loaded.kind)}) on ${files.map((f) => escapeHtml(path.basename(f))).join(', ')}`;
  await writeAtomically(out, reportPage(`Vision Inspector report: ${path.basename(files[0]!)}`, subtitle, sections));
  console.log(`wrote ${out}`);
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Temp file beside the target, then rename: readers never see half a page, a failure leaves no file. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await fs.promises.writeFile(tmp, text);
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw new UserError(`cannot write the report (${(err as Error).message}).`, file);
  }
}

// ---------------------------------------------------------------------------------------------
// ViT and CLIP

interface VisionInput {
  pixelValues: TensorData;
  height: number;
  width: number;
  /** The model input as 8-bit RGB (normalisation undone), so the patch grid sits exactly on it. */
  display: RgbImage;
}

function visionInput(loaded: LoadedModel, image: DecodedImage): VisionInput {
  const kind = loaded.kind as ImageProcessorKind;
  const file = path.join(loaded.checkpoint.dir, 'preprocessor_config.json');
  const config = loaded.checkpoint.preprocessorConfig ?? {};
  const processed = preprocess(image, config, { kind, file });
  const [, , height, width] = processed.shape;
  return {
    pixelValues: { type: 'float32', dims: processed.shape, data: processed.pixelValues },
    height,
    width,
    display: undoNormalization(processed.pixelValues, height, width, resolveImageProcessorConfig(config, { kind, file }), 'chw'),
  };
}

/** x = (v·std + mean) / rescale, rounded to 8 bits; `layout` of the values: CHW planes or HWC patches. */
function undoNormalization(values: Float32Array, height: number, width: number, processor: ReturnType<typeof resolveImageProcessorConfig>, layout: 'chw' | 'hwc'): RgbImage {
  const data = new Uint8Array(height * width * 3);
  const scale = processor.rescaleFactor ?? 1;
  for (let c = 0; c < 3; c++) {
    const mean = processor.normalize?.mean[c] ?? 0;
    const std = processor.normalize?.std[c] ?? 1;
    for (let i = 0; i < height * width; i++) {
      const v = layout === 'chw' ? values[c * height * width + i]! : values[i * 3 + c]!;
      data[i * 3 + c] = Math.min(255, Math.max(0, Math.round((v * std + mean) / scale)));
    }
  }
  return { width, height, data };
}

/** Display scale: small inputs (tiny test models) enlarged to about 256 px. */
function displayScale(height: number, width: number): number {
  return Math.max(1, Math.round(256 / Math.max(height, width)));
}

interface VisionRun {
  grid: PatchGrid;
  heads: number;
  /** attentions.{i} per layer, [heads, N, N]. */
  attentions: Float32Array[];
  /** A ViT classifier's logits (absent without a classification head, and for CLIP). */
  logits?: Float32Array;
}

async function runVision(runner: ModelRunner, loaded: LoadedModel, pixelValues: TensorData, signal: AbortSignal): Promise<VisionRun> {
  if (loaded.kind === 'vit') {
    const outputs = loaded.model.outputs(pixelValues.dims[2]!, pixelValues.dims[3]!);
    const attentionNames = outputs.attentions.map((o) => o.name);
    const run = await runner.runViT(loaded, pixelValues, { fetches: [...(outputs.logits ? ['logits'] : []), ...attentionNames], signal });
    const logits = run.tensors.logits?.data as Float32Array | undefined;
    return { grid: run.grid, heads: loaded.model.config.num_attention_heads, attentions: attentionNames.map((n) => run.tensors[n]!.data as Float32Array), logits };
  }
  const clip = loaded as LoadedCLIP;
  const L = clip.model.config.vision_config.num_hidden_layers;
  const fetches = Array.from({ length: L }, (_, i) => `vision_model.attentions.${i}`);
  const run = await runner.clip(clip).runVision(pixelValues, { fetches, signal });
  return { grid: run.grid, heads: clip.model.config.vision_config.num_attention_heads, attentions: fetches.map((n) => run.tensors[n]!.data as Float32Array) };
}

async function visionSections(runner: ModelRunner, loaded: LoadedModel, images: DecodedImage[], names: string[], args: { texts: string[]; template?: string }, signal: AbortSignal): Promise<ReportSection[]> {
  const input = visionInput(loaded, images[0]!);
  const run = await runVision(runner, loaded, input.pixelValues, signal);
  const { grid } = run;
  const scale = displayScale(input.height, input.width);
  const shown = upscale(input.display, scale);
  const sections: ReportSection[] = [];

  sections.push({
    id: 'input',
    title: 'Input and patch grid',
    body: figure(await patchGridSvg(input.display, grid.rows, grid.cols, grid.patchSize, scale), `${input.width}×${input.height} model input, ${grid.rows}×${grid.cols} patches of ${grid.patchSize} px, ${grid.prefixTokens} prefix token(s)`),
    method: `<p>The image after the checkpoint's <code>preprocessor_config.json</code> (resize${loaded.kind === 'clip' ? ', centre crop' : ''}, rescale, normalise; normalisation undone for display). Patch (r, c) is token ${grid.prefixTokens} + r·${grid.cols} + c; pixels past the last whole patch are not seen by the model.</p>`,
  });

  sections.push(loaded.kind === 'vit' ? vitLabels(loaded, run.logits) : await clipViews(runner, loaded as LoadedCLIP, input, grid, shown, scale, args, signal));
  const clip = loaded.kind === 'clip' ? loaded : undefined;
  if (clip?.model.hasText && args.texts.length > 0 && (images.length > 1 || args.texts.length > 1)) {
    sections.push(await clipMatrixSection(runner, clip, images.map((image, i) => (i === 0 ? input : visionInput(loaded, image))), names, args, signal));
  }
  sections.push(await attentionSection(run, input, shown, scale));

  const filters = await readPatchEmbeddingFilters(loaded);
  sections.push(await filterSection(filters, input, shown, scale));
  sections.push(await pcaSection(filters));
  sections.push(await positionSection(await readPositionTable(loaded), grid));
  sections.push(await distanceSection(runner, loaded, images, run, signal));
  return sections;
}

/** The top labels of the ViT run's logits (from runVision, so the model runs once). */
function vitLabels(loaded: LoadedModel & { kind: 'vit' }, logits: Float32Array | undefined): ReportSection {
  const body = logits
    ? barsHtml(topK(logits, loaded.model.labels, 5).map((t) => ({ label: t.label, value: t.probability, note: `logit ${t.logit.toFixed(3)}` })))
    : '<p class="note">This checkpoint has no classification head (no classifier.weight).</p>';
  return {
    id: 'labels',
    title: 'Top labels',
    body,
    method: '<span class="formula">p(y | x) = softmax(W·LN(h_L[CLS]) + b)_y</span><p>The five highest logits of the classifier on the final [CLS] state, with their softmax probabilities over all labels (id2label of config.json).</p>',
  };
}

async function clipViews(runner: ModelRunner, loaded: LoadedCLIP, input: VisionInput, grid: PatchGrid, shown: RgbImage, scale: number, args: { texts: string[]; template?: string }, signal: AbortSignal): Promise<ReportSection> {
  const method = methodCardHtml(clipCard(args.template ?? '{}'));
  if (!loaded.model.hasText || args.texts.length === 0) {
    return { id: 'clip', title: 'CLIP zero-shot and heatmaps', body: '<p class="note">No --text given (or no text tower): pass labels with --text to get zero-shot probabilities and phrase heatmaps.</p>', method };
  }
  const clip = runner.clip(loaded);
  const templates = args.template ? [args.template] : undefined;
  const scores = await clip.zeroShot(input.pixelValues, args.texts, { templates, signal });
  const maps = await clip.heatmaps(input.pixelValues, args.texts, { templates, signal });
  const figures = await Promise.all(maps.maps.map(async (m) => {
    const r = valueRange(m.similarity);
    return figure(await imgTag(heatmapOverlay(shown, m.similarity, grid.rows, grid.cols, grid.patchSize * scale, r), `heatmap: ${m.text}`),
      `“${escapeHtml(m.text)}”: cos ${r.min.toFixed(3)} … ${r.max.toFixed(3)}`);
  }));
  return {
    id: 'clip',
    title: 'CLIP zero-shot and heatmaps',
    body: barsHtml(scores.map((s) => ({ label: s.label, value: s.probability, note: `logit ${s.logit.toFixed(3)}` }))) + figures.join(''),
    method,
  };
}

/** Every --image against every --text: 100·cos per cell, logits and row-softmax probabilities beside (as the CLIP tab). */
async function clipMatrixSection(runner: ModelRunner, loaded: LoadedCLIP, inputs: VisionInput[], names: string[], args: { texts: string[]; template?: string }, signal: AbortSignal): Promise<ReportSection> {
  const template = args.template ?? '{}';
  const m = await runner.clip(loaded).similarityMatrix(inputs.map((i) => i.pixelValues), args.texts, { templates: [template], signal });
  const rowHeads = await Promise.all(inputs.map(async (input, i) => `${await imgTag(input.display, names[i]!, 48 / Math.max(input.width, input.height))}<br>${escapeHtml(names[i]!)}`));
  const colHeads = args.texts.map(escapeHtml);
  const hundredCos = m.cosine.map((c) => 100 * c);
  return {
    id: 'clip-matrix',
    title: 'CLIP image–text similarity',
    body: `<h3>100 · cosine</h3>${matrixHtml(rowHeads, colHeads, hundredCos, (v) => v.toFixed(1))}` +
      `<h3>Probabilities per image (softmax of logits_per_image over the texts)</h3>${matrixHtml(rowHeads, colHeads, m.probabilities, (v, k) => `${(100 * v).toFixed(1)} %<br><small>logit ${m.logits[k]!.toFixed(2)}</small>`)}`,
    method: methodCardHtml(clipMatrixCard(template, m.scale)),
  };
}

async function attentionSection(run: VisionRun, input: VisionInput, shown: RgbImage, scale: number): Promise<ReportSection> {
  const { grid, heads, attentions } = run;
  const p = grid.patchSize * scale;
  const raw = await Promise.all(attentions.map(async (a, l) => figure(await imgTag(heatmapOverlay(shown, clsAttentionMap(a, heads, grid), grid.rows, grid.cols, p), `layer ${l + 1} attention`), `layer ${l + 1}`)));
  const rolled = clsRolloutMaps(attentions, heads, grid, DEFAULT_ROLLOUT_OPTIONS);
  const roll = await Promise.all(rolled.map(async (m, l) => figure(await imgTag(heatmapOverlay(shown, m, grid.rows, grid.cols, p), `rollout through layer ${l + 1}`), `through layer ${l + 1}`)));
  return {
    id: 'attention',
    title: 'Attention maps',
    body: `<h3>[CLS] attention, mean over ${heads} heads</h3>${raw.join('')}<h3>Attention rollout of [CLS]</h3>${roll.join('')}`,
    method: `<span class="formula">a_ℓ(p) = (1/H) Σ_h A_ℓ[h, CLS, p]</span><span class="formula">R_ℓ = Ã_ℓ ··· Ã_1,  Ã = rownorm((mean_h A + I) / 2)</span><p>Raw: the [CLS] query's attention probabilities at each patch key, averaged over heads. Rollout (Abnar &amp; Zuidema 2020): head fusion mean, discard ratio 0, identity for the residual, rows renormalised; row [CLS] of R_ℓ at the patches. Each map coloured min…max (inferno) over its patches, blended at 60 % on the input.</p>`,
  };
}

async function filterSection(filters: PatchEmbeddingFilters, input: VisionInput, shown: RgbImage, scale: number): Promise<ReportSection> {
  const responses = patchResponses(input.pixelValues.data as Float32Array, input.height, input.width, filters);
  const ranked = rankByEnergy(responses);
  const tiles = filterTiles(filters, 'minmax');
  const tileScale = Math.max(1, Math.round(32 / filters.patchSize));
  const shownTiles = ranked.slice(0, MAX_FILTER_TILES).map((r) => upscale(tiles[r.channel]!, tileScale));
  const cells = responses.rows * responses.cols;
  const p = filters.patchSize * scale;
  const maps = await Promise.all(ranked.slice(0, RESPONSE_MAPS).map(async (r) => {
    const map = responses.maps.subarray(r.channel * cells, (r.channel + 1) * cells);
    const range = valueRange(map);
    const tile = upscale(tiles[r.channel]!, Math.max(1, Math.round(shown.height / filters.patchSize / 2)));
    return figure(`${await imgTag(tile, `filter ${r.channel}`)} ${await imgTag(heatmapOverlay(shown, map, responses.rows, responses.cols, p, range, 0.85), `response of filter ${r.channel}`)}`,
      `channel ${r.channel}: energy ${r.energy.toPrecision(3)}, response ${range.min.toFixed(2)} … ${range.max.toFixed(2)}`);
  }));
  return {
    id: 'filters',
    title: 'Learned convolution: patch-embedding filters',
    body: figure(await imgTag(mosaic(shownTiles, 16, 2), 'patch-embedding filters'), `${Math.min(filters.count, MAX_FILTER_TILES)} of ${filters.count} filters (${filters.patchSize}×${filters.patchSize}×3, <code>${escapeHtml(filters.tensor)}</code>), by response energy on this image, highest first`) +
      `<h3>Response maps of the ${RESPONSE_MAPS} most energetic channels</h3>${maps.join('')}`,
    method: methodCardHtml(learnedFiltersCard(filters.patchSize, filters.tensor, filters.bias !== undefined)),
  };
}

async function pcaSection(filters: PatchEmbeddingFilters): Promise<ReportSection> {
  const { tiles, explainedRatio, dims } = filterComponents(filters, PCA_COMPONENTS);
  const explained = explainedRatio.reduce((a, b) => a + b, 0);
  return {
    id: 'pca',
    title: 'Principal components of the filters (ViT paper, Fig. 7 left)',
    body: figure(await imgTag(mosaic(tiles, 7, 2), 'principal components'), `first ${tiles.length} components, explaining ${(100 * explained).toFixed(1)} % of the filters' variance (first: ${(100 * explainedRatio[0]!).toFixed(1)} %)`),
    method: methodCardHtml(filterPcaCard(filters.count, dims)),
  };
}

async function positionSection(table: PositionTable & { prefixTokens: number }, grid: PatchGrid): Promise<ReportSection> {
  const grids: PositionTable[] = [table];
  if (grid.rows !== table.rows || grid.cols !== table.cols) grids.push(resizePositionTable(table, grid.rows, grid.cols));
  const figures = await Promise.all(grids.map(async (t, i) => {
    const what = i === 0 ? `trained ${t.rows}×${t.cols} grid` : `interpolated to this input's ${t.rows}×${t.cols} grid`;
    return figure(await imgTag(positionSimilarityMosaic(t), `position similarity, ${what}`), `${what}: tile (r, c) shows cos(e_(r,c), e_(r',c')) over all (r', c')`);
  }));
  return {
    id: 'positions',
    title: 'Position-embedding similarity (ViT paper, Fig. 7 centre)',
    body: figure(await imgTag(upscale(colorGrid(Float32Array.from({ length: 64 }, (_, i) => -1 + (2 * i) / 63), 1, 64), 4), 'colour scale'), 'colour scale: −1 … 1 (viridis)') + figures.join(''),
    method: methodCardHtml(positionSimilarityCard()),
  };
}

async function distanceSection(runner: ModelRunner, loaded: LoadedModel, images: DecodedImage[], first: VisionRun, signal: AbortSignal): Promise<ReportSection> {
  const layers = first.attentions.length;
  const summary = await attentionDistanceOverImages(images.length, layers, first.heads,
    async (i) => (i === 0 ? first : runVision(runner, loaded, visionInput(loaded, images[i]!).pixelValues, signal)), { signal });
  return {
    id: 'distance',
    title: 'Mean attention distance (ViT paper, Fig. 7 right)',
    body: figure(attentionDistancePlot(summary.distance, layers, first.heads, 0), `${summary.images} image(s); dots: heads, line: mean over heads. Largest possible distance here: ${summary.maxDistance.toFixed(0)} px`),
    method: methodCardHtml(attentionDistanceCard(first.grid.patchSize, summary.images)),
  };
}

// ---------------------------------------------------------------------------------------------
// Fuyu

interface FuyuArgs {
  prompt?: string;
  'max-new-tokens'?: string;
  weights?: string;
  quantizedDir: string;
}

async function fuyuSections(runner: ModelRunner, loaded: LoadedFuyu, image: DecodedImage, args: FuyuArgs, signal: AbortSignal): Promise<ReportSection[]> {
  const maxNewTokens = args['max-new-tokens'] === undefined ? DEFAULT_MAX_NEW_TOKENS : Number(args['max-new-tokens']);
  check(Number.isInteger(maxNewTokens) && maxNewTokens > 0, `--max-new-tokens must be a positive integer, got "${args['max-new-tokens']}".`);
  const fuyu = createFuyuRunner(runner, loaded, args.weights, args.quantizedDir);
  const file = path.join(loaded.checkpoint.dir, 'preprocessor_config.json');
  const config = loaded.checkpoint.preprocessorConfig ?? {};
  const processed = preprocessFuyu(image, config, { file });
  const promptText = args.prompt ?? DEFAULT_FUYU_PROMPT;
  const prompt = fuyu.prepare(processed, promptText, maxNewTokens);
  const { layout } = prompt;
  const L = fuyu.model.config.num_hidden_layers;
  const attentionNames = Array.from({ length: L }, (_, i) => FUYU_IO.imageAttentionsMean(i));
  const generation = await fuyu.generate(prompt, { maxNewTokens, signal, prefillFetches: attentionNames });

  const { patchRows: rows, patchCols: cols, patchHeight: p } = processed;
  const display = patchesToImage(processed.imagePatches, rows, cols, p, resolveImageProcessorConfig(config, { kind: 'fuyu', file }));
  const scale = displayScale(display.height, display.width);
  const shown = upscale(display, scale);
  const tokens = loaded.tokenizer;
  const promptIds = layout.inputIds.slice(layout.textStart);
  const textTokens = promptIds.map((id) => tokens.idToToken(id) ?? `<${id}>`);

  const card = { weights: fuyu.weights, maxNewTokens, patchRows: rows, patchCols: cols };
  const sections: ReportSection[] = [{
    id: 'answer',
    title: 'Fuyu: answer and token layout',
    body: `<p><b>Prompt:</b> ${escapeHtml(promptText)}</p><p><b>Answer:</b> ${escapeHtml(generation.text)} <small class="note">(${generation.newTokenIds.length} tokens, stopped by ${generation.stopped})</small></p>` +
      figure(await patchGridSvg(display, rows, cols, p, scale), `${display.width}×${display.height} model input, ${rows}×${cols} patches of ${p} px`) +
      figure(tokenLayoutSvg(rows, cols, textTokens), `the sequence as the model sees it: ${rows}×${cols} image tokens, ${rows} image-newline tokens, then ${textTokens.length} text tokens (${layout.inputIds.length} in all)`),
    method: methodCardHtml(fuyuSequenceCard(card)),
  }];

  // image_attentions_mean.{i} is [text rows, P]; its last row is the beginning-of-answer token, whose output chose the first answer token.
  const figures = await Promise.all(attentionNames.map(async (name, l) => {
    const t = generation.prefill[name]!;
    const P = rows * cols;
    const last = (t.data as Float32Array).subarray(t.data.length - P);
    return figure(await imgTag(heatmapOverlay(shown, last, rows, cols, p * scale), `layer ${l + 1}`), `layer ${l + 1}`);
  }));
  sections.push({
    id: 'attention',
    title: 'Attention of the answer token to the image',
    body: figures.join(''),
    method: methodCardHtml(fuyuAttentionCard(card)),
  });
  const filters = await readPatchEmbeddingFilters(loaded);
  const tiles = filterTiles(filters, 'minmax').slice(0, MAX_FILTER_TILES).map((t) => upscale(t, Math.max(1, Math.round(32 / filters.patchSize))));
  const pcaTiles = filterComponents(filters, PCA_COMPONENTS).tiles;
  const pcaK = pcaTiles.length;
  sections.push({
    id: 'filters',
    title: 'Patch projection filters and their principal components',
    body: figure(await imgTag(mosaic(tiles, 16, 2), 'filters'), `${tiles.length} of ${filters.count} rows of <code>${escapeHtml(filters.tensor)}</code> as ${filters.patchSize}×${filters.patchSize} RGB tiles`) +
      figure(await imgTag(mosaic(pcaTiles, 7, 2), 'principal components'), `first ${pcaK} principal components`),
    method: `<p>Fuyu projects each flattened patch with a Linear layer — the same as a convolution with kernel = stride = patch size. Each row is reshaped to [3, p, p] and shown normalised min…max per tile; PCA as for ViT (centred, sign: largest entry positive). Fuyu has no learned patch position embeddings (rotary positions) and no [CLS], so the position-similarity and attention-distance views do not apply.</p>`,
  });
  return sections;
}

function patchesToImage(patches: Float32Array, rows: number, cols: number, p: number, processor: ReturnType<typeof resolveImageProcessorConfig>): RgbImage {
  const width = cols * p;
  const hwc = new Float32Array(rows * p * width * 3);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      for (let y = 0; y < p; y++) {
        const src = ((r * cols + c) * p * p + y * p) * 3;
        hwc.set(patches.subarray(src, src + p * 3), ((r * p + y) * width + c * p) * 3);
      }
    }
  }
  return undoNormalization(hwc, rows * p, width, processor, 'hwc');
}

/** Image-patch tokens row by row, each row ended by the newline token, then the text tokens. */
function tokenLayoutSvg(rows: number, cols: number, textTokens: readonly string[]): string {
  const cell = Math.max(6, Math.min(18, Math.floor(360 / (cols + 1))));
  const width = Math.max((cols + 1) * cell, 360);
  const textLines = Math.ceil(textTokens.length / 6);
  const height = rows * cell + 12 + textLines * 20;
  const parts: string[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) parts.push(`<rect x="${c * cell}" y="${r * cell}" width="${cell - 1}" height="${cell - 1}" fill="#3b528b"><title>patch (${r}, ${c})</title></rect>`);
    parts.push(`<rect x="${cols * cell}" y="${r * cell}" width="${cell - 1}" height="${cell - 1}" fill="#e3562f"><title>image newline after row ${r}</title></rect>`);
  }
  textTokens.forEach((t, i) => {
    const x = (i % 6) * (width / 6);
    const y = rows * cell + 12 + Math.floor(i / 6) * 20;
    parts.push(`<rect x="${x.toFixed(1)}" y="${y}" width="${(width / 6 - 3).toFixed(1)}" height="16" fill="#f0efe6" stroke="#bbb"/><text x="${(x + 3).toFixed(1)}" y="${y + 12}" class="tokens">${escapeHtml(t.length > 9 ? `${t.slice(0, 8)}…` : t)}</text>`);
  });
  return `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="token layout">${parts.join('')}</svg>`;
}

// ---------------------------------------------------------------------------------------------
// Classic kernels

async function kernelGallery(image: DecodedImage): Promise<ReportSection> {
  const longest = Math.max(image.width, image.height);
  const small = longest > KERNEL_GALLERY_SIDE
    ? resizeRGB8(image, Math.max(1, Math.round((image.width * KERNEL_GALLERY_SIDE) / longest)), Math.max(1, Math.round((image.height * KERNEL_GALLERY_SIDE) / longest)), 'bilinear')
    : image;
  const scale = displayScale(small.height, small.width) > 1 ? 2 : 1;
  const lum = toFloatImage(small, 'luminance');
  const rgb = toFloatImage(small, 'rgb');
  const options: ApplyOptions = { operation: 'convolution', border: 'reflect' };
  const shownFor = async (result: ReturnType<typeof applyKernel>, kernel: Kernel | undefined, caption: string): Promise<string> => {
    const mapping = displayMappingFor(kernel);
    const display = toDisplayRgb(result, mapping);
    return figure(await imgTag(upscale(display, scale), caption), `${escapeHtml(caption)} <small>(${mapping}${mapping === 'clamp' ? '' : `, scale ${display.scale.toFixed(1)}`})</small>${kernel && kernel.size <= 3 ? `<br><code>${kernelText(kernel)}</code>` : ''}`);
  };
  const gallery: string[] = [];
  for (const id of CLASSIC_FILTERS) {
    const kernel = classicKernel(id, { sigma: 1.5 });
    gallery.push(await shownFor(applyClassicFilter(lum, id, { sigma: 1.5 }, options), kernel, kernel?.name ?? 'gradient magnitude √(Gx² + Gy²)'));
  }
  const colour = [
    await shownFor(applyKernel(rgb, gaussianKernel(1.5), options), gaussianKernel(1.5), 'Gaussian blur σ=1.5, per RGB channel'),
    await shownFor(applyClassicFilter(rgb, 'sharpen', {}, options), classicKernel('sharpen'), 'sharpen, per RGB channel'),
  ];
  const flips: string[] = [];
  for (const kernel of [embossKernel(), sobelXKernel()]) {
    flips.push(await shownFor(applyKernel(lum, kernel, options), kernel, `${kernel.name}, convolution`));
    flips.push(await shownFor(applyKernel(lum, kernel, { ...options, operation: 'correlation' }), kernel, `${kernel.name}, cross-correlation`));
  }
  const log = stackKernels(gaussianKernel(1.5), laplacianKernel());
  const stacked = [
    await shownFor(applyKernel(applyKernel(lum, gaussianKernel(1.5), options), laplacianKernel(), options), log, 'Gaussian σ=1.5, then Laplacian (stacked: Laplacian of Gaussian)'),
  ];
  return {
    id: 'kernels',
    title: 'Classic kernels',
    body: `<h3>On luminance</h3>${gallery.join('')}<h3>Per RGB channel</h3>${colour.join('')}<h3>Convolution vs cross-correlation (asymmetric kernels)</h3>${flips.join('')}<h3>Stacking two kernels</h3>${stacked.join('')}`,
    method: `<span class="formula">g(x, y) = Σ_v Σ_u k(u, v) · f(x − u, y − v)</span><p>True convolution (the kernel flipped), border <b>reflect</b> (mirrored without repeating the edge pixel). Cross-correlation, what deep-learning conv layers compute, is Σ k(u, v) f(x + u, y + v): the same for kernels symmetric under a 180° turn, mirrored for the others (emboss lit from the other side, Sobel edges of opposite sign). Luminance Y = ${LUMA_601[0]} R + ${LUMA_601[1]} G + ${LUMA_601[2]} B (ITU-R BT.601, as PIL convert("L"), unrounded). Image: ${small.width}×${small.height}. Display: clamp = value clamped to 0…255; signed = 0 at mid-grey, ±max|g| at white/black; magnitude = 0 black … max white.</p>`,
  };
}

function kernelText(kernel: Kernel): string {
  const rows: string[] = [];
  for (let v = 0; v < kernel.size; v++) rows.push(Array.from(kernel.weights.subarray(v * kernel.size, (v + 1) * kernel.size), (w) => (Number.isInteger(w) ? String(w) : w.toFixed(3))).join(' '));
  return `[${rows.join('; ')}]`;
}
