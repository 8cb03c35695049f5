import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { UserError } from '../../../src/core/errors.js';
import { decodeImage } from '../../../src/core/image/decode.js';
import {
  fitWithinSize,
  outputToSource,
  preprocess,
  preprocessFuyu,
  resolveImageProcessorConfig,
  shortestEdgeSize,
  type ImageProcessorConfig,
} from '../../../src/core/image/preprocess.js';
import type { RgbImage } from '../../../src/core/image/types.js';
import { GOLDEN, goldenJson, goldenTensor, maxAbsDiff } from './golden.js';

const TOLERANCE = 1e-5; // DESIGN §3 for pixel values; SPEC §2.6 says 0 is reachable.

interface PixelCase {
  name: string;
  config: string;
  image: string;
  file: string;
  tensor: string;
  /** Batch row of the expected tensor. */
  row: number;
}

// clip-tiny/manifest.json: images ["square.png", "nonsquare.png"] → pixel_values rows 0, 1.
const PIXEL_CASES: PixelCase[] = [
  { name: 'vit-tiny/square', config: 'vit-tiny/preprocessor_config.json', image: 'vit-tiny/square.png', file: 'vit-tiny/square.inputs.safetensors', tensor: 'pixel_values', row: 0 },
  { name: 'vit-tiny/nonsquare (45×70 → 32², bilinear)', config: 'vit-tiny/preprocessor_config.json', image: 'vit-tiny/nonsquare.png', file: 'vit-tiny/nonsquare.inputs.safetensors', tensor: 'pixel_values', row: 0 },
  { name: 'vit-interp/rect48x40 (no resize)', config: 'vit-interp/preprocessor_config.json', image: 'vit-interp/rect48x40.png', file: 'vit-interp/rect48x40.inputs.safetensors', tensor: 'pixel_values', row: 0 },
  { name: 'vit-interp/square40 (no resize)', config: 'vit-interp/preprocessor_config.json', image: 'vit-interp/square40.png', file: 'vit-interp/square40.inputs.safetensors', tensor: 'pixel_values', row: 0 },
  { name: 'vit-photo/chelsea (300×451 → 32²)', config: 'vit-photo/preprocessor_config.json', image: 'vit-photo/chelsea.png', file: 'vit-photo/chelsea.inputs.safetensors', tensor: 'pixel_values', row: 0 },
  { name: 'vit-photo/processor_224 chelsea (→ 224²)', config: 'vit-photo/processor_224/preprocessor_config.json', image: 'vit-photo/chelsea.png', file: 'vit-photo/processor_224/chelsea.pixel_values.safetensors', tensor: 'pixel_values', row: 0 },
  { name: 'clip-tiny/pair[0] square', config: 'clip-tiny/preprocessor_config.json', image: 'clip-tiny/square.png', file: 'clip-tiny/pair.inputs.safetensors', tensor: 'pixel_values', row: 0 },
  { name: 'clip-tiny/pair[1] nonsquare (→ 32×49, crop)', config: 'clip-tiny/preprocessor_config.json', image: 'clip-tiny/nonsquare.png', file: 'clip-tiny/pair.inputs.safetensors', tensor: 'pixel_values', row: 1 },
  { name: 'clip-bf16-sharded/pair[1] nonsquare', config: 'clip-bf16-sharded/preprocessor_config.json', image: 'clip-bf16-sharded/nonsquare.png', file: 'clip-bf16-sharded/pair.inputs.safetensors', tensor: 'pixel_values', row: 1 },
  { name: 'clip-photo/coffee (400×600 → 32×48, crop)', config: 'clip-photo/preprocessor_config.json', image: 'clip-photo/coffee.png', file: 'clip-photo/coffee.inputs.safetensors', tensor: 'pixel_values', row: 0 },
  { name: 'clip-photo/processor_224 coffee (→ 224×336, crop)', config: 'clip-photo/processor_224/preprocessor_config.json', image: 'clip-photo/coffee.png', file: 'clip-photo/processor_224/coffee.pixel_values.safetensors', tensor: 'pixel_values', row: 0 },
];

const report: string[] = [];

function rowOf(data: Float32Array, shape: readonly number[], row: number): Float32Array {
  const size = shape.slice(1).reduce((a, b) => a * b, 1);
  return data.subarray(row * size, (row + 1) * size);
}

