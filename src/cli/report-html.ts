/**
 * The HTML of `vision-inspector report`: PNG data URIs (encoded with sharp), figures, bars, and
 * the page around them (the pictures themselves come from src/core/analysis/figures.ts). The page is
 * self-contained: a Content-Security-Policy that allows only inline styles and data: images, so
 * even a mistake here could not make it fetch anything.
 */
import sharp from 'sharp';
import type { RgbImage } from '../core/image/types.js';
import { cellColors, valueRange } from '../shared/colormap.js';
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
 * A matrix as a table: `rowHeads` and `colHeads` are HTML, `cells` [rows, cols] the numbers shown
 * (formatted by `format`), coloured over their own range.
 */
export function matrixHtml(rowHeads: readonly string[], colHeads: readonly string[], cells: ArrayLike<number>, format: (v: number, i: number) => string): string {
  const range = valueRange(cells);
  const head = `<tr><th></th>${colHeads.map((c) => `<th>${c}</th>`).join('')}</tr>`;
  const rows = rowHeads.map((r, i) => `<tr><th>${r}</th>${colHeads.map((_, t) => {
    const k = i * colHeads.length + t;
    const c = cellColors(cells[k]!, range, 'viridis');
    return `<td class="num" style="background:${c.background};color:${c.text}">${format(cells[k]!, k)}</td>`;
  }).join('')}</tr>`);
  return `<table class="matrix">${head}${rows.join('')}</table>`;
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
img{image-rendering:pixelated}table.bars{border-collapse:collapse}table.bars td{padding:2px 6px}table.matrix{border-collapse:collapse}table.matrix td,table.matrix th{padding:3px 8px;border:1px solid #ddd;text-align:center}
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
