/**
 * The method cards beside the inspector's tabs: the formula and the parameters used, as plain
 * text (the webview renders them; no HTML here, so nothing needs escaping). Parameters come in
 * as arguments so a card always states what was actually computed.
 */
export interface MethodCard {
  title: string;
  formulas: string[];
  /** Sentences stating conventions and parameters. */
  notes: string[];
}

export function clipCard(template: string): MethodCard {
  return {
    title: 'CLIP zero-shot and phrase heatmap',
    formulas: ['p(t | x) = softmax_t( exp(s) · cos(f(x), g(t)) )', 'h(i, j) = cos( f_MaskCLIP(x)[i, j], g(t) )'],
    notes: [
      `Prompt template "${template}": each label t is put where {} stands before the text tower embeds it.`,
      "Image and text embeddings unit length; exp(s) is the checkpoint's learned logit scale. Probabilities are a softmax over the labels listed, so they depend on the list.",
      'Heatmap: per patch, the cosine of the MaskCLIP patch embedding (the value path of the last block, projected like [CLS]) with the phrase embedding, coloured min…max of the map over the model input.',
    ],
  };
}

/** The image × text matrix of the CLIP tab (and the report). */
export function clipMatrixCard(template: string, scale: number): MethodCard {
  return {
    title: 'CLIP image–text similarity matrix',
    formulas: ['S(i, t) = 100 · cos(f(x_i), g(t))', 'p(t | x_i) = softmax_t( exp(s) · cos(f(x_i), g(t)) )'],
    notes: [
      `Cells show 100 · cosine (the "CLIP score" convention: a fixed 100, the same for every checkpoint). transformers' logits_per_image is exp(s) · cos with this checkpoint's learned exp(s) = ${scale.toPrecision(4)} (100 for OpenAI's trained CLIP, so the two agree there); each cell's tooltip gives it.`,
      `Probabilities: per row (image), the softmax of logits_per_image over the texts listed, as zero-shot classification; they depend on the list. Texts are the labels through the template "${template}".`,
    ],
  };
}

/** The text tower's attention in the CLIP tab. */
export function clipTextAttentionCard(layer: number, head: number | 'mean', pooledAt: number): MethodCard {
  return {
    title: 'CLIP text-tower attention',
    formulas: [head === 'mean' ? 'A(q, k) = (1/H) Σ_h A_h(q, k)' : `A(q, k) = A_${head}(q, k)`],
    notes: [
      `Layer ${layer}, ${head === 'mean' ? 'mean over heads' : `head ${head}`}: row q is query token q's softmax over the keys. The text tower is causal, so a token attends only to itself and the tokens before it (the upper triangle is 0).`,
      `Bars: row ${pooledAt}, the end-of-text token, where CLIP pools the text embedding (the first end-of-text id); the text has no padding here. Matrix coloured 0 … max of the matrix (inferno).`,
    ],
  };
}

export interface ConvolutionCardParams {
  kernelName: string;
  operation: 'convolution' | 'correlation';
  border: string;
  channels: 'rgb' | 'luminance';
  stacked: string | undefined;
  mapping: string;
  width: number;
  height: number;
}

