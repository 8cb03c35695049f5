/**
 * Image → model input, driven by a checkpoint's `preprocessor_config.json`, reproducing the
 * slow (PIL/NumPy) Hugging Face processors of transformers 4.57 bit for bit (SPEC §2.4–§2.6,
 * §3.2, §4.2, §5.2):
 *
 * - ViTImageProcessor: resize to exactly size.height × size.width (default 224², bilinear),
 *   rescale, normalise (default mean = std = 0.5). No crop.
 * - CLIPImageProcessor: resize the shortest edge (default 224, bicubic), centre crop (default
 *   224², zero padding if the image is smaller), rescale, normalise (OpenAI CLIP mean/std).
 * - FuyuImageProcessor (`preprocessFuyu`): shrink to fit size (default 1080×1920) if larger,
 *   pad bottom/right with a constant *in uint8*, rescale, normalise, cut into patches.
 *
 * Configs naming a `…Fast` processor get the slow processor's output too: the fast
 * (torchvision) ones are not Pillow-exact and are not the reference (SPEC §2.4).
 * `do_convert_rgb` is not consulted: decode.ts always hands over RGB (as PIL's convert("RGB")).
 */
import { UserError } from '../errors.js';
import { resampleFilterFromPil, resizeRGB8, type ResampleFilter } from './resample.js';
import type { Rect, RgbImage } from './types.js';

export type ImageProcessorKind = 'vit' | 'clip' | 'fuyu';

/** `size` / `crop_size` / `patch_size` as HF serialises them. */
export interface SizeConfig {
  height?: number;
  width?: number;
  shortest_edge?: number;
  longest_edge?: number;
}

/**
 * `preprocessor_config.json`: the fields the ViT, CLIP and Fuyu processors read. Everything
 * is optional; unknown keys are ignored, as HF does.
 */
export interface ImageProcessorConfig {
  image_processor_type?: string | null;
  /** Older serialisations (e.g. google/vit-base-patch16-224: "ViTFeatureExtractor"). */
  feature_extractor_type?: string | null;
  processor_class?: string | null;
  do_resize?: boolean | null;
  /** ViT: {height, width} or an int (square). CLIP: {shortest_edge}, {height, width} or an int (shortest edge). */
  size?: SizeConfig | number | number[] | null;
  /** PIL code: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming. */
  resample?: number | string | null;
  do_center_crop?: boolean | null;
  crop_size?: SizeConfig | number | number[] | null;
  do_rescale?: boolean | null;
  rescale_factor?: number | null;
  do_normalize?: boolean | null;
  image_mean?: number | number[] | null;
  image_std?: number | number[] | null;
  do_convert_rgb?: boolean | null;
  do_pad?: boolean | null;
  padding_value?: number | null;
  padding_mode?: string | null;
  patch_size?: SizeConfig | null;
  [key: string]: unknown;
}

export interface Size {
  height: number;
  width: number;
}

export type ResizeRule =
  /** Resize to exactly this size, ignoring the aspect ratio (ViT; CLIP given {height, width}). */
  | { kind: 'exact'; height: number; width: number }
  /** Shortest edge to this length, the other edge `trunc(edge·long/short)` (CLIP). */
  | { kind: 'shortestEdge'; shortestEdge: number }
  /** Only if larger than this: shrink keeping the aspect ratio until it fits (Fuyu). */
  | { kind: 'fitWithin'; height: number; width: number };

/** A config with HF's defaults applied and every value checked. */
export interface ResolvedImageProcessor {
  readonly kind: ImageProcessorKind;
  readonly resize: ResizeRule | null;
  readonly resample: ResampleFilter;
  readonly centerCrop: Size | null;
  /** Null when `do_rescale` is off. */
  readonly rescaleFactor: number | null;
  /** Null when `do_normalize` is off. */
  readonly normalize: { readonly mean: readonly number[]; readonly std: readonly number[] } | null;
  /** Fuyu: pad bottom/right to this size with this uint8 value. */
  readonly pad: (Size & { readonly value: number }) | null;
  /** Fuyu only. */
  readonly patchSize: Size | null;
}