describe('image/preprocess', () => {
  after(() => {
    console.log('\n      pixel parity (max |ours − HF|):');
    for (const line of report) console.log(`        ${line}`);
  });

  describe('golden pixel_values', () => {
    for (const c of PIXEL_CASES) {
      it(c.name, async () => {
        const config = await goldenJson<ImageProcessorConfig>(c.config);
        const image = await decodeImage(path.join(GOLDEN, c.image));
        const expected = await goldenTensor(c.file, c.tensor);
        const out = preprocess(image, config, { file: c.config });
        assert.deepEqual(out.shape.slice(1), expected.shape.slice(1));
        const diff = maxAbsDiff(out.pixelValues, rowOf(expected.data as Float32Array, expected.shape, c.row));
        report.push(`${c.name}: ${diff}`);
        assert.ok(diff <= TOLERANCE, `max diff ${diff}`);
      });
    }

    it('fuyu-tiny/prompt: image_patches, padded image, unpadded size, scale factor', async () => {
      const config = await goldenJson<ImageProcessorConfig>('fuyu-tiny/preprocessor_config.json');
      const image = await decodeImage(path.join(GOLDEN, 'fuyu-tiny/image60x90.png'));
      const file = 'fuyu-tiny/prompt.inputs.safetensors';
      const out = preprocessFuyu(image, config, { includePaddedImage: true });

      const patches = await goldenTensor(file, 'image_patches');
      assert.deepEqual([1, ...out.patchesShape], patches.shape);
      assert.equal(out.patchRows, 5);
      assert.equal(out.patchCols, 8);
      const patchDiff = maxAbsDiff(out.imagePatches, patches.data as Float32Array);

      const images = await goldenTensor(file, 'image_processor.images');
      assert.deepEqual(out.paddedShape, images.shape);
      const paddedDiff = maxAbsDiff(out.paddedImage!, images.data as Float32Array);

      const h = (await goldenTensor(file, 'image_processor.image_unpadded_heights')).data as BigInt64Array;
      const w = (await goldenTensor(file, 'image_processor.image_unpadded_widths')).data as BigInt64Array;
      const s = (await goldenTensor(file, 'image_processor.image_scale_factors')).data as Float32Array;
      assert.equal(out.unpaddedHeight, Number(h[0]));
      assert.equal(out.unpaddedWidth, Number(w[0]));
      assert.equal(out.scaleFactor, s[0]);
      report.push(`fuyu-tiny image_patches [1,40,192]: ${patchDiff}`);
      report.push(`fuyu-tiny image_processor.images [3,40,64]: ${paddedDiff}`);
      assert.ok(patchDiff <= TOLERANCE && paddedDiff <= TOLERANCE, `${patchDiff} / ${paddedDiff}`);
    });
  });

  describe('geometry', () => {
    const flat = (w: number, h: number): RgbImage => ({ width: w, height: h, data: new Uint8Array(w * h * 3).fill(100) });

    it('CLIP: resize + centre crop, mapped back to the source', () => {
      const out = preprocess(flat(70, 45), { image_processor_type: 'CLIPImageProcessor', size: { shortest_edge: 32 }, crop_size: { height: 32, width: 32 } });
      assert.equal(out.resizedWidth, 49);
      assert.equal(out.resizedHeight, 32);
      assert.deepEqual(out.crop, { x: 8, y: 0, width: 32, height: 32 });
      assert.deepEqual(out.sourceBox, { x: (8 * 70) / 49, y: 0, width: (32 * 70) / 49, height: 45 });
      assert.deepEqual(outputToSource(out, 32, 32), { x: (40 * 70) / 49, y: 45 });
    });

    it('CLIP: a crop larger than the image pads with zeros around it (floor offsets)', () => {
      // 3×2 image, no resize, crop 4×4: offsets floor(−1/2) = −1 on both axes.
      const img: RgbImage = { width: 3, height: 2, data: new Uint8Array(18).fill(255) };
      const out = preprocess(img, {
        image_processor_type: 'CLIPImageProcessor', do_resize: false, crop_size: 4, do_normalize: false,
      });
      assert.deepEqual(out.crop, { x: -1, y: -1, width: 4, height: 4 });
      const plane = [...out.pixelValues.subarray(0, 16)];
      assert.deepEqual(plane, [0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0]);
    });

    it('ViT: exact resize, the whole image', () => {
      const out = preprocess(flat(451, 300), { image_processor_type: 'ViTImageProcessor', size: { height: 32, width: 32 } });
      assert.deepEqual(out.shape, [1, 3, 32, 32]);
      assert.deepEqual(out.sourceBox, { x: 0, y: 0, width: 451, height: 300 });
    });

    it('Fuyu: output window reaches into the padding', () => {
      const out = preprocessFuyu(flat(90, 60), { image_processor_type: 'FuyuImageProcessor', size: { height: 40, width: 64 }, patch_size: { height: 8, width: 8 } });
      assert.equal(out.unpaddedWidth, 60);
      assert.deepEqual(out.crop, { x: 0, y: 0, width: 64, height: 40 });
      assert.deepEqual(out.sourceBox, { x: 0, y: 0, width: 96, height: 60 });
    });
  });

  describe('size rules', () => {
    it('CLIP shortest edge multiplies first, divides once, truncates', () => {
      // 224·61/56 = 244 exactly; 224·(61/56) would give 243.99999999999997 → 243.
      assert.deepEqual(shortestEdgeSize(61, 56, 224), [244, 224]);
      assert.deepEqual(shortestEdgeSize(56, 61, 224), [224, 244]);
      assert.deepEqual(shortestEdgeSize(45, 70, 32), [32, 49]);
      assert.deepEqual(shortestEdgeSize(50, 50, 32), [32, 32]);
    });

    it('Fuyu shrinks only when too large, in HF double arithmetic', () => {
      assert.deepEqual(fitWithinSize(1000, 1500, 1080, 1920), [1000, 1500]);
      assert.deepEqual(fitWithinSize(2140, 1000, 1080, 1920), [1079, 504]);
      assert.deepEqual(fitWithinSize(60, 90, 40, 64), [40, 60]);
    });
  });

  describe('config resolution', () => {
    it('applies HF defaults per processor', () => {
      const vit = resolveImageProcessorConfig({ image_processor_type: 'ViTImageProcessor' });
      assert.deepEqual(vit.resize, { kind: 'exact', height: 224, width: 224 });
      assert.equal(vit.resample, 'bilinear');
      assert.deepEqual(vit.normalize, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
      assert.equal(vit.rescaleFactor, 1 / 255);
      assert.equal(vit.centerCrop, null);

      const clip = resolveImageProcessorConfig({ feature_extractor_type: 'CLIPFeatureExtractor' });
      assert.deepEqual(clip.resize, { kind: 'shortestEdge', shortestEdge: 224 });
      assert.equal(clip.resample, 'bicubic');
      assert.deepEqual(clip.centerCrop, { height: 224, width: 224 });
      assert.deepEqual(clip.normalize!.mean, [0.48145466, 0.4578275, 0.40821073]);

      const fuyu = resolveImageProcessorConfig({ image_processor_type: 'FuyuImageProcessor', resample: 3 });
      assert.deepEqual(fuyu.resize, { kind: 'fitWithin', height: 1080, width: 1920 });
      assert.equal(fuyu.resample, 'bilinear', 'HF never passes the configured resample to the Fuyu resize');
      assert.deepEqual(fuyu.pad, { height: 1080, width: 1920, value: 1 });
      assert.deepEqual(fuyu.patchSize, { height: 30, width: 30 });
    });

    it('reads legacy int sizes as HF get_size_dict does', () => {
      // google/vit-base-patch16-224 and openai/clip-vit-base-patch32 ship these.
      const vit = resolveImageProcessorConfig({ feature_extractor_type: 'ViTFeatureExtractor', size: 224 });
      assert.deepEqual(vit.resize, { kind: 'exact', height: 224, width: 224 });
      const clip = resolveImageProcessorConfig({ feature_extractor_type: 'CLIPFeatureExtractor', size: 224, crop_size: 224 });
      assert.deepEqual(clip.resize, { kind: 'shortestEdge', shortestEdge: 224 });
      assert.deepEqual(clip.centerCrop, { height: 224, width: 224 });
      const clipHW = resolveImageProcessorConfig({ image_processor_type: 'CLIPImageProcessor', size: { height: 64, width: 48 } });
      assert.deepEqual(clipHW.resize, { kind: 'exact', height: 64, width: 48 });
    });

    it('treats a null flag as off (HF None) and a null value as the default', () => {
      const r = resolveImageProcessorConfig({ image_processor_type: 'ViTImageProcessor', do_resize: null, image_mean: null });
      assert.equal(r.resize, null);
      assert.deepEqual(r.normalize!.mean, [0.5, 0.5, 0.5]);
    });

    it('uses the kind option when the config names no class', () => {
      assert.equal(resolveImageProcessorConfig({}, { kind: 'clip' }).kind, 'clip');
    });

    it('gives UserErrors naming the file for bad configs', () => {
      // Parsed JSON is untyped: these are what users' files can hold.
      const bad: [object, RegExp][] = [
        [{}, /does not say which image processor/],
        [{ image_processor_type: 'SiglipImageProcessor' }, /unsupported image processor "SiglipImageProcessor"/],
        [{ image_processor_type: 'ViTImageProcessor', image_mean: [0.5, 0.5] }, /"image_mean"/],
        [{ image_processor_type: 'ViTImageProcessor', image_std: [0.5, 0, 0.5] }, /"image_std"/],
        [{ image_processor_type: 'ViTImageProcessor', size: { shortest_edge: 224 } }, /"size"/],
        [{ image_processor_type: 'CLIPImageProcessor', size: -3 }, /"size"/],
        [{ image_processor_type: 'CLIPImageProcessor', resample: 9 }, /"resample"/],
        [{ image_processor_type: 'ViTImageProcessor', do_resize: 'yes' }, /"do_resize"/],
        [{ image_processor_type: 'FuyuImageProcessor', padding_mode: 'reflect' }, /padding_mode/],
      ];
      for (const [config, pattern] of bad) {
        assert.throws(
          () => resolveImageProcessorConfig(config as ImageProcessorConfig, { file: 'models/x/preprocessor_config.json' }),
          (e: unknown) => e instanceof UserError && pattern.test(e.message) && e.message.startsWith('models/x/preprocessor_config.json: '),
          JSON.stringify(config),
        );
      }
    });

    it('refuses an image that resizes to nothing', () => {
      const sliver: RgbImage = { width: 4000, height: 1, data: new Uint8Array(12000) };
      assert.throws(
        () => preprocessFuyu(sliver, { image_processor_type: 'FuyuImageProcessor' }, { file: 'sliver.png' }),
        (e: unknown) => e instanceof UserError && /sliver\.png/.test(e.message),
      );
    });
  });
});
