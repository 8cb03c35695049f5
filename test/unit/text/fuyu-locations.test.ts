import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../../../src/core/errors';
import { decodeFuyuAnswer, encodeFuyuPrompt } from '../../../src/core/text/fuyu-locations';
import { FuyuTokenizer } from '../../../src/core/text/fuyu-tokenizer';
import { GOLDEN } from '../parity';

const FILE = path.join(GOLDEN, 'fuyu-tiny', 'tokenizer.json');

/**
 * fuyu-tiny's tokenizer with the pieces "0"…"599" appended, as adept/fuyu-8b's vocabulary has
 * them (the tiny one has no number pieces). Ids of the numbers: base + n.
 */
function withNumbers(): { tokenizer: FuyuTokenizer; base: number } {
  const json = JSON.parse(fs.readFileSync(FILE, 'utf8')) as { model: { vocab: [string, number][] } };
  const base = json.model.vocab.length;
  for (let n = 0; n < 600; n++) json.model.vocab.push([String(n), -20]);
  return { tokenizer: FuyuTokenizer.fromJson(json, FILE), base };
}

describe('Fuyu location syntax: <box> and <point> in prompts and answers (SPEC §5.3)', () => {
  const { tokenizer, base } = withNumbers();
  const id = (token: string): number => tokenizer.tokenToId(token)!;

  it('a prompt without tags is tokenized as before', () => {
    const prompt = 'Generate a coco-style caption.\n';
    assert.deepEqual(encodeFuyuPrompt(tokenizer, prompt, 0.5), tokenizer.encode(prompt));
  });

  it('a box: its byte tokens around round(v / 2 · scale) for each of y1, x1, y2, x2; the text around it tokenized piece by piece', () => {
    // 0.75 · [388, 428, 404, 488] / 2 = [145.5, 160.5, 151.5, 183]: halves go to the even neighbour, as numpy rounds.
    const ids = encodeFuyuPrompt(tokenizer, 'OCR <box>388, 428, 404, 488</box> now', 0.75);
    assert.deepEqual(ids, [
      ...tokenizer.encode('OCR '),
      id('<0x00>'), base + 146, base + 160, base + 152, base + 183, id('<0x01>'),
      ...tokenizer.encode(' now'),
    ]);
  });

  it('a point: x, y between <0x02> and <0x03>; the kind follows the number of values', () => {
    assert.deepEqual(encodeFuyuPrompt(tokenizer, '<point>100, 40</point>', 1), [id('<0x02>'), base + 50, base + 20, id('<0x03>')]);
    // Two values inside <box> are a point, as the processor decides by count.
    assert.deepEqual(encodeFuyuPrompt(tokenizer, '<box>100, 40</box>', 1), [id('<0x02>'), base + 50, base + 20, id('<0x03>')]);
  });

  it('bad locations are clear errors', () => {
    assert.throws(() => encodeFuyuPrompt(tokenizer, '<box>1, 2, 3</box>', 1), (e: unknown) => e instanceof UserError && /has 3 values; a box has 4/.test(e.message));
    assert.throws(() => encodeFuyuPrompt(tokenizer, '<point>a, 2</point>', 1), (e: unknown) => e instanceof UserError && /"a", which is not a number/.test(e.message));
    assert.throws(() => encodeFuyuPrompt(tokenizer, '<point>5000, 2</point>', 1), (e: unknown) => e instanceof UserError && /no token "2500"/.test(e.message));
  });

  it('generated boxes and points come back in pixels of the original image: 2 · int(v / scale)', () => {
    const words = tokenizer.encode('the bus');
    const answer = [...words, id('<0x00>'), base + 146, base + 160, base + 152, base + 183, id('<0x01>'), ...tokenizer.encode('and'), id('<0x02>'), base + 5, base + 7, id('<0x03>')];
    assert.equal(decodeFuyuAnswer(tokenizer, answer, 0.75), 'the bus<box>388, 426, 404, 488</box> and<point>12, 18</point>');
    // An unclosed box (still streaming) and a tag run holding non-numbers are left as plain text.
    const open = [...words, id('<0x00>'), base + 146];
    assert.equal(decodeFuyuAnswer(tokenizer, open, 0.75), tokenizer.decode(open));
  });
});
