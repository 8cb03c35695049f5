import * as assert from 'node:assert/strict';
import { UserError } from '../../../src/core/errors.js';
import {
  computeAxisCoefficients,
  resampleFilterFromPil,
  resizeRGB8,
  type ResampleFilter,
} from '../../../src/core/image/resample.js';
import type { RgbImage } from '../../../src/core/image/types.js';

/** A 1-row image from per-pixel grey levels. */
function greyRow(levels: number[]): RgbImage {
  return { width: levels.length, height: 1, data: Uint8Array.from(levels.flatMap((v) => [v, v, v])) };
}

/** Channel 0 of each pixel. */
function reds(img: RgbImage): number[] {
  return Array.from({ length: img.width * img.height }, (_, i) => img.data[i * 3]!);
}

function randomImage(width: number, height: number, seed: number): RgbImage {
  let s = seed >>> 0;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, data };
}

// ---------------------------------------------------------------------------------------
// An independent, deliberately plain reading of SPEC §2.4 (and Pillow's filters): taps in
// double, fixed point, accumulate per sample, clip; one line at a time, no row skipping, no
// typed-array kernels, no SIMD — so it cross-checks the optimised paths.

const REF_FILTERS: Record<Exclude<ResampleFilter, 'nearest'>, [number, (x: number) => number]> = {
  box: [0.5, (x) => (x > -0.5 && x <= 0.5 ? 1 : 0)],
  bilinear: [1, (x) => Math.max(0, 1 - Math.abs(x))],
  hamming: [
    1,
    (x) => {
      x = Math.abs(x);
      if (x === 0) return 1;
      if (x >= 1) return 0;
      x *= Math.PI;
      return (Math.sin(x) / x) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(x));
    },
  ],
  bicubic: [
    2,
    (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  ],
  lanczos: [
    3,
    (x) => {
      const sinc = (v: number) => (v === 0 ? 1 : Math.sin(v * Math.PI) / (v * Math.PI));
      return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
    },
  ],
};

/** Per output sample: first input index and fixed-point taps. */
function referenceTaps(inSize: number, outSize: number, filter: Exclude<ResampleFilter, 'nearest'>): [number, number[]][] {
  const [filterSupport, f] = REF_FILTERS[filter];
  const scale = inSize / outSize;
  const fscale = Math.max(scale, 1);
  const support = filterSupport * fscale;
  const taps: [number, number[]][] = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5));
    const w: number[] = [];
    for (let x = xmin; x < xmax; x++) w.push(f((x - center + 0.5) * (1 / fscale)));
    const total = w.reduce((a, b) => a + b, 0);
    const fixed = w.map((v) => {
      const k = total !== 0 ? v / total : v;
      return k < 0 ? Math.trunc(-0.5 + k * 2 ** 22) : Math.trunc(0.5 + k * 2 ** 22);
    });
    taps.push([xmin, fixed]);
  }
  return taps;
}

function referenceAxis(line: number[], taps: [number, number[]][]): number[] {
  return taps.map(([xmin, fixed]) => {
    let acc = 1 << 21;
    fixed.forEach((k, t) => (acc += line[xmin + t]! * k));
    return Math.min(255, Math.max(0, Math.floor(acc / 2 ** 22)));
  });
}

function referenceResize(src: RgbImage, outW: number, outH: number, filter: Exclude<ResampleFilter, 'nearest'>): RgbImage {
  const xTaps = referenceTaps(src.width, outW, filter);
  const yTaps = referenceTaps(src.height, outH, filter);
  const mid = new Uint8Array(outW * src.height * 3);
  for (let y = 0; y < src.height; y++) {
    for (let c = 0; c < 3; c++) {
      const line = Array.from({ length: src.width }, (_, x) => src.data[(y * src.width + x) * 3 + c]!);
      const res = outW === src.width ? line : referenceAxis(line, xTaps);
      res.forEach((v, x) => (mid[(y * outW + x) * 3 + c] = v));
    }
  }
  const out = new Uint8Array(outW * outH * 3);
  for (let x = 0; x < outW; x++) {
    for (let c = 0; c < 3; c++) {
      const line = Array.from({ length: src.height }, (_, y) => mid[(y * outW + x) * 3 + c]!);
      const res = outH === src.height ? line : referenceAxis(line, yTaps);
      res.forEach((v, y) => (out[(y * outW + x) * 3 + c] = v));
    }
  }
  return { width: outW, height: outH, data: out };
}

