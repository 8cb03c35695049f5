import * as assert from 'node:assert/strict';
import { calibrationScenes, evaluate, type CalibrationFigures, type CalibrationScene } from '../../../bench/lib/vstar-calibration';
import { SyntheticSearchModel } from '../../../src/core/search/synthetic-scene';
import { DEFAULT_SEARCH_OPTIONS, visualSearch } from '../../../src/core/search/vstar';

/**
 * The calibrated defaults on a subset of the calibration scenes (bench/vstar-calibrate.ts runs the
 * whole sweep): they must keep finding the pasted object without accepting noise in empty scenes,
 * where SPEC's initial 0.5/0.3 did. A stand-in model, not CLIP: see synthetic-scene.ts.
 */
describe('V* threshold calibration on synthetic scenes', function () {
  this.timeout(60_000);
  let scenes: CalibrationScene[];
  /** The defaults (DEFAULT_SEARCH_OPTIONS) over the scenes, with three noise seeds. */
  let defaults: CalibrationFigures;
  before(async () => {
    scenes = await calibrationScenes(1);
    defaults = await evaluate(scenes, DEFAULT_SEARCH_OPTIONS, [1, 2, 3]);
  });

  it('the stand-in model is deterministic and its cue peaks on the object', async () => {
    const scene = scenes.find((s) => s.truth?.width === 400)!;
    const a = await visualSearch(new SyntheticSearchModel(scene.image, scene.truth, { seed: 4 }), scene.image, 'object');
    const b = await visualSearch(new SyntheticSearchModel(scene.image, scene.truth, { seed: 4 }), scene.image, 'object');
    assert.deepEqual(a.path, b.path);
    const root = await new SyntheticSearchModel(scene.image, scene.truth, { noise: 0, clutter: 0 }).detect({ id: 0, box: { x: 0, y: 0, width: 2000, height: 1500 }, level: 1, parent: null });
    const peak = root.cue.values.indexOf(Math.max(...root.cue.values));
    const [r, c] = [Math.floor(peak / root.cue.cols), peak % root.cue.cols];
    const t = scene.truth!;
    assert.ok(root.cue.xs[c + 1]! > t.x && root.cue.xs[c]! < t.x + t.width && root.cue.ys[r + 1]! > t.y && root.cue.ys[r]! < t.y + t.height, 'peak cell overlaps the object');
  });

  it('defaults: the object is held by the returned box in most scenes, and empty scenes give no box', async () => {
    const f = defaults;
    assert.equal(f.falseFinds, 0, `${f.falseFinds} of ${f.absent} empty scenes gave a box`);
    assert.ok(f.covers / f.present >= 0.6, `covers ${f.covers} of ${f.present}`);
    assert.ok(f.meanNodes <= 21, 'a 2000×1500 search visits at most 21 nodes');
  });

  it('SPEC\'s initial 0.5/0.3 accepts noise in empty scenes (why the defaults changed)', async () => {
    const initial = await evaluate(scenes, { confidenceHigh: 0.5, confidenceLow: 0.3 }, [1, 2, 3]);
    const calibrated = defaults;
    assert.ok(initial.falseFinds > 0);
    assert.ok(calibrated.covers >= initial.covers - 1, `calibrated covers ${calibrated.covers}, initial ${initial.covers}`);
  });
});
