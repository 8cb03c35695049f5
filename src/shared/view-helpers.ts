/** Small pure helpers of the inspector's tabs, shared so they can be unit-tested without a DOM. */
import { MAX_PAPER_GRID } from './protocol.js';

/** Labels from the editor: one per line (or comma-separated), trimmed, empties and repeats dropped. */
export function parseLabels(text: string, max = 64): string[] {
  const out: string[] = [];
  for (const raw of text.split(/[\n,]/)) {
    const label = raw.trim();
    if (label && !out.includes(label)) out.push(label);
  }
  return out.slice(0, max);
}

/**
 * A custom kernel's values resized to `size`×`size`, keeping the centred part of the old one
 * (growing pads with zeros, shrinking crops the border), so switching 3 → 5 → 3 loses nothing inside.
 */
export function resizeKernelValues(values: readonly number[], size: number): number[] {
  const old = Math.round(Math.sqrt(values.length));
  const out = new Array<number>(size * size).fill(0);
  const shift = (size - old) / 2;
  for (let v = 0; v < old; v++) {
    for (let u = 0; u < old; u++) {
      const y = v + shift;
      const x = u + shift;
      if (x >= 0 && x < size && y >= 0 && y < size) out[y * size + x] = values[v * old + u]!;
    }
  }
  return out;
}

/** Where image box `b` lands on a stage shown at `scale` display pixels per image pixel. */
export function scaleBox(b: { x: number; y: number; width: number; height: number }, scale: number): { x: number; y: number; width: number; height: number } {
  return { x: b.x * scale, y: b.y * scale, width: b.width * scale, height: b.height * scale };
}

/** Scores mapped to 0…1 over their own range (all equal → 1), for colouring sub-boxes. */
export function relativeScores(scores: readonly number[]): number[] {
  if (scores.length === 0) return [];
  const min = Math.min(...scores);
  const max = Math.max(...scores);
  return scores.map((s) => (max > min ? (s - min) / (max - min) : 1));
}

export interface GridSize {
  rows: number;
  cols: number;
}

/**
 * Position grids worth comparing in the ViT-paper tab: the trained one, this input's, and 0.5×,
 * 1.5× and 2× the trained one (what smaller or larger inputs would give), each once, within MAX_PAPER_GRID.
 */
export function paperGridChoices(trained: GridSize, input: GridSize): { size: GridSize; label: string }[] {
  const choices: { size: GridSize; label: string }[] = [];
  const add = (size: GridSize, label: string) => {
    if (size.rows < 1 || size.cols < 1 || size.rows > MAX_PAPER_GRID || size.cols > MAX_PAPER_GRID) return;
    if (!choices.some((c) => c.size.rows === size.rows && c.size.cols === size.cols)) choices.push({ size, label });
  };
  add(trained, `trained ${trained.rows}×${trained.cols}`);
  add(input, `this input's ${input.rows}×${input.cols}`);
  for (const f of [0.5, 1.5, 2]) {
    const size = { rows: Math.round(trained.rows * f), cols: Math.round(trained.cols * f) };
    add(size, `${size.rows}×${size.cols} (resized)`);
  }
  return choices;
}

/**
 * An inline SVG (as the HTML report embeds it) made a standalone document for an <img>: the
 * namespace a separate document needs, and the report page's font as inherited attributes.
 */
export function standaloneSvg(svg: string): string {
  return svg.replace(/^<svg(?![^>]*\sxmlns=)/, '<svg xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12"');
}

/** A BPE token as a person reads it: CLIP's end-of-word mark "</w>" dropped, byte-level "Ġ" shown as a space. */
export function displayToken(token: string): string {
  return token.replace(/<\/w>$/, '').replace(/^Ġ/, ' ');
}
