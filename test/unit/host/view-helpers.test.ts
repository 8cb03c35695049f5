import * as assert from 'node:assert/strict';
import { gridHeatmap, visualSearch, type NodeDetection, type SearchModel, type SearchNode } from '../../../src/core/search/vstar';
import { toReplay } from '../../../src/host/search-replay';
import { attentionDistanceCard, clipCard, clipMatrixCard, clipTextAttentionCard, fuyuAttentionCard, fuyuCard, fuyuSequenceCard, convolutionCard } from '../../../src/shared/method-cards';
import { cellColors } from '../../../src/shared/colormap';
import { parseHostToInspector } from '../../../src/shared/protocol';
import { displayToken, paperGridChoices, parseLabels, relativeScores, resizeKernelValues, scaleBox, standaloneSvg } from '../../../src/shared/view-helpers';

describe('inspector tab helpers', () => {
  it('offers the trained grid, the input\'s, and resized ones for the ViT-paper tab, each once and within bounds', () => {
    const sizes = (t: { rows: number; cols: number }, i: { rows: number; cols: number }) => paperGridChoices(t, i).map((c) => `${c.size.rows}x${c.size.cols}`);
    assert.deepEqual(sizes({ rows: 14, cols: 14 }, { rows: 14, cols: 14 }), ['14x14', '7x7', '21x21', '28x28']);
    assert.deepEqual(sizes({ rows: 14, cols: 14 }, { rows: 10, cols: 12 }), ['14x14', '10x12', '7x7', '21x21', '28x28']);
    assert.deepEqual(sizes({ rows: 24, cols: 24 }, { rows: 24, cols: 24 }), ['24x24', '12x12'], 'ViT-L/14@336: 36 and 48 exceed MAX_PAPER_GRID');
    assert.match(paperGridChoices({ rows: 8, cols: 8 }, { rows: 8, cols: 8 })[0]!.label, /^trained 8×8$/);
  });


  it('parses labels one per line or comma-separated, trimmed, without empties or repeats', () => {
    assert.deepEqual(parseLabels(' a cat \n\na dog, a cat,\n a red car '), ['a cat', 'a dog', 'a red car']);
    assert.deepEqual(parseLabels('  \n , '), []);
    assert.equal(parseLabels(Array.from({ length: 100 }, (_, i) => `l${i}`).join('\n')).length, 64);
  });

  it('resizes a custom kernel keeping its centre (3 → 5 pads, 5 → 3 crops back)', () => {
    const k3 = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const k5 = resizeKernelValues(k3, 5);
    assert.deepEqual(k5, [0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 4, 5, 6, 0, 0, 7, 8, 9, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(resizeKernelValues(k5, 3), k3);
    assert.deepEqual(resizeKernelValues(k3, 3), k3);
  });

  it('scales boxes to the stage and scores to 0…1 of their own range', () => {
    assert.deepEqual(scaleBox({ x: 10, y: 20, width: 30, height: 40 }, 0.5), { x: 5, y: 10, width: 15, height: 20 });
    assert.deepEqual(relativeScores([0.2, 0.6, 0.4]), [0, 1, 0.5000000000000001]);
    assert.deepEqual(relativeScores([0.3, 0.3]), [1, 1]);
    assert.deepEqual(relativeScores([]), []);
  });

  it('makes the report\'s inline SVG a standalone document, once', () => {
    const once = standaloneSvg('<svg class="plot" width="5"><text>1</text></svg>');
    assert.match(once, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" font-family="sans-serif" font-size="12" class="plot"/);
    assert.equal(standaloneSvg(once), once);
  });

  it('method cards state the operation and parameters used', () => {
    const conv = convolutionCard({ kernelName: 'Sobel x', operation: 'correlation', border: 'zero', channels: 'rgb', stacked: 'box blur 3×3', mapping: 'signed', width: 320, height: 200 });
    assert.match(conv.formulas[0]!, /f\(x \+ u, y \+ v\)/);
    assert.ok(conv.notes.some((n) => n.includes('then box blur 3×3')));
    assert.ok(conv.notes.some((n) => n.includes('pixels outside the image are 0')));
    assert.match(convolutionCard({ kernelName: 'k', operation: 'convolution', border: 'reflect', channels: 'luminance', stacked: undefined, mapping: 'clamp', width: 1, height: 1 }).formulas[0]!, /f\(x − u, y − v\)/);
    assert.ok(clipCard('a photo of {}.').notes[0]!.includes('"a photo of {}."'));
    const fuyu = fuyuCard({ weights: 'int4', maxNewTokens: 7, patchRows: 5, patchCols: 8, layer: 1 });
    assert.ok(fuyu.notes.some((n) => n.includes('at most 7 new tokens') && n.includes('weights int4')));
    assert.ok(fuyu.notes.some((n) => n.includes('5×8 patches, 5 image-newline tokens')));
    assert.ok(attentionDistanceCard(16).notes.some((n) => n.includes('excluded as a query and as a key') && n.includes('renormalised')));
    assert.ok(attentionDistanceCard(16).notes.some((n) => n.includes('This image only')));
    assert.ok(attentionDistanceCard(16, 12).notes.some((n) => n.includes('Averaged over 12 images')));
    assert.match(attentionDistanceCard(16, 12).formulas[0]!, /mean_images/);
    const matrix = clipMatrixCard('a photo of {}', 14.3);
    assert.match(matrix.formulas[0]!, /100 · cos/);
    assert.ok(matrix.notes.some((n) => n.includes('logits_per_image') && n.includes('14.30')));
    const text = clipTextAttentionCard(1, 'mean', 5);
    assert.ok(text.notes.some((n) => n.includes('Layer 1, mean over heads') && n.includes('causal')));
    assert.ok(text.notes.some((n) => n.includes('row 5, the end-of-text token')));
    // The report's two Fuyu cards make up the view's one.
    const p = { weights: 'int8', maxNewTokens: 3, patchRows: 5, patchCols: 8 };
    assert.deepEqual(fuyuCard(p).notes, [...fuyuSequenceCard(p).notes, ...fuyuAttentionCard(p).notes]);
    assert.ok(fuyuAttentionCard(p).notes[0]!.includes('beginning-of-answer token'));
  });

  it('shows BPE tokens as read, and colours matrix cells with readable text', () => {
    assert.equal(displayToken('cat</w>'), 'cat');
    assert.equal(displayToken('<|endoftext|>'), '<|endoftext|>');
    assert.equal(displayToken('Ġdog'), ' dog');
    const low = cellColors(0, { min: 0, max: 1 }, 'viridis');
    const high = cellColors(1, { min: 0, max: 1 }, 'viridis');
    assert.equal(low.background, 'rgb(68, 1, 84)');
    assert.equal(low.text, '#fff');
    assert.equal(high.background, 'rgb(253, 231, 37)');
    assert.equal(high.text, '#000');
  });

  it('turns a recorded V* search into a replay the webview accepts', async () => {
    // A deterministic model: the cue is all in the top-left quarter; nothing is ever detected.
    const model: SearchModel = {
      async detect(node: SearchNode): Promise<NodeDetection> {
        const { x, y, width, height } = node.box;
        return { cue: { rows: 2, cols: 2, xs: [x, x + width / 2, x + width], ys: [y, y + height / 2, y + height], values: [1, 0, 0, 0] }, detection: { box: node.box, score: 0.1 } };
      },
    };
    const result = await visualSearch(model, { width: 800, height: 600 }, 'thing', { cueThreshold: 0.5, cueThresholdMinimum: 0.5 });
    const replay = toReplay(result);
    assert.equal(replay.steps.length, result.steps.length);
    assert.ok(replay.steps.length >= 2);
    const first = replay.steps[0]!;
    assert.equal(first.kind, 'node');
    if (first.kind === 'node') {
      assert.deepEqual(first.node.box, { x: 0, y: 0, width: 800, height: 600 });
      assert.equal(first.children.length, 4);
      assert.equal(first.queue[0]!.id, first.children[0]!.id, 'the top-left child, holding all the cue, is next');
    }
    assert.equal(replay.steps.at(-1)!.kind, 'stop');
    const message = parseHostToInspector({ type: 'searchDone', searchId: 1, searches: [JSON.parse(JSON.stringify(replay))], stats: { runs: 1, crops: 1, ms: 1 }, answer: null });
    assert.ok(message, 'the replay passes the webview-side validation');
    assert.deepEqual(gridHeatmap({ x: 0, y: 0, width: 2, height: 2 }, 1, 1, [1]), { rows: 1, cols: 1, xs: [0, 2], ys: [0, 2], values: [1] });
  });
});
