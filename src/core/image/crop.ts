import { check } from '../errors.js';
import type { Rect, RgbImage } from './types.js';

/** The pixels of `rect` (whole pixels, inside the image) as an image of their own. */
export function cropImage(image: RgbImage, rect: Rect): RgbImage {
  const { x, y, width, height } = rect;
  check(Number.isInteger(x) && Number.isInteger(y) && Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0 &&
    x >= 0 && y >= 0 && x + width <= image.width && y + height <= image.height,
  `crop ${JSON.stringify(rect)} is not a whole-pixel box inside the ${image.width}×${image.height} image.`);
  if (x === 0 && y === 0 && width === image.width && height === image.height) return image;
  const data = new Uint8Array(width * height * 3);
  for (let row = 0; row < height; row++) {
    const from = ((y + row) * image.width + x) * 3;
    data.set(image.data.subarray(from, from + width * 3), row * width * 3);
  }
  return { width, height, data };
}
