/**
 * V* guided visual search (SPEC §6.3, adapted per §7.3): a best-first search over sub-images of
 * one image for one target, driven by any `SearchModel`.
 *
 * At each node: detect (found if the detection score > confidenceHigh, else remember it for the
 * fallback); stop at nodes no larger than the minimum size; otherwise take the target-cue heatmap
 * if it is prominent enough for the node's level, else the model's contextual cue; split the node
 * (2×2, or 1×4 / 4×1 when elongated), score each child by the heatmap mass it holds in the node and
 * in every ancestor, weighted 4^−level, and push the children onto one global queue (FIFO on ties,
 * SPEC §6.5). When the queue runs dry (or the node budget is spent) the best remembered detection
 * is accepted if its score ≥ confidenceLow.
 *
 * Every step is recorded as plain JSON data (boxes, heatmaps, child scores with their terms, the
 * queue, the decision and why), so the inspector can replay the search exactly.
 */
import { CancelledError } from '../errors.js';

/** A rectangle in image pixels (integers for nodes; detections may be fractional). */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ImageSize {
  width: number;
  height: number;
}

/**
 * A piecewise-constant map over the image: cell (r, c) spans xs[c]…xs[c+1] × ys[r]…ys[r+1] in
 * image pixels. Cells need not be equal (a context cue uses the children as cells) and may reach
 * outside the node (a letterboxed crop's padding); masses are integrated over the node only.
 */
export interface Heatmap {
  rows: number;
  cols: number;
  /** cols + 1 increasing edges. */
  xs: number[];
  /** rows + 1 increasing edges. */
  ys: number[];
  /** rows·cols values ≥ 0, row-major. */
  values: number[];
}

export interface Detection {
  box: Box;
  score: number;
}

/** A node of the search tree: the root is the whole image at level 1. */
export interface SearchNode {
  id: number;
  box: Box;
  level: number;
  parent: number | null;
}

export interface NodeDetection {
  /** The target-cue heatmap over the node (its maximum is the prominence compared with the threshold). */
  cue: Heatmap;
  /** The best detection inside the node, if the model has one. */
  detection?: Detection;
  /** At the root only: the other instances the model sees (kept on success if score > multiInstanceScore). */
  instances?: Detection[];
}

export interface ContextCue {
  /** Used as is to score the children (a model that wants min-max normalisation applies it itself). */
  heatmap: Heatmap;
  /** The contextual phrase the heatmap was made for (e.g. from an answering model), if any. */
  phrase?: string;
  /** Per child, the score the model gave it (CLIP-only mode: softmax over the children). */
  childScores?: number[];
}

/** What the search needs from a model (SPEC §0.1 seam). All boxes are in image pixels. */
export interface SearchModel {
  /** Detection and target-cue heatmap for `target` in `node.box`. */
  detect(node: SearchNode, target: string, signal?: AbortSignal): Promise<NodeDetection>;
  /** Optional contextual cue, asked for when the target cue is too weak; `children` are the node's sub-boxes. */
  contextCue?(node: SearchNode, target: string, children: Box[], signal?: AbortSignal): Promise<ContextCue>;
}

export interface SearchOptions {
  /** A detection scoring above this ends the search (0.7, calibrated; SPEC §6.4/§7.2: 0.5). */
  confidenceHigh?: number;
  /** After the queue is exhausted, the best detection seen is accepted if its score is at least this (0.5, calibrated; SPEC: 0.3). */
  confidenceLow?: number;
  /** Prominence threshold at level 1 (SPEC §7.2 for CLIP probabilities: 0.85; V*'s mask logits used 6.0). */
  cueThreshold?: number;
  /** Per-level multiplier of the threshold (0.9; V*: 0.7). */
  cueThresholdDecay?: number;
  /** Floor of the threshold (0.6; V*: 3.0). */
  cueThresholdMinimum?: number;
  /** Nodes whose shorter side is at most max(ceil(min(W,H)/minimumSizeScale), minimumSize) are leaves (224). */
  minimumSize?: number;
  /** (4) */
  minimumSizeScale?: number;
  /** On success at the root, other instances scoring above this are returned too (0.5). */
  multiInstanceScore?: number;
  /** Stop after this many nodes (default: unlimited; 2×2 splits visit at most 21). */
  maxNodes?: number;
  signal?: AbortSignal;
  /** Called after every step, with the step just recorded. */
  onStep?: (step: SearchStep) => void;
}

