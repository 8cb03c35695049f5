/**
 * CLIP as V*'s search model (SPEC §7.2, "V*-CLIP"):
 *
 * - target cue of a node: the node crop letterboxed to a square (V*'s padding colour), one vision
 *   pass, MaskCLIP patch embeddings, and per cell the softmax of κ·cos over the target and the
 *   negative prompts — the target's share (cells lying wholly in the padding are 0);
 * - detection: the 4-connected region of cells ≥ ½ of the peak around the peak, grown ×1.2 and to
 *   at least min(224, node side), re-scored as a crop: softmax of κ·cos(image_embeds) over the
 *   target and the negatives. At the root every other region with peak ≥ 0.5 is scored too (multi-instance);
 * - contextual cue (CLIP-only mode (C); Fuyu's context question is a later seam): the node's
 *   children scored as crops, softmax over the children, spread evenly over each child.
 *
 * Crops go through the vision tower in batches (`batchSize` per run); the embeddings of a crop
 * are kept, so a child scored for a context cue costs nothing when it is later visited.
 *
 * THRESHOLDS. The cue thresholds and negative prompts are SPEC §7's initial guesses [U];
 * CONF_HIGH/CONF_LOW (0.7/0.5, DEFAULT_SEARCH_OPTIONS in vstar.ts) come from a sweep on synthetic
 * scenes with a seeded stand-in for CLIP's scores (synthetic-scene.ts, bench/vstar-calibrate.ts),
 * because no trained CLIP weights are available offline. Calibrating for real means SPEC §7.8:
 * V*Bench (or pasted-object scenes) with openai/clip-vit-base-patch16, grid-searching these
 * options for IoU > 0.5 success. Every constant is therefore an option.
 */
import { check } from '../errors.js';
import type { TensorData } from '../engine/client.js';
import { resolveImageProcessorConfig, preprocess, type ImageProcessorConfig, type ResolvedImageProcessor } from '../image/preprocess.js';
import type { RgbImage } from '../image/types.js';
import type { CLIPRunner } from '../models/clip-runner.js';
import { clipLogit, patchProbabilities, patchSimilarity, softmax } from '../models/clip-heatmap.js';
import { gridHeatmap, growBox, type Box, type ContextCue, type Detection, type Heatmap, type NodeDetection, type SearchModel, type SearchNode } from './vstar.js';

/** SPEC §7.2 prompt templates (a subset of OpenAI's ImageNet templates). */
export const SEARCH_TEMPLATES = ['a photo of a {}.', 'a photo of the {}.', 'a cropped photo of the {}.', 'a close-up photo of a {}.'] as const;

/** SPEC §7.2 initial negative set [U]; the other targets of the same question are added per target. */
export const DEFAULT_NEGATIVES = ['background', 'a wall', 'the floor', 'the sky', 'an object', 'a texture'] as const;

/** `int(255 · OPENAI_CLIP_MEAN)`: the colour V* pads crops to a square with (SPEC §7.2). */
export const LETTERBOX_FILL = [122, 116, 104] as const;

export interface CLIPSearchModelOptions {
  /** Negative prompts the target competes with (default DEFAULT_NEGATIVES). */
  negatives?: readonly string[];
  /** The other targets of the question: negatives too, each excluded when it is the target. */
  otherTargets?: readonly string[];
  templates?: readonly string[];
  /** Side R of the square the crops are resized to (default the model's image_size; larger → finer grid). */
  resolution?: number;
  /** Crops per vision-tower run (default 8; 1 = one run per crop). */
  batchSize?: number;
  /** Detection crops are at least min(this, node side) on each side (224, V*'s get_patch minimum). */
  minCropSide?: number;
  /** Detection region grown by this about its centre (1.2, V*'s object-crop factor). */
  cropGrow?: number;
  /** Region = 4-connected cells with p ≥ this × peak (0.5). */
  regionFraction?: number;
  /** At the root, further regions are candidates while their peak p ≥ this (0.5). */
  instancePeak?: number;
  /** Crop embeddings kept (default 128). */
  cacheEntries?: number;
}

/** Work done, for benches and the UI. */
export interface CLIPSearchStats {
  /** Vision-tower runs. */
  runs: number;
  /** Crops through the vision tower (Σ batch sizes). */
  crops: number;
  /** Crops whose embeddings came from the cache. */
  cacheHits: number;
}

interface CropEmbedding {
  imageEmbeds: Float32Array;
  patchEmbeds: Float32Array;
}

