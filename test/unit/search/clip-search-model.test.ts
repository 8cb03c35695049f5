import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { InferenceEngine, type TensorData } from '../../../src/core/engine/client';
import { decodeImage } from '../../../src/core/image/decode';
import { resizeRGB8 } from '../../../src/core/image/resample';
import type { RgbImage } from '../../../src/core/image/types';
import type { CLIPRunner } from '../../../src/core/models/clip-runner';
import { ModelRunner, openModel } from '../../../src/core/models/runner';
import {
  CLIPSearchModel,
  DEFAULT_NEGATIVES,
  LETTERBOX_FILL,
  SEARCH_TEMPLATES,
  letterbox,
  letterboxSquare,
  peakRegions,
  regionCropBox,
} from '../../../src/core/search/clip-search-model';
import { iou, pasteScene } from '../../../src/core/search/synthetic-scene';
import { gridHeatmap, massFraction, splitBox, visualSearch, type Box, type NodeStep, type SearchOptions } from '../../../src/core/search/vstar';
import { GOLDEN, PHOTOS } from '../parity';

const box = (x: number, y: number, width: number, height: number): Box => ({ x, y, width, height });
const inside = (inner: Box, outer: Box): boolean =>
  inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height;

describe('CLIP search model: geometry', () => {
  it('letterboxes a crop into a square of its longer side, centred (floor), padded with the CLIP mean colour', () => {
    const image: RgbImage = { width: 4, height: 3, data: Uint8Array.from({ length: 36 }, (_, i) => i) };
    assert.deepEqual(letterboxSquare(box(1, 1, 3, 2)), box(1, 1, 3, 3));
    assert.deepEqual(letterboxSquare(box(0, 0, 2, 5)), box(-1, 0, 5, 5));
    const sq = letterbox(image, box(1, 1, 3, 2));
    assert.equal(sq.width, 3);
    // rows 0–1 are the image rows 1–2 from x = 1; row 2 is padding ((3−2)//2 = 0 rows above)
    assert.deepEqual([...sq.data.subarray(0, 9)], [...image.data.subarray(15, 24)]);
    assert.deepEqual([...sq.data.subarray(9, 18)], [...image.data.subarray(27, 36)]);
    assert.deepEqual([...sq.data.subarray(18, 27)], [...LETTERBOX_FILL, ...LETTERBOX_FILL, ...LETTERBOX_FILL]);
    assert.throws(() => letterbox(image, box(2, 0, 3, 3)), /not an integer box inside/);
  });

  it('regions grow 4-connected from the peak over cells ≥ ½ peak; further regions only while `more` allows', () => {
    // 3×4 map; cell 3 is padding (unusable).
    const values = [
      0.9, 0.5, 0.1, 0.95,
      0.2, 0.44, 0.1, 0.1,
      0.6, 0.1, 0.7, 0.8,
    ];
    const usable = (i: number): boolean => i !== 3;
    const all = peakRegions(values, 3, 4, usable, 0.5, (peak) => peak >= 0.5);
    // peak 0.9 at 0: takes 1 (0.5 ≥ 0.45), not 4 (0.2), not 5 via 1 (0.44 < 0.45)
    assert.deepEqual(all, [{ cells: [0, 1], peak: 0.9 }, { cells: [10, 11], peak: 0.8 }, { cells: [8], peak: 0.6 }]);
    assert.deepEqual(peakRegions(values, 3, 4, usable, 0.5, () => false), [{ cells: [0, 1], peak: 0.9 }]);
  });

  it('a region becomes its cells\' box inside the node, grown ×1.2, at least min(minSide, node side)', () => {
    // 4×4 cells of 100 px over a 400² letterbox square at (0, −100); the node is 400×200 at (0, 0).
    const map = gridHeatmap(box(0, -100, 400, 400), 4, 4, new Array(16).fill(0));
    const node = box(0, 0, 400, 200);
    // cells 5, 6 (row 1: y 0…100, x 100…300) → 200×100, grown to 240×120 about (200, 50), moved down to y 0
    assert.deepEqual(regionCropBox(map, [5, 6], node, 1.2, 64), box(80, 0, 240, 120));
    // cell 0 lies in the padding above the node and cell 4 inside it: the box is clipped to y ≥ 0 first
    assert.deepEqual(regionCropBox(map, [0, 4], node, 1, 150), box(0, 0, 150, 150));
    // minSide larger than the node: the node's side
    assert.deepEqual(regionCropBox(map, [5], node, 1.2, 1000), node);
  });
});