export interface ResolveOptions {
  /** Names the config in error messages. */
  file?: string;
  /**
   * The processor kind when the config does not name its class (or to override it), e.g.
   * from the model's `config.json` `model_type`.
   */
  kind?: ImageProcessorKind;
}

// image_utils.py constants.
const IMAGENET_STANDARD = [0.5, 0.5, 0.5];
const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

const CLASS_PATTERNS: readonly [RegExp, ImageProcessorKind][] = [
  [/^ViT(ImageProcessor|FeatureExtractor)(Fast)?$/, 'vit'],
  [/^CLIP(ImageProcessor|FeatureExtractor|Processor)(Fast)?$/, 'clip'],
  [/^Fuyu(ImageProcessor|Processor)(Fast)?$/, 'fuyu'],
];

function detectKind(config: ImageProcessorConfig, options: ResolveOptions): ImageProcessorKind {
  if (options.kind) return options.kind;
  const names = [config.image_processor_type, config.feature_extractor_type, config.processor_class].filter(
    (n): n is string => typeof n === 'string',
  );
  for (const n of names) {
    for (const [pattern, kind] of CLASS_PATTERNS) if (pattern.test(n)) return kind;
  }
  throw new UserError(
    names.length
      ? `unsupported image processor ${names.map((n) => JSON.stringify(n)).join(' / ')}.`
      : 'the config does not say which image processor it is for (no "image_processor_type").',
    options.file,
    'Supported: ViTImageProcessor, CLIPImageProcessor, FuyuImageProcessor (and their FeatureExtractor names).',
  );
}

/** Reads a config field; a missing field or `null` gives undefined. */
class ConfigReader {
  constructor(
    private readonly config: ImageProcessorConfig,
    private readonly file: string | undefined,
    private readonly processor: string,
  ) {}

  private fail(key: string, expected: string): never {
    throw new UserError(
      `"${key}" is ${JSON.stringify(this.config[key])}, expected ${expected}.`,
      this.file,
      `Fix ${key} in the preprocessor config (read as ${this.processor}).`,
    );
  }

  /**
   * HF leaves a `null` flag as None, which its `if do_x:` treats as off; a missing flag takes
   * the processor's default.
   */
  flag(key: string, fallback: boolean): boolean {
    const v = this.config[key];
    if (v === undefined) return fallback;
    if (v === null) return false;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  number(key: string, fallback: number, valid: (v: number) => boolean, expected: string): number {
    const v = this.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !valid(v)) this.fail(key, expected);
    return v;
  }

  /** image_mean / image_std: one number for all channels, or one per channel. */
  perChannel(key: string, fallback: readonly number[], valid: (v: number) => boolean, expected: string): number[] {
    const v = this.config[key];
    if (v === undefined || v === null) return [...fallback];
    const list = typeof v === 'number' ? [v, v, v] : v;
    if (!Array.isArray(list) || list.length !== 3 || !list.every((x) => typeof x === 'number' && Number.isFinite(x) && valid(x))) {
      this.fail(key, `a number or a list of 3 numbers (${expected})`);
    }
    return list as number[];
  }

  /**
   * size / crop_size / patch_size, following HF's `get_size_dict`: an int is a square when
   * `intIsSquare`, else a shortest edge; a list is [height, width].
   */
  size(key: string, intIsSquare: boolean): SizeConfig | undefined {
    const v = this.config[key];
    if (v === undefined || v === null) return undefined;
    const positive = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;
    if (positive(v)) return intIsSquare ? { height: v, width: v } : { shortest_edge: v };
    if (Array.isArray(v) && v.length === 2 && v.every(positive)) return { height: v[0], width: v[1] };
    if (typeof v === 'object' && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== null && x !== undefined);
      if (entries.length > 0 && entries.every(([, x]) => positive(x))) return Object.fromEntries(entries) as SizeConfig;
    }
    this.fail(key, 'a positive integer, [height, width] or an object of positive integers');
  }

  exactSize(key: string, size: SizeConfig | undefined, fallback: Size): Size {
    if (!size) return fallback;
    if (size.height === undefined || size.width === undefined) this.fail(key, '{"height": …, "width": …}');
    return { height: size.height, width: size.width };
  }
}

