import * as assert from 'node:assert/strict';
import { CancelledError } from '../../../src/core/errors';
import {
  DEFAULT_SEARCH_OPTIONS,
  cueThreshold,
  gridHeatmap,
  growBox,
  massFraction,
  minMaxNormalize,
  resolveSearchOptions,
  smallestSize,
  splitBox,
  visualSearch,
  type Box,
  type ContextCue,
  type Detection,
  type NodeDetection,
  type NodeStep,
  type SearchModel,
  type SearchNode,
  type SearchOptions,
  type StopStep,
} from '../../../src/core/search/vstar';

const key = (b: Box): string => `${b.x},${b.y},${b.width},${b.height}`;
const box = (x: number, y: number, width: number, height: number): Box => ({ x, y, width, height });

/**
 * A deterministic model over an 800×800 image cut into a 4×4 "scene" of 200-px cells: the target
 * cue of a node is the scene's cells inside it (an equal grid over the node), detections and
 * context masses come from tables keyed by node box (context default: equal masses). Context
 * heatmaps hold the masses themselves: the children have equal areas, so the fractions are the
 * masses over their sum, and every number below stays a binary fraction (exact in floating point).
 */
class SceneModel implements SearchModel {
  readonly detectCalls: number[] = [];
  readonly contextCalls: number[] = [];

  constructor(
    private readonly scene: number[][],
    private readonly detections: Record<string, Detection> = {},
    private readonly contexts: Record<string, number[]> = {},
    private readonly rootInstances: Detection[] = [],
    private readonly cell = 200,
  ) {}

  async detect(node: SearchNode): Promise<NodeDetection> {
    this.detectCalls.push(node.id);
    const { x, y, width, height } = node.box;
    const rows = Math.max(1, Math.round(height / this.cell));
    const cols = Math.max(1, Math.round(width / this.cell));
    const values: number[] = [];
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) values.push(this.scene[y / this.cell + r]![x / this.cell + c]!);
    return { cue: gridHeatmap(node.box, rows, cols, values), detection: this.detections[key(node.box)], instances: this.rootInstances };
  }

  async contextCue(node: SearchNode, _target: string, children: Box[]): Promise<ContextCue> {
    this.contextCalls.push(node.id);
    const masses = this.contexts[key(node.box)] ?? children.map(() => 1 / children.length);
    const side = Math.sqrt(children.length);
    return { heatmap: gridHeatmap(node.box, side, side, masses), childScores: masses, phrase: 'synthetic' };
  }
}

// The hand-worked example (see the test below for the arithmetic).
const SCENE = [
  [0.125, 0.125, 0.25, 0.625],
  [0.125, 0.125, 0.5, 0.125],
  [0.125, 0.125, 0.125, 0.125],
  [0.125, 0.125, 0.125, 0.5],
];
const HAND_OPTIONS: SearchOptions = {
  confidenceHigh: 0.5,
  confidenceLow: 0.25,
  cueThreshold: 0.75,
  cueThresholdDecay: 0.5,
  cueThresholdMinimum: 0.5,
  minimumSize: 200,
  minimumSizeScale: 4,
};
const HAND_DETECTIONS: Record<string, Detection> = {
  [key(box(400, 0, 400, 400))]: { box: box(600, 0, 200, 200), score: 0.25 },
  [key(box(400, 400, 400, 400))]: { box: box(650, 650, 100, 100), score: 0.375 },
  [key(box(600, 0, 200, 200))]: { box: box(620, 20, 60, 60), score: 0.125 },
  [key(box(600, 600, 200, 200))]: { box: box(640, 640, 80, 80), score: 0.875 },
};
const HAND_CONTEXTS: Record<string, number[]> = {
  [key(box(0, 0, 800, 800))]: [0.125, 0.5, 0.0625, 0.3125],
  [key(box(400, 400, 400, 400))]: [0.125, 0.125, 0.25, 0.5],
};

const nodeSteps = (steps: readonly unknown[]): NodeStep[] => steps.filter((s): s is NodeStep => (s as NodeStep).kind === 'node');

