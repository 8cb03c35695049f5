import * as assert from 'node:assert/strict';
import { layerRow, tokenRow } from '../../../src/shared/attention-rows';
import { colormapTable, formatValue, levelOf, mapRange, paintValues, valueRange } from '../../../src/shared/colormap';
import { gridRect, hitTestPatch, hitTestTile, patchRect, patchToken, tokenPatch, type InputPlacement, type TokenGrid } from '../../../src/shared/patch-geometry';

describe('patch grid geometry', () => {
  // chelsea.jpg (451×300) resized to 32×32 by ViTImageProcessor: patches of 4 px are 56.375 × 37.5 source px.
  const vitGrid: TokenGrid = { inputWidth: 32, inputHeight: 32, patchSize: 4, rows: 8, cols: 8, prefixTokens: 1, tokens: 65 };
  const resized: InputPlacement = { sourceWidth: 451, sourceHeight: 300, sourceBox: { x: 0, y: 0, width: 451, height: 300 } };

  it('maps tokens to patches and back, after the prefix tokens', () => {
    const deit: TokenGrid = { ...vitGrid, prefixTokens: 2, tokens: 66 };
    assert.equal(patchToken(deit, 0, 0), 2);
    assert.equal(patchToken(deit, 1, 3), 2 + 8 + 3);
    assert.deepEqual(tokenPatch(deit, 13), { row: 1, col: 3 });
    assert.equal(tokenPatch(deit, 0), undefined, '[CLS]');
    assert.equal(tokenPatch(deit, 1), undefined, 'distillation token');
    assert.equal(tokenPatch(deit, 66), undefined, 'past the end');
    for (let t = 2; t < 66; t++) {
      const p = tokenPatch(deit, t)!;
      assert.equal(patchToken(deit, p.row, p.col), t);
    }
  });

  it('hit-tests points of a non-square image resized to a square input', () => {
    assert.deepEqual(hitTestPatch(resized, vitGrid, 0, 0), { row: 0, col: 0, token: 1 });
    assert.deepEqual(hitTestPatch(resized, vitGrid, 56.4, 37.5), { row: 1, col: 1, token: 10 });
    assert.deepEqual(hitTestPatch(resized, vitGrid, 56.3, 37.4), { row: 0, col: 0, token: 1 });
    assert.deepEqual(hitTestPatch(resized, vitGrid, 450.9, 299.9), { row: 7, col: 7, token: 64 });
    assert.equal(hitTestPatch(resized, vitGrid, 451, 10), undefined, 'the right edge is outside (half-open)');
    assert.equal(hitTestPatch(resized, vitGrid, -0.1, 10), undefined);
    assert.deepEqual(patchRect(resized, vitGrid, 1, 2), { x: 2 * 56.375, y: 37.5, width: 56.375, height: 37.5 });
  });

  it('leaves out the pixels past the last whole patch (input not a multiple of the patch size)', () => {
    // do_resize off, a 50×42 image: 12×10 patches of 4 px cover 48×40 px.
    const grid: TokenGrid = { inputWidth: 50, inputHeight: 42, patchSize: 4, rows: 10, cols: 12, prefixTokens: 1, tokens: 121 };
    const placement: InputPlacement = { sourceWidth: 50, sourceHeight: 42, sourceBox: { x: 0, y: 0, width: 50, height: 42 } };
    assert.deepEqual(gridRect(placement, grid), { x: 0, y: 0, width: 48, height: 40 });
    assert.deepEqual(hitTestPatch(placement, grid, 47.9, 39.9), { row: 9, col: 11, token: 120 });
    assert.equal(hitTestPatch(placement, grid, 48.5, 5), undefined);
    assert.equal(hitTestPatch(placement, grid, 5, 41), undefined);
  });

  it('follows a centre crop (the input window starts inside the source)', () => {
    // CLIP-style: 300×200 → shortest edge 32 → 48×32, crop 32×32 at x = 8 (resized) = 75 source px.
    const grid: TokenGrid = { inputWidth: 32, inputHeight: 32, patchSize: 8, rows: 4, cols: 4, prefixTokens: 1, tokens: 17 };
    const placement: InputPlacement = { sourceWidth: 300, sourceHeight: 200, sourceBox: { x: 50, y: 0, width: 200, height: 200 } };
    assert.equal(hitTestPatch(placement, grid, 49, 10), undefined, 'left of the crop');
    assert.deepEqual(hitTestPatch(placement, grid, 50, 0), { row: 0, col: 0, token: 1 });
    assert.deepEqual(hitTestPatch(placement, grid, 249, 199), { row: 3, col: 3, token: 16 });
    assert.deepEqual(patchRect(placement, grid, 0, 1), { x: 100, y: 0, width: 50, height: 50 });
  });

  it('hit-tests the thumbnail tiles, gaps included', () => {
    const layout = { columns: 5, rows: 3, tileWidth: 20, tileHeight: 10, gap: 2, offsetX: 30, offsetY: 16 };
    assert.deepEqual(hitTestTile(layout, 30, 16), { row: 0, column: 0 });
    assert.deepEqual(hitTestTile(layout, 30 + 22 * 4 + 19, 16 + 12 * 2 + 9), { row: 2, column: 4 });
    assert.equal(hitTestTile(layout, 30 + 21, 20), undefined, 'in the gap');
    assert.equal(hitTestTile(layout, 29, 20), undefined, 'on the labels');
    assert.equal(hitTestTile(layout, 30 + 22 * 5, 20), undefined, 'past the last column');
  });
});