/** The square a box is letterboxed into: side max(w, h), the box pasted at ((s−w)//2, (s−h)//2). */
export function letterboxSquare(box: Box): Box {
  const side = Math.max(box.width, box.height);
  return { x: box.x - Math.floor((side - box.width) / 2), y: box.y - Math.floor((side - box.height) / 2), width: side, height: side };
}

/**
 * A node's letterbox grid: a rows×cols heatmap of zeros over letterboxSquare(box), and which of its
 * cells overlap the box itself (the others lie on the padding and never count).
 */
export function letterboxGrid(box: Box, rows: number, cols: number): { cue: Heatmap; usable: (cell: number) => boolean } {
  const cue = gridHeatmap(letterboxSquare(box), rows, cols, new Array<number>(rows * cols).fill(0));
  const usable = (i: number): boolean => {
    const r = Math.floor(i / cols);
    const c = i % cols;
    return cue.xs[c + 1]! > box.x && cue.xs[c]! < box.x + box.width && cue.ys[r + 1]! > box.y && cue.ys[r]! < box.y + box.height;
  };
  return { cue, usable };
}

/** `box` of `image` pasted into its letterbox square filled with `fill` (V*'s expand2square). */
export function letterbox(image: RgbImage, box: Box, fill: readonly number[] = LETTERBOX_FILL): RgbImage {
  check(Number.isInteger(box.x) && Number.isInteger(box.y) && box.width > 0 && box.height > 0 &&
    box.x >= 0 && box.y >= 0 && box.x + box.width <= image.width && box.y + box.height <= image.height,
  `box ${JSON.stringify(box)} is not an integer box inside the ${image.width}×${image.height} image.`);
  const square = letterboxSquare(box);
  const s = square.width;
  const data = new Uint8Array(s * s * 3);
  for (let i = 0; i < s * s; i++) data.set(fill, i * 3);
  const dx = box.x - square.x;
  const dy = box.y - square.y;
  for (let y = 0; y < box.height; y++) {
    const from = ((box.y + y) * image.width + box.x) * 3;
    data.set(image.data.subarray(from, from + box.width * 3), ((dy + y) * s + dx) * 3);
  }
  return { width: s, height: s, data };
}

/** A region of grid cells: its cells (row-major indices) and peak value. */
export interface CellRegion {
  cells: number[];
  peak: number;
}

/**
 * Regions of a rows×cols map, strongest first: take the highest unassigned cell, grow the
 * 4-connected region of unassigned cells ≥ `fraction`·peak around it; repeat while `more(peak)`.
 * Cells where `usable` is false (letterbox padding) are never assigned. The first region is
 * always returned (the detection); `more` decides the further ones (multi-instance).
 */
export function peakRegions(values: ArrayLike<number>, rows: number, cols: number, usable: (cell: number) => boolean, fraction: number, more: (peak: number) => boolean): CellRegion[] {
  const assigned = new Uint8Array(rows * cols);
  const regions: CellRegion[] = [];
  for (;;) {
    let seed = -1;
    for (let i = 0; i < rows * cols; i++) {
      if (!assigned[i] && usable(i) && (seed < 0 || values[i]! > values[seed]!)) seed = i;
    }
    if (seed < 0) break;
    const peak = values[seed]!;
    if (regions.length > 0 && !more(peak)) break;
    const cells: number[] = [];
    const stack = [seed];
    assigned[seed] = 1;
    while (stack.length > 0) {
      const i = stack.pop()!;
      cells.push(i);
      const r = Math.floor(i / cols);
      const c = i % cols;
      for (const [nr, nc] of [[r - 1, c], [r + 1, c], [r, c - 1], [r, c + 1]] as const) {
        const n = nr * cols + nc;
        if (nr >= 0 && nr < rows && nc >= 0 && nc < cols && !assigned[n] && usable(n) && values[n]! >= fraction * peak) {
          assigned[n] = 1;
          stack.push(n);
        }
      }
    }
    regions.push({ cells: cells.sort((a, b) => a - b), peak });
  }
  return regions;
}

/** The detection crop of a region (SPEC §7.2 detection 1–2): the cells' bounding box clipped to the node, then growBox. */
export function regionCropBox(map: Heatmap, cells: readonly number[], node: Box, grow: number, minSide: number): Box {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const i of cells) {
    const r = Math.floor(i / map.cols);
    const c = i % map.cols;
    x0 = Math.min(x0, map.xs[c]!);
    x1 = Math.max(x1, map.xs[c + 1]!);
    y0 = Math.min(y0, map.ys[r]!);
    y1 = Math.max(y1, map.ys[r + 1]!);
  }
  x0 = Math.max(x0, node.x);
  y0 = Math.max(y0, node.y);
  x1 = Math.min(x1, node.x + node.width);
  y1 = Math.min(y1, node.y + node.height);
  return growBox({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, node, grow, minSide);
}

