/**
 * Drawing attention maps on canvases: a patch grid's values become one pixel per patch in a
 * small ImageData, which drawImage then scales onto the image (bilinear when "smooth", so a
 * coarse grid reads as a field; nearest otherwise, so each patch stays a crisp block).
 */
import { paintValues, type ValueRange } from '../../src/shared/colormap.js';
import type { Rect } from '../../src/shared/patch-geometry.js';

export class PatchImage {
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private image: ImageData;

  constructor(
    readonly rows: number,
    readonly cols: number,
  ) {
    this.canvas = document.createElement('canvas');
    this.canvas.width = cols;
    this.canvas.height = rows;
    this.ctx = this.canvas.getContext('2d')!;
    this.image = this.ctx.createImageData(cols, rows);
  }

  /** Colours `values[start …]` (rows·cols of them) into the small canvas. */
  paint(values: ArrayLike<number>, start: number, range: ValueRange, table: Uint8ClampedArray, alpha = 255): void {
    paintValues(this.image.data, values, start, this.rows * this.cols, range, table, alpha);
    this.ctx.putImageData(this.image, 0, 0);
  }

  /** Draws the painted grid scaled onto `rect` of `target`. */
  drawOnto(target: CanvasRenderingContext2D, rect: Rect, smooth: boolean, opacity = 1): void {
    target.save();
    target.imageSmoothingEnabled = smooth;
    target.imageSmoothingQuality = 'high';
    target.globalAlpha = opacity;
    target.drawImage(this.canvas, rect.x, rect.y, rect.width, rect.height);
    target.restore();
  }
}

/** Sizes a canvas's backing store to its CSS size × devicePixelRatio; returns the context scaled to CSS pixels. */
export function fitCanvas(canvas: HTMLCanvasElement, cssWidth: number, cssHeight: number): CanvasRenderingContext2D {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(cssWidth * ratio));
  const h = Math.max(1, Math.round(cssHeight * ratio));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

/** The display size of an image fitted into maxWidth × maxHeight CSS pixels (never enlarged past 4×). */
export function fitSize(width: number, height: number, maxWidth: number, maxHeight: number): { width: number; height: number; scale: number } {
  const scale = Math.min(4, maxWidth / width, maxHeight / height);
  return { width: Math.max(1, Math.floor(width * scale)), height: Math.max(1, Math.floor(height * scale)), scale };
}

/**
 * Applies `data-width`/`data-height` of every `.stage` under `root` as its CSS size: the webview's
 * CSP blocks style="…" attributes, so sizes go through the CSSOM.
 */
export function sizeStages(root: ParentNode): void {
  for (const stage of root.querySelectorAll<HTMLElement>('.stage[data-width]')) {
    stage.style.width = `${stage.dataset.width}px`;
    stage.style.height = `${stage.dataset.height}px`;
  }
}