describe('attention rows', () => {
  // 2 heads, 3 tokens: head h, row r, column c holds 100h + 10r + c.
  const layer = Float32Array.from({ length: 18 }, (_, i) => 100 * Math.floor(i / 9) + 10 * Math.floor((i % 9) / 3) + (i % 3));

  it('reads one head\'s row and the mean over heads from a layer', () => {
    assert.deepEqual(Array.from(layerRow(layer, 2, 3, 1, 2)), [120, 121, 122]);
    assert.deepEqual(Array.from(layerRow(layer, 2, 3, 'mean', 0)), [50, 51, 52]);
  });

  it('reads token rows [layers, heads, tokens]', () => {
    const rows = Float32Array.from([1, 2, 3, 3, 4, 5, /* layer 1 */ 7, 7, 7, 9, 9, 9]);
    assert.deepEqual(Array.from(tokenRow(rows, 2, 3, 0, 1)), [3, 4, 5]);
    assert.deepEqual(Array.from(tokenRow(rows, 2, 3, 1, 'mean')), [8, 8, 8]);
  });
});

describe('colour maps', () => {
  it('has 256 opaque levels from the first to the last stop', () => {
    const viridis = colormapTable('viridis');
    assert.equal(viridis.length, 1024);
    assert.deepEqual(Array.from(viridis.subarray(0, 4)), [68, 1, 84, 255]);
    assert.deepEqual(Array.from(viridis.subarray(1020)), [253, 231, 37, 255]);
    assert.deepEqual(Array.from(colormapTable('gray').subarray(512, 516)), [128, 128, 128, 255]);
  });

  it('maps values into the range, clamped, with a flat range in the middle', () => {
    assert.equal(levelOf(0, { min: 0, max: 1 }), 0);
    assert.equal(levelOf(1, { min: 0, max: 1 }), 255);
    assert.equal(levelOf(0.5, { min: 0, max: 1 }), 128);
    assert.equal(levelOf(2, { min: 0, max: 1 }), 255);
    assert.equal(levelOf(-2, { min: 0, max: 1 }), 0);
    assert.equal(levelOf(3, { min: 3, max: 3 }), 128);
  });

  it('finds the range of the patch tokens only and paints them', () => {
    const row = Float32Array.from([0.9, 0.25, 0.5, 0.75]); // [CLS] first
    const range = valueRange(row, 1);
    assert.deepEqual(range, { min: 0.25, max: 0.75 });
    const rgba = new Uint8ClampedArray(12);
    paintValues(rgba, row, 1, 3, range, colormapTable('gray'), 200);
    assert.deepEqual(Array.from(rgba), [0, 0, 0, 200, 128, 128, 128, 200, 255, 255, 255, 200]);
    assert.deepEqual(valueRange([], 0), { min: 0, max: 0 });
  });

  it('leaves the source patch out of its own map\'s range, but not [CLS]', () => {
    const row = [0.5, 0.1, 0.9, 0.3]; // [CLS], then patches; token 2 is the source
    assert.deepEqual(mapRange(row, 1, 2), { min: 0.1, max: 0.3 });
    assert.deepEqual(mapRange(row, 1, 0), { min: 0.1, max: 0.9 }, 'from [CLS]: every patch counts');
    assert.deepEqual(mapRange([0.5, 0.7], 1, 1), { min: 0.7, max: 0.7 }, 'a single patch cannot be left out');
  });

  it('formats colour-bar ends compactly', () => {
    assert.equal(formatValue(0), '0');
    assert.equal(formatValue(0.123456), '0.123');
    assert.equal(formatValue(0.0000123), '1.23e-5');
  });
});