/**
 * Defaults: SPEC §6.4 structure (leaf size, multi-instance) and §7.2's cue thresholds, with the
 * confidences from the synthetic-scene calibration (`npm run bench -- vstar-calibrate`; README
 * "V* search thresholds"). On 24 scenes with a 120×90…400×300 object pasted into a 2000×1500
 * photo, 4 without it, and a seeded stand-in for CLIP's scores, SPEC's initial 0.5/0.3 accepted
 * noise as a fallback in 42 % of the empty scenes; 0.7/0.5 found a box holding the object about
 * as often (≈ 70 %) with no false finds, and stayed the most robust when the stand-in's noise
 * and background scores were varied. The cue thresholds made no difference there (both cues led
 * to the object), so they stay at SPEC's guesses. None of this is a measurement of real CLIP:
 * recalibrate with trained weights (SPEC §7.8) before trusting the numbers.
 */
export const DEFAULT_SEARCH_OPTIONS = {
  confidenceHigh: 0.7,
  confidenceLow: 0.5,
  cueThreshold: 0.85,
  cueThresholdDecay: 0.9,
  cueThresholdMinimum: 0.6,
  minimumSize: 224,
  minimumSizeScale: 4,
  multiInstanceScore: 0.5,
} as const;

export type ResolvedSearchOptions = typeof DEFAULT_SEARCH_OPTIONS & { maxNodes: number | null };

export interface ScoreTerm {
  /** The ancestor (or the node itself) whose heatmap contributes. */
  nodeId: number;
  level: number;
  /** Share of that node's heatmap mass inside the child. */
  fraction: number;
  /** 4^−level. */
  weight: number;
}

export interface ChildRecord {
  id: number;
  box: Box;
  level: number;
  /** Σ fraction·weight over the terms: the queue priority. */
  score: number;
  terms: ScoreTerm[];
}

export interface QueueEntry {
  id: number;
  box: Box;
  level: number;
  score: number;
}

export type NodeDecision =
  /** Detection score > confidenceHigh: the search ends here. */
  | 'found'
  /** A leaf (shorter side ≤ the minimum size): not split. */
  | 'too-small'
  /** Split, children scored with the (min-max normalised) target cue. */
  | 'target-cue'
  /** Target cue too weak: split, children scored with the model's contextual cue. */
  | 'context-cue'
  /** Target cue too weak but the model has no contextual cue: the weak target cue is used. */
  | 'weak-target-cue';

export interface NodeStep {
  kind: 'node';
  index: number;
  node: SearchNode;
  /** Queue priority the node was popped with (null for the root). */
  priority: number | null;
  detection: Detection | null;
  decision: NodeDecision;
  why: string;
  /** The target cue as the model returned it. */
  cue: Heatmap;
  /** max(cue) and the level's threshold (null at leaves and on success, where no cue is chosen). */
  prominence: number | null;
  threshold: number | null;
  /** Contextual cue, when one was asked for. */
  context: { heatmap: Heatmap; phrase: string | null; childScores: number[] | null } | null;
  /** The heatmap the children were scored with. */
  scoring: Heatmap | null;
  children: ChildRecord[];
  /** The queue after this step, in the order it will be popped. */
  queue: QueueEntry[];
  /** On success at the root: every instance kept (the main detection first). */
  instances: Detection[] | null;
}

export interface StopStep {
  kind: 'stop';
  index: number;
  reason: 'exhausted' | 'budget';
  why: string;
  /** The fallback: the node with the best remembered detection, and whether it was accepted. */
  best: { nodeId: number; detection: Detection; accepted: boolean } | null;
}

export type SearchStep = NodeStep | StopStep;

export interface SearchResult {
  target: string;
  image: ImageSize;
  /** found: a detection above confidenceHigh; fallback: the best one seen, ≥ confidenceLow; not-found otherwise. */
  status: 'found' | 'fallback' | 'not-found';
  /** The detection returned (for not-found: the best one seen, if any, for information). */
  detection: Detection | null;
  nodeId: number | null;
  /** Every instance returned: the detection, plus the others at the root (SPEC §6.3 multi-instance). */
  instances: Detection[];
  /** Nodes visited, in order (the search path). */
  path: number[];
  steps: SearchStep[];
  options: ResolvedSearchOptions;
}

