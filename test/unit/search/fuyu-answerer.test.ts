import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { InferenceEngine } from '../../../src/core/engine/client';
import { UserError } from '../../../src/core/errors';
import { cropImage } from '../../../src/core/image/crop';
import { decodeImage } from '../../../src/core/image/decode';
import { preprocessFuyu } from '../../../src/core/image/preprocess';
import type { RgbImage } from '../../../src/core/image/types';
import type { FuyuPrompt, FuyuRunner, LoadedFuyu } from '../../../src/core/models/fuyu-runner';
import { ModelRunner, openModel } from '../../../src/core/models/runner';
import { searchForQuestion, type VisualAnswerer } from '../../../src/core/search/answer';
import { FuyuAnswerer, answerPrompt, parseTargetList, targetsPrompt } from '../../../src/core/search/fuyu-answerer';
import { gridHeatmap, type Box, type NodeDetection, type SearchModel, type SearchNode } from '../../../src/core/search/vstar';
import { GOLDEN, PHOTOS } from '../parity';

const box = (x: number, y: number, width: number, height: number): Box => ({ x, y, width, height });

describe('target lists from a model reply', () => {
  const cases: [string, string[]][] = [
    [' umbrella', ['umbrella']],
    // A few-shot continuation runs on into the next example: only the first line counts.
    [' red cup, laptop.\n\nQuestion: What is on the table?\nObjects: table', ['red cup', 'laptop']],
    ['Sorry, I can not answer the question. Some visual information about the following objects is missing or unclear: the woman\'s scarf, glove.', ["woman's scarf", 'glove']],
    ['Objects: The Cat and a dog', ['cat', 'dog']],
    ['1. cat 2. dog', ['cat', 'dog']],
    ['"mug"; mug; MUG / spoon', ['mug', 'spoon']],
    ['', []],
    ['\uFFFD\uFFFD\uFFFD', []],
    ['none', []],
    ['<0x04> ### ???', []],
    ['there is a small cup standing on the left side of the table', []],
    ['a, b, c, d, e, f, g, h, i, j', ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']],
  ];
  for (const [text, targets] of cases) {
    it(`${JSON.stringify(text)} → ${JSON.stringify(targets)}`, () => assert.deepEqual(parseTargetList(text), targets));
  }

  it('prompts: SPEC §7.4 few-shot for the targets; V*\'s focus prefix (no coordinates) and a final newline for the answer', () => {
    assert.equal(targetsPrompt('What colour\nis the cup?'), 'Question: What is the colour of the umbrella?\nObjects: umbrella\n\nQuestion: What colour is the cup?\nObjects:');
    const found = [
      { target: 'cup', status: 'found' as const, box: box(1, 2, 3, 4), score: 0.8, instances: [{ box: box(1, 2, 3, 4), score: 0.8 }] },
      { target: 'laptop', status: 'not-found' as const, box: null, score: null, instances: [] },
    ];
    assert.equal(answerPrompt('Is the cup left of the laptop?', found), 'Additional visual information to focus on: cup; laptop not existent in the image.\nIs the cup left of the laptop?\n');
    assert.equal(answerPrompt('What is this?', []), 'What is this?\n');
  });
});

describe('searchForQuestion: targets from the answering model, else the list', () => {
  const image: RgbImage = { width: 300, height: 200, data: new Uint8Array(300 * 200 * 3) };
  /** Finds "here" at the root, nothing else. */
  const searchModel: SearchModel = {
    async detect(node: SearchNode, target: string): Promise<NodeDetection> {
      return { cue: gridHeatmap(node.box, 1, 1, [0]), detection: target === 'here' ? { box: box(100, 50, 40, 30), score: 0.9 } : undefined };
    },
  };
  const scripted = (reply: string): VisualAnswerer & { asked: string[] } => {
    const asked: string[] = [];
    return {
      name: 'scripted',
      asked,
      async proposeTargets({ question }) {
        asked.push(`targets:${question}`);
        return { prompt: targetsPrompt(question), imageBox: box(0, 0, 300, 200), text: reply, targets: parseTargetList(reply) };
      },
      async answer({ found, zoom }) {
        asked.push(`answer:${found.map((f) => f.target).join(',')}:${JSON.stringify(zoom)}`);
        return { prompt: 'p', imageBox: zoom ?? box(0, 0, 300, 200), text: 'an answer' };
      },
    };
  };

  it('uses the model\'s targets when it names any, and answers on the zoom box', async () => {
    const answerer = scripted(' here, there');
    let negatives: readonly string[] = [];
    const done = await searchForQuestion('Where is it?', image, ['fallback'], (list) => ((negatives = list), searchModel), answerer);
    assert.equal(done.targetsFrom, 'model');
    assert.deepEqual(done.targets, ['here', 'there']);
    assert.deepEqual(negatives, ['here', 'there'], 'the search model is made for the searched targets');
    assert.deepEqual(done.results.map((r) => r.status), ['found', 'not-found']);
    // The found box (100…140) grown to 224 px wide about its centre: 8…232.
    assert.deepEqual(done.zoom, box(8, 0, 224, 200));
    assert.deepEqual(answerer.asked, ['targets:Where is it?', `answer:here,there:${JSON.stringify(box(8, 0, 224, 200))}`]);
    assert.equal(done.answer?.text, 'an answer');
  });

  it('falls back to the list when the reply names nothing usable, or when asked not to ask', async () => {
    const odd = await searchForQuestion('Where is it?', image, ['here'], () => searchModel, scripted('\uFFFD\uFFFD'));
    assert.equal(odd.targetsFrom, 'list');
    assert.deepEqual(odd.targets, ['here']);
    assert.equal(odd.proposal?.text, '\uFFFD\uFFFD');
    const answerer = scripted('there');
    const notAsked = await searchForQuestion('Where is it?', image, ['here'], () => searchModel, answerer, { askTargets: false });
    assert.equal(notAsked.proposal, null);
    assert.deepEqual(answerer.asked.map((a) => a.split(':')[0]), ['answer']);
    const noModel = await searchForQuestion('Where is it?', image, ['here'], () => searchModel, undefined);
    assert.equal(noModel.answer, null);
  });
});

describe('Fuyu as the answering model (tiny golden Fuyu: random weights, so the wiring only)', () => {
  const DIR = path.join(GOLDEN, 'fuyu-tiny');
  let engine: InferenceEngine;
  let loaded: LoadedFuyu;
  let runner: FuyuRunner;
  let image: RgbImage;
  const received: FuyuPrompt[] = [];

  before(async () => {
    engine = InferenceEngine.create({ threads: 1 });
    loaded = (await openModel(DIR)) as LoadedFuyu;
    assert.equal(loaded.kind, 'fuyu');
    runner = new ModelRunner(engine).fuyu(loaded);
    // Record what generation gets, then generate as usual.
    const generate = runner.generate.bind(runner);
    runner.generate = (prompt, options) => {
      received.push(prompt);
      return generate(prompt, options);
    };
    image = await decodeImage(path.join(PHOTOS, 'chelsea.jpg'));
  });
  after(() => engine.dispose());
  beforeEach(() => (received.length = 0));

  const textIds = (p: FuyuPrompt): number[] => p.layout.inputIds.slice(p.layout.textStart + 1, -1);
  const processed = (img: RgbImage) => preprocessFuyu(img, loaded.checkpoint.preprocessorConfig ?? {});

  it('asks for the targets on the whole image with the few-shot prompt, and parses the reply', async () => {
    const answerer = new FuyuAnswerer(runner);
    assert.equal(answerer.name, 'fuyu-tiny');
    const proposal = await answerer.proposeTargets({ question: 'What colour is the cat?', image });
    assert.equal(received.length, 1);
    assert.deepEqual(textIds(received[0]!), loaded.tokenizer.encode(targetsPrompt('What colour is the cat?')));
    assert.deepEqual(received[0]!.imagePatches, processed(image).imagePatches);
    assert.deepEqual(proposal.imageBox, box(0, 0, image.width, image.height));
    assert.deepEqual(proposal.targets, parseTargetList(proposal.text));
    // The tiny model's context (128) leaves 128 − 45 image tokens − 2 − 73 prompt tokens = 8 new tokens.
    assert.ok(proposal.text.length <= 8 * 16);
  });

  it('answers on the zoom crop of the found boxes: exactly those pixels reach Fuyu, with the focus prompt', async () => {
    const found = [{ target: 'cat', status: 'found' as const, box: box(200, 60, 120, 90), score: 0.8, instances: [{ box: box(200, 60, 120, 90), score: 0.8 }] }];
    const zoom = box(148, 38, 224, 134);
    const answer = await new FuyuAnswerer(runner).answer({ question: 'What colour is the cat?', image, found, zoom });
    assert.equal(received.length, 1);
    assert.deepEqual(received[0]!.imagePatches, processed(cropImage(image, zoom)).imagePatches);
    assert.notDeepEqual(received[0]!.imagePatches, processed(image).imagePatches, 'not the whole image');
    assert.deepEqual(textIds(received[0]!), loaded.tokenizer.encode(answerPrompt('What colour is the cat?', found)));
    assert.deepEqual(answer.imageBox, zoom);
    assert.equal(typeof answer.text, 'string');
  });

  it('a question too long for the context is refused with the model folder named', async () => {
    const long = 'What is the colour of the cat and the dog and the mouse and the house and the tree? '.repeat(3);
    await assert.rejects(new FuyuAnswerer(runner).proposeTargets({ question: long, image }), (err: unknown) => err instanceof UserError && err.message.includes(DIR) && /context/.test(err.message));
  });
});
