/**
 * An 8-bit RGB image: rows top to bottom, pixels left to right, channels interleaved
 * R, G, B (HWC). `data.length === width * height * 3`.
 *
 * This is what PIL's `image.convert("RGB")` gives the Hugging Face processors, so every
 * step that has to match them bit for bit works on this type.
 */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** A rectangle in pixel units; x/y are the left/top edges. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}
