/**
 * CLIP similarity arithmetic on embeddings the graphs return already L2-normalised: logits as
 * transformers computes them, prompt ensembles, and per-patch maps (SPEC §4.5, §4.8, §7.2).
 * Pure functions over Float32Arrays, so analysis and search code can use them on cached embeddings.
 */

/** ⟨a[aOffset…], b⟩ over b.length elements, accumulated in float64. */
function dot(a: Float32Array, aOffset: number, b: Float32Array): number {
  let sum = 0;
  for (let j = 0; j < b.length; j++) sum += a[aOffset + j]! * b[j]!;
  return sum;
}

/** `logit_scale.exp() · ⟨image, text⟩` rounded as float32, transformers' `logits_per_image` entry. */
export function clipLogit(imageEmbed: Float32Array, textEmbed: Float32Array, scale: number): number {
  return Math.fround(Math.fround(dot(imageEmbed, 0, textEmbed)) * scale);
}

/** Every image against every text (CLIPModel's `logits_per_image` and what it is made of), row-major [images, texts]. */
export interface SimilarityMatrix {
  images: number;
  texts: number;
  /** cos(image i, text t). */
  cosine: Float32Array;
  /** exp(logit_scale) · cos as transformers rounds it: `logits_per_image`. */
  logits: Float32Array;
  /** Per image (row), the softmax of its logits over the texts. */
  probabilities: Float32Array;
  /** exp(logit_scale) of the checkpoint. */
  scale: number;
}

/** The similarity matrix of unit-length image and text embeddings (each [P]). */
export function similarityMatrix(imageEmbeds: readonly Float32Array[], textEmbeds: readonly Float32Array[], scale: number): SimilarityMatrix {
  const I = imageEmbeds.length;
  const T = textEmbeds.length;
  const cosine = new Float32Array(I * T);
  const logits = new Float32Array(I * T);
  const probabilities = new Float32Array(I * T);
  imageEmbeds.forEach((image, i) => {
    const row: number[] = [];
    textEmbeds.forEach((text, t) => {
      cosine[i * T + t] = dot(image, 0, text);
      row.push((logits[i * T + t] = clipLogit(image, text, scale)));
    });
    if (T > 0) probabilities.set(softmax(row), i * T);
  });
  return { images: I, texts: T, cosine, logits, probabilities, scale };
}

/** Softmax of `logits` (max-subtracted, float64). */
export function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/**
 * One text embedding from several prompts of the same label (SPEC §7.2):
 * normalise(mean_j normalise(e_j)). Inputs are already unit length; a single prompt is returned
 * as is, so one template gives exactly transformers' logits.
 */
export function ensembleEmbedding(embeds: readonly Float32Array[]): Float32Array {
  if (embeds.length === 0) throw new Error('ensembleEmbedding needs at least one embedding');
  if (embeds.length === 1) return embeds[0]!;
  const mean = new Float64Array(embeds[0]!.length);
  for (const e of embeds) for (let j = 0; j < e.length; j++) mean[j]! += e[j]!;
  let norm = 0;
  for (const v of mean) norm += v * v;
  norm = Math.sqrt(norm);
  return Float32Array.from(mean, (v) => v / norm);
}

/**
 * Cosine similarity of every patch with a text: `patchEmbeds` is [cells, P] (unit rows, row-major
 * over the patch grid), `textEmbed` [P] (unit length). Returns [cells] on the same grid.
 */
export function patchSimilarity(patchEmbeds: Float32Array, textEmbed: Float32Array): Float32Array {
  const P = textEmbed.length;
  const cells = patchEmbeds.length / P;
  if (!Number.isInteger(cells)) throw new Error(`patch embeddings of length ${patchEmbeds.length} are not rows of ${P}`);
  return Float32Array.from({ length: cells }, (_, i) => dot(patchEmbeds, i * P, textEmbed));
}

/**
 * Per patch, the softmax over texts of `scale · cos(patch, text)` (SPEC §7.2's dense probability
 * map, with the target and its negatives as the texts). Returns one [cells] map per text.
 */
export function patchProbabilities(similarities: readonly Float32Array[], scale: number): Float32Array[] {
  if (similarities.length === 0) return [];
  const cells = similarities[0]!.length;
  const out = similarities.map(() => new Float32Array(cells));
  const logits = new Array<number>(similarities.length);
  for (let i = 0; i < cells; i++) {
    for (let k = 0; k < similarities.length; k++) logits[k] = scale * similarities[k]![i]!;
    const p = softmax(logits);
    for (let k = 0; k < similarities.length; k++) out[k]![i] = p[k]!;
  }
  return out;
}
