/**
 * Every message between the extension host and its webviews, one string-tagged union per
 * direction and view, plus the validators each side runs on arrival (a webview is a separate
 * origin: nothing it sends is trusted to be well formed, and vice versa).
 *
 * Tensors cross as ArrayBuffers, which VS Code (engines ≥ 1.57) sends as binary and recreates in
 * the webview rather than serialising them to JSON. Shapes are documented per message; all are
 * row-major float32.
 *
 * Results carry a `modelKind` so that CLIP and Fuyu views can join as tabs of the same inspector.
 * No `vscode`, no DOM here: both sides compile this file.
 */
import type { InputPlacement, Rect, TokenGrid } from './patch-geometry.js';

export type { InputPlacement, Rect, TokenGrid };

export const MODEL_KINDS = ['vit', 'clip', 'fuyu'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

export const HEAD_FUSIONS = ['mean', 'max', 'min'] as const;
export type HeadFusionName = (typeof HEAD_FUSIONS)[number];

/** Attention rollout options (see src/core/analysis/rollout.ts). */
export interface RolloutSettings {
  headFusion: HeadFusionName;
  /** In [0, 1). */
  discardRatio: number;
}

/** Which map the inspector shows. `head: 'mean'` is the mean over heads. */
export interface Selection {
  layer: number;
  head: number | 'mean';
  /** The token whose attention row is drawn: 0 is [CLS], patches follow the prefix tokens. */
  token: number;
  mode: 'attention' | 'rollout';
}

export interface ImageInfo {
  /** File name, for titles. */
  name: string;
  /** Full path, for tooltips and messages. */
  path: string;
  /**
   * The image file's bytes (PNG for formats browsers cannot show). The webview shows them through
   * a blob: URL, so it needs no access to the image's folder and its canvas stays exportable.
   */
  bytes: ArrayBuffer;
  mime: string;
  /** After EXIF orientation: what the user sees and the model got. */
  width: number;
  height: number;
}

export interface ModelInfo {
  kind: ModelKind;
  /** Folder name (or hub id). */
  name: string;
  path: string;
  /** config.json model_type (vit, deit, …). */
  modelType: string;
  layers: number;
  heads: number;
}

export interface LabelScore {
  index: number;
  label: string;
  logit: number;
  probability: number;
}

export interface Timings {
  /** From the request to the result, including model load and preprocessing. */
  totalMs: number;
  /** Building the graph and creating the session (0 when the worker already had it, or cached). */
  loadMs: number;
  /** The forward pass in the worker (0 when served from the result cache). */
  inferenceMs: number;
  cached: boolean;
}

/** A ViT (or DeiT) result as the inspector draws it. */
export interface ViTInspection {
  modelKind: 'vit';
  /** Identifies the cached result on the host; echoed by requests for more data. */
  resultId: string;
  image: ImageInfo;
  model: ModelInfo;
  grid: TokenGrid;
  placement: InputPlacement;
  /** Top-5 (or fewer); empty when the checkpoint has no classification head. */
  labels: LabelScore[];
  /** [layers, heads, tokens]: every layer's and head's attention row of token 0 ([CLS]). */
  clsRows: ArrayBuffer;
  timings: Timings;
}

/**
 * A CLIP result: the vision tower's attention as a ViT's (so the attention tab is the same view),
 * no classifier labels; zero-shot labels, phrase heatmaps and V* search are asked for per tab.
 */
export interface CLIPInspection extends Omit<ViTInspection, 'modelKind'> {
  modelKind: 'clip';
  /** The checkpoint has a text tower (zero-shot, heatmaps and search need one). */
  hasText: boolean;
}

/** One union member per model kind with a ViT-style attention tab; Fuyu has its own view (FuyuInspection). */
export type Inspection = ViTInspection | CLIPInspection;

/** Fuyu's weight precisions (quantize.ts's WeightPrecision, which the host checks this against). */
export const FUYU_WEIGHTS = ['fp32', 'int8', 'int4'] as const;
export type FuyuWeights = (typeof FUYU_WEIGHTS)[number];

/** estimateFuyuMemory() for one weight precision, in bytes. */
export interface FuyuMemoryEstimate {
  weights: FuyuWeights;
  weightBytes: number;
  kvCacheBytes: number;
  activationBytes: number;
  totalBytes: number;
  /** The sizes in words (formatted on the host, as the CLI prints them). */
  summary: string;
}

/**
 * A Fuyu model and an image, before anything is generated: the image's patch grid and what
 * each weight precision would hold in memory. Generation runs on request (startFuyuGeneration).
 */
export interface FuyuInspection {
  modelKind: 'fuyu';
  resultId: string;
  image: ImageInfo;
  model: ModelInfo;
  /** The processor's patch grid over the resized image (x, y in resized pixels = image pixels × scaleFactor). */
  patchRows: number;
  patchCols: number;
  patchWidth: number;
  patchHeight: number;
  scaleFactor: number;
  parameterCount: number;
  /** max_position_embeddings: image, prompt and answer tokens together. */
  contextLength: number;
  defaultWeights: FuyuWeights;
  /** Estimates for `estimateTokens` positions (the image's tokens plus room for a short prompt and answer). */
  estimateTokens: number;
  memory: FuyuMemoryEstimate[];
  timings: Timings;
}

/** A text-part token of Fuyu's sequence, as the tokenizer spells it. */
export interface FuyuTextToken {
  kind: 'bos' | 'prompt' | 'beginning-of-answer' | 'generated';
  piece: string;
}

/** Longest prompt the Fuyu view sends, and most tokens it asks for. */
export const MAX_FUYU_PROMPT_CHARS = 2000;
export const MAX_FUYU_NEW_TOKENS = 256;

/** A zero-shot score, labels in the order asked. */
export interface ZeroShotScore {
  label: string;
  logit: number;
  probability: number;
}

/** The learned patch-embedding convolution of the loaded model, and its responses on this image. */
export interface PatchFilterSet {
  /** Stored tensor name, for the method card. */
  tensor: string;
  hasBias: boolean;
  patchSize: number;
  /** Output channels D. */
  count: number;
  /** uint8 [count, p, p, 3]: each filter as an RGB tile, min…max per filter. */
  tiles: ArrayBuffer;
  rows: number;
  cols: number;
  /** float32 [count, rows·cols]: map d, patch r·cols + c. */
  responses: ArrayBuffer;
  /** Channels by the energy (mean square) of their response map, highest first, with that energy. */
  ranking: { channel: number; energy: number }[];
}

/** An 8-bit RGB picture the host composed (the report's figure helpers), drawn as is. */
export interface RgbFigure {
  width: number;
  height: number;
  /** uint8 [height, width, 3]. */
  data: ArrayBuffer;
}

/** The ViT paper's Fig. 7 views of the loaded model. */
export interface PaperFigures {
  /** The position-embedding grid the model was trained with. */
  trainedRows: number;
  trainedCols: number;
  /** The grid `positions` is drawn for (the table resized when it differs from the trained one). */
  rows: number;
  cols: number;
  /** Grid of grids: tile (r, c) is cos(e_(r,c), ·) over the rows×cols grid. */
  positions: RgbFigure;
  /** The first principal components of the patch-embedding filters, as RGB tiles in a mosaic. */
  components: RgbFigure;
  componentCount: number;
  /** Fraction of the filters' variance each shown component explains. */
  explainedRatio: number[];
  filterCount: number;
  /** Values per filter, 3·p·p. */
  filterDims: number;
  /** Mean attention distance of this image (ViT paper Fig. 7 right). */
  distance: AttentionDistanceFigure;
}

/** Mean attention distance per head and layer (on the current image, or averaged over a chosen set), as the report plots it. */
export interface AttentionDistanceFigure {
  /** How many images were averaged. */
  images: number;
  /** The report's plot (attentionDistancePlot), an SVG document drawn from the numbers below. */
  svg: string;
  layers: number;
  heads: number;
  /** [layers, heads] in model-input pixels. */
  values: number[];
  patchSize: number;
  /** The largest distance between two patch centres of this grid. */
  maxDistance: number;
}

/** What a set of images beside the inspected one is chosen for. */
export const IMAGE_SET_PURPOSES = ['clipMatrix', 'attentionDistance'] as const;
export type ImageSetPurpose = (typeof IMAGE_SET_PURPOSES)[number];
export const isImageSetPurpose = (v: unknown): v is ImageSetPurpose => typeof v === 'string' && (IMAGE_SET_PURPOSES as readonly string[]).includes(v);
/** Most images in a chosen set (the picker's files, or the images in the chosen folders). */
export const MAX_IMAGE_SET = 256;
/** Most images the CLIP matrix compares the inspected one with. */
export const MAX_MATRIX_IMAGES = 32;
/** Longest side of a chosen image's thumbnail. */
export const THUMBNAIL_SIDE = 48;

/** Images the user chose on the host (their paths stay there; the webview names the set by `setId`). */
export interface ImageSetInfo {
  setId: number;
  purpose: ImageSetPurpose;
  images: { name: string; path: string; thumbnail: RgbFigure }[];
  /** Files left out: not readable as images, or past MAX_IMAGE_SET. */
  skipped: number;
}

/**
 * The CLIP tab's image × text matrix: rows the inspected image then the set's images, columns the
 * labels; each [rows·labels] row-major (see SimilarityMatrix in src/core/models/clip-heatmap.ts).
 */
export interface ClipMatrixData {
  setId: number;
  labels: string[];
  template: string;
  rows: number;
  cosine: number[];
  logits: number[];
  probabilities: number[];
  /** exp(logit_scale) of the checkpoint. */
  scale: number;
}

/** The text tower's attention on one prompt (CLIPRunner.textAttention). */
export interface TextAttentionData {
  text: string;
  /** The text after the template. */
  prompt: string;
  tokens: string[];
  truncated: boolean;
  layers: number;
  heads: number;
  /** float32 [layers, heads, T, T] with T = tokens.length; row = query token. */
  attentions: ArrayBuffer;
  /** Where the text embedding is pooled (the end-of-text token). */
  pooledAt: number;
}

/** Longest SVG plot the host sends (the plot of 48 layers × 32 heads is about 200 kB). */
const MAX_PLOT_CHARS = 1024 * 1024;

/** Largest grid side the inspector asks position similarities for: (side²)² cosines, and a picture of about (side · 100 px)². */
export const MAX_PAPER_GRID = 32;

/**
 * One V* search, as src/core/search/vstar.ts records it (a structural subset: what the replay
 * draws). Boxes are in image pixels; heatmaps are piecewise constant over xs × ys edges.
 */
export interface ReplayBox {
  x: number;
  y: number;
  width: number;
  height: number;
}
export interface ReplayHeatmap {
  rows: number;
  cols: number;
  xs: number[];
  ys: number[];
  values: number[];
}
export type ReplayStep =
  | {
      kind: 'node';
      index: number;
      node: { id: number; box: ReplayBox; level: number };
      decision: string;
      why: string;
      detection: { box: ReplayBox; score: number } | null;
      cue: ReplayHeatmap;
      scoring: ReplayHeatmap | null;
      children: { id: number; box: ReplayBox; score: number }[];
      queue: { id: number; box: ReplayBox; score: number }[];
    }
  | { kind: 'stop'; index: number; reason: string; why: string };
/** One request to the answering model (src/core/search/answer.ts ModelExchange). */
export interface AnswerExchange {
  prompt: string;
  /** The part of the image the model saw, in image pixels. */
  imageBox: ReplayBox;
  text: string;
}
/** The question's side of a search: where the targets came from and the answering model's answer. */
export interface SearchAnswer {
  question: string;
  /** The answering model (a Fuyu folder's name), or null when none is available. */
  model: string | null;
  /** Why there is no model answer, or which targets were used and why. */
  note: string;
  targetsFrom: 'model' | 'list';
  proposal: (AnswerExchange & { targets: string[] }) | null;
  answer: AnswerExchange | null;
}
export interface SearchReplay {
  target: string;
  status: 'found' | 'fallback' | 'not-found';
  detection: { box: ReplayBox; score: number } | null;
  instances: { box: ReplayBox; score: number }[];
  steps: ReplayStep[];
}

// ---------------------------------------------------------------------------------------------
// Host → inspector (panel or custom editor)

export type HostToInspectorMessage =
  | { type: 'status'; phase: 'loading-model' | 'preprocessing' | 'running'; message: string; imageName: string }
  | { type: 'inspection'; inspection: Inspection }
  | { type: 'error'; message: string; imageName: string; actions: ErrorAction[] }
  /** data: [heads, tokens, tokens] of `layer`. */
  | { type: 'layerAttention'; requestId: number; resultId: string; layer: number; data: ArrayBuffer }
  /** data: [layers, heads, tokens], the attention rows of `token` in every layer and head. */
  | { type: 'tokenRows'; requestId: number; resultId: string; token: number; data: ArrayBuffer }
  /** data: [layers, tokens, tokens], each layer's rollout factor (rollout.ts `rolloutFactor`). */
  | { type: 'rolloutFactors'; requestId: number; resultId: string; settings: RolloutSettings; data: ArrayBuffer }
  | { type: 'requestFailed'; requestId: number; message: string }
  /** The Attention Explorer picked a layer, head or token. */
  | { type: 'applySelection'; selection: Partial<Selection> }
  | { type: 'zeroShot'; requestId: number; resultId: string; scores: ZeroShotScore[] }
  /** similarity: float32 [rows·cols] of the result's grid, cos(patch, phrase). */
  | { type: 'textHeatmap'; requestId: number; resultId: string; phrase: string; similarity: ArrayBuffer }
  | { type: 'patchFilters'; requestId: number; resultId: string; filters: PatchFilterSet }
  | { type: 'paperFigures'; requestId: number; resultId: string; figures: PaperFigures }
  | { type: 'searchProgress'; searchId: number; target: string; steps: number; message: string }
  | { type: 'searchDone'; searchId: number; searches: SearchReplay[]; stats: { runs: number; crops: number; ms: number }; answer: SearchAnswer | null }
  | { type: 'searchFailed'; searchId: number; message: string; cancelled: boolean }
  | { type: 'fuyuInspection'; inspection: FuyuInspection }
  /** The text part of the sequence (after the image block) as the model got it, and the weights it runs with. */
  | { type: 'fuyuPrompt'; generationId: number; tokens: FuyuTextToken[]; sequenceLength: number; weights: FuyuWeights }
  | { type: 'fuyuProgress'; generationId: number; message: string }
  /** One generated token: its piece, and the answer decoded so far. */
  | { type: 'fuyuToken'; generationId: number; index: number; piece: string; text: string }
  /**
   * attention: float32 [layers, rows, patchRows·patchCols], mean over heads. Rows: the text tokens
   * of fuyuPrompt (positions textStart…), then the generated tokens that were fed back (all but the last).
   */
  | { type: 'fuyuDone'; generationId: number; text: string; stopped: 'stop-token' | 'max-new-tokens'; layers: number; rows: number; attention: ArrayBuffer; ms: number }
  | { type: 'fuyuFailed'; generationId: number; message: string; cancelled: boolean }
  /** The user chose images (in the picker, or through the visionInspector.chooseImages command). */
  | { type: 'imageSet'; resultId: string; set: ImageSetInfo }
  | { type: 'clipMatrix'; requestId: number; resultId: string; matrix: ClipMatrixData }
  | { type: 'textAttention'; requestId: number; resultId: string; attention: TextAttentionData }
  | { type: 'distanceProgress'; runId: number; done: number; total: number; message: string }
  | { type: 'distanceDone'; runId: number; distance: AttentionDistanceFigure }
  | { type: 'distanceFailed'; runId: number; message: string; cancelled: boolean };

/** Buttons the inspector shows; `cancel` stops the run in progress. */
export type ErrorAction = 'retry' | 'selectModel' | 'showLog' | 'manageTrust' | 'cancel';

// Inspector → host

export type InspectorToHostMessage =
  | { type: 'ready' }
  | { type: 'requestLayerAttention'; requestId: number; resultId: string; layer: number }
  | { type: 'requestTokenRows'; requestId: number; resultId: string; token: number }
  | { type: 'requestRollout'; requestId: number; resultId: string; settings: RolloutSettings }
  /** The pinned selection changed (not sent while merely hovering). */
  | { type: 'selectionChanged'; resultId: string; selection: Selection }
  | { type: 'exportPng'; suggestedName: string; base64: string }
  | { type: 'exportJson'; suggestedName: string; json: string }
  | { type: 'action'; action: ErrorAction }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  /** CLIP: zero-shot over `labels`, each put into `template` ("{}" is the label). */
  | { type: 'requestZeroShot'; requestId: number; resultId: string; labels: string[]; template: string }
  | { type: 'requestTextHeatmap'; requestId: number; resultId: string; phrase: string; template: string }
  | { type: 'requestPatchFilters'; requestId: number; resultId: string }
  /** The ViT-paper figures, position similarities on a rows×cols grid. */
  | { type: 'requestPaperFigures'; requestId: number; resultId: string; rows: number; cols: number }
  /** CLIP: V* search for each target on the result's image; `searchId` names its progress and result. */
  /** With a question: the answering model (a Fuyu model, if one is selected) may propose the targets (`askTargets`; `targets` is the fallback) and answers. */
  | { type: 'startSearch'; searchId: number; resultId: string; targets: string[]; question?: string; askTargets?: boolean }
  | { type: 'cancelSearch'; searchId: number }
  /** Fuyu: greedy generation, streamed back as fuyuPrompt, fuyuProgress*, fuyuToken*, then fuyuDone or fuyuFailed. */
  | { type: 'startFuyuGeneration'; generationId: number; resultId: string; prompt: string; maxNewTokens: number; weights: FuyuWeights }
  | { type: 'cancelFuyuGeneration'; generationId: number }
  /** Opens the host's file picker for images beside the inspected one; answered by imageSet (nothing if cancelled). */
  | { type: 'chooseImages'; resultId: string; purpose: ImageSetPurpose }
  /** CLIP: the inspected image and the set's images against `labels`, each put into `template`. */
  | { type: 'requestClipMatrix'; requestId: number; resultId: string; setId: number; labels: string[]; template: string }
  /** CLIP: the text tower's attention on `text` put into `template`. */
  | { type: 'requestTextAttention'; requestId: number; resultId: string; text: string; template: string }
  /** Mean attention distance over a chosen set; `runId` names its progress and result. */
  | { type: 'startDistanceOverImages'; runId: number; resultId: string; setId: number }
  | { type: 'cancelDistanceOverImages'; runId: number };

// ---------------------------------------------------------------------------------------------
// Host → Attention Explorer (sidebar WebviewView)

export type HostToExplorerMessage =
  | { type: 'empty'; message: string }
  | {
      type: 'explorerState';
      resultId: string;
      modelKind: ModelKind;
      imageName: string;
      modelName: string;
      grid: TokenGrid;
      layers: number;
      heads: number;
      selection: Selection;
      /** [layers, heads, tokens]: the attention rows of `selection.token`. */
      rows: ArrayBuffer;
    };

export type ExplorerToHostMessage =
  | { type: 'ready' }
  | { type: 'select'; resultId: string; selection: Partial<Selection> };

// ---------------------------------------------------------------------------------------------
// Validation. Each parser returns the message when it is well formed, else undefined.

type Fields = Record<string, unknown>;

const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isBuffer = (v: unknown): v is ArrayBuffer => v instanceof ArrayBuffer;
const isOneOf = <T extends string>(list: readonly T[], v: unknown): v is T => typeof v === 'string' && (list as readonly string[]).includes(v);

/** Texts the webview may send: a handful of short labels, not a corpus. */
const MAX_TEXTS = 64;
/** Longest label, template, phrase or search target the host takes. */
export const MAX_TEXT_CHARS = 300;
const isTextList = (v: unknown): v is string[] =>
  Array.isArray(v) && v.length > 0 && v.length <= MAX_TEXTS && v.every((t) => isString(t) && t.trim().length > 0 && t.length <= MAX_TEXT_CHARS);
const isTemplate = (v: unknown): v is string => isString(v) && v.length <= MAX_TEXT_CHARS && v.includes('{}');

const ERROR_ACTIONS: readonly ErrorAction[] = ['retry', 'selectModel', 'showLog', 'manageTrust', 'cancel'];
/** Large enough for any export we make (a PNG of a map, a few thousand numbers), small enough to refuse junk. */
const MAX_EXPORT_CHARS = 64 * 1024 * 1024;

export function isRolloutSettings(v: unknown): v is RolloutSettings {
  return isObject(v) && isOneOf(HEAD_FUSIONS, v.headFusion) && isFiniteNumber(v.discardRatio) && v.discardRatio >= 0 && v.discardRatio < 1;
}

export function isSelection(v: unknown): v is Selection {
  return (
    isObject(v) &&
    isIndex(v.layer) &&
    (isIndex(v.head) || v.head === 'mean') &&
    isIndex(v.token) &&
    (v.mode === 'attention' || v.mode === 'rollout')
  );
}

/** A Partial<Selection> whose present fields are valid. */
export function isPartialSelection(v: unknown): v is Partial<Selection> {
  return (
    isObject(v) &&
    (v.layer === undefined || isIndex(v.layer)) &&
    (v.head === undefined || isIndex(v.head) || v.head === 'mean') &&
    (v.token === undefined || isIndex(v.token)) &&
    (v.mode === undefined || v.mode === 'attention' || v.mode === 'rollout')
  );
}

function isTokenGrid(v: unknown): v is TokenGrid {
  return (
    isObject(v) &&
    ['inputWidth', 'inputHeight', 'patchSize', 'rows', 'cols', 'prefixTokens', 'tokens'].every((k) => isIndex(v[k])) &&
    (v.tokens as number) === (v.prefixTokens as number) + (v.rows as number) * (v.cols as number)
  );
}

function isRect(v: unknown): v is Rect {
  return isObject(v) && ['x', 'y', 'width', 'height'].every((k) => isFiniteNumber(v[k]));
}

export function parseInspectorToHost(v: unknown): InspectorToHostMessage | undefined {
  if (!isObject(v)) return undefined;
  switch (v.type) {
    case 'ready':
      return { type: 'ready' };
    case 'requestLayerAttention':
      return isIndex(v.requestId) && isString(v.resultId) && isIndex(v.layer) ? (v as InspectorToHostMessage) : undefined;
    case 'requestTokenRows':
      return isIndex(v.requestId) && isString(v.resultId) && isIndex(v.token) ? (v as InspectorToHostMessage) : undefined;
    case 'requestRollout':
      return isIndex(v.requestId) && isString(v.resultId) && isRolloutSettings(v.settings) ? (v as InspectorToHostMessage) : undefined;
    case 'selectionChanged':
      return isString(v.resultId) && isSelection(v.selection) ? (v as InspectorToHostMessage) : undefined;
    case 'exportPng':
      return isSafeFileName(v.suggestedName) && isString(v.base64) && v.base64.length < MAX_EXPORT_CHARS && /^[A-Za-z0-9+/]*={0,2}$/.test(v.base64)
        ? (v as InspectorToHostMessage)
        : undefined;
    case 'exportJson':
      return isSafeFileName(v.suggestedName) && isString(v.json) && v.json.length < MAX_EXPORT_CHARS ? (v as InspectorToHostMessage) : undefined;
    case 'action':
      return isOneOf(ERROR_ACTIONS, v.action) ? (v as InspectorToHostMessage) : undefined;
    case 'log':
      return isOneOf(['info', 'warn', 'error'] as const, v.level) && isString(v.message) ? { type: 'log', level: v.level, message: v.message.slice(0, 4000) } : undefined;
    case 'requestZeroShot':
      return isIndex(v.requestId) && isString(v.resultId) && isTextList(v.labels) && isTemplate(v.template) ? (v as InspectorToHostMessage) : undefined;
    case 'requestTextHeatmap':
      return isIndex(v.requestId) && isString(v.resultId) && isTextList([v.phrase]) && isTemplate(v.template) ? (v as InspectorToHostMessage) : undefined;
    case 'requestPatchFilters':
      return isIndex(v.requestId) && isString(v.resultId) ? (v as InspectorToHostMessage) : undefined;
    case 'requestPaperFigures':
      return isIndex(v.requestId) && isString(v.resultId) && isGridSide(v.rows) && isGridSide(v.cols) ? (v as InspectorToHostMessage) : undefined;
    case 'startSearch':
      return isIndex(v.searchId) && isString(v.resultId) && isTextList(v.targets) && v.targets.length <= 8 &&
        (v.question === undefined || (isString(v.question) && v.question.length <= MAX_FUYU_PROMPT_CHARS)) &&
        (v.askTargets === undefined || typeof v.askTargets === 'boolean')
        ? (v as InspectorToHostMessage)
        : undefined;
    case 'cancelSearch':
      return isIndex(v.searchId) ? (v as InspectorToHostMessage) : undefined;
    case 'startFuyuGeneration':
      return isIndex(v.generationId) && isString(v.resultId) && isString(v.prompt) && v.prompt.trim().length > 0 && v.prompt.length <= MAX_FUYU_PROMPT_CHARS &&
        isIndex(v.maxNewTokens) && v.maxNewTokens >= 1 && v.maxNewTokens <= MAX_FUYU_NEW_TOKENS && isOneOf(FUYU_WEIGHTS, v.weights)
        ? (v as InspectorToHostMessage)
        : undefined;
    case 'cancelFuyuGeneration':
      return isIndex(v.generationId) ? (v as InspectorToHostMessage) : undefined;
    case 'chooseImages':
      return isString(v.resultId) && isImageSetPurpose(v.purpose) ? (v as InspectorToHostMessage) : undefined;
    case 'requestClipMatrix':
      return isIndex(v.requestId) && isString(v.resultId) && isIndex(v.setId) && isTextList(v.labels) && isTemplate(v.template) ? (v as InspectorToHostMessage) : undefined;
    case 'requestTextAttention':
      return isIndex(v.requestId) && isString(v.resultId) && isTextList([v.text]) && isTemplate(v.template) ? (v as InspectorToHostMessage) : undefined;
    case 'startDistanceOverImages':
      return isIndex(v.runId) && isString(v.resultId) && isIndex(v.setId) ? (v as InspectorToHostMessage) : undefined;
    case 'cancelDistanceOverImages':
      return isIndex(v.runId) ? (v as InspectorToHostMessage) : undefined;
    default:
      return undefined;
  }
}

export function parseExplorerToHost(v: unknown): ExplorerToHostMessage | undefined {
  if (!isObject(v)) return undefined;
  if (v.type === 'ready') return { type: 'ready' };
  if (v.type === 'select' && isString(v.resultId) && isPartialSelection(v.selection)) return v as ExplorerToHostMessage;
  return undefined;
}

/** The file name part only: a webview must not choose where the host writes. */
export function isSafeFileName(v: unknown): v is string {
  return isString(v) && v.length > 0 && v.length <= 200 && !/[\\/:*?"<>|\x00-\x1f]/.test(v) && v !== '.' && v !== '..';
}

/**
 * Checks a host message before the webview uses it, including that every buffer holds exactly
 * as many float32 values as its shape says (so the renderer can index without bounds checks).
 * `expect` gives the sizes of the current result, for the messages that carry tensors.
 */
export function parseHostToInspector(v: unknown, expect?: { layers: number; heads: number; tokens: number; cells?: number }): HostToInspectorMessage | undefined {
  if (!isObject(v)) return undefined;
  const floats = (buffer: unknown, count: number): boolean => isBuffer(buffer) && buffer.byteLength === count * 4;
  switch (v.type) {
    case 'status':
      return isOneOf(['loading-model', 'preprocessing', 'running'] as const, v.phase) && isString(v.message) && isString(v.imageName) ? (v as HostToInspectorMessage) : undefined;
    case 'inspection':
      return isInspection(v.inspection) ? (v as HostToInspectorMessage) : undefined;
    case 'error':
      return isString(v.message) && isString(v.imageName) && Array.isArray(v.actions) && v.actions.every((a) => isOneOf(ERROR_ACTIONS, a))
        ? (v as HostToInspectorMessage)
        : undefined;
    case 'layerAttention':
      return isIndex(v.requestId) && isString(v.resultId) && isIndex(v.layer) && (!expect || floats(v.data, expect.heads * expect.tokens * expect.tokens))
        ? (v as HostToInspectorMessage)
        : undefined;
    case 'tokenRows':
      return isIndex(v.requestId) && isString(v.resultId) && isIndex(v.token) && (!expect || floats(v.data, expect.layers * expect.heads * expect.tokens))
        ? (v as HostToInspectorMessage)
        : undefined;
    case 'rolloutFactors':
      return isIndex(v.requestId) && isString(v.resultId) && isRolloutSettings(v.settings) && (!expect || floats(v.data, expect.layers * expect.tokens * expect.tokens))
        ? (v as HostToInspectorMessage)
        : undefined;
    case 'requestFailed':
      return isIndex(v.requestId) && isString(v.message) ? (v as HostToInspectorMessage) : undefined;
    case 'applySelection':
      return isPartialSelection(v.selection) ? (v as HostToInspectorMessage) : undefined;
    case 'zeroShot':
      return isIndex(v.requestId) && isString(v.resultId) && Array.isArray(v.scores) &&
        v.scores.every((x) => isObject(x) && isString(x.label) && isFiniteNumber(x.logit) && isFiniteNumber(x.probability))
        ? (v as HostToInspectorMessage)
        : undefined;
    case 'textHeatmap':
      return isIndex(v.requestId) && isString(v.resultId) && isString(v.phrase) && isBuffer(v.similarity) && v.similarity.byteLength % 4 === 0 &&
        (expect?.cells === undefined || v.similarity.byteLength === expect.cells * 4)
        ? (v as HostToInspectorMessage)
        : undefined;
    case 'patchFilters':
      return isIndex(v.requestId) && isString(v.resultId) && isPatchFilterSet(v.filters) ? (v as HostToInspectorMessage) : undefined;
    case 'paperFigures':
      return isIndex(v.requestId) && isString(v.resultId) && isPaperFigures(v.figures) ? (v as HostToInspectorMessage) : undefined;
    case 'searchProgress':
      return isIndex(v.searchId) && isString(v.target) && isIndex(v.steps) && isString(v.message) ? (v as HostToInspectorMessage) : undefined;
    case 'searchDone':
      return isIndex(v.searchId) && Array.isArray(v.searches) && v.searches.every(isSearchReplay) && isObject(v.stats) && (v.answer === null || isSearchAnswer(v.answer))
        ? (v as HostToInspectorMessage)
        : undefined;
    case 'searchFailed':
      return isIndex(v.searchId) && isString(v.message) && typeof v.cancelled === 'boolean' ? (v as HostToInspectorMessage) : undefined;
    case 'fuyuInspection':
      return isFuyuInspection(v.inspection) ? (v as HostToInspectorMessage) : undefined;
    case 'fuyuPrompt':
      return isIndex(v.generationId) && Array.isArray(v.tokens) && v.tokens.every(isFuyuTextToken) && isIndex(v.sequenceLength) && isOneOf(FUYU_WEIGHTS, v.weights)
        ? (v as HostToInspectorMessage)
        : undefined;
    case 'fuyuProgress':
      return isIndex(v.generationId) && isString(v.message) ? (v as HostToInspectorMessage) : undefined;
    case 'fuyuToken':
      return isIndex(v.generationId) && isIndex(v.index) && isString(v.piece) && isString(v.text) ? (v as HostToInspectorMessage) : undefined;
    case 'fuyuDone':
      return isIndex(v.generationId) && isString(v.text) && isOneOf(['stop-token', 'max-new-tokens'] as const, v.stopped) && isIndex(v.layers) && isIndex(v.rows) &&
        isFiniteNumber(v.ms) && isBuffer(v.attention) && v.attention.byteLength % 4 === 0 &&
        (!expect?.cells || v.attention.byteLength === v.layers * v.rows * expect.cells * 4)
        ? (v as HostToInspectorMessage)
        : undefined;
    case 'fuyuFailed':
      return isIndex(v.generationId) && isString(v.message) && typeof v.cancelled === 'boolean' ? (v as HostToInspectorMessage) : undefined;
    case 'imageSet':
      return isString(v.resultId) && isImageSetInfo(v.set) ? (v as HostToInspectorMessage) : undefined;
    case 'clipMatrix':
      return isIndex(v.requestId) && isString(v.resultId) && isClipMatrixData(v.matrix) ? (v as HostToInspectorMessage) : undefined;
    case 'textAttention':
      return isIndex(v.requestId) && isString(v.resultId) && isTextAttentionData(v.attention) ? (v as HostToInspectorMessage) : undefined;
    case 'distanceProgress':
      return isIndex(v.runId) && isIndex(v.done) && isIndex(v.total) && v.done <= v.total && isString(v.message) ? (v as HostToInspectorMessage) : undefined;
    case 'distanceDone':
      return isIndex(v.runId) && isAttentionDistanceFigure(v.distance) ? (v as HostToInspectorMessage) : undefined;
    case 'distanceFailed':
      return isIndex(v.runId) && isString(v.message) && typeof v.cancelled === 'boolean' ? (v as HostToInspectorMessage) : undefined;
    default:
      return undefined;
  }
}

export function parseHostToExplorer(v: unknown): HostToExplorerMessage | undefined {
  if (!isObject(v)) return undefined;
  if (v.type === 'empty') return isString(v.message) ? (v as HostToExplorerMessage) : undefined;
  if (
    v.type === 'explorerState' &&
    isString(v.resultId) &&
    isOneOf(MODEL_KINDS, v.modelKind) &&
    isString(v.imageName) &&
    isString(v.modelName) &&
    isTokenGrid(v.grid) &&
    isIndex(v.layers) &&
    isIndex(v.heads) &&
    isSelection(v.selection) &&
    isBuffer(v.rows) &&
    v.rows.byteLength === v.layers * v.heads * v.grid.tokens * 4
  ) {
    return v as HostToExplorerMessage;
  }
  return undefined;
}

function isGridSide(v: unknown): v is number {
  return isIndex(v) && v >= 1 && v <= MAX_PAPER_GRID;
}

function isRgbFigure(v: unknown): v is RgbFigure {
  return isObject(v) && isIndex(v.width) && isIndex(v.height) && isBuffer(v.data) && v.data.byteLength === v.width * v.height * 3;
}

function isPaperFigures(v: unknown): v is PaperFigures {
  return (
    isObject(v) && isGridSide(v.trainedRows) && isGridSide(v.trainedCols) && isGridSide(v.rows) && isGridSide(v.cols) &&
    isRgbFigure(v.positions) && isRgbFigure(v.components) && isIndex(v.componentCount) && isIndex(v.filterCount) && isIndex(v.filterDims) &&
    Array.isArray(v.explainedRatio) && v.explainedRatio.length === v.componentCount && v.explainedRatio.every(isFiniteNumber) &&
    isAttentionDistanceFigure(v.distance)
  );
}

function isAttentionDistanceFigure(v: unknown): v is AttentionDistanceFigure {
  return (
    isObject(v) && isIndex(v.images) && v.images >= 1 && isString(v.svg) && v.svg.length <= MAX_PLOT_CHARS && v.svg.startsWith('<svg') && v.svg.endsWith('</svg>') &&
    isIndex(v.layers) && isIndex(v.heads) && Array.isArray(v.values) && v.values.length === v.layers * v.heads && v.values.every(isFiniteNumber) &&
    isIndex(v.patchSize) && isFiniteNumber(v.maxDistance)
  );
}

function isImageSetInfo(v: unknown): v is ImageSetInfo {
  return (
    isObject(v) && isIndex(v.setId) && isImageSetPurpose(v.purpose) && isIndex(v.skipped) &&
    Array.isArray(v.images) && v.images.length <= MAX_IMAGE_SET &&
    v.images.every((i) => isObject(i) && isString(i.name) && isString(i.path) && isRgbFigure(i.thumbnail) && i.thumbnail.width <= THUMBNAIL_SIDE && i.thumbnail.height <= THUMBNAIL_SIDE)
  );
}

function isClipMatrixData(v: unknown): v is ClipMatrixData {
  if (!isObject(v) || !isIndex(v.setId) || !isTextList(v.labels) || !isTemplate(v.template) || !isIndex(v.rows) || v.rows < 1 || v.rows > MAX_MATRIX_IMAGES + 1 || !isFiniteNumber(v.scale)) return false;
  const n = v.rows * v.labels.length;
  return [v.cosine, v.logits, v.probabilities].every((a) => Array.isArray(a) && a.length === n && a.every(isFiniteNumber));
}

function isTextAttentionData(v: unknown): v is TextAttentionData {
  if (!isObject(v) || !isString(v.text) || !isString(v.prompt) || typeof v.truncated !== 'boolean' || !isIndex(v.layers) || !isIndex(v.heads)) return false;
  const { tokens, attentions, pooledAt } = v;
  return (
    Array.isArray(tokens) && tokens.length > 0 && tokens.every(isString) && isIndex(pooledAt) && pooledAt < tokens.length &&
    isBuffer(attentions) && attentions.byteLength === v.layers * v.heads * tokens.length ** 2 * 4
  );
}

function isPatchFilterSet(v: unknown): v is PatchFilterSet {
  if (!isObject(v) || !isString(v.tensor) || typeof v.hasBias !== 'boolean') return false;
  const { patchSize: p, count, rows, cols, tiles, responses, ranking } = v;
  return (
    isIndex(p) && isIndex(count) && isIndex(rows) && isIndex(cols) &&
    isBuffer(tiles) && tiles.byteLength === count * p * p * 3 &&
    isBuffer(responses) && responses.byteLength === count * rows * cols * 4 &&
    Array.isArray(ranking) && ranking.length === count &&
    ranking.every((r) => isObject(r) && isIndex(r.channel) && r.channel < count && isFiniteNumber(r.energy))
  );
}

function isHeatmap(v: unknown): v is ReplayHeatmap {
  if (!isObject(v) || !isIndex(v.rows) || !isIndex(v.cols)) return false;
  const { rows, cols, xs, ys, values } = v;
  const numbers = (a: unknown, n: number): boolean => Array.isArray(a) && a.length === n && a.every(isFiniteNumber);
  return numbers(xs, cols + 1) && numbers(ys, rows + 1) && numbers(values, rows * cols);
}

const isScoredBox = (v: unknown): boolean => isObject(v) && isRect(v.box) && isFiniteNumber(v.score);

function isReplayStep(v: unknown): v is ReplayStep {
  if (!isObject(v) || !isIndex(v.index) || !isString(v.why)) return false;
  if (v.kind === 'stop') return isString(v.reason);
  return (
    v.kind === 'node' &&
    isObject(v.node) && isRect(v.node.box) && isIndex(v.node.level) &&
    isString(v.decision) &&
    (v.detection === null || isScoredBox(v.detection)) &&
    isHeatmap(v.cue) &&
    (v.scoring === null || isHeatmap(v.scoring)) &&
    Array.isArray(v.children) && v.children.every(isScoredBox) &&
    Array.isArray(v.queue) && v.queue.every(isScoredBox)
  );
}

function isAnswerExchange(v: unknown): v is AnswerExchange {
  return isObject(v) && isString(v.prompt) && isRect(v.imageBox) && isString(v.text);
}

function isSearchAnswer(v: unknown): v is SearchAnswer {
  return (
    isObject(v) && isString(v.question) && (v.model === null || isString(v.model)) && isString(v.note) &&
    isOneOf(['model', 'list'] as const, v.targetsFrom) &&
    (v.proposal === null || (isObject(v.proposal) && Array.isArray(v.proposal.targets) && v.proposal.targets.every(isString) && isAnswerExchange(v.proposal))) &&
    (v.answer === null || isAnswerExchange(v.answer))
  );
}

function isSearchReplay(v: unknown): v is SearchReplay {
  return (
    isObject(v) && isString(v.target) &&
    isOneOf(['found', 'fallback', 'not-found'] as const, v.status) &&
    (v.detection === null || isScoredBox(v.detection)) &&
    Array.isArray(v.instances) && v.instances.every(isScoredBox) &&
    Array.isArray(v.steps) && v.steps.every(isReplayStep)
  );
}

function isInspection(v: unknown): v is Inspection {
  if (!isObject(v) || !(v.modelKind === 'vit' || (v.modelKind === 'clip' && typeof v.hasText === 'boolean')) || !isString(v.resultId)) return false;
  const { image, model, grid, placement, labels, clsRows, timings } = v;
  return (
    isObject(image) &&
    isString(image.name) &&
    isBuffer(image.bytes) &&
    isString(image.mime) &&
    /^image\/[a-z+.-]+$/.test(image.mime) &&
    isIndex(image.width) &&
    isIndex(image.height) &&
    isObject(model) &&
    isOneOf(MODEL_KINDS, model.kind) &&
    isString(model.name) &&
    isIndex(model.layers) &&
    isIndex(model.heads) &&
    isTokenGrid(grid) &&
    isObject(placement) &&
    isFiniteNumber(placement.sourceWidth) &&
    isFiniteNumber(placement.sourceHeight) &&
    isRect(placement.sourceBox) &&
    Array.isArray(labels) &&
    labels.every((l) => isObject(l) && isString(l.label) && isFiniteNumber(l.probability)) &&
    isBuffer(clsRows) &&
    clsRows.byteLength === model.layers * model.heads * grid.tokens * 4 &&
    isObject(timings)
  );
}

function isFuyuTextToken(v: unknown): v is FuyuTextToken {
  return isObject(v) && isOneOf(['bos', 'prompt', 'beginning-of-answer', 'generated'] as const, v.kind) && isString(v.piece);
}

function isFuyuInspection(v: unknown): v is FuyuInspection {
  if (!isObject(v) || v.modelKind !== 'fuyu' || !isString(v.resultId)) return false;
  const { image, model, memory } = v;
  return (
    isObject(image) && isString(image.name) && isString(image.path) && isBuffer(image.bytes) && isString(image.mime) && /^image\/[a-z+.-]+$/.test(image.mime) &&
    isIndex(image.width) && isIndex(image.height) &&
    isObject(model) && model.kind === 'fuyu' && isString(model.name) && isIndex(model.layers) && isIndex(model.heads) &&
    ['patchRows', 'patchCols', 'patchWidth', 'patchHeight', 'parameterCount', 'contextLength', 'estimateTokens'].every((k) => isIndex(v[k]) && (v[k] as number) > 0) &&
    isFiniteNumber(v.scaleFactor) && v.scaleFactor > 0 &&
    isOneOf(FUYU_WEIGHTS, v.defaultWeights) &&
    Array.isArray(memory) && memory.every((m) => isObject(m) && isOneOf(FUYU_WEIGHTS, m.weights) && isString(m.summary) && ['weightBytes', 'kvCacheBytes', 'activationBytes', 'totalBytes'].every((k) => isFiniteNumber(m[k]))) &&
    isObject(v.timings)
  );
}