/**
 * The crops to score for a node's target cue (SPEC §7.2 detection): one per peak region, strongest
 * first; the first is the detection, further ones (only at the root, peaks ≥ instancePeak) are instances.
 */
export function peakCropBoxes(
  cue: Heatmap, usable: (cell: number) => boolean, node: SearchNode,
  o: { regionFraction: number; instancePeak: number; cropGrow: number; minCropSide: number },
): Box[] {
  const root = node.level === 1;
  const regions = peakRegions(cue.values, cue.rows, cue.cols, usable, o.regionFraction, (peak) => root && peak >= o.instancePeak);
  return regions.map((r) => regionCropBox(cue, r.cells, node.box, o.cropGrow, o.minCropSide));
}

/** The piecewise-constant density over `node` that gives child k (a split of the node, splitBox) the mass `shares[k]`. */
export function childShareHeatmap(node: Box, children: readonly Box[], shares: readonly number[]): Heatmap {
  const xs = [...new Set(children.map((c) => c.x)), node.x + node.width].sort((a, b) => a - b);
  const ys = [...new Set(children.map((c) => c.y)), node.y + node.height].sort((a, b) => a - b);
  check(xs.length - 1 >= 1 && (xs.length - 1) * (ys.length - 1) === children.length, 'context cue: the children do not form a grid.');
  return { rows: ys.length - 1, cols: xs.length - 1, xs, ys, values: children.map((c, k) => shares[k]! / (c.width * c.height)) };
}

const boxKey = (b: Box): string => `${b.x},${b.y},${b.width},${b.height}`;

export class CLIPSearchModel implements SearchModel {
  readonly stats: CLIPSearchStats = { runs: 0, crops: 0, cacheHits: 0 };
  readonly resolution: number;
  private readonly processor: ResolvedImageProcessor;
  private readonly negatives: readonly string[];
  private readonly otherTargets: readonly string[];
  private readonly templates: readonly string[];
  private readonly batchSize: number;
  private readonly minCropSide: number;
  private readonly cropGrow: number;
  private readonly regionFraction: number;
  private readonly instancePeak: number;
  private readonly cacheEntries: number;
  private readonly crops = new Map<string, CropEmbedding>();
  private readonly texts = new Map<string, Promise<Float32Array[]>>();

  constructor(
    readonly runner: CLIPRunner,
    readonly image: RgbImage,
    options: CLIPSearchModelOptions = {},
  ) {
    runner.model.requireVision();
    runner.model.requireText();
    this.resolution = options.resolution ?? runner.model.config.vision_config.image_size;
    const grid = runner.model.grid(this.resolution, this.resolution);
    check(grid.rows > 0, `resolution ${this.resolution} is smaller than one patch of this model.`);
    // CLIP preprocessing without the crop step, to R×R (the letterboxed crop is already square).
    const config = (runner.loaded.checkpoint.preprocessorConfig ?? {}) as ImageProcessorConfig;
    this.processor = resolveImageProcessorConfig(
      { ...config, do_resize: true, size: { height: this.resolution, width: this.resolution }, do_center_crop: false },
      { kind: 'clip' },
    );
    this.negatives = options.negatives ?? DEFAULT_NEGATIVES;
    this.otherTargets = options.otherTargets ?? [];
    this.templates = options.templates ?? SEARCH_TEMPLATES;
    this.batchSize = options.batchSize ?? 8;
    check(Number.isInteger(this.batchSize) && this.batchSize > 0, `batchSize must be a positive integer, got ${this.batchSize}.`);
    this.minCropSide = options.minCropSide ?? 224;
    this.cropGrow = options.cropGrow ?? 1.2;
    this.regionFraction = options.regionFraction ?? 0.5;
    this.instancePeak = options.instancePeak ?? 0.5;
    this.cacheEntries = options.cacheEntries ?? 128;
  }

  /** Unit text embeddings of the target, then of its negatives (template ensembles, cached). */
  textEmbeddings(target: string, signal?: AbortSignal): Promise<Float32Array[]> {
    let found = this.texts.get(target);
    if (!found) {
      const negatives = [...new Set([...this.negatives, ...this.otherTargets])].filter((n) => n !== target);
      found = this.runner.labelEmbeddings([target, ...negatives], { templates: this.templates, signal });
      found.catch(() => this.texts.delete(target));
      this.texts.set(target, found);
    }
    return found;
  }