describe('V* split rule', () => {
  it('splits a box at least twice as wide as tall into 4 columns, the last taking the remainder', () => {
    assert.deepEqual(splitBox(box(10, 20, 1003, 400)), [box(10, 20, 250, 400), box(260, 20, 250, 400), box(510, 20, 250, 400), box(760, 20, 253, 400)]);
    // exactly h/w = 0.5 is still "wide"
    assert.deepEqual(splitBox(box(0, 0, 800, 400)).map((b) => b.width), [200, 200, 200, 200]);
  });

  it('splits a box at least twice as tall as wide into 4 rows', () => {
    assert.deepEqual(splitBox(box(0, 0, 300, 703)), [box(0, 0, 300, 175), box(0, 175, 300, 175), box(0, 350, 300, 175), box(0, 525, 300, 178)]);
    assert.deepEqual(splitBox(box(0, 0, 300, 600)).map((b) => b.height), [150, 150, 150, 150]);
  });

  it('splits other boxes 2×2, row-major, tiling the box', () => {
    const parts = splitBox(box(5, 7, 501, 301));
    assert.deepEqual(parts, [box(5, 7, 250, 150), box(255, 7, 251, 150), box(5, 157, 250, 151), box(255, 157, 251, 151)]);
    assert.equal(parts.reduce((a, b) => a + b.width * b.height, 0), 501 * 301);
    // either side of h/w = 0.5: 401×200 is wide (4 columns), 399×200 is 2×2
    assert.deepEqual(splitBox(box(0, 0, 401, 200)).map((b) => [b.width, b.height]), [[100, 200], [100, 200], [100, 200], [101, 200]]);
    assert.deepEqual(splitBox(box(0, 0, 399, 200)).map((b) => [b.width, b.height]), [[199, 100], [200, 100], [199, 100], [200, 100]]);
  });
});

describe('V* scoring primitives', () => {
  it('mass fractions integrate the heatmap over the boxes by area, ignoring cells outside the node', () => {
    // A 2×2 map over a letterbox square reaching 100 px above and below the node.
    const map = gridHeatmap(box(0, -100, 400, 400), 2, 2, [1, 3, 0, 4]);
    const node = box(0, 0, 400, 200);
    // Inside the node: the top cells contribute 100 px of height, the bottom cells 100 px.
    // masses: top-left 1·200·100, top-right 3·200·100, bottom-left 0, bottom-right 4·200·100 → total 8·20000.
    assert.equal(massFraction(map, node, box(0, 0, 200, 200)), 1 / 8);
    assert.equal(massFraction(map, node, box(200, 0, 200, 200)), 7 / 8);
    assert.equal(massFraction(map, node, box(200, 50, 200, 100)), (3 * 50 + 4 * 50) / (8 * 100));
  });

  it('min-max normalisation maps to [0, 1]; a constant map becomes zeros and gives every child fraction 0', () => {
    assert.deepEqual(minMaxNormalize(gridHeatmap(box(0, 0, 2, 1), 1, 2, [0.25, 0.75])).values, [0, 1]);
    const flat = minMaxNormalize(gridHeatmap(box(0, 0, 2, 1), 1, 2, [0.5, 0.5]));
    assert.deepEqual(flat.values, [0, 0]);
    assert.equal(massFraction(flat, box(0, 0, 2, 1), box(0, 0, 1, 1)), 0);
  });

  it('thresholds decay per level down to the floor; the leaf size is max(ceil(min side / 4), 224)', () => {
    const o = resolveSearchOptions();
    assert.deepEqual(o, { ...DEFAULT_SEARCH_OPTIONS, maxNodes: null });
    assert.equal(cueThreshold(o, 1), 0.85);
    assert.ok(Math.abs(cueThreshold(o, 2) - 0.765) < 1e-12);
    assert.ok(Math.abs(cueThreshold(o, 4) - 0.85 * 0.9 ** 3) < 1e-12);
    assert.equal(cueThreshold(o, 5), 0.6);
    assert.equal(smallestSize({ width: 2000, height: 1500 }, o), 375);
    assert.equal(smallestSize({ width: 800, height: 600 }, o), 224);
    assert.throws(() => resolveSearchOptions({ maxNodes: 0 }), RangeError);
    assert.throws(() => resolveSearchOptions({ confidenceHigh: Number.NaN }), RangeError);
  });

  it('growBox grows about the centre, keeps a minimum side, stays inside the bounds', () => {
    const bounds = box(0, 0, 1000, 500);
    assert.deepEqual(growBox(box(400, 200, 300, 100), bounds, 1.2, 224), box(370, 138, 360, 224));
    // at a corner the box is moved inside rather than cut below the minimum
    assert.deepEqual(growBox(box(0, 0, 10, 10), bounds, 1.2, 224), box(0, 0, 224, 224));
    // larger than the bounds: clipped
    assert.deepEqual(growBox(box(0, 0, 1000, 500), bounds, 1.2, 224), bounds);
  });
});

