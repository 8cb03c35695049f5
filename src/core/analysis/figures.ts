/**
 * Figures as pixels and plots, shared by `vision-inspector report` and the inspector's ViT-paper
 * tab so both draw the same pictures: tile mosaics, colour grids, heatmap overlays on the model
 * input, the position-similarity and filter-PCA mosaics (ViT paper Fig. 7), and the mean
 * attention distance plot as an SVG string. Pure functions: no encoding, no I/O.
 */
import { principalComponents } from './pca.js';
import { vectorTile, type PatchEmbeddingFilters } from './patch-embedding.js';
import { positionSimilarity, type PositionTable } from './position-embedding.js';
import type { RgbImage } from '../image/types.js';
import { colormapTable, levelOf, valueRange, type ColormapName, type ValueRange } from '../../shared/colormap.js';

/** Every pixel repeated into a factor×factor block (keeps patch edges sharp). */
export function upscale(image: RgbImage, factor: number): RgbImage {
  if (factor === 1) return image;
  const width = image.width * factor;
  const height = image.height * factor;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = Math.floor(y / factor);
    for (let x = 0; x < width; x++) {
      const s = (sy * image.width + Math.floor(x / factor)) * 3;
      const o = (y * width + x) * 3;
      data[o] = image.data[s]!;
      data[o + 1] = image.data[s + 1]!;
      data[o + 2] = image.data[s + 2]!;
    }
  }
  return { width, height, data };
}

/** Tiles of equal size in a grid of `columns`, `gap` pixels apart on a `background` grey. */
export function mosaic(tiles: readonly RgbImage[], columns: number, gap = 1, background = 255): RgbImage {
  const tw = tiles[0]!.width;
  const th = tiles[0]!.height;
  const cols = Math.min(columns, tiles.length);
  const rows = Math.ceil(tiles.length / cols);
  const width = cols * tw + (cols - 1) * gap;
  const height = rows * th + (rows - 1) * gap;
  const data = new Uint8Array(width * height * 3).fill(background);
  tiles.forEach((tile, i) => {
    const x0 = (i % cols) * (tw + gap);
    const y0 = Math.floor(i / cols) * (th + gap);
    for (let y = 0; y < th; y++) data.set(tile.data.subarray(y * tw * 3, (y + 1) * tw * 3), ((y0 + y) * width + x0) * 3);
  });
  return { width, height, data };
}

/** A rows×cols map as a colour image, one pixel per cell. */
export function colorGrid(values: ArrayLike<number>, rows: number, cols: number, range: ValueRange = valueRange(values), colormap: ColormapName = 'viridis'): RgbImage {
  const table = colormapTable(colormap);
  const data = new Uint8Array(rows * cols * 3);
  for (let i = 0; i < rows * cols; i++) {
    const l = levelOf(values[i]!, range) * 4;
    data.set([table[l]!, table[l + 1]!, table[l + 2]!], i * 3);
  }
  return { width: cols, height: rows, data };
}

/**
 * ViT paper Fig. 7 centre as one image: tile (r, c) is row r·cols + c of the cosine-similarity
 * matrix on the patch grid, coloured −1…1, tiles about 96 px whatever the grid. Shared by the
 * report and the inspector's ViT-paper tab, so both draw the same figure.
 */
export function positionSimilarityMosaic(table: PositionTable): RgbImage {
  const sim = positionSimilarity(table);
  const P = table.rows * table.cols;
  const cell = Math.max(1, Math.round(96 / Math.max(table.rows, table.cols)));
  const tiles = Array.from({ length: P }, (_, q) => upscale(colorGrid(sim.subarray(q * P, (q + 1) * P), table.rows, table.cols, { min: -1, max: 1 }), cell));
  return mosaic(tiles, table.cols, Math.max(1, Math.round(cell / 2)));
}

export interface FilterComponents {
  /** The first k components as RGB tiles (min…max per component), upscaled to about 32 px. */
  tiles: RgbImage[];
  /** Fraction of the filters' variance each component explains. */
  explainedRatio: Float64Array;
  /** Values per filter: 3·p·p. */
  dims: number;
}