export function convolutionCard(p: ConvolutionCardParams): MethodCard {
  return {
    title: 'Convolution',
    formulas: p.operation === 'convolution'
      ? ['g(x, y) = Σ_v Σ_u k(u, v) · f(x − u, y − v)   (true convolution: kernel flipped)']
      : ['g(x, y) = Σ_v Σ_u k(u, v) · f(x + u, y + v)   (cross-correlation: kernel as written, as deep-learning conv layers)'],
    notes: [
      `Kernel: ${p.kernelName}${p.stacked ? `, then ${p.stacked} (stacked: the second applied to the first's output)` : ''}.`,
      `Border: ${p.border} (${BORDER_NOTES[p.border] ?? p.border}).`,
      p.channels === 'rgb' ? 'Applied to each RGB channel separately.' : 'Applied to luminance Y = 0.299 R + 0.587 G + 0.114 B (BT.601).',
      `Image: ${p.width}×${p.height} (scaled down for speed). Display: ${MAPPING_NOTES[p.mapping] ?? p.mapping}.`,
      'Convolution and cross-correlation agree for kernels symmetric under a 180° turn (box, Gaussian, Laplacian, sharpen); for the others (Sobel, emboss) the output is mirrored in sign or direction.',
    ],
  };
}

const BORDER_NOTES: Record<string, string> = {
  zero: 'pixels outside the image are 0',
  replicate: 'pixels outside repeat the nearest edge pixel',
  reflect: 'mirrored about the edge pixel without repeating it: … c b | a b c | b a …',
};

const MAPPING_NOTES: Record<string, string> = {
  clamp: 'value clamped to 0…255',
  signed: '0 at mid-grey, ±max|g| at white/black',
  magnitude: '0 black … the maximum white',
};

export function learnedFiltersCard(patchSize: number, tensor: string, hasBias: boolean): MethodCard {
  return {
    title: 'Learned patch-embedding filters',
    formulas: ['r_d(i, j) = b_d + Σ_c Σ_v Σ_u w_d[c, v, u] · x[c, i·p + v, j·p + u]'],
    notes: [
      `The patch embedding is a convolution with kernel = stride = p = ${patchSize} (${tensor}); a cross-correlation, as every deep-learning conv: no kernel flip${hasBias ? '' : '; this model has no bias'}.`,
      'x: the normalised model input. Energy = mean of r_d² over the patches; channels sorted by it, highest first.',
      "Tiles: each filter's own min → black, max → white (tiles are not comparable in magnitude). Response maps coloured min…max per map.",
    ],
  };
}

/** ViT paper Fig. 7 centre. */
export function positionSimilarityCard(): MethodCard {
  return {
    title: 'Position-embedding similarity (ViT paper, Fig. 7 centre)',
    formulas: ['s(i, j) = ⟨e_i, e_j⟩ / (‖e_i‖ ‖e_j‖)'],
    notes: [
      'e_i: the learned position embedding of patch i (prefix tokens left out). Tile (r, c) shows s((r, c), ·) over the whole grid, coloured −1 … 1 (viridis).',
      'For a grid other than the trained one, the table is first resized as the model resizes it: PyTorch bicubic (A = −0.75, align_corners=False) to the target size.',
    ],
  };
}

/** ViT paper Fig. 7 left. */
export function filterPcaCard(filterCount: number, dims: number): MethodCard {
  return {
    title: 'Principal components of the patch-embedding filters (ViT paper, Fig. 7 left)',
    formulas: ['C = (W − w̄)ᵀ(W − w̄) / (D − 1),  C v_k = λ_k v_k'],
    notes: [
      `W: the ${filterCount} filters as rows of ${dims} values ([3, p, p] flattened), centred.`,
      'Components by decreasing λ, each signed so its largest-magnitude entry is positive (as sklearn), shown as RGB tiles normalised min…max per component.',
    ],
  };
}

/** ViT paper Fig. 7 right, averaged over `images` images (wording shared with `vision-inspector report`). */
export function attentionDistanceCard(patchSize: number, images = 1): MethodCard {
  return {
    title: 'Mean attention distance (ViT paper, Fig. 7 right)',
    formulas: [`d̄(ℓ, h) = ${images > 1 ? 'mean_images ' : ''}mean_q Σ_k a(q, k) · ‖c_q − c_k‖ / Σ_k a(q, k)`],
    notes: [
      'CLS convention: q and k run over the patches only. [CLS] (and DeiT\'s distillation token) is excluded as a query and as a key, as in common reimplementations (keras-io), and each query\'s patch attention is renormalised to sum 1, so a head that puts its mass on [CLS] is not counted as short-range.',
      `Distances between patch centres in model-input pixels (patch distance × patch size ${patchSize}). ${images > 1 ? `Averaged over ${images} images, each counting equally` : 'This image only'}; the paper averages over 128 images.`,
      'Dots: the heads of each layer; line: their mean.',
    ],
  };
}

export function searchCard(): MethodCard {
  return {
    title: 'V* guided visual search (CLIP as the search model)',
    formulas: ['score(child) = Σ_{a ∈ node and its ancestors} 4^−level(a) · mass_a(child) / mass_a(a)'],
    notes: [
      'Best-first search over sub-images: each node is split 2×2 (1×4 or 4×1 when elongated); children are scored by the target-cue heatmap mass they hold, weighted by level, and queued; the best is expanded next.',
      'Target cue: per cell of the letterboxed crop, the softmax of κ·cos over the target and negative prompts. Found when a detection crop scores > 0.7; nodes whose shorter side ≤ max(⌈min(W, H)/4⌉, 224) px are not split; at the end the best detection ≥ 0.5 is the fallback.',
      'The 0.7 / 0.5 confidences were calibrated on synthetic scenes with a stand-in for CLIP, not with real CLIP weights; the cue thresholds are SPEC §7 guesses (README, "V* search thresholds").',
      'With a question and a Fuyu model selected, Fuyu names the objects to search for (the noun-phrase list is the fallback) and answers on the found crops.',
    ],
  };
}

export interface FuyuCardParams {
  weights: string;
  maxNewTokens: number;
  patchRows: number;
  patchCols: number;
  /** The layer drawn; undefined: one map per layer, of the beginning-of-answer token (the report). */
  layer?: number;
}

/** Fuyu's input sequence and decoding (the report's answer section). */
export function fuyuSequenceCard(p: FuyuCardParams): MethodCard {
  return {
    title: 'Fuyu: token layout and greedy answer',
    formulas: [],
    notes: [
      `FuyuProcessor's sequence: each row of image-patch tokens (|SPEAKER| placeholders replaced by the linear projection of the patch) ends with an image-newline token (|NEWLINE|); then <s>, the prompt tokens and <0x04> (beginning of answer). This image: ${p.patchRows}×${p.patchCols} patches, ${p.patchRows} image-newline tokens.`,
      `Greedy decoding (argmax at each step, KV cache), at most ${p.maxNewTokens} new tokens, stopping at the end-of-text token; weights ${p.weights}.`,
    ],
  };
}

/** Fuyu's attention from a text token to the image patches (the report's attention section). */
export function fuyuAttentionCard(p: FuyuCardParams): MethodCard {
  const which = p.layer === undefined ? 'each layer' : `layer ${p.layer}`;
  const token = p.layer === undefined
    ? 't is the beginning-of-answer token (the last prompt position), whose output chose the first answer token.'
    : "t is the chosen token's own position: a prompt token, or a generated token once fed back; the last generated token is never fed back, so it has no row. The beginning-of-answer row is what chose the first answer token.";
  return {
    title: 'Fuyu: attention of a text token to the image',
    formulas: ['a_ℓ(t, p) = (1/H) Σ_h A_ℓ[h, t, p]'],
    notes: [
      `Map: row t of ${which}'s attention, mean over the H heads, at the image-patch positions p only (the row's mass on text and newline tokens is not shown), coloured min…max of the map. ${token}`,
    ],
  };
}

/** The Fuyu view: FuyuProcessor's sequence, greedy decoding, and the image attention drawn (the report splits it in two). */
export function fuyuCard(p: FuyuCardParams): MethodCard {
  const sequence = fuyuSequenceCard(p);
  const attention = fuyuAttentionCard(p);
  return {
    title: 'Fuyu: token layout, greedy answer, attention to the image',
    formulas: attention.formulas,
    notes: [...sequence.notes, ...attention.notes],
  };
}
