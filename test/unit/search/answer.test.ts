import * as assert from 'node:assert/strict';
import { foundTargets, searchTargets, targetsFromQuestion, zoomBox } from '../../../src/core/search/answer';
import { gridHeatmap, type Box, type NodeDetection, type SearchModel, type SearchNode } from '../../../src/core/search/vstar';

const box = (x: number, y: number, width: number, height: number): Box => ({ x, y, width, height });

describe('targets from a question (noun-phrase heuristic)', () => {
  const cases: [string, string[]][] = [
    ['What is the colour of the umbrella?', ['umbrella']],
    ["What is the color of the woman's scarf?", ["woman's scarf"]],
    ['Is the red cup on the left or right side of the laptop?', ['red cup', 'laptop']],
    ['What is the material of the glove? (A) rubber (B) cotton', ['glove']],
    ['How many people are there in the image?', ['people']],
    ['What is the man holding, and is the dog near the bicycle?', ['man', 'dog', 'bicycle']],
    // Limitation (no part-of-speech tags): a comparative joins the noun before it; the user edits the list.
    ['Is the dog bigger than the dog house?', ['dog bigger', 'dog house']],
    ['', []],
  ];
  for (const [question, targets] of cases) {
    it(`${JSON.stringify(question)} → ${JSON.stringify(targets)}`, () => assert.deepEqual(targetsFromQuestion(question), targets));
  }
});

describe('found targets and the zoom box', () => {
  /** Finds a target at the root when its name is "here", else nothing. */
  const model: SearchModel = {
    async detect(node: SearchNode, target: string): Promise<NodeDetection> {
      return { cue: gridHeatmap(node.box, 1, 1, [0]), detection: target === 'here' ? { box: box(100, 50, 40, 30), score: 0.9 } : undefined };
    },
  };

  it('one search per target, in order; not-found targets give no box', async () => {
    const steps: string[] = [];
    const results = await searchTargets(model, { width: 200, height: 200 }, ['here', 'missing'], { onStep: (t, s) => steps.push(`${t}:${s.kind}`) });
    assert.deepEqual(results.map((r) => [r.target, r.status]), [['here', 'found'], ['missing', 'not-found']]);
    assert.deepEqual(steps, ['here:node', 'missing:node', 'missing:stop']);
    assert.deepEqual(foundTargets(results), [
      { target: 'here', status: 'found', box: box(100, 50, 40, 30), score: 0.9, instances: [{ box: box(100, 50, 40, 30), score: 0.9 }] },
      { target: 'missing', status: 'not-found', box: null, score: null, instances: [] },
    ]);
  });

  it('the zoom box is the union of found boxes grown ×1.2 with sides ≥ min(224, image side); none found → null', () => {
    const found = [
      { target: 'a', status: 'found' as const, box: box(100, 100, 100, 50), score: 0.9, instances: [{ box: box(100, 100, 100, 50), score: 0.9 }] },
      { target: 'b', status: 'fallback' as const, box: box(400, 300, 100, 100), score: 0.4, instances: [{ box: box(400, 300, 100, 100), score: 0.4 }] },
    ];
    // union 100…500 × 100…400 → 480×360 about (300, 250)
    assert.deepEqual(zoomBox(found, { width: 1000, height: 800 }), box(60, 70, 480, 360));
    assert.deepEqual(zoomBox(found.slice(0, 1), { width: 1000, height: 200 }), box(38, 0, 224, 200));
    assert.equal(zoomBox([], { width: 10, height: 10 }), null);
  });
});