/** Applies HF's per-processor defaults to a `preprocessor_config.json` and checks every value. */
export function resolveImageProcessorConfig(
  config: ImageProcessorConfig,
  options: ResolveOptions = {},
): ResolvedImageProcessor {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new UserError('the preprocessor config is not a JSON object.', options.file);
  }
  const kind = detectKind(config, options);
  const read = new ConfigReader(config, options.file, { vit: 'ViTImageProcessor', clip: 'CLIPImageProcessor', fuyu: 'FuyuImageProcessor' }[kind]);

  const rescaleFactor = read.flag('do_rescale', true)
    ? read.number('rescale_factor', 1 / 255, () => true, 'a number')
    : null;
  const defaultStats = kind === 'clip' ? [OPENAI_CLIP_MEAN, OPENAI_CLIP_STD] : [IMAGENET_STANDARD, IMAGENET_STANDARD];
  const normalize = read.flag('do_normalize', true)
    ? {
        mean: read.perChannel('image_mean', defaultStats[0]!, () => true, 'any'),
        std: read.perChannel('image_std', defaultStats[1]!, (x) => x !== 0, 'non-zero'),
      }
    : null;
  const resampleValue = config.resample ?? (kind === 'clip' ? 3 : 2);

  if (kind === 'vit') {
    const size = read.exactSize('size', read.size('size', true), { height: 224, width: 224 });
    return {
      kind,
      resize: read.flag('do_resize', true) ? { kind: 'exact', ...size } : null,
      resample: resampleFilterFromPil(resampleValue, options.file),
      centerCrop: null,
      rescaleFactor,
      normalize,
      pad: null,
      patchSize: null,
    };
  }

  if (kind === 'clip') {
    const size = read.size('size', false) ?? { shortest_edge: 224 };
    let resize: ResizeRule;
    if (size.shortest_edge !== undefined) {
      // A longest_edge next to it is ignored by CLIPImageProcessor.resize, so here too.
      resize = { kind: 'shortestEdge', shortestEdge: size.shortest_edge };
    } else {
      resize = { kind: 'exact', ...read.exactSize('size', size, { height: 224, width: 224 }) };
    }
    const crop = read.exactSize('crop_size', read.size('crop_size', true), { height: 224, width: 224 });
    return {
      kind,
      resize: read.flag('do_resize', true) ? resize : null,
      resample: resampleFilterFromPil(resampleValue, options.file),
      centerCrop: read.flag('do_center_crop', true) ? crop : null,
      rescaleFactor,
      normalize,
      pad: null,
      patchSize: null,
    };
  }

  // Fuyu
  const size = read.exactSize('size', read.size('size', true), { height: 1080, width: 1920 });
  const mode = config.padding_mode ?? 'constant';
  if (mode !== 'constant') {
    throw new UserError(`padding_mode "${String(mode)}" is not supported.`, options.file, 'Only "constant" padding is implemented.');
  }
  // np.pad writes the value into the uint8 image, which truncates it (1.0 → 1).
  const padValue = read.number('padding_value', 1.0, (v) => v >= 0 && v < 256, 'a number in [0, 255]');
  return {
    kind,
    resize: read.flag('do_resize', true) ? { kind: 'fitWithin', ...size } : null,
    // FuyuImageProcessor.preprocess calls self.resize without passing `resample`, so the
    // configured value never reaches PIL: it is always bilinear.
    resample: 'bilinear',
    centerCrop: null,
    rescaleFactor,
    normalize,
    pad: read.flag('do_pad', true) ? { ...size, value: Math.trunc(padValue) } : null,
    patchSize: read.exactSize('patch_size', read.size('patch_size', true), { height: 30, width: 30 }),
  };
}

// ---------------------------------------------------------------------------------------
// Geometry shared by the results, so the UI can put patches back on the original image.

