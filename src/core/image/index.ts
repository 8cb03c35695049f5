/** Image input: decoding (sharp), Pillow-exact resizing, HF preprocessing, torch bicubic. */
export type { Rect, RgbImage } from './types.js';
export { DEFAULT_MAX_PIXELS, decodeImage, decodeImageBuffer, type DecodedImage, type DecodeOptions } from './decode.js';
export {
  PIL_RESAMPLE_CODES,
  computeAxisCoefficients,
  resampleFilterFromPil,
  resizeRGB8,
  type AxisCoefficients,
  type ResampleFilter,
  type ResizeOptions,
} from './resample.js';
export { releaseKernelMemory } from './resample-wasm.js';
export {
  fitWithinSize,
  outputToSource,
  preprocess,
  preprocessFuyu,
  resolveImageProcessorConfig,
  shortestEdgeSize,
  type FuyuPreprocessedImage,
  type FuyuPreprocessOptions,
  type ImageGeometry,
  type ImageProcessorConfig,
  type ImageProcessorKind,
  type PreprocessedImage,
  type PreprocessOptions,
  type ResizeRule,
  type ResolvedImageProcessor,
  type ResolveOptions,
  type Size,
  type SizeConfig,
} from './preprocess.js';
export { interpolateBicubicTorch } from './interpolate.js';