  /** Letterboxed, preprocessed `pixel_values` [3, R, R] of one box. */
  cropPixels(box: Box): Float32Array {
    return preprocess(letterbox(this.image, box), this.processor).pixelValues;
  }

  /** Image and MaskCLIP patch embeddings of each box's letterboxed crop; uncached crops run `batchSize` at a time. */
  async embedCrops(boxes: readonly Box[], signal?: AbortSignal): Promise<CropEmbedding[]> {
    const missing = [...new Map(boxes.filter((b) => !this.crops.has(boxKey(b))).map((b) => [boxKey(b), b])).values()];
    this.stats.cacheHits += boxes.length - missing.length;
    const R = this.resolution;
    const P = this.runner.model.config.projection_dim;
    const size = 3 * R * R;
    for (let start = 0; start < missing.length; start += this.batchSize) {
      const chunk = missing.slice(start, start + this.batchSize);
      const data = new Float32Array(chunk.length * size);
      chunk.forEach((b, i) => data.set(this.cropPixels(b), i * size));
      const pixels: TensorData = { type: 'float32', dims: [chunk.length, 3, R, R], data };
      const run = await this.runner.runVision(pixels, { fetches: ['image_embeds', 'vision_model.patch_embeds'], signal });
      this.stats.runs++;
      this.stats.crops += chunk.length;
      const images = run.tensors['image_embeds']!.data as Float32Array;
      const patches = run.tensors['vision_model.patch_embeds']!.data as Float32Array;
      const cells = run.grid.rows * run.grid.cols;
      chunk.forEach((b, i) => {
        this.remember(boxKey(b), {
          imageEmbeds: images.slice(i * P, (i + 1) * P),
          patchEmbeds: patches.slice(i * cells * P, (i + 1) * cells * P),
        });
      });
    }
    return boxes.map((b) => this.crops.get(boxKey(b))!);
  }

  /** Per box, the softmax over the target and its negatives of κ·cos(crop embedding, text): the target's share. */
  async scoreCrops(boxes: readonly Box[], target: string, signal?: AbortSignal): Promise<number[]> {
    const [texts, scale] = await Promise.all([this.textEmbeddings(target, signal), this.runner.logitScale()]);
    const crops = await this.embedCrops(boxes, signal);
    return crops.map((c) => softmax(texts.map((t) => clipLogit(c.imageEmbeds, t, scale)))[0]!);
  }

  /** The dense probability map p(target) of a node (SPEC §7.2), on the letterbox grid in image pixels. */
  async targetCue(box: Box, target: string, signal?: AbortSignal): Promise<{ cue: Heatmap; usable: (cell: number) => boolean }> {
    const [texts, scale] = await Promise.all([this.textEmbeddings(target, signal), this.runner.logitScale()]);
    const [crop] = await this.embedCrops([box], signal);
    const { rows, cols } = this.runner.model.grid(this.resolution, this.resolution);
    const { cue, usable } = letterboxGrid(box, rows, cols);
    const probability = patchProbabilities(texts.map((t) => patchSimilarity(crop!.patchEmbeds, t)), scale)[0]!;
    cue.values = Array.from(probability, (p, i) => (usable(i) ? p : 0));
    return { cue, usable };
  }

  async detect(node: SearchNode, target: string, signal?: AbortSignal): Promise<NodeDetection> {
    const { cue, usable } = await this.targetCue(node.box, target, signal);
    const boxes = peakCropBoxes(cue, usable, node, { regionFraction: this.regionFraction, instancePeak: this.instancePeak, cropGrow: this.cropGrow, minCropSide: this.minCropSide });
    const scores = await this.scoreCrops(boxes, target, signal);
    const detections: Detection[] = boxes.map((box, i) => ({ box, score: scores[i]! }));
    return { cue, detection: detections[0], instances: node.level === 1 ? detections.slice(1) : undefined };
  }

  /** CLIP-only contextual cue (SPEC §7.2 (C)): children as crops, softmax over them, each child's share spread over it. */
  async contextCue(node: SearchNode, target: string, children: Box[], signal?: AbortSignal): Promise<ContextCue> {
    const [texts, scale] = await Promise.all([this.textEmbeddings(target, signal), this.runner.logitScale()]);
    const crops = await this.embedCrops(children, signal);
    const q = softmax(crops.map((c) => clipLogit(c.imageEmbeds, texts[0]!, scale)));
    return { heatmap: childShareHeatmap(node.box, children, q), childScores: q };
  }

  private remember(key: string, value: CropEmbedding): void {
    this.crops.delete(key);
    this.crops.set(key, value);
    while (this.crops.size > this.cacheEntries) this.crops.delete(this.crops.keys().next().value as string);
  }
}