export interface ImageGeometry {
  /** The image handed to preprocess (after decoding and EXIF orientation). */
  readonly sourceWidth: number;
  readonly sourceHeight: number;
  /** After the resize step (= source size when there is none). */
  readonly resizedWidth: number;
  readonly resizedHeight: number;
  /**
   * The output window in resized-image pixels. It reaches outside the resized image where the
   * output is padded (negative x/y for CLIP's centred padding, past the right/bottom for Fuyu).
   */
  readonly crop: Rect;
  /** The same window on the source image, in source pixels (fractional after a resize). */
  readonly sourceBox: Rect;
}

/**
 * Maps a point of the model input (in output pixels, edges at integers: the centre of pixel
 * (i, j) is (i + 0.5, j + 0.5)) to source-image pixels, the way the resampler maps them.
 */
export function outputToSource(geometry: ImageGeometry, x: number, y: number): { x: number; y: number } {
  return {
    x: ((x + geometry.crop.x) * geometry.sourceWidth) / geometry.resizedWidth,
    y: ((y + geometry.crop.y) * geometry.sourceHeight) / geometry.resizedHeight,
  };
}

function geometryOf(source: RgbImage, resized: RgbImage, crop: Rect): ImageGeometry {
  const sx = source.width / resized.width;
  const sy = source.height / resized.height;
  return {
    sourceWidth: source.width,
    sourceHeight: source.height,
    resizedWidth: resized.width,
    resizedHeight: resized.height,
    crop,
    sourceBox: { x: crop.x * sx, y: crop.y * sy, width: crop.width * sx, height: crop.height * sy },
  };
}

// ---------------------------------------------------------------------------------------
// Pixel values

/**
 * uint8 → float32 for each channel, rounded exactly where HF rounds (SPEC §2.6):
 * rescale `f32(x · factor)` (NumPy multiplies in float64, then casts), normalise
 * `f32(f32(r − f32(mean)) / f32(std))` (NumPy in float32). A 256-entry table per channel
 * makes that exact and cheap.
 */
function pixelTables(processor: ResolvedImageProcessor): Float32Array[] {
  return [0, 1, 2].map((c) => {
    const table = new Float32Array(256);
    const mean = processor.normalize ? Math.fround(processor.normalize.mean[c]!) : 0;
    const std = processor.normalize ? Math.fround(processor.normalize.std[c]!) : 1;
    for (let v = 0; v < 256; v++) {
      const r = processor.rescaleFactor !== null ? Math.fround(v * processor.rescaleFactor) : v;
      table[v] = processor.normalize ? Math.fround(Math.fround(r - mean) / std) : r;
    }
    return table;
  });
}

/**
 * The `window` of `image` as CHW float32 through the tables; pixels outside the image take
 * the value `fill` (a uint8 level, before the tables), as HF pads in uint8.
 */
function windowToCHW(image: RgbImage, window: Rect, tables: Float32Array[], fill: number): Float32Array {
  const { width: W, height: H } = window;
  const plane = W * H;
  const out = new Float32Array(3 * plane);
  const [t0, t1, t2] = tables as [Float32Array, Float32Array, Float32Array];
  for (let y = 0; y < H; y++) {
    const sy = y + window.y;
    const rowInside = sy >= 0 && sy < image.height;
    for (let x = 0; x < W; x++) {
      const sx = x + window.x;
      const o = y * W + x;
      if (rowInside && sx >= 0 && sx < image.width) {
        const p = (sy * image.width + sx) * 3;
        out[o] = t0[image.data[p]!]!;
        out[plane + o] = t1[image.data[p + 1]!]!;
        out[2 * plane + o] = t2[image.data[p + 2]!]!;
      } else {
        out[o] = t0[fill]!;
        out[plane + o] = t1[fill]!;
        out[2 * plane + o] = t2[fill]!;
      }
    }
  }
  return out;
}

/** HF `get_resize_output_image_size(default_to_square=False)`; returns [height, width]. */
export function shortestEdgeSize(height: number, width: number, shortestEdge: number): [number, number] {
  const [short, long] = width <= height ? [width, height] : [height, width];
  // Integer product first, then one division, then truncation: `edge * (long / short)` can
  // land just below an integer and lose a pixel (56×61 → 244 in HF, 243 the other way).
  const newLong = Math.trunc((shortestEdge * long) / short);
  return width <= height ? [newLong, shortestEdge] : [shortestEdge, newLong];
}