describe('V* search loop (synthetic model)', () => {
  it('reproduces a hand-worked search step by step', async () => {
    /*
     * 800×800 image, 200-px scene cells; leaf size max(ceil(800/4), 200) = 200, so the levels are
     * 800 (L1) → 400 (L2) → 200 (L3, leaves). Thresholds: thr(1) = 0.75, thr(2) = max(0.5, 0.375) = 0.5.
     * Weights 4^−level: L1 1/4, L2 1/16.
     *
     * Step 0, root #0: no detection. Cue max 0.625 ≤ 0.75 → context, masses [1/8, 1/2, 1/16, 5/16]
     *   for #1 TL, #2 TR, #3 BL, #4 BR. Scores = mass/4: #1 1/32, #2 1/8, #3 1/64, #4 5/64.
     *   Queue: #2 .125, #4 .078125, #1 .03125, #3 .015625.
     * Step 1, pop #2 (400,0 400²): detection .25 ≤ .5, remembered. Cue [[.25,.625],[.5,.125]]:
     *   max .625 > thr(2) .5 → target cue; min-max [[.25,1],[.75,0]], total 2 → fractions
     *   #5 1/8, #6 1/2, #7 3/8, #8 0. Root term for each quarter of TR: (1/2 · 1/4)/4 = 1/32.
     *   Scores: #5 1/32 + (1/8)/16 = .0390625, #6 1/32 + (1/2)/16 = .0625, #7 1/32 + (3/8)/16 = .0546875,
     *   #8 1/32 + 0 = .03125 (ties #1, which was queued first: FIFO puts #1 ahead).
     *   Queue: #4 .078125, #6 .0625, #7 .0546875, #5 .0390625, #1 .03125, #8 .03125, #3 .015625.
     * Step 2, pop #4 (400,400 400²): detection .375, remembered. Cue max .5, not > .5 → context,
     *   masses [1/8, 1/8, 1/4, 1/2] for #9…#12. Root term per quarter of BR: (5/16 · 1/4)/4 = 5/256.
     *   Scores: #9 = #10 = 5/256 + (1/8)/16 = .02734375, #11 5/256 + (1/4)/16 = .03515625,
     *   #12 5/256 + (1/2)/16 = .05078125.
     *   Queue: #6, #7, #12, #5, #11, #1, #8, #9, #10, #3.
     * Step 3, pop #6 (600,0 200²): detection .125, remembered; 200 ≤ 200 → leaf.
     * Step 4, pop #7 (400,200 200²): no detection; leaf.
     * Step 5, pop #12 (600,600 200²): detection .875 > .5 → found (not the root: no other instances).
     */
    const model = new SceneModel(SCENE, HAND_DETECTIONS, HAND_CONTEXTS, [{ box: box(0, 0, 10, 10), score: 0.9 }]);
    const seen: number[] = [];
    const result = await visualSearch(model, { width: 800, height: 800 }, 'cup', { ...HAND_OPTIONS, onStep: (s) => seen.push(s.index) });

    const steps = nodeSteps(result.steps);
    assert.equal(result.steps.length, 6);
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
    const summary = steps.map((s) => ({
      node: s.node.id,
      box: s.node.box,
      level: s.node.level,
      priority: s.priority,
      detection: s.detection?.score ?? null,
      decision: s.decision,
      prominence: s.prominence,
      threshold: s.threshold,
      children: s.children.map((c) => [c.id, c.score]),
      queue: s.queue.map((q) => [q.id, q.score]),
    }));
    const Q0 = [[2, 0.125], [4, 0.078125], [1, 0.03125], [3, 0.015625]];
    const Q1 = [[4, 0.078125], [6, 0.0625], [7, 0.0546875], [5, 0.0390625], [1, 0.03125], [8, 0.03125], [3, 0.015625]];
    const Q2 = [[6, 0.0625], [7, 0.0546875], [12, 0.05078125], [5, 0.0390625], [11, 0.03515625], [1, 0.03125], [8, 0.03125], [9, 0.02734375], [10, 0.02734375], [3, 0.015625]];
    assert.deepEqual(summary, [
      { node: 0, box: box(0, 0, 800, 800), level: 1, priority: null, detection: null, decision: 'context-cue', prominence: 0.625, threshold: 0.75,
        children: [[1, 0.03125], [2, 0.125], [3, 0.015625], [4, 0.078125]], queue: Q0 },
      { node: 2, box: box(400, 0, 400, 400), level: 2, priority: 0.125, detection: 0.25, decision: 'target-cue', prominence: 0.625, threshold: 0.5,
        children: [[5, 0.0390625], [6, 0.0625], [7, 0.0546875], [8, 0.03125]], queue: Q1 },
      { node: 4, box: box(400, 400, 400, 400), level: 2, priority: 0.078125, detection: 0.375, decision: 'context-cue', prominence: 0.5, threshold: 0.5,
        children: [[9, 0.02734375], [10, 0.02734375], [11, 0.03515625], [12, 0.05078125]], queue: Q2 },
      { node: 6, box: box(600, 0, 200, 200), level: 3, priority: 0.0625, detection: 0.125, decision: 'too-small', prominence: null, threshold: null,
        children: [], queue: Q2.slice(1) },
      { node: 7, box: box(400, 200, 200, 200), level: 3, priority: 0.0546875, detection: null, decision: 'too-small', prominence: null, threshold: null,
        children: [], queue: Q2.slice(2) },
      { node: 12, box: box(600, 600, 200, 200), level: 3, priority: 0.05078125, detection: 0.875, decision: 'found', prominence: null, threshold: null,
        children: [], queue: Q2.filter(([id]) => id !== 6 && id !== 7 && id !== 12) },
    ]);

    // The terms behind one score: #7 = root's context share (1/8 of its mass) / 4 + #2's target share 3/8 / 16.
    assert.deepEqual(steps[1]!.children[2]!.terms, [
      { nodeId: 2, level: 2, fraction: 0.375, weight: 1 / 16 },
      { nodeId: 0, level: 1, fraction: 0.125, weight: 1 / 4 },
    ]);
    // Which heatmap scored the children: min-max target cue at #2, the context masses at #0 and #4.
    assert.deepEqual(steps[1]!.scoring!.values, [0.25, 1, 0.75, 0]);
    assert.deepEqual(steps[0]!.scoring!.values, HAND_CONTEXTS[key(box(0, 0, 800, 800))]);
    assert.equal(steps[0]!.context!.phrase, 'synthetic');
    assert.match(steps[2]!.why, /too weak.*0\.500 ≤ threshold 0\.500/);
    assert.match(steps[3]!.why, /shorter side 200 ≤ minimum 200/);

    assert.equal(result.status, 'found');
    assert.deepEqual(result.detection, { box: box(640, 640, 80, 80), score: 0.875 });
    assert.equal(result.nodeId, 12);
    assert.deepEqual(result.path, [0, 2, 4, 6, 7, 12]);
    assert.deepEqual(result.instances, [result.detection], 'other instances only come with success at the root');
    assert.deepEqual(model.detectCalls, result.path);
    assert.deepEqual(model.contextCalls, [0, 4]);
    // The record is plain data: it survives JSON unchanged.
    assert.deepEqual(JSON.parse(JSON.stringify(result)), result);
  });

  it('with no detection above confidenceHigh, visits all 21 nodes, then falls back to the best one seen', async () => {
    const detections = { ...HAND_DETECTIONS, [key(box(600, 600, 200, 200))]: { box: box(640, 640, 80, 80), score: 0.3 } };
    const result = await visualSearch(new SceneModel(SCENE, detections, HAND_CONTEXTS), { width: 800, height: 800 }, 'cup', HAND_OPTIONS);
    assert.equal(result.path.length, 21);
    assert.equal(new Set(result.path).size, 21);
    const stop = result.steps.at(-1) as StopStep;
    assert.equal(stop.kind, 'stop');
    assert.equal(stop.reason, 'exhausted');
    assert.deepEqual(stop.best, { nodeId: 4, detection: HAND_DETECTIONS[key(box(400, 400, 400, 400))], accepted: true });
    assert.equal(result.status, 'fallback');
    assert.equal(result.nodeId, 4);
    assert.equal(result.detection!.score, 0.375);
    // levels never exceed 3 here, and every L3 node is a leaf
    for (const s of nodeSteps(result.steps)) assert.equal(s.decision === 'too-small', s.node.level === 3);
  });

  it('a best detection below confidenceLow is reported but not accepted; no detection at all is a plain failure', async () => {
    const weak = { [key(box(400, 0, 400, 400))]: { box: box(600, 0, 200, 200), score: 0.2 } };
    const r1 = await visualSearch(new SceneModel(SCENE, weak), { width: 800, height: 800 }, 'cup', HAND_OPTIONS);
    assert.equal(r1.status, 'not-found');
    assert.equal(r1.detection!.score, 0.2);
    assert.deepEqual(r1.instances, []);
    assert.equal((r1.steps.at(-1) as StopStep).best!.accepted, false);

    const r2 = await visualSearch(new SceneModel(SCENE), { width: 800, height: 800 }, 'cup', HAND_OPTIONS);
    assert.equal(r2.status, 'not-found');
    assert.equal(r2.detection, null);
    assert.equal((r2.steps.at(-1) as StopStep).best, null);
    assert.match((r2.steps.at(-1) as StopStep).why, /no detection anywhere/);
  });

  it('stops at the node budget, then applies the fallback', async () => {
    const detections = { ...HAND_DETECTIONS, [key(box(600, 600, 200, 200))]: { box: box(640, 640, 80, 80), score: 0.3 } };
    const result = await visualSearch(new SceneModel(SCENE, detections, HAND_CONTEXTS), { width: 800, height: 800 }, 'cup', { ...HAND_OPTIONS, maxNodes: 3 });
    assert.deepEqual(result.path, [0, 2, 4]);
    const stop = result.steps.at(-1) as StopStep;
    assert.equal(stop.reason, 'budget');
    assert.match(stop.why, /budget of 3/);
    assert.equal(result.status, 'fallback');
    assert.equal(result.detection!.score, 0.375);
  });

  it('success at the root also returns the other instances scoring above multiInstanceScore', async () => {
    const detections = { [key(box(0, 0, 800, 800))]: { box: box(600, 600, 80, 80), score: 0.75 } };
    const others = [{ box: box(10, 10, 50, 50), score: 0.625 }, { box: box(300, 10, 50, 50), score: 0.5 }];
    const result = await visualSearch(new SceneModel(SCENE, detections, {}, others), { width: 800, height: 800 }, 'cup', HAND_OPTIONS);
    assert.equal(result.status, 'found');
    assert.equal(result.steps.length, 1);
    assert.deepEqual(result.instances, [detections[key(box(0, 0, 800, 800))], others[0]]);
    assert.deepEqual((result.steps[0] as NodeStep).instances, result.instances);
  });

  it('equal priorities leave the queue first in, first out', async () => {
    // A flat cue (min-max → zeros) scores every child 0 below a flat root: all ties.
    const flat = [0, 1, 2, 3].map(() => [0.125, 0.125, 0.125, 0.125]);
    const scene = new SceneModel(flat);
    const model: SearchModel = { detect: (node) => scene.detect(node) }; // no contextual cue: the weak target cue is used
    const result = await visualSearch(model, { width: 800, height: 800 }, 'cup', { ...HAND_OPTIONS, maxNodes: 7 });
    const first = result.steps[0] as NodeStep;
    assert.equal(first.decision, 'weak-target-cue');
    assert.match(first.why, /no contextual cue/);
    assert.deepEqual(first.children.map((c) => c.score), [0, 0, 0, 0]);
    // #1…#4 in order, then #1's children #5… come after #2, #3, #4 (pushed later with the same score 0).
    assert.deepEqual(result.path, [0, 1, 2, 3, 4, 5, 6]);
  });

  it('is cancelled between steps by its AbortSignal', async () => {
    const controller = new AbortController();
    const model = new SceneModel(SCENE, {}, HAND_CONTEXTS);
    const search = visualSearch(model, { width: 800, height: 800 }, 'cup', {
      ...HAND_OPTIONS,
      signal: controller.signal,
      onStep: (s) => {
        if (s.index === 1) controller.abort();
      },
    });
    await assert.rejects(search, CancelledError);
    assert.deepEqual(model.detectCalls, [0, 2]);
  });

  it('an image no larger than the leaf size is one detection at the root', async () => {
    const result = await visualSearch(new SceneModel([[0.5]]), { width: 200, height: 200 }, 'cup', HAND_OPTIONS);
    assert.equal(result.steps.length, 2);
    assert.equal((result.steps[0] as NodeStep).decision, 'too-small');
    assert.equal((result.steps[1] as StopStep).reason, 'exhausted');
  });
});
