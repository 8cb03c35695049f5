/**
 * Synthetic search scenes (SPEC §7.8 calibration without annotations): a background photo resized
 * to the scene size, and an object photo resized into a known box of it. The box is the ground
 * truth a search should find (success: IoU > 0.5, as V*'s search-only evaluation).
 */
import { resizeRGB8 } from '../image/resample.js';
import type { RgbImage } from '../image/types.js';
import { softmax } from '../models/clip-heatmap.js';
import { childShareHeatmap, letterboxGrid, peakCropBoxes } from './clip-search-model.js';
import { type Box, type ContextCue, type NodeDetection, type SearchModel, type SearchNode } from './vstar.js';

/** `background` resized to `width`×`height` (bicubic) with `object` resized into `box`. */
export function pasteScene(background: RgbImage, width: number, height: number, object: RgbImage, box: Box): RgbImage {
  if (!(box.x >= 0 && box.y >= 0 && box.x + box.width <= width && box.y + box.height <= height)) {
    throw new RangeError(`box ${JSON.stringify(box)} is not inside the ${width}×${height} scene`);
  }
  const scene = background.width === width && background.height === height ? { width, height, data: background.data.slice() } : resizeRGB8(background, width, height, 'bicubic');
  const patch = resizeRGB8(object, box.width, box.height, 'bicubic');
  for (let y = 0; y < box.height; y++) {
    scene.data.set(patch.data.subarray(y * box.width * 3, (y + 1) * box.width * 3), ((box.y + y) * width + box.x) * 3);
  }
  return scene;
}

