/** The inspected image's pixels in the webview (from its blob: URL), for views computed here. */
import type { RgbImage } from '../../src/core/image/types.js';

/** Decodes `url` and returns its RGB pixels, scaled so the longer side is at most `maxSide`. */
export async function loadRgb(url: string, maxSide: number): Promise<RgbImage> {
  const img = new Image();
  img.src = url;
  await img.decode();
  const scale = Math.min(1, maxSide / Math.max(img.naturalWidth, img.naturalHeight));
  const width = Math.max(1, Math.round(img.naturalWidth * scale));
  const height = Math.max(1, Math.round(img.naturalHeight * scale));
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(img, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    data[3 * i] = rgba[4 * i]!;
    data[3 * i + 1] = rgba[4 * i + 1]!;
    data[3 * i + 2] = rgba[4 * i + 2]!;
  }
  return { width, height, data };
}

/** Draws 8-bit RGB onto a canvas at its own size (the canvas's CSS scales it). */
export function putRgb(canvas: HTMLCanvasElement, image: RgbImage): void {
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext('2d')!;
  const out = ctx.createImageData(image.width, image.height);
  for (let i = 0; i < image.width * image.height; i++) {
    out.data[4 * i] = image.data[3 * i]!;
    out.data[4 * i + 1] = image.data[3 * i + 1]!;
    out.data[4 * i + 2] = image.data[3 * i + 2]!;
    out.data[4 * i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}