/** ViT paper Fig. 7 left: the first `maxComponents` principal components of the patch-embedding filters. */
export function filterComponents(filters: PatchEmbeddingFilters, maxComponents: number): FilterComponents {
  const dims = 3 * filters.patchSize ** 2;
  const k = Math.min(maxComponents, dims, filters.count - 1);
  const pca = principalComponents(filters.weight, filters.count, dims, k);
  const tileScale = Math.max(1, Math.round(32 / filters.patchSize));
  const tiles = Array.from({ length: k }, (_, c) => upscale(vectorTile(pca.components, c * dims, filters.patchSize, 'minmax'), tileScale));
  return { tiles, explainedRatio: Float64Array.from(pca.explainedRatio), dims };
}

/**
 * `values` [rows·cols] over the patch grid, blended (`alpha` of the colour) onto `image` (the
 * model input, patchSize pixels per cell); pixels past the last whole patch are left as they are.
 */
export function heatmapOverlay(image: RgbImage, values: ArrayLike<number>, rows: number, cols: number, patchSize: number, range: ValueRange = valueRange(values), alpha = 0.6): RgbImage {
  const table = colormapTable('inferno');
  const data = image.data.slice();
  for (let y = 0; y < Math.min(image.height, rows * patchSize); y++) {
    for (let x = 0; x < Math.min(image.width, cols * patchSize); x++) {
      const l = levelOf(values[Math.floor(y / patchSize) * cols + Math.floor(x / patchSize)]!, range) * 4;
      const o = (y * image.width + x) * 3;
      for (let c = 0; c < 3; c++) data[o + c] = Math.round((1 - alpha) * data[o + c]! + alpha * table[l + c]!);
    }
  }
  return { width: image.width, height: image.height, data };
}

/**
 * Mean attention distance against depth: one dot per head at each layer, the layer mean as a
 * line; x = layer (1-based), y = pixels.
 */
export function attentionDistancePlot(distance: Float64Array, layers: number, heads: number, maxDistance: number): string {
  const W = 520;
  const H = 300;
  const m = { left: 52, right: 12, top: 12, bottom: 40 };
  const yMax = Math.max(maxDistance, ...Array.from(distance).filter(Number.isFinite)) || 1;
  const x = (layer: number): number => m.left + ((layer + 0.5) / layers) * (W - m.left - m.right);
  const y = (d: number): number => H - m.bottom - (d / yMax) * (H - m.top - m.bottom);
  const parts: string[] = [];
  for (let t = 0; t <= 4; t++) {
    const v = (yMax * t) / 4;
    parts.push(`<line x1="${m.left}" x2="${W - m.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/><text x="${m.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(0)}</text>`);
  }
  const means: string[] = [];
  for (let l = 0; l < layers; l++) {
    parts.push(`<text x="${x(l).toFixed(1)}" y="${H - m.bottom + 16}" text-anchor="middle">${l + 1}</text>`);
    let sum = 0;
    for (let h = 0; h < heads; h++) {
      const d = distance[l * heads + h]!;
      sum += d;
      parts.push(`<circle cx="${x(l).toFixed(1)}" cy="${y(d).toFixed(1)}" r="3" fill="#3b528b" fill-opacity="0.7"><title>layer ${l + 1}, head ${h}: ${d.toFixed(1)} px</title></circle>`);
    }
    means.push(`${x(l).toFixed(1)},${y(sum / heads).toFixed(1)}`);
  }
  parts.push(`<polyline points="${means.join(' ')}" fill="none" stroke="#e3562f" stroke-width="2"/>`);
  parts.push(`<text x="${(W + m.left) / 2}" y="${H - 6}" text-anchor="middle">network depth (layer)</text>`);
  parts.push(`<text transform="translate(14 ${(H - m.bottom) / 2}) rotate(-90)" text-anchor="middle">mean attention distance (px)</text>`);
  return `<svg class="plot" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="mean attention distance per head and layer">${parts.join('')}</svg>`;
}
