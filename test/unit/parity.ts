/** Comparison against the golden fixtures with DESIGN §3's tolerances. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';

export const GOLDEN = path.join(__dirname, '..', 'fixtures', 'golden');
/** Real photographs for demos and tests (test/fixtures/photos). */
export const PHOTOS = path.join(__dirname, '..', 'fixtures', 'photos');

/** DESIGN §3: logits/embeddings 1e-4 abs, attentions 1e-5 abs, hidden states 1e-4·max(1,|v|), pixels 1e-5. */
export function toleranceFor(name: string): { atol: number; relative: boolean } {
  if (/attentions/.test(name)) return { atol: 1e-5, relative: false };
  if (/hidden_states/.test(name)) return { atol: 1e-4, relative: true };
  if (/pixel_values|image_patches/.test(name)) return { atol: 1e-5, relative: false };
  return { atol: 1e-4, relative: false };
}

/** Asserts equal element counts and every |a − e| within the tolerance for `name`; returns the worst difference. */
export function expectClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, `${name}: ${actual.length} values, expected ${expected.length}`);
  const { atol, relative } = toleranceFor(name);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const diff = Math.abs(actual[i]! - e);
    const bound = relative ? atol * Math.max(1, Math.abs(e)) : atol;
    if (!(diff <= bound)) assert.fail(`${name}[${i}]: got ${actual[i]}, expected ${e} (|diff| ${diff} > ${bound})`);
    worst = Math.max(worst, diff);
  }
  return worst;
}