describe('image/resample', () => {
  describe('resampleFilterFromPil', () => {
    it('maps PIL resample codes', () => {
      assert.deepEqual(
        [0, 1, 2, 3, 4, 5].map((c) => resampleFilterFromPil(c)),
        ['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming'],
      );
      assert.equal(resampleFilterFromPil('BICUBIC'), 'bicubic');
    });
    it('rejects unknown codes with a UserError naming the file', () => {
      assert.throws(() => resampleFilterFromPil(7, 'cfg.json'), (e: unknown) => e instanceof UserError && /cfg\.json/.test(e.message));
    });
  });

  describe('coefficients', () => {
    it('an unchanged axis is an exact identity (centre tap 2^22, others 0)', () => {
      for (const filter of ['box', 'bilinear', 'hamming', 'bicubic', 'lanczos'] as const) {
        const c = computeAxisCoefficients(37, 37, filter);
        for (let i = 0; i < 37; i++) {
          const taps = Array.from(c.weights.subarray(i * c.stride, i * c.stride + c.count[i]!));
          assert.equal(taps[i - c.first[i]!], 1 << 22, `${filter} centre tap of ${i}`);
          assert.equal(taps.reduce((a, b) => a + Math.abs(b), 0), 1 << 22, `${filter} other taps of ${i} are 0`);
        }
      }
    });
  });

  describe('hand-worked cases', () => {
    it('2×1 → 1×1 bilinear is the average, rounding halves up', () => {
      // scale 2, both taps f(±0.25) = 0.75 → 0.5 each = 2^21; (2^21 + 2^21·(10+21)) >> 22 = 16.
      assert.deepEqual(reds(resizeRGB8(greyRow([10, 20]), 1, 1, 'bilinear')), [15]);
      assert.deepEqual(reds(resizeRGB8(greyRow([10, 21]), 1, 1, 'bilinear')), [16]);
    });

    it('3 → 2 bilinear', () => {
      // scale 1.5, support 1.5: output 0 at centre 0.75 takes x=0,1 with f(-1/6)=5/6, f(1/2)=1/2
      // → 0.625, 0.375: 100·0.375 = 37.5 → 38; output 1 mirrors it: 37.5 + 125 = 162.5 → 163.
      assert.deepEqual(reds(resizeRGB8(greyRow([0, 100, 200]), 2, 1, 'bilinear')), [38, 163]);
    });

    it('4 → 2 bicubic (a = −0.5, antialiased)', () => {
      // Taps for output 0 (centre 1, support 4): x=0..3 at f(-.25), f(.25), f(.75), f(1.25)
      // = .8671875, .8671875, .2265625, -.0703125; normalised and fixed: 1923834, 1923834,
      // 502623, -155987 → (2^21 + 255·(502623 − 155987)) >> 22 = 21; output 1 mirrors: 234.
      assert.deepEqual(reds(resizeRGB8(greyRow([0, 0, 255, 255]), 2, 1, 'bicubic')), [21, 234]);
    });

    it('2 → 4 bicubic overshoots and is clipped to [0, 255]', () => {
      // Raw sums for the outer outputs are −23 and 278 (kernel lobes), clip8 makes them 0/255.
      assert.deepEqual(reds(resizeRGB8(greyRow([0, 255]), 4, 1, 'bicubic')), [0, 53, 202, 255]);
    });

    it('nearest picks trunc((i + 0.5)·scale)', () => {
      assert.deepEqual(reds(resizeRGB8(greyRow([1, 2, 3, 4]), 2, 1, 'nearest')), [2, 4]);
      assert.deepEqual(reds(resizeRGB8(greyRow([1, 2, 3]), 2, 1, 'nearest')), [1, 3]);
      assert.deepEqual(reds(resizeRGB8(greyRow([7, 9]), 5, 1, 'nearest')), [7, 7, 9, 9, 9]);
      // Pillow advances the position by repeated addition of 2/7: the 4th lands at
      // 0.999…, not at (3 + 0.5)·2/7 = 1, so it still reads pixel 0.
      assert.deepEqual(reds(resizeRGB8(greyRow([7, 9]), 7, 1, 'nearest')), [7, 7, 7, 7, 9, 9, 9]);
    });

    it('upscaling one pixel gives a constant image for every filter', () => {
      const one: RgbImage = { width: 1, height: 1, data: Uint8Array.from([12, 200, 99]) };
      for (const filter of ['nearest', 'box', 'bilinear', 'hamming', 'bicubic', 'lanczos'] as const) {
        const out = resizeRGB8(one, 5, 3, filter);
        for (let i = 0; i < 15; i++) assert.deepEqual([...out.data.subarray(i * 3, i * 3 + 3)], [12, 200, 99], filter);
      }
    });

    it('an unchanged size returns an equal copy', () => {
      const img = randomImage(13, 7, 1);
      for (const filter of ['nearest', 'bilinear', 'bicubic'] as const) {
        const out = resizeRGB8(img, 13, 7, filter);
        assert.deepEqual(out.data, img.data);
        assert.notEqual(out.data, img.data);
      }
    });

    it('rejects malformed input', () => {
      assert.throws(() => resizeRGB8({ width: 2, height: 2, data: new Uint8Array(5) }, 1, 1), RangeError);
      assert.throws(() => resizeRGB8(randomImage(2, 2, 1), 0, 1), RangeError);
    });
  });

  describe('matches the naive reference, SIMD and JS paths alike', () => {
    const sizes: [number, number, number, number][] = [
      [7, 5, 23, 31], // up both ways
      [64, 64, 1, 1],
      [45, 70, 32, 32], // vit-tiny nonsquare's resize
      [300, 451, 13, 200], // mixed
      [31, 17, 31, 9], // vertical only
      [31, 17, 12, 17], // horizontal only
      [5, 3, 200, 2],
      [97, 101, 98, 100], // barely changed
      [1, 40, 3, 7],
    ];
    for (const filter of ['box', 'bilinear', 'hamming', 'bicubic', 'lanczos'] as const) {
      it(filter, () => {
        sizes.forEach(([w, h, ow, oh], n) => {
          const src = randomImage(w, h, 17 * n + 3);
          const expected = referenceResize(src, ow, oh, filter);
          for (const simd of [true, false]) {
            const got = resizeRGB8(src, ow, oh, filter, { simd });
            assert.equal(got.width, ow);
            assert.equal(got.height, oh);
            assert.ok(Buffer.from(got.data).equals(Buffer.from(expected.data)), `${filter} ${w}×${h}→${ow}×${oh} simd=${simd}`);
          }
        });
      });
    }

    it('SIMD and JS paths agree on a photo-sized downscale', () => {
      const src = randomImage(1203, 797, 99);
      for (const filter of ['bilinear', 'bicubic', 'lanczos'] as const) {
        const a = resizeRGB8(src, 224, 148, filter, { simd: true });
        const b = resizeRGB8(src, 224, 148, filter, { simd: false });
        assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), filter);
      }
    });
  });
});
