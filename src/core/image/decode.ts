/**
 * Image files → 8-bit RGB (HWC), with sharp (libvips).
 *
 * The target is what the Hugging Face processors get from `Image.open(p).convert("RGB")`:
 * - alpha is dropped, not composited (PIL's RGBA→RGB keeps the colour channels as they are;
 *   sharp's removeAlpha does the same);
 * - greyscale is repeated into R, G and B; palette images are expanded through the palette;
 * - 16-bit RGB(A) keeps the high byte (`v >> 8`, truncation), as PIL's PNG decoder does
 *   (rawmode "RGB;16B"). 16-bit *greyscale* also keeps the high byte here, whereas PIL's
 *   I;16 → RGB conversion clips at 255 (nearly every pixel turns white); we do not copy that.
 * - embedded ICC profiles are ignored, as PIL ignores them (sharp would convert to sRGB);
 * - the first frame of an animation is used, as PIL's first frame.
 *
 * One deliberate difference: EXIF orientation is applied by default, so the model sees the
 * photo upright, as the user does. PIL (and so HF) does not apply it; pass
 * `{ autoOrient: false }` for parity with a Python pipeline on rotated JPEGs.
 * JPEG decoders also differ by ±1–2 levels between libraries (SPEC §2.4): golden tests use PNG.
 */
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import { UserError } from '../errors.js';
import type { RgbImage } from './types.js';

/**
 * Pillow's decompression-bomb limit (`2 * Image.MAX_IMAGE_PIXELS`, above which it refuses to
 * open an image): 2 × 89,478,485 pixels, e.g. about 13,000 × 13,000.
 */
export const DEFAULT_MAX_PIXELS = 178_956_970;

/** sharp's format names this accepts, with the names users know. */
const SUPPORTED: Readonly<Record<string, string>> = {
  jpeg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  gif: 'GIF',
  tiff: 'TIFF',
  heif: 'AVIF',
};
const SUPPORTED_LIST = Object.values(SUPPORTED).join(', ');
const SUPPORTED_HINT = `Supported formats: ${SUPPORTED_LIST}.`;

export interface DecodeOptions {
  /** Refuse images with more pixels than this (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** Apply the EXIF orientation (default true). */
  autoOrient?: boolean;
}

export interface DecodedImage extends RgbImage {
  readonly channels: 3;
  /** sharp's name of the file format: "jpeg", "png", "webp", "gif", "tiff", "heif". */
  readonly sourceFormat: string;
  /** Stored size, before the EXIF orientation is applied. */
  readonly sourceWidth: number;
  readonly sourceHeight: number;
  /** EXIF orientation 1–8 (1 when absent), and whether it was applied. */
  readonly orientation: number;
  readonly orientationApplied: boolean;
  /** Channels in the file (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA or CMYK). */
  readonly sourceChannels: number;
  /** Bits per sample in the file (8 or 16 mostly). */
  readonly sourceBitDepth: number;
  readonly hadAlpha: boolean;
  readonly wasPalette: boolean;
}

/** Decodes an image file. Every failure a user can cause is a UserError naming the file. */
export async function decodeImage(path: string, options: DecodeOptions = {}): Promise<DecodedImage> {
  let size: number;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new UserError('is a folder, not an image file.', path);
    size = info.size;
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError('image file not found.', path);
    if (code === 'EACCES' || code === 'EPERM') throw new UserError('no permission to read this image.', path);
    throw new UserError(`cannot read this image (${(err as Error).message}).`, path);
  }
  if (size === 0) throw new UserError('the image file is empty.', path, SUPPORTED_HINT);
  // sharp reads the file itself (streaming), so a large JPEG is never held twice in memory.
  return decode(path, path, options);
}

/** Decodes an image held in memory; `nameForErrors` is what error messages call it. */
export async function decodeImageBuffer(
  buf: Uint8Array,
  nameForErrors: string,
  options: DecodeOptions = {},
): Promise<DecodedImage> {
  if (buf.length === 0) throw new UserError('the image data is empty.', nameForErrors, SUPPORTED_HINT);
  const input = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return decode(input, nameForErrors, options);
}

async function decode(input: string | Buffer, name: string, options: DecodeOptions): Promise<DecodedImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const autoOrient = options.autoOrient ?? true;
  const sharpOptions: sharp.SharpOptions = {
    // The check on the header below gives the clearer message; this is the backstop.
    limitInputPixels: Number.isFinite(maxPixels) ? Math.max(1, Math.floor(maxPixels)) : false,
    failOn: 'error',
    ignoreIcc: true,
  };

  // The header only: format, size, channels — before any pixel is decoded. No pixel limit
  // here, so that the check below can say how large the image is.
  let meta: sharp.Metadata;
  try {
    meta = await sharp(input, { ...sharpOptions, limitInputPixels: false }).metadata();
  } catch (err) {
    throw unreadable(name, err);
  }
  const format = String(meta.format);
  if (!(format in SUPPORTED) || (format === 'heif' && meta.compression === 'hevc')) {
    const what = format === 'heif' && meta.compression === 'hevc' ? 'HEIC' : format.toUpperCase();
    throw new UserError(`${what} images are not supported.`, name, SUPPORTED_HINT);
  }
  const pixels = meta.width * meta.height;
  if (pixels > maxPixels) {
    throw new UserError(
      `the image is ${meta.width} × ${meta.height} = ${pixels.toLocaleString('en-US')} pixels, ` +
        `more than the limit of ${maxPixels.toLocaleString('en-US')}.`,
      name,
      'Downscale or crop it first.',
    );
  }

  const orientation = meta.orientation ?? 1;
  let pipeline = sharp(input, { ...sharpOptions, autoOrient });
  // toColourspace('srgb') expands grey, and reduces 16-bit samples to their high byte.
  pipeline = pipeline.removeAlpha().toColourspace('srgb');
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    raw = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw unreadable(name, err);
  }
  const { data, info } = raw;
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new UserError(
      `decoding gave ${info.channels} channels at ${info.width}×${info.height}, not RGB.`,
      name,
      SUPPORTED_HINT,
    );
  }
  return {
    width: info.width,
    height: info.height,
    channels: 3,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    sourceFormat: format,
    sourceWidth: meta.width,
    sourceHeight: meta.height,
    orientation,
    orientationApplied: autoOrient && orientation !== 1,
    sourceChannels: meta.channels,
    sourceBitDepth: meta.bitsPerSample ?? bitsOf(meta.depth),
    hadAlpha: meta.hasAlpha,
    wasPalette: meta.isPalette,
  };
}

function bitsOf(depth: string): number {
  return ({ uchar: 8, char: 8, ushort: 16, short: 16, uint: 32, int: 32, float: 32, double: 64 } as Record<string, number>)[depth] ?? 8;
}

/** Turns a sharp/libvips error into a message a user can act on. */
function unreadable(name: string, err: unknown): UserError {
  const detail = err instanceof Error ? err.message.split('\n')[0]!.trim() : String(err);
  if (/unsupported image format/i.test(detail)) {
    return new UserError('not an image file, or a format this tool cannot read.', name, SUPPORTED_HINT);
  }
  if (/pixel limit/i.test(detail)) {
    return new UserError('the image has more pixels than allowed.', name, 'Downscale or crop it first.');
  }
  if (/truncat|premature end|unexpected end|end of (file|stream)|read error|short read|not enough data|incomplete/i.test(detail)) {
    return new UserError(`the image is truncated or corrupt (${detail}).`, name, 'Re-export or re-download it.');
  }
  return new UserError(`cannot decode this image (${detail}).`, name, SUPPORTED_HINT);
}
