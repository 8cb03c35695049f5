import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { filterTiles, patchResponses, rankByEnergy, readPatchEmbeddingFilters, vectorTile, type PatchEmbeddingFilters } from '../../../src/core/analysis/patch-embedding';
import { readPositionTable } from '../../../src/core/analysis/position-embedding';
import { readSafetensorsAll } from '../../../src/core/io/safetensors';
import { openModel } from '../../../src/core/models/runner';
import { GOLDEN, expectClose } from '../parity';

describe('patch-embedding filters', () => {
  it('tiles: per-filter min → 0 and max → 255 (minmax), or 0 → 128 and ±max|w| → 0/255 (symmetric)', () => {
    // p = 1: one pixel per tile, its R, G, B being the filter's three values.
    const values = [-1, 0, 3, /* second filter = first × 10 */ -10, 0, 30, /* constant */ 2, 2, 2];
    const filters: PatchEmbeddingFilters = { count: 3, patchSize: 1, weight: Float32Array.from(values), bias: undefined, tensor: 't' };
    const minmax = filterTiles(filters, 'minmax').map((t) => Array.from(t.data));
    assert.deepEqual(minmax, [[0, 64, 255], [0, 64, 255], [128, 128, 128]]); // 255·1/4 = 63.75
    const symmetric = filterTiles(filters, 'symmetric').map((t) => Array.from(t.data));
    assert.deepEqual(symmetric, [[85, 128, 255], [85, 128, 255], [255, 255, 255]]); // 127.5 − 127.5/3 = 85
  });

  it('tiles lay out [3, p, p] channel planes as interleaved RGB pixels', () => {
    // p = 2: R plane 0…3, G plane all 0, B plane 3…0.
    const tile = vectorTile([0, 1, 2, 3, 0, 0, 0, 0, 3, 2, 1, 0], 0, 2, 'minmax');
    assert.deepEqual(Array.from(tile.data), [0, 0, 255, 85, 0, 170, 170, 0, 85, 255, 0, 0]);
  });

  it('response maps are the conv output of the model: hidden_states.0 minus [CLS] and position embeddings (vit-tiny golden)', async () => {
    const dir = path.join(GOLDEN, 'vit-tiny');
    const loaded = await openModel(dir);
    const filters = await readPatchEmbeddingFilters(loaded);
    assert.deepEqual([filters.count, filters.patchSize], [32, 4]);
    const pixels = (await readSafetensorsAll(path.join(dir, 'square.inputs.safetensors'))).get('pixel_values')!;
    const h0 = (await readSafetensorsAll(path.join(dir, 'square.outputs.safetensors'))).get('hidden_states.0')!.data as Float32Array; // [1, 65, 32]
    const positions = await readPositionTable(loaded);
    const responses = patchResponses(pixels.data as Float32Array, 32, 32, filters);
    assert.deepEqual([responses.rows, responses.cols], [8, 8]);
    const D = 32;
    const expected = new Float32Array(D * 64);
    for (let p = 0; p < 64; p++) for (let d = 0; d < D; d++) expected[d * 64 + p] = h0[(1 + p) * D + d]! - positions.table[p * D + d]!;
    expectClose('hidden_states.0 (conv part)', responses.maps, expected);
  });

  it('drops pixels past the last whole patch and ranks maps by mean squared response', () => {
    // One filter that sums the red plane of a 2×2 patch, one that is zero; a 5×4 image → 2×2 patches.
    const filters: PatchEmbeddingFilters = { count: 2, patchSize: 2, weight: Float32Array.from([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, ...new Array(12).fill(0)]), bias: Float32Array.from([0, 0.5]), tensor: 't' };
    const H = 5;
    const W = 4;
    const pixels = new Float32Array(3 * H * W);
    for (let i = 0; i < H * W; i++) pixels[i] = i; // red = raster index
    const r = patchResponses(pixels, H, W, filters);
    assert.deepEqual([r.rows, r.cols], [2, 2]);
    assert.deepEqual(Array.from(r.maps), [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15, 0.5, 0.5, 0.5, 0.5]);
    const ranked = rankByEnergy(r);
    assert.deepEqual(ranked.map((e) => e.channel), [0, 1]);
    assert.equal(ranked[1]!.energy, 0.25);
    assert.equal(ranked[0]!.energy, (10 ** 2 + 18 ** 2 + 42 ** 2 + 50 ** 2) / 4);
  });

  it('reads CLIP (no bias) and Fuyu (Linear on HWC patches) filters in the same [D, 3, p, p] form', async () => {
    const clip = await readPatchEmbeddingFilters(await openModel(path.join(GOLDEN, 'clip-tiny')));
    assert.equal(clip.bias, undefined);
    assert.equal(clip.weight.length, clip.count * 3 * clip.patchSize ** 2);
    const fuyuLoaded = await openModel(path.join(GOLDEN, 'fuyu-tiny'));
    const fuyu = await readPatchEmbeddingFilters(fuyuLoaded);
    const p = fuyu.patchSize;
    const linear = await fuyuLoaded.checkpoint.withPrefixes(['', 'model.', 'language_model.']).readF32('vision_embed_tokens.weight');
    // Filter 3, channel 2 (blue), pixel (y 1, x 5): linear column (y·p + x)·3 + channel.
    assert.equal(fuyu.weight[(3 * 3 + 2) * p * p + 1 * p + 5], linear[3 * p * p * 3 + (1 * p + 5) * 3 + 2]);
  });
});
