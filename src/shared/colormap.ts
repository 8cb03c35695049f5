/**
 * Colour maps for heatmaps as 256-entry RGBA lookup tables, and the value range a map is drawn
 * with. Perceptually uniform maps (viridis, inferno) so that equal steps in attention look equal.
 */

export type ColormapName = 'viridis' | 'inferno' | 'gray';

export const COLORMAPS: readonly ColormapName[] = ['viridis', 'inferno', 'gray'];

// Control points sampled from matplotlib's tables at 0, 1/8, …, 1; linear in between is within
// a couple of 8-bit levels of the full table.
const STOPS: Record<ColormapName, readonly (readonly [number, number, number])[]> = {
  viridis: [
    [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
  ],
  inferno: [
    [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
    [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164],
  ],
  gray: [[0, 0, 0], [255, 255, 255]],
};

const tables = new Map<ColormapName, Uint8ClampedArray>();

/** RGBA bytes for 256 levels (alpha 255). */
export function colormapTable(name: ColormapName): Uint8ClampedArray {
  let table = tables.get(name);
  if (!table) {
    const stops = STOPS[name];
    table = new Uint8ClampedArray(256 * 4);
    for (let i = 0; i < 256; i++) {
      const t = (i / 255) * (stops.length - 1);
      const k = Math.min(stops.length - 2, Math.floor(t));
      const f = t - k;
      const [a, b] = [stops[k]!, stops[k + 1]!];
      for (let c = 0; c < 3; c++) table[i * 4 + c] = Math.round(a[c]! + (b[c]! - a[c]!) * f);
      table[i * 4 + 3] = 255;
    }
    tables.set(name, table);
  }
  return table;
}

export interface ValueRange {
  min: number;
  max: number;
}

/** Smallest and largest finite value of `values[start, end)`, except index `skip`; {0, 0} when there are none. */
export function valueRange(values: ArrayLike<number>, start = 0, end = values.length, skip = -1): ValueRange {
  let min = Infinity;
  let max = -Infinity;
  for (let i = start; i < end; i++) {
    if (i === skip) continue;
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return Number.isFinite(min) ? { min, max } : { min: 0, max: 0 };
}

/**
 * The colour range of one token's map: over the patch tokens, leaving out the source token
 * itself, whose self-attention (and in rollout the residual identity) would otherwise squash every
 * other patch into the bottom of the scale; the source patch then shows saturated.
 */
export function mapRange(row: ArrayLike<number>, prefixTokens: number, source: number): ValueRange {
  const patches = row.length - prefixTokens;
  if (source < prefixTokens || patches < 2) return valueRange(row, prefixTokens);
  return valueRange(row, prefixTokens, row.length, source);
}

/** The colour-table level (0–255) of `value` in `range`; a flat range maps everything to the middle. */
export function levelOf(value: number, range: ValueRange): number {
  const span = range.max - range.min;
  if (!(span > 0)) return 128;
  const t = (value - range.min) / span;
  return t <= 0 ? 0 : t >= 1 ? 255 : Math.round(t * 255);
}

/**
 * Writes `values[start + i]` for i < rows·cols as colours into `rgba` (an ImageData's data,
 * cols × rows pixels), with the given alpha (0–255).
 */
export function paintValues(
  rgba: Uint8ClampedArray,
  values: ArrayLike<number>,
  start: number,
  count: number,
  range: ValueRange,
  table: Uint8ClampedArray,
  alpha: number,
): void {
  for (let i = 0; i < count; i++) {
    const level = levelOf(values[start + i]!, range) * 4;
    const o = i * 4;
    rgba[o] = table[level]!;
    rgba[o + 1] = table[level + 1]!;
    rgba[o + 2] = table[level + 2]!;
    rgba[o + 3] = alpha;
  }
}

/** Compact label for a colour-bar end: 3 significant digits, exponent form for tiny values. */
export function formatValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a < 1e-3 || a >= 1e4 ? v.toExponential(2) : v.toPrecision(3);
}

/** `value` in `range` as a CSS colour of the map, and a text colour readable on it (table cells, bars). */
export function cellColors(value: number, range: ValueRange, name: ColormapName): { background: string; text: string } {
  const table = colormapTable(name);
  const l = levelOf(value, range) * 4;
  const [r, g, b] = [table[l]!, table[l + 1]!, table[l + 2]!];
  // Rec. 601 luma: dark text on the light end of the map, light text on the dark end.
  return { background: `rgb(${r}, ${g}, ${b})`, text: 0.299 * r + 0.587 * g + 0.114 * b > 140 ? '#000' : '#fff' };
}
