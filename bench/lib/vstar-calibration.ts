/**
 * Threshold calibration of the V* search on synthetic scenes (SPEC §7.8, without V*Bench or
 * trained CLIP weights): photos from test/fixtures/photos as backgrounds, a smaller photo pasted
 * at a known box (synthetic-scene.ts pasteScene), and SyntheticSearchModel standing in for CLIP.
 * Scenes without the object measure false finds. Shared by bench/vstar-calibrate.ts (the full
 * sweep) and the unit test that keeps the chosen defaults honest.
 */
import * as path from 'node:path';
import { decodeImage } from '../../src/core/image/decode';
import type { RgbImage } from '../../src/core/image/types';
import { SyntheticSearchModel, iou, overlapArea, pasteScene, type SyntheticModelOptions } from '../../src/core/search/synthetic-scene';
import { visualSearch, type Box, type SearchOptions } from '../../src/core/search/vstar';

export const PHOTOS = path.join(__dirname, '..', '..', 'test', 'fixtures', 'photos');
export const SCENE = { width: 2000, height: 1500 };
const BACKGROUNDS = ['hubble_deep_field.jpg', 'retina.jpg', 'astronaut.jpg', 'coffee.jpg'];
const OBJECTS = ['rocket.jpg', 'chelsea.jpg', 'colorwheel.png'];
/** Object sizes: about one root-grid cell, two, and four (the root letterbox grid cell is 2000/7 ≈ 286 px). */
export const OBJECT_SIZES = [
  { width: 120, height: 90 },
  { width: 240, height: 180 },
  { width: 400, height: 300 },
];

export interface CalibrationScene {
  name: string;
  image: RgbImage;
  /** Null: the object is absent (any find is false). */
  truth: Box | null;
}

/** Deterministic positions in [0, 1) (a tiny LCG, so the scene set is the same everywhere). */
function positions(seed: number, count: number): [number, number][] {
  let s = seed >>> 0;
  const next = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: count }, () => [next(), next()]);
}

/**
 * Per background: each object size at `placements` seeded positions (object photo cycling through
 * OBJECTS), plus the background alone.
 */
export async function calibrationScenes(placements = 2, backgrounds = BACKGROUNDS): Promise<CalibrationScene[]> {
  const objects = await Promise.all(OBJECTS.map((f) => decodeImage(path.join(PHOTOS, f))));
  const scenes: CalibrationScene[] = [];
  for (const [b, file] of backgrounds.entries()) {
    const background = await decodeImage(path.join(PHOTOS, file));
    scenes.push({ name: `${file} (absent)`, image: pasteScene(background, SCENE.width, SCENE.height, background, { x: 0, y: 0, width: SCENE.width, height: SCENE.height }), truth: null });
    for (const [s, size] of OBJECT_SIZES.entries()) {
      for (const [p, [u, v]] of positions(1 + b * 31 + s * 7, placements).entries()) {
        const truth = { x: Math.floor(u * (SCENE.width - size.width)), y: Math.floor(v * (SCENE.height - size.height)), ...size };
        const object = objects[(s + p) % objects.length]!;
        scenes.push({ name: `${file} + ${size.width}×${size.height} at ${truth.x},${truth.y}`, image: pasteScene(background, SCENE.width, SCENE.height, object, truth), truth });
      }
    }
  }
  return scenes;
}

export interface CalibrationFigures {
  /** Searches on scenes with the object. */
  present: number;
  /** Returned a box (found or fallback). */
  found: number;
  /** The box has IoU > 0.5 with the object (V*'s search-only criterion). */
  iouHits: number;
  /** The box holds ≥ 90 % of the object (what a zoom image for the answering model needs). */
  covers: number;
  /** Searches on scenes without the object, and how many returned a box anyway. */
  absent: number;
  falseFinds: number;
  /** Mean nodes visited per search (all searches). */
  meanNodes: number;
}

/** Every scene searched with `options`, once per noise seed. */
export async function evaluate(scenes: readonly CalibrationScene[], options: SearchOptions, seeds: readonly number[], model: SyntheticModelOptions = {}): Promise<CalibrationFigures> {
  const f: CalibrationFigures = { present: 0, found: 0, iouHits: 0, covers: 0, absent: 0, falseFinds: 0, meanNodes: 0 };
  let nodes = 0;
  for (const seed of seeds) {
    for (const scene of scenes) {
      const result = await visualSearch(new SyntheticSearchModel(scene.image, scene.truth, { ...model, seed }), scene.image, 'object', options);
      nodes += result.path.length;
      const box = result.status === 'not-found' ? null : result.detection!.box;
      if (!scene.truth) {
        f.absent++;
        if (box) f.falseFinds++;
        continue;
      }
      f.present++;
      if (!box) continue;
      f.found++;
      if (iou(box, scene.truth) > 0.5) f.iouHits++;
      if (overlapArea(box, scene.truth) >= 0.9 * scene.truth.width * scene.truth.height) f.covers++;
    }
  }
  f.meanNodes = nodes / (seeds.length * scenes.length);
  return f;
}

/** covers/present − falseFinds/absent: the sweep's ranking (finding the object usably, penalised by false finds). */
export function merit(f: CalibrationFigures): number {
  return f.covers / f.present - f.falseFinds / f.absent;
}


/** The sweep grid (SPEC §7.8's grid search over the thresholds; decay kept at 0.9). */
export function sweepGrid(): SearchOptions[] {
  const grid: SearchOptions[] = [];
  for (const confidenceHigh of [0.4, 0.5, 0.6, 0.7, 0.8]) {
    for (const confidenceLow of [0.2, 0.3, 0.4, 0.5, 0.6]) {
      if (confidenceLow > confidenceHigh) continue;
      for (const cueThreshold of [0.5, 0.6, 0.7, 0.85]) {
        for (const cueThresholdMinimum of [0.4, 0.5, 0.6]) {
          if (cueThresholdMinimum > cueThreshold) continue;
          grid.push({ confidenceHigh, confidenceLow, cueThreshold, cueThresholdDecay: 0.9, cueThresholdMinimum });
        }
      }
    }
  }
  return grid;
}