/** FuyuImageProcessor.resize's target; returns [height, width] (unchanged if it fits). */
export function fitWithinSize(height: number, width: number, maxHeight: number, maxWidth: number): [number, number] {
  if (width <= maxWidth && height <= maxHeight) return [height, width];
  // Exactly HF's double arithmetic: the binding side can come out one pixel short
  // (a 2140×1000 image → 1079×504 for 1080×1920), and that is what the model saw.
  const scale = Math.min(maxHeight / height, maxWidth / width);
  return [Math.trunc(height * scale), Math.trunc(width * scale)];
}

function resizeStep(image: RgbImage, processor: ResolvedImageProcessor, file: string | undefined): RgbImage {
  const rule = processor.resize;
  if (!rule) return image;
  let height: number;
  let width: number;
  if (rule.kind === 'exact') [height, width] = [rule.height, rule.width];
  else if (rule.kind === 'shortestEdge') [height, width] = shortestEdgeSize(image.height, image.width, rule.shortestEdge);
  else [height, width] = fitWithinSize(image.height, image.width, rule.height, rule.width);
  if (height < 1 || width < 1) {
    throw new UserError(
      `a ${image.width}×${image.height} image would be resized to ${width}×${height} pixels.`,
      file,
      'The aspect ratio is too extreme for this model; crop the image first.',
    );
  }
  return resizeRGB8(image, width, height, processor.resample);
}

export interface PreprocessedImage extends ImageGeometry {
  readonly kind: ImageProcessorKind;
  /** `pixel_values` for batch size 1: CHW float32. */
  readonly pixelValues: Float32Array;
  readonly shape: [1, 3, number, number];
}

export type PreprocessOptions = ResolveOptions;

/**
 * `pixel_values` the ViT or CLIP processor would produce for `image` (batch of one).
 * `config` is the parsed `preprocessor_config.json`, or an already resolved one.
 */
export function preprocess(
  image: RgbImage,
  config: ImageProcessorConfig | ResolvedImageProcessor,
  options: PreprocessOptions = {},
): PreprocessedImage {
  const processor = isResolved(config) ? config : resolveImageProcessorConfig(config, options);
  if (processor.kind === 'fuyu') {
    throw new Error('preprocess() is for ViT/CLIP processors; use preprocessFuyu() for Fuyu');
  }
  const resized = resizeStep(image, processor, options.file);
  let crop: Rect = { x: 0, y: 0, width: resized.width, height: resized.height };
  if (processor.centerCrop) {
    const { height, width } = processor.centerCrop;
    // HF floors the offset (Python //, also for negative margins, where it pads with zeros).
    crop = {
      x: Math.floor((resized.width - width) / 2),
      y: Math.floor((resized.height - height) / 2),
      width,
      height,
    };
  }
  const pixelValues = windowToCHW(resized, crop, pixelTables(processor), 0);
  return {
    kind: processor.kind,
    pixelValues,
    shape: [1, 3, crop.height, crop.width],
    ...geometryOf(image, resized, crop),
  };
}

export interface FuyuPreprocessedImage extends ImageGeometry {
  /** `image_patches` for batch size 1: `[patchRows * patchCols, patchHeight * patchWidth * 3]`. */
  readonly imagePatches: Float32Array;
  readonly patchesShape: [number, number];
  /** Patch p = row r, column c with p = r·patchCols + c; inside a patch: (y·pw + x)·3 + channel. */
  readonly patchRows: number;
  readonly patchCols: number;
  readonly patchHeight: number;
  readonly patchWidth: number;
  /** `image_unpadded_heights` / `_widths`: the image after resizing, before padding. */
  readonly unpaddedHeight: number;
  readonly unpaddedWidth: number;
  /** `image_scale_factors`: resized / original height, as the float32 HF stores. */
  readonly scaleFactor: number;
  /** HF's `images` (the padded image, CHW, before the crop to whole patches); only if asked for. */
  readonly paddedImage?: Float32Array;
  readonly paddedShape: [3, number, number];
}