/**
 * The split rule (SPEC §6.3 d): a node at least twice as tall as wide splits into 1 column × 4 rows,
 * one at least twice as wide as tall into 4 columns × 1 row, others 2×2; each part is floor(side/n)
 * and the last column/row takes the remainder. Row-major order.
 */
export function splitBox(box: Box): Box[] {
  const ratio = box.height / box.width;
  const [cols, rows] = ratio >= 2 ? [1, 4] : ratio <= 0.5 ? [4, 1] : [2, 2];
  const sw = Math.floor(box.width / cols);
  const sh = Math.floor(box.height / rows);
  const out: Box[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out.push({
        x: box.x + c * sw,
        y: box.y + r * sh,
        width: c === cols - 1 ? box.width - c * sw : sw,
        height: r === rows - 1 ? box.height - r * sh : sh,
      });
    }
  }
  return out;
}

/**
 * `box` grown by `grow` about its centre, each side enlarged to at least min(minSide, bounds side),
 * moved back inside `bounds` where it sticks out (so the minimum also holds at borders — a choice;
 * SPEC §7.2 says "clip"), clipped, and rounded outwards to whole pixels. V*'s object crop (×1.2,
 * ≥ 224 px) for detections and zoom images.
 */
export function growBox(box: Box, bounds: Box, grow: number, minSide: number): Box {
  const axis = (lo: number, hi: number, start: number, extent: number): [number, number] => {
    const size = Math.min(extent, Math.max((hi - lo) * grow, Math.min(minSide, extent)));
    const a = Math.min(Math.max((lo + hi) / 2 - size / 2, start), start + extent - size);
    return [Math.max(start, Math.floor(a)), Math.min(start + extent, Math.ceil(a + size))];
  };
  const [x0, x1] = axis(box.x, box.x + box.width, bounds.x, bounds.width);
  const [y0, y1] = axis(box.y, box.y + box.height, bounds.y, bounds.height);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** A heatmap of equal cells over `box`. */
export function gridHeatmap(box: Box, rows: number, cols: number, values: ArrayLike<number>): Heatmap {
  if (values.length !== rows * cols) throw new Error(`a ${rows}×${cols} heatmap needs ${rows * cols} values, got ${values.length}`);
  return {
    rows,
    cols,
    xs: Array.from({ length: cols + 1 }, (_, c) => box.x + (c * box.width) / cols),
    ys: Array.from({ length: rows + 1 }, (_, r) => box.y + (r * box.height) / rows),
    values: Array.from(values),
  };
}

/** ∫ over `region` of the heatmap (value × overlapping area, summed over cells). */
export function heatmapMass(map: Heatmap, region: Box): number {
  const x1 = region.x + region.width;
  const y1 = region.y + region.height;
  let mass = 0;
  for (let r = 0; r < map.rows; r++) {
    const h = Math.min(map.ys[r + 1]!, y1) - Math.max(map.ys[r]!, region.y);
    if (h <= 0) continue;
    for (let c = 0; c < map.cols; c++) {
      const w = Math.min(map.xs[c + 1]!, x1) - Math.max(map.xs[c]!, region.x);
      if (w > 0) mass += map.values[r * map.cols + c]! * w * h;
    }
  }
  return mass;
}

/** frac(H, A, c): the share of H's mass over `node` that lies in `child`; 0 if H has no mass there (SPEC §6.3). */
export function massFraction(map: Heatmap, node: Box, child: Box): number {
  const total = heatmapMass(map, node);
  return total > 0 ? heatmapMass(map, child) / total : 0;
}

/** (v − min) / (max − min) per cell; a constant map becomes all zeros (it carries no direction). */
export function minMaxNormalize(map: Heatmap): Heatmap {
  let min = Infinity;
  let max = -Infinity;
  for (const v of map.values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const range = max - min;
  return { ...map, values: map.values.map((v) => (range > 0 ? (v - min) / range : 0)) };
}

/** The prominence threshold at `level`: max(minimum, threshold · decay^(level−1)). */
export function cueThreshold(options: ResolvedSearchOptions, level: number): number {
  return Math.max(options.cueThresholdMinimum, options.cueThreshold * options.cueThresholdDecay ** (level - 1));
}

/** Shorter side at or below which a node is a leaf: max(ceil(min(W,H)/scale), minimumSize). */
export function smallestSize(image: ImageSize, options: ResolvedSearchOptions): number {
  return Math.max(Math.ceil(Math.min(image.width, image.height) / options.minimumSizeScale), options.minimumSize);
}

export function resolveSearchOptions(options: SearchOptions = {}): ResolvedSearchOptions {
  const resolved = { ...DEFAULT_SEARCH_OPTIONS, maxNodes: options.maxNodes ?? null } as ResolvedSearchOptions;
  for (const key of Object.keys(DEFAULT_SEARCH_OPTIONS) as (keyof typeof DEFAULT_SEARCH_OPTIONS)[]) {
    const value = options[key];
    if (value !== undefined) {
      if (!Number.isFinite(value)) throw new RangeError(`search option ${key} must be a finite number, got ${value}`);
      (resolved as Record<string, number | null>)[key] = value;
    }
  }
  if (!(resolved.minimumSizeScale > 0)) throw new RangeError(`minimumSizeScale must be positive, got ${resolved.minimumSizeScale}`);
  if (resolved.maxNodes !== null && !(Number.isInteger(resolved.maxNodes) && resolved.maxNodes > 0)) {
    throw new RangeError(`maxNodes must be a positive integer, got ${resolved.maxNodes}`);
  }
  return resolved;
}

/** Max-priority queue; equal priorities leave in insertion order (FIFO, SPEC §6.5). */
class NodeQueue {
  private readonly entries: { node: SearchNode; score: number }[] = [];

  push(node: SearchNode, score: number): void {
    // Insert after every entry with score ≥ this one: sizes stay small (≤ 85 nodes), so a sorted array is enough.
    let i = this.entries.length;
    while (i > 0 && this.entries[i - 1]!.score < score) i--;
    this.entries.splice(i, 0, { node, score });
  }

  pop(): { node: SearchNode; score: number } | undefined {
    return this.entries.shift();
  }

  get size(): number {
    return this.entries.length;
  }

  snapshot(): QueueEntry[] {
    return this.entries.map(({ node, score }) => ({ id: node.id, box: { ...node.box }, level: node.level, score }));
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

const fmt = (v: number): string => v.toFixed(3);

/** Runs the search for one target over an image of `image` size. */
export async function visualSearch(model: SearchModel, image: ImageSize, target: string, options: SearchOptions = {}): Promise<SearchResult> {
  const o = resolveSearchOptions(options);
  const { signal, onStep } = options;
  const smallest = smallestSize(image, o);
  const steps: SearchStep[] = [];
  const path: number[] = [];
  /** Per visited node: its chosen heatmap (expanded nodes) and its remembered detection. */
  const nodes = new Map<number, { node: SearchNode; scoring?: Heatmap; tmp?: Detection }>();
  const queue = new NodeQueue();
  let nextId = 0;
  const record = (step: SearchStep): void => {
    steps.push(step);
    onStep?.(step);
  };
  const result = (status: SearchResult['status'], detection: Detection | null, nodeId: number | null, instances: Detection[]): SearchResult => ({
    target,
    image: { width: image.width, height: image.height },
    status,
    detection,
    nodeId,
    instances,
    path,
    steps,
    options: o,
  });

  let current: { node: SearchNode; score: number | null } = {
    node: { id: nextId++, box: { x: 0, y: 0, width: image.width, height: image.height }, level: 1, parent: null },
    score: null,
  };
  let stop: StopStep['reason'];
  for (;;) {
    throwIfAborted(signal);
    const { node } = current;
    path.push(node.id);
    const state: { node: SearchNode; scoring?: Heatmap; tmp?: Detection } = { node };
    nodes.set(node.id, state);
    const observed = await model.detect(node, target, signal);
    throwIfAborted(signal);
    const step: NodeStep = {
      kind: 'node',
      index: steps.length,
      node,
      priority: current.score,
      detection: observed.detection ?? null,
      decision: 'too-small',
      why: '',
      cue: observed.cue,
      prominence: null,
      threshold: null,
      context: null,
      scoring: null,
      children: [],
      queue: [],
      instances: null,
    };

    // (a) detection
    const det = observed.detection;
    if (det && det.score > o.confidenceHigh) {
      step.decision = 'found';
      step.why = `detection score ${fmt(det.score)} > confidenceHigh ${o.confidenceHigh}`;
      // Multi-instance only at the root, as V* does (SPEC §6.5).
      const instances = [det, ...(node.level === 1 ? (observed.instances ?? []).filter((d) => d.score > o.multiInstanceScore) : [])];
      step.instances = node.level === 1 ? instances : null;
      step.queue = queue.snapshot();
      record(step);
      return result('found', det, node.id, instances);
    }
    if (det) state.tmp = det;
    const detectionNote = det ? `detection score ${fmt(det.score)} ≤ ${o.confidenceHigh}, remembered; ` : 'no detection; ';

    // (b) leaf
    if (Math.min(node.box.width, node.box.height) <= smallest) {
      step.decision = 'too-small';
      step.why = `${detectionNote}shorter side ${Math.min(node.box.width, node.box.height)} ≤ minimum ${smallest}: not split`;
    } else {
      // (c) cue
      const prominence = Math.max(...observed.cue.values);
      const threshold = cueThreshold(o, node.level);
      step.prominence = prominence;
      step.threshold = threshold;
      const children = splitBox(node.box);
      let scoring: Heatmap;
      if (prominence > threshold) {
        scoring = minMaxNormalize(observed.cue);
        step.decision = 'target-cue';
        step.why = `${detectionNote}target cue prominent (max ${fmt(prominence)} > threshold ${fmt(threshold)} at level ${node.level})`;
      } else if (model.contextCue) {
        const context = await model.contextCue(node, target, children, signal);
        throwIfAborted(signal);
        scoring = context.heatmap;
        step.context = { heatmap: context.heatmap, phrase: context.phrase ?? null, childScores: context.childScores ?? null };
        step.decision = 'context-cue';
        step.why = `${detectionNote}target cue too weak (max ${fmt(prominence)} ≤ threshold ${fmt(threshold)} at level ${node.level}): contextual cue${context.phrase ? ` "${context.phrase}"` : ''}`;
      } else {
        scoring = minMaxNormalize(observed.cue);
        step.decision = 'weak-target-cue';
        step.why = `${detectionNote}target cue too weak (max ${fmt(prominence)} ≤ threshold ${fmt(threshold)}) and the model has no contextual cue: weak target cue used`;
      }
      state.scoring = scoring;
      step.scoring = scoring;

      // (d) split and score: this node's heatmap and every ancestor's, each weighted 4^−level.
      const chain: { node: SearchNode; scoring: Heatmap }[] = [];
      for (let id: number | null = node.id; id !== null; id = nodes.get(id)!.node.parent) {
        const s = nodes.get(id)!;
        chain.push({ node: s.node, scoring: s.scoring! });
      }
      for (const box of children) {
        const child: SearchNode = { id: nextId++, box, level: node.level + 1, parent: node.id };
        const terms = chain.map((a) => ({
          nodeId: a.node.id,
          level: a.node.level,
          fraction: massFraction(a.scoring, a.node.box, box),
          weight: 4 ** -a.node.level,
        }));
        const score = terms.reduce((sum, t) => sum + t.fraction * t.weight, 0);
        step.children.push({ id: child.id, box, level: child.level, score, terms });
        queue.push(child, score);
      }
    }
    step.queue = queue.snapshot();
    record(step);

    if (queue.size === 0) {
      stop = 'exhausted';
      break;
    }
    if (o.maxNodes !== null && path.length >= o.maxNodes) {
      stop = 'budget';
      break;
    }
    current = queue.pop()!;
  }

  // (e) fallback: the best remembered detection on the path (first one on ties).
  let best: { nodeId: number; detection: Detection } | null = null;
  for (const id of path) {
    const tmp = nodes.get(id)!.tmp;
    if (tmp && (!best || tmp.score > best.detection.score)) best = { nodeId: id, detection: tmp };
  }
  const accepted = best !== null && best.detection.score >= o.confidenceLow;
  const ended = stop === 'exhausted' ? 'queue exhausted' : `node budget of ${o.maxNodes} spent`;
  record({
    kind: 'stop',
    index: steps.length,
    reason: stop,
    why: best
      ? `${ended}; best detection ${fmt(best.detection.score)} at node ${best.nodeId} ${accepted ? '≥' : '<'} confidenceLow ${o.confidenceLow}: ${accepted ? 'accepted' : 'not found'}`
      : `${ended}; no detection anywhere: not found`,
    best: best ? { ...best, accepted } : null,
  });
  return accepted
    ? result('fallback', best!.detection, best!.nodeId, [best!.detection])
    : result('not-found', best?.detection ?? null, best?.nodeId ?? null, []);
}
