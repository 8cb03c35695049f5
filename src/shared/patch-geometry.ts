/**
 * Where each token of a patch grid lies on the user's image, and which token a point of the
 * image falls in. The model sees a resized (and possibly cropped or padded) copy; the grid covers
 * only whole patches of it (a convolution with stride = patch size drops the remainder). All
 * coordinates here are in source-image pixels, edges at integers.
 */

/** A rectangle; x/y are the left/top edges. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The token layout of one model input (mirrors the core models' PatchGrid). */
export interface TokenGrid {
  /** Model input size in pixels, after preprocessing. */
  inputWidth: number;
  inputHeight: number;
  patchSize: number;
  rows: number;
  cols: number;
  /** Tokens before the first patch ([CLS], DeiT's distillation token). */
  prefixTokens: number;
  /** prefixTokens + rows·cols. */
  tokens: number;
}

/** How the model input window sits on the source image. */
export interface InputPlacement {
  sourceWidth: number;
  sourceHeight: number;
  /** The model input's full extent on the source image (fractional after a resize). */
  sourceBox: Rect;
}

export interface PatchHit {
  row: number;
  col: number;
  token: number;
}

/** Token index of patch (row, col), row-major after the prefix tokens. */
export function patchToken(grid: TokenGrid, row: number, col: number): number {
  return grid.prefixTokens + row * grid.cols + col;
}

/** The patch of a token, or undefined for a prefix token ([CLS]…) or an index out of range. */
export function tokenPatch(grid: TokenGrid, token: number): { row: number; col: number } | undefined {
  const p = token - grid.prefixTokens;
  if (!Number.isInteger(p) || p < 0 || p >= grid.rows * grid.cols) return undefined;
  return { row: Math.floor(p / grid.cols), col: p % grid.cols };
}

/** Model-input pixels → source pixels along each axis. */
function scale(placement: InputPlacement, grid: TokenGrid): { sx: number; sy: number } {
  return { sx: placement.sourceBox.width / grid.inputWidth, sy: placement.sourceBox.height / grid.inputHeight };
}

/** Patch (row, col) on the source image. */
export function patchRect(placement: InputPlacement, grid: TokenGrid, row: number, col: number): Rect {
  const { sx, sy } = scale(placement, grid);
  const p = grid.patchSize;
  return { x: placement.sourceBox.x + col * p * sx, y: placement.sourceBox.y + row * p * sy, width: p * sx, height: p * sy };
}

/** The area all patches cover together on the source image. */
export function gridRect(placement: InputPlacement, grid: TokenGrid): Rect {
  const { sx, sy } = scale(placement, grid);
  const p = grid.patchSize;
  return { x: placement.sourceBox.x, y: placement.sourceBox.y, width: grid.cols * p * sx, height: grid.rows * p * sy };
}

/** The patch under source pixel (x, y), or undefined outside every patch. */
export function hitTestPatch(placement: InputPlacement, grid: TokenGrid, x: number, y: number): PatchHit | undefined {
  const area = gridRect(placement, grid);
  const u = (x - area.x) / area.width;
  const v = (y - area.y) / area.height;
  // Half-open on the right and bottom, so neighbouring patches never both claim an edge.
  if (!(u >= 0 && u < 1 && v >= 0 && v < 1)) return undefined;
  const col = Math.min(grid.cols - 1, Math.floor(u * grid.cols));
  const row = Math.min(grid.rows - 1, Math.floor(v * grid.rows));
  return { row, col, token: patchToken(grid, row, col) };
}

/** Layout of a layers × columns thumbnail grid, for hit-testing clicks on it. */
export interface TileLayout {
  columns: number;
  rows: number;
  tileWidth: number;
  tileHeight: number;
  gap: number;
  /** Space left of the first column and above the first row (axis labels). */
  offsetX: number;
  offsetY: number;
}

/** The (row, column) of the tile under (x, y), or undefined in a gap or outside. */
export function hitTestTile(layout: TileLayout, x: number, y: number): { row: number; column: number } | undefined {
  const stepX = layout.tileWidth + layout.gap;
  const stepY = layout.tileHeight + layout.gap;
  const cx = x - layout.offsetX;
  const cy = y - layout.offsetY;
  if (cx < 0 || cy < 0) return undefined;
  const column = Math.floor(cx / stepX);
  const row = Math.floor(cy / stepY);
  if (column >= layout.columns || row >= layout.rows) return undefined;
  if (cx - column * stepX >= layout.tileWidth || cy - row * stepY >= layout.tileHeight) return undefined;
  return { row, column };
}
