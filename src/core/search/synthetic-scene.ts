/**
 * Synthetic search scenes (SPEC §7.8 calibration without annotations): a background photo resized
 * to the scene size, and an object photo resized into a known box of it. The box is the ground
 * truth a search should find (success: IoU > 0.5, as V*'s search-only evaluation).
 */
import { resizeRGB8 } from '../image/resample.js';
import type { RgbImage } from '../image/types.js';
import type { Box } from './vstar.js';

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
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  const inter = w > 0 && h > 0 ? w * h : 0;
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}