/** Intersection over union of two boxes. */
export function iou(a: Box, b: Box): number {
  const inter = overlapArea(a, b);
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * A stand-in for CLIP's search primitives when no trained weights are at hand (SPEC §7.8 needs
 * them; only random-weight fixtures are available offline): a deterministic model whose scores
 * come from the known box of a synthetic scene, plus seeded noise and a clutter term from the
 * photo (textured cells attract the cue, as busy regions do in CLIP's patch maps). Scores are
 * shaped like V*-CLIP's: per-cell probabilities of the letterboxed node crop on a grid×grid map,
 * the same region → crop rule (peakRegions, regionCropBox), and crop confidences in (0, 1).
 * Its constants are assumptions, not measurements of CLIP: thresholds calibrated with it say how
 * the search behaves on a model with these score statistics, nothing more.
 */
export interface SyntheticModelOptions {
  /** Cells per side of the letterboxed crop (7: ViT-B/32 at 224 px). */
  grid?: number;
  /** Cue logit = cueBias + cueGain·(share of the cell covered by the object) + noise + clutter. */
  cueGain?: number;
  cueBias?: number;
  /** Crop logit = cropBias + cropGain·√(share of the crop that is object)·(share of the object in the crop) + noise. */
  cropGain?: number;
  cropBias?: number;
  /** Standard deviation of the seeded logit noise. */
  noise?: number;
  /** Logit added per unit of the cell's luminance standard deviation (0…0.5). */
  clutter?: number;
  seed?: number;
  /** As CLIPSearchModelOptions. */
  minCropSide?: number;
  cropGrow?: number;
  regionFraction?: number;
  instancePeak?: number;
}

/** Defaults: a small object (≈ one cell at the root) gives a weak cue at the root and a clear one two levels down. */
export const SYNTHETIC_MODEL_DEFAULTS: Required<SyntheticModelOptions> = {
  grid: 7,
  cueGain: 6,
  cueBias: -3,
  cropGain: 8,
  cropBias: -3,
  noise: 0.75,
  clutter: 3,
  seed: 1,
  minCropSide: 224,
  cropGrow: 1.2,
  regionFraction: 0.5,
  instancePeak: 0.5,
};

const CLUTTER_BLOCK = 16;

export class SyntheticSearchModel implements SearchModel {
  private readonly o: Required<SyntheticModelOptions>;
  /** Luminance standard deviation (0…0.5) per CLUTTER_BLOCK² block of the scene. */
  private readonly clutterMap: Float32Array;
  private readonly blockCols: number;
  private readonly blockRows: number;

  /** `truth`: the object's box, or null for a scene without it (every detection is then false). */
  constructor(readonly scene: RgbImage, readonly truth: Box | null, options: SyntheticModelOptions = {}) {
    this.o = { ...SYNTHETIC_MODEL_DEFAULTS, ...options };
    this.blockCols = Math.ceil(scene.width / CLUTTER_BLOCK);
    this.blockRows = Math.ceil(scene.height / CLUTTER_BLOCK);
    this.clutterMap = new Float32Array(this.blockCols * this.blockRows);
    for (let by = 0; by < this.blockRows; by++) {
      for (let bx = 0; bx < this.blockCols; bx++) {
        let n = 0;
        let sum = 0;
        let sq = 0;
        for (let y = by * CLUTTER_BLOCK; y < Math.min(scene.height, (by + 1) * CLUTTER_BLOCK); y += 2) {
          for (let x = bx * CLUTTER_BLOCK; x < Math.min(scene.width, (bx + 1) * CLUTTER_BLOCK); x += 2) {
            const i = (y * scene.width + x) * 3;
            const l = (0.299 * scene.data[i]! + 0.587 * scene.data[i + 1]! + 0.114 * scene.data[i + 2]!) / 255;
            n++;
            sum += l;
            sq += l * l;
          }
        }
        this.clutterMap[by * this.blockCols + bx] = Math.sqrt(Math.max(0, sq / n - (sum / n) ** 2));
      }
    }
  }

  async detect(node: SearchNode): Promise<NodeDetection> {
    const { grid } = this.o;
    // CLIPSearchModel's own grid and crop rule, so the calibrated thresholds mean the same there.
    const { cue, usable } = letterboxGrid(node.box, grid, grid);
    cue.values = cue.values.map((_, i) => {
      if (!usable(i)) return 0;
      const r = Math.floor(i / grid);
      const c = i % grid;
      const cell = { x: cue.xs[c]!, y: cue.ys[r]!, width: cue.xs[c + 1]! - cue.xs[c]!, height: cue.ys[r + 1]! - cue.ys[r]! };
      const covered = this.truth ? overlapArea(cell, this.truth) / (cell.width * cell.height) : 0;
      return sigmoid(this.o.cueBias + this.o.cueGain * covered + this.o.noise * this.gaussian(cell, 1) + this.o.clutter * this.clutterAt(cell));
    });
    const detections = peakCropBoxes(cue, usable, node, this.o).map((box) => ({ box, score: this.cropScore(box) }));
    return { cue, detection: detections[0], instances: node.level === 1 ? detections.slice(1) : undefined };
  }

  /** CLIP-only context cue (SPEC §7.2 (C)): softmax of the children's crop logits, spread over each child. */
  async contextCue(node: SearchNode, _target: string, children: Box[]): Promise<ContextCue> {
    const q = softmax(children.map((c) => this.cropLogit(c)));
    return { heatmap: childShareHeatmap(node.box, children, q), childScores: q };
  }

  private cropScore(box: Box): number {
    return sigmoid(this.cropLogit(box));
  }

  private cropLogit(box: Box): number {
    const inter = this.truth ? overlapArea(box, this.truth) : 0;
    const purity = inter / (box.width * box.height);
    const coverage = this.truth ? inter / (this.truth.width * this.truth.height) : 0;
    return this.o.cropBias + this.o.cropGain * Math.sqrt(purity) * coverage + this.o.noise * this.gaussian(box, 2);
  }

  /** Mean luminance spread of the blocks under the cell (sampled at up to 4×4 points). */
  private clutterAt(cell: Box): number {
    let sum = 0;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      for (let i = 0; i < 4; i++) {
        const x = Math.min(this.scene.width - 1, Math.max(0, Math.floor(cell.x + ((i + 0.5) * cell.width) / 4)));
        const y = Math.min(this.scene.height - 1, Math.max(0, Math.floor(cell.y + ((j + 0.5) * cell.height) / 4)));
        sum += this.clutterMap[Math.floor(y / CLUTTER_BLOCK) * this.blockCols + Math.floor(x / CLUTTER_BLOCK)]!;
        n++;
      }
    }
    return sum / n;
  }

  /** A standard normal value fixed by the seed, the box and a stream number (Box–Muller on two hashes). */
  private gaussian(box: Box, stream: number): number {
    const key = [this.o.seed, stream, Math.round(box.x), Math.round(box.y), Math.round(box.width), Math.round(box.height)];
    const u1 = (hash(key, 0x9e3779b9) + 0.5) / 2 ** 32;
    const u2 = (hash(key, 0x85ebca6b) + 0.5) / 2 ** 32;
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

/** Area of the intersection of two boxes. */
export function overlapArea(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** 32-bit FNV-1a-style mix of integers (deterministic noise; not for anything cryptographic). */
function hash(values: readonly number[], salt: number): number {
  let h = (2166136261 ^ salt) >>> 0;
  for (const v of values) {
    h = Math.imul(h ^ (v & 0xffff), 16777619) >>> 0;
    h = Math.imul(h ^ (v >>> 16), 16777619) >>> 0;
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d) >>> 0;
  h ^= h >>> 12;
  return h >>> 0;
}
