import * as assert from 'node:assert/strict';
import { interpolateBicubicTorch } from '../../../src/core/image/interpolate.js';
import { goldenTensor, maxAbsDiff } from './golden.js';

describe('image/interpolate (torch bicubic, align_corners=False)', () => {
  it('is an exact identity when the size is unchanged', () => {
    const src = Float32Array.from({ length: 5 * 4 * 3 }, (_, i) => Math.sin(i) * 10);
    assert.deepEqual(interpolateBicubicTorch(src, 5, 4, 3, 5, 4), src);
  });

  it('keeps a constant grid constant, up and down', () => {
    const src = new Float32Array(6 * 6 * 2).fill(0.375);
    for (const [h, w] of [[9, 13], [3, 2], [1, 1], [6, 11]] as const) {
      const out = interpolateBicubicTorch(src, 6, 6, 2, h, w);
      assert.equal(out.length, h * w * 2);
      for (const v of out) assert.ok(Math.abs(v - 0.375) < 1e-7, `${h}×${w}: ${v}`);
    }
  });

  it('1-D worked example: [0, 1] → 4 samples', () => {
    // scale 2/4: sources −0.25, 0.25, 0.75, 1.25; taps clamped to [0, 1], A = −0.75.
    // Output 0: i0 = −1, t = 0.75 → only the last tap reads 1: c2(2 − 0.75) = c2(1.25)
    //   = ((A·1.25 − 5A)·1.25 + 8A)·1.25 − 4A = −0.10546875.
    // Output 1: i0 = 0, t = 0.25 → c1(0.75) + c2(1.75) = 0.26171875 − 0.03515625 = 0.2265625.
    // Outputs 2, 3 mirror them around 0.5. (torch gives [-0.1055, 0.2266, 0.7734, 1.1055].)
    const out = interpolateBicubicTorch(Float32Array.from([0, 1]), 1, 2, 1, 1, 4);
    assert.deepEqual([...out], [-0.10546875, 0.2265625, 0.7734375, 1.10546875]);
    // The same along the other axis, and with channels interleaved (layout [H, W, C]).
    const col = interpolateBicubicTorch(Float32Array.from([0, 10, 1, 20]), 2, 1, 2, 4, 1);
    // Channel 1 is 10 + 10·(channel 0's input), and the weights sum to 1.
    assert.deepEqual([...col], [-0.10546875, 8.9453125, 0.2265625, 12.265625, 0.7734375, 17.734375, 1.10546875, 21.0546875]);
  });

  it('matches PyTorch on vit-interp (8×8 position grid → 12×10 and 10×10)', async () => {
    // hidden_states.0[1 + p] = patch_embedding(p) + interpolated position embedding(p), so the
    // fixture gives torch's interpolation once the (exactly computable) conv is subtracted.
    const weight = (await goldenTensor('vit-interp/model.safetensors', 'vit.embeddings.patch_embeddings.projection.weight')).data as Float32Array;
    const bias = (await goldenTensor('vit-interp/model.safetensors', 'vit.embeddings.patch_embeddings.projection.bias')).data as Float32Array;
    const pos = (await goldenTensor('vit-interp/model.safetensors', 'vit.embeddings.position_embeddings')).data as Float32Array;
    const D = 32;
    const P = 4;
    for (const [name, H, W] of [['rect48x40', 48, 40], ['square40', 40, 40]] as const) {
      const pixels = (await goldenTensor(`vit-interp/${name}.inputs.safetensors`, 'pixel_values')).data as Float32Array;
      const hidden = (await goldenTensor(`vit-interp/${name}.outputs.safetensors`, 'hidden_states.0')).data as Float32Array;
      const gh = H / P;
      const gw = W / P;
      const ours = interpolateBicubicTorch(pos.subarray(D), 8, 8, D, gh, gw);
      const torch = new Float64Array(gh * gw * D);
      for (let py = 0; py < gh; py++) {
        for (let px = 0; px < gw; px++) {
          for (let o = 0; o < D; o++) {
            let conv = bias[o]!;
            for (let c = 0; c < 3; c++) {
              for (let ky = 0; ky < P; ky++) {
                for (let kx = 0; kx < P; kx++) {
                  conv += weight[((o * 3 + c) * P + ky) * P + kx]! * pixels[(c * H + py * P + ky) * W + px * P + kx]!;
                }
              }
            }
            const p = py * gw + px;
            torch[p * D + o] = hidden[(1 + p) * D + o]! - conv;
          }
        }
      }
      const diff = maxAbsDiff(ours, torch);
      console.log(`      vit-interp/${name}: position embeddings 8×8 → ${gh}×${gw}, max |ours − torch| = ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-5, `${name}: ${diff}`);
    }
  });

  it('rejects mismatched sizes', () => {
    assert.throws(() => interpolateBicubicTorch(new Float32Array(5), 2, 2, 1, 3, 3), RangeError);
    assert.throws(() => interpolateBicubicTorch(new Float32Array(4), 2, 2, 1, 0, 3), RangeError);
  });
});
