/**
 * Static figures for `vision-inspector report`: PNG data URIs (encoded with sharp), tile mosaics,
 * heatmap overlays on the patch grid, inline-SVG plots, and the page around them. The page is
 * self-contained: a Content-Security-Policy that allows only inline styles and data: images, so
 * even a mistake here could not make it fetch anything.
 */
import sharp from 'sharp';
import { principalComponents } from '../core/analysis/pca.js';
import { vectorTile, type PatchEmbeddingFilters } from '../core/analysis/patch-embedding.js';
import { positionSimilarity, type PositionTable } from '../core/analysis/position-embedding.js';
import type { RgbImage } from '../core/image/types.js';
import { colormapTable, type ColormapName } from '../shared/colormap.js';
import type { MethodCard } from '../shared/method-cards.js';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A method card shared with the inspector (src/shared/method-cards.ts), as report HTML. */
export function methodCardHtml(card: MethodCard): string {
  return card.formulas.map((f) => `<span class="formula">${escapeHtml(f)}</span>`).join('') + `<p>${card.notes.map(escapeHtml).join(' ')}</p>`;
}

/** `data:image/png;base64,…` of an RGB image. */
export async function pngDataUri(image: RgbImage): Promise<string> {
  const png = await sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

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

/** min…max of a map, or a fixed range. */
export interface Range {
  min: number;
  max: number;
}

export function rangeOf(values: ArrayLike<number>): Range {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    min = Math.min(min, values[i]!);
    max = Math.max(max, values[i]!);
  }
  return { min, max };
}

function levelIn(value: number, range: Range): number {
  const span = range.max - range.min;
  return span > 0 ? Math.min(255, Math.max(0, Math.round((255 * (value - range.min)) / span))) : 128;
}

/** A rows×cols map as a colour image, one pixel per cell. */
export function colorGrid(values: ArrayLike<number>, rows: number, cols: number, range: Range = rangeOf(values), colormap: ColormapName = 'viridis'): RgbImage {
  const table = colormapTable(colormap);
  const data = new Uint8Array(rows * cols * 3);
  for (let i = 0; i < rows * cols; i++) {
    const l = levelIn(values[i]!, range) * 4;
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
export function heatmapOverlay(image: RgbImage, values: ArrayLike<number>, rows: number, cols: number, patchSize: number, range: Range = rangeOf(values), alpha = 0.6): RgbImage {
  const table = colormapTable('inferno');
  const data = image.data.slice();
  for (let y = 0; y < Math.min(image.height, rows * patchSize); y++) {
    for (let x = 0; x < Math.min(image.width, cols * patchSize); x++) {
      const l = levelIn(values[Math.floor(y / patchSize) * cols + Math.floor(x / patchSize)]!, range) * 4;
      const o = (y * image.width + x) * 3;
      for (let c = 0; c < 3; c++) data[o + c] = Math.round((1 - alpha) * data[o + c]! + alpha * table[l + c]!);
    }
  }
  return { width: image.width, height: image.height, data };
}

/** An <img> of a PNG data URI, drawn `scale` times its pixel size without smoothing. */
export async function imgTag(image: RgbImage, alt: string, scale = 1): Promise<string> {
  return `<img src="${await pngDataUri(image)}" alt="${escapeHtml(alt)}" width="${image.width * scale}" height="${image.height * scale}">`;
}

/** A figure with a caption. */
export function figure(body: string, caption: string): string {
  return `<figure>${body}<figcaption>${caption}</figcaption></figure>`;
}

/** The image with its patch grid drawn over it, as inline SVG (crisp lines at any scale). */
export async function patchGridSvg(image: RgbImage, rows: number, cols: number, patchSize: number, scale: number): Promise<string> {
  const w = image.width * scale;
  const h = image.height * scale;
  const lines: string[] = [];
  for (let r = 0; r <= rows; r++) lines.push(`<line x1="0" y1="${r * patchSize * scale}" x2="${cols * patchSize * scale}" y2="${r * patchSize * scale}"/>`);
  for (let c = 0; c <= cols; c++) lines.push(`<line x1="${c * patchSize * scale}" y1="0" x2="${c * patchSize * scale}" y2="${rows * patchSize * scale}"/>`);
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="input with patch grid"><image href="${await pngDataUri(image)}" width="${w}" height="${h}" style="image-rendering:pixelated"/><g stroke="#fff" stroke-opacity="0.7" stroke-width="1">${lines.join('')}</g></svg>`;
}

/** Horizontal bars for labelled probabilities (0…1). */
export function barsHtml(items: readonly { label: string; value: number; note?: string }[]): string {
  const rows = items.map((it) =>
    `<tr><td class="label">${escapeHtml(it.label)}</td><td class="bar"><span style="width:${(100 * it.value).toFixed(1)}%"></span></td><td class="num">${(100 * it.value).toFixed(2)} %${it.note ? ` <small>${escapeHtml(it.note)}</small>` : ''}</td></tr>`);
  return `<table class="bars">${rows.join('')}</table>`;
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

export interface ReportSection {
  id: string;
  title: string;
  /** The figures. */
  body: string;
  /** The method card: formula and parameters (HTML). */
  method: string;
}

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
nav a{margin-right:12px}section{display:grid;grid-template-columns:minmax(0,1fr) 320px;gap:20px;align-items:start}
aside.method{background:#f6f6f2;border:1px solid #e4e4dc;border-radius:6px;padding:10px 12px;font-size:13px}
aside.method h3{margin:0 0 6px;font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:#666}
code,.formula{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.formula{display:block;margin:6px 0;white-space:pre-wrap}
figure{display:inline-block;margin:0 12px 12px 0;vertical-align:top}figcaption{font-size:12px;color:#555;max-width:360px}
img{image-rendering:pixelated}table.bars{border-collapse:collapse}table.bars td{padding:2px 6px}
td.bar{width:260px}td.bar span{display:block;height:12px;background:#3b528b}td.num{text-align:right;font-variant-numeric:tabular-nums}
.tokens{font-family:ui-monospace,monospace;font-size:12px}.note{color:#666}
svg text{font-size:11px;fill:#333}
`;

/** The whole page. */
export function reportPage(title: string, subtitle: string, sections: readonly ReportSection[]): string {
  const nav = sections.map((s) => `<a href="#${s.id}">${escapeHtml(s.title)}</a>`).join('');
  const body = sections.map((s) =>
    `<h2 id="${s.id}">${escapeHtml(s.title)}</h2><section><div>${s.body}</div><aside class="method"><h3>Method</h3>${s.method}</aside></section>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(title)}</h1><p class="note">${subtitle}</p><nav>${nav}</nav>
${body}
</body></html>
`;
}