describe('CLIP search model on the tiny CLIP (end to end)', () => {
  let engine: InferenceEngine;
  let runner: CLIPRunner;
  let scene: RgbImage;
  let cat: RgbImage;
  const object = box(200, 40, 48, 36);
  // 320×240 → 160×120 → 80×60: leaf size max(ceil(240/4), 48) = 60.
  const options: SearchOptions = { minimumSize: 48 };

  before(async () => {
    engine = InferenceEngine.create({ threads: 1 });
    const loaded = await openModel(path.join(GOLDEN, 'clip-tiny'));
    assert.equal(loaded.kind, 'clip');
    runner = new ModelRunner(engine).clip(loaded);
    cat = await decodeImage(path.join(PHOTOS, 'chelsea.jpg'));
    scene = pasteScene(await decodeImage(path.join(PHOTOS, 'rocket.jpg')), 320, 240, cat, object);
  });
  after(() => engine.dispose());

  it('pastes the object into the scene at its box', async () => {
    assert.equal(scene.width * scene.height * 3, scene.data.length);
    assert.deepEqual([scene.width, scene.height], [320, 240]);
    // Every row of the box holds the object resized to it.
    const patch = resizeRGB8(cat, object.width, object.height, 'bicubic');
    for (let y = 0; y < object.height; y++) {
      const row = ((object.y + y) * scene.width + object.x) * 3;
      assert.deepEqual(scene.data.subarray(row, row + object.width * 3), patch.data.subarray(y * object.width * 3, (y + 1) * object.width * 3), `row ${y}`);
    }
    assert.equal(iou(object, object), 1);
    assert.equal(iou(object, box(224, 40, 48, 36)), 24 / 72);
  });

  it('records every step with 8×8 letterbox heatmaps, detections inside the node, children tiling it', async () => {
    const model = new CLIPSearchModel(runner, scene, { minCropSide: 64 });
    const result = await visualSearch(model, scene, 'cat', options);
    const steps = result.steps.filter((s): s is NodeStep => s.kind === 'node');
    assert.ok(steps.length >= 1 && steps.length <= 21);
    assert.deepEqual(JSON.parse(JSON.stringify(result)), result);
    for (const step of steps) {
      const { box: nodeBox } = step.node;
      const square = letterboxSquare(nodeBox);
      assert.equal(step.cue.rows, 8);
      assert.equal(step.cue.cols, 8);
      assert.equal(step.cue.xs[0], square.x);
      assert.equal(step.cue.xs[8], square.x + square.width);
      assert.equal(step.cue.ys[8], square.y + square.height);
      step.cue.values.forEach((p, i) => {
        const [r, c] = [Math.floor(i / 8), i % 8];
        const outside = step.cue.ys[r + 1]! <= nodeBox.y || step.cue.ys[r]! >= nodeBox.y + nodeBox.height ||
          step.cue.xs[c + 1]! <= nodeBox.x || step.cue.xs[c]! >= nodeBox.x + nodeBox.width;
        assert.ok(outside ? p === 0 : p > 0 && p < 1, `cell ${i} of node ${step.node.id}: ${p}`);
      });
      const det = step.detection!;
      assert.ok(inside(det.box, nodeBox), `detection ${JSON.stringify(det.box)} outside ${JSON.stringify(nodeBox)}`);
      assert.ok(det.box.width >= Math.min(64, nodeBox.width) && det.box.height >= Math.min(64, nodeBox.height));
      assert.ok(det.score > 0 && det.score < 1);
      if (step.decision === 'target-cue' || step.decision === 'context-cue') {
        assert.equal(step.prominence, Math.max(...step.cue.values));
        assert.deepEqual(step.children.map((c) => c.box), splitBox(nodeBox));
      }
    }
    // The root is 320×240: rows 0 and 7 of its 320² letterbox lie wholly in the padding (40 px above and below).
    assert.ok(steps[0]!.cue.values.slice(0, 8).every((v) => v === 0) && steps[0]!.cue.values.slice(56).every((v) => v === 0));
    assert.ok(['found', 'fallback', 'not-found'].includes(result.status));
  });

  it('root cue and detection score equal CLIPRunner.heatmaps / zeroShot on the same letterboxed pixels', async () => {
    const model = new CLIPSearchModel(runner, scene, { minCropSide: 64 });
    const root = { id: 0, box: box(0, 0, 320, 240), level: 1, parent: null };
    const observed = await model.detect(root, 'cat');
    const texts = ['cat', ...DEFAULT_NEGATIVES];
    const pixels = (b: Box): TensorData => ({ type: 'float32', dims: [1, 3, 32, 32], data: model.cropPixels(b) });
    const maps = await runner.heatmaps(pixels(root.box), texts, { templates: SEARCH_TEMPLATES });
    maps.maps[0]!.probability.forEach((p, i) => {
      if (observed.cue.values[i] !== 0) assert.ok(Math.abs(observed.cue.values[i]! - p) < 1e-5, `cell ${i}`);
    });
    const zeroShot = await runner.zeroShot(pixels(observed.detection!.box), texts, { templates: SEARCH_TEMPLATES });
    assert.ok(Math.abs(observed.detection!.score - zeroShot[0]!.probability) < 1e-5);
  });

  it('context cue: children scored as crops, softmax over them, each child\'s mass its score; visited children reuse the crop', async () => {
    const model = new CLIPSearchModel(runner, scene, { minCropSide: 64 });
    // No probability exceeds 1.01: every split uses the contextual cue.
    const result = await visualSearch(model, scene, 'cat', { ...options, cueThreshold: 1.01, maxNodes: 6 });
    const expanded = result.steps.filter((s): s is NodeStep => s.kind === 'node' && s.decision === 'context-cue');
    assert.ok(expanded.length >= 2);
    for (const step of expanded) {
      const q = step.context!.childScores!;
      assert.equal(q.length, 4);
      assert.ok(Math.abs(q.reduce((a, b) => a + b, 0) - 1) < 1e-9);
      step.children.forEach((c, k) => assert.ok(Math.abs(massFraction(step.scoring!, step.node.box, c.box) - q[k]!) < 1e-9));
    }
    // every visited non-root node was a context child first, so its dense pass came from the cache
    assert.ok(model.stats.cacheHits >= result.path.length - 1, `${model.stats.cacheHits} cache hits`);
  });

  it('batched and one-crop-per-run searches agree, with fewer vision runs batched', async () => {
    const run = async (batchSize: number) => {
      const model = new CLIPSearchModel(runner, scene, { minCropSide: 64, batchSize });
      const result = await visualSearch(model, scene, 'cat', { ...options, cueThreshold: 1.01, maxNodes: 5 });
      return { model, result };
    };
    const one = await run(1);
    const batched = await run(8);
    assert.deepEqual(batched.result.path, one.result.path);
    const scores = (r: typeof one) => r.result.steps.flatMap((s) => (s.kind === 'node' ? [s.detection!.score, ...s.children.map((c) => c.score)] : []));
    scores(batched).forEach((v, i) => assert.ok(Math.abs(v - scores(one)[i]!) < 1e-5, `score ${i}: ${v} vs ${scores(one)[i]}`));
    assert.equal(batched.model.stats.crops, one.model.stats.crops);
    assert.equal(one.model.stats.runs, one.model.stats.crops);
    assert.ok(batched.model.stats.runs < one.model.stats.runs, `${batched.model.stats.runs} vs ${one.model.stats.runs} runs`);
  });
});