export interface FuyuPreprocessOptions extends ResolveOptions {
  /** Also return the padded full-size image (25 MB at 1080×1920), e.g. for tests. */
  includePaddedImage?: boolean;
}

/** What FuyuImageProcessor + FuyuProcessor produce for one image (SPEC §5.2). */
export function preprocessFuyu(
  image: RgbImage,
  config: ImageProcessorConfig | ResolvedImageProcessor,
  options: FuyuPreprocessOptions = {},
): FuyuPreprocessedImage {
  const processor = isResolved(config) ? config : resolveImageProcessorConfig(config, { kind: 'fuyu', ...options });
  if (processor.kind !== 'fuyu' || !processor.patchSize) {
    throw new Error(`preprocessFuyu() needs a Fuyu processor config, got ${processor.kind}`);
  }
  const resized = resizeStep(image, processor, options.file);
  const { height: ph, width: pw } = processor.patchSize;
  let paddedHeight = resized.height;
  let paddedWidth = resized.width;
  if (processor.pad) {
    if (resized.height > processor.pad.height || resized.width > processor.pad.width) {
      throw new UserError(
        `a ${resized.width}×${resized.height} image does not fit the ${processor.pad.width}×${processor.pad.height} canvas it is padded to.`,
        options.file,
        'Turn do_resize on, or use a smaller image.',
      );
    }
    paddedHeight = processor.pad.height;
    paddedWidth = processor.pad.width;
  }
  // Keep whole patches only (FuyuProcessor, variable_sized): at most one partly padded
  // row/column of patches.
  const height = Math.min(paddedHeight, Math.ceil(resized.height / ph) * ph);
  const width = Math.min(paddedWidth, Math.ceil(resized.width / pw) * pw);
  if (height % ph !== 0 || width % pw !== 0) {
    throw new UserError(
      `the ${paddedWidth}×${paddedHeight} model input cannot be cut into ${pw}×${ph} patches.`,
      options.file,
      'size must be a multiple of patch_size (or do_pad on).',
    );
  }

  const tables = pixelTables(processor);
  const fill = processor.pad ? processor.pad.value : 0;
  const crop: Rect = { x: 0, y: 0, width, height };
  const chw = windowToCHW(resized, crop, tables, fill);
  const patchRows = height / ph;
  const patchCols = width / pw;
  const patchLen = ph * pw * 3;
  const imagePatches = new Float32Array(patchRows * patchCols * patchLen);
  const plane = width * height;
  for (let r = 0; r < patchRows; r++) {
    for (let c = 0; c < patchCols; c++) {
      let o = (r * patchCols + c) * patchLen;
      for (let y = 0; y < ph; y++) {
        const row = (r * ph + y) * width + c * pw;
        for (let x = 0; x < pw; x++) {
          imagePatches[o++] = chw[row + x]!;
          imagePatches[o++] = chw[plane + row + x]!;
          imagePatches[o++] = chw[2 * plane + row + x]!;
        }
      }
    }
  }

  return {
    imagePatches,
    patchesShape: [patchRows * patchCols, patchLen],
    patchRows,
    patchCols,
    patchHeight: ph,
    patchWidth: pw,
    unpaddedHeight: resized.height,
    unpaddedWidth: resized.width,
    scaleFactor: Math.fround(resized.height / image.height),
    paddedImage: options.includePaddedImage
      ? windowToCHW(resized, { x: 0, y: 0, width: paddedWidth, height: paddedHeight }, tables, fill)
      : undefined,
    paddedShape: [3, paddedHeight, paddedWidth],
    ...geometryOf(image, resized, crop),
  };
}

function isResolved(config: ImageProcessorConfig | ResolvedImageProcessor): config is ResolvedImageProcessor {
  return (
    typeof config === 'object' &&
    config !== null &&
    'kind' in config &&
    'normalize' in config &&
    'centerCrop' in config &&
    typeof (config as ResolvedImageProcessor).kind === 'string'
  );
}
