import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../../src/core/errors';
import { Checkpoint } from '../../../src/core/io/checkpoint';
import { readSafetensorsAll } from '../../../src/core/io/safetensors';
import { ClipTokenizer, padBatch } from '../../../src/core/text/tokenizer';
import { GOLDEN } from '../parity';

interface Tokenization {
  cases: { text: string; input_ids: number[]; tokens: string[] }[];
}
const TINY = path.join(GOLDEN, 'clip-tiny');
const reference = JSON.parse(fs.readFileSync(path.join(TINY, 'tokenization.json'), 'utf8')) as Tokenization;
const NO_LIMIT = 1000;

let tmp: string;
before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-tok-'))));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of clip-tiny without the files in `drop`. */
function tinyWithout(name: string, drop: string[]): string {
  const dir = path.join(tmp, name);
  fs.cpSync(TINY, dir, { recursive: true });
  for (const f of drop) fs.rmSync(path.join(dir, f));
  return dir;
}

async function load(dir: string): Promise<ClipTokenizer | undefined> {
  return ClipTokenizer.fromCheckpoint(await Checkpoint.open(dir));
}

describe('ClipTokenizer', () => {
  const sources: [string, () => string][] = [
    ['tokenizer.json', () => TINY],
    ['vocab.json + merges.txt (no tokenizer.json)', () => tinyWithout('slow-files', ['tokenizer.json'])],
  ];
  for (const [source, dir] of sources) {
    it(`from ${source}: every reference text to exactly the reference ids and tokens`, async () => {
      const tokenizer = (await load(dir()))!;
      assert.ok(tokenizer.source.endsWith(source.split(' ')[0]!));
      for (const c of reference.cases) {
        const { ids, truncated } = tokenizer.encode(c.text, NO_LIMIT);
        assert.deepEqual(ids, c.input_ids, JSON.stringify(c.text));
        assert.deepEqual(tokenizer.tokens(ids), c.tokens);
        assert.equal(truncated, false);
      }
    });
  }

  it('special ids come from the tokenizer files', async () => {
    const tokenizer = (await load(TINY))!;
    const first = reference.cases[0]!.input_ids;
    assert.equal(tokenizer.bosId, first[0]);
    assert.equal(tokenizer.eosId, first.at(-1));
    assert.equal(tokenizer.padId, tokenizer.eosId); // pad_token is <|endoftext|>
  });

  it('cuts long texts to maxLength ids: the first maxLength − 1, then end-of-text', async () => {
    const tokenizer = (await load(TINY))!;
    for (const c of reference.cases) {
      for (const maxLength of [2, 5, 16]) {
        const { ids, truncated } = tokenizer.encode(c.text, maxLength);
        if (c.input_ids.length <= maxLength) {
          assert.deepEqual(ids, c.input_ids);
          assert.equal(truncated, false);
        } else {
          assert.deepEqual(ids, [...c.input_ids.slice(0, maxLength - 1), tokenizer.eosId]);
          assert.equal(truncated, true);
        }
      }
    }
    assert.throws(() => tokenizer.encode('a cat', 1), UserError);
  });

  it('pads like CLIPProcessor(padding="max_length") for the fixture batch; to the longest row otherwise', async () => {
    const tokenizer = (await load(TINY))!;
    const manifest = JSON.parse(fs.readFileSync(path.join(TINY, 'manifest.json'), 'utf8'));
    const texts: string[] = manifest.examples[0].texts;
    const inputs = await readSafetensorsAll(path.join(TINY, 'pair.inputs.safetensors'));
    const full = tokenizer.encodeBatch(texts, 16, 'max_length');
    assert.deepEqual(full.dims, inputs.get('input_ids')!.shape);
    assert.deepEqual([...full.inputIds], [...(inputs.get('input_ids')!.data as BigInt64Array)]);
    assert.deepEqual([...full.attentionMask], [...(inputs.get('attention_mask')!.data as BigInt64Array)]);

    const longest = tokenizer.encodeBatch(texts, 16, 'longest');
    const lengths = texts.map((t) => tokenizer.encode(t, 16).ids.length);
    assert.deepEqual(longest.dims, [3, Math.max(...lengths)]);
    const T = longest.dims[1];
    lengths.forEach((n, b) => {
      assert.deepEqual([...longest.attentionMask.subarray(b * T, (b + 1) * T)], [...Array(n).fill(1n), ...Array(T - n).fill(0n)]);
      assert.deepEqual([...longest.inputIds.subarray(b * T, b * T + n)], [...full.inputIds.subarray(b * 16, b * 16 + n)]);
    });
  });

  it('padBatch refuses rows longer than the batch length', () => {
    assert.throws(() => padBatch([[1, 2, 3]], 0, 2), /3 ids/);
    assert.deepEqual(padBatch([], 0).dims, [0, 0]);
  });

  it('a folder without tokenizer files has no tokenizer; one with half of the slow files is a UserError', async () => {
    assert.equal(await load(tinyWithout('none', ['tokenizer.json', 'vocab.json', 'merges.txt'])), undefined);
    const half = tinyWithout('half', ['tokenizer.json', 'merges.txt']);
    await assert.rejects(load(half), (err: Error) => err instanceof UserError && err.message.includes(fs.realpathSync(half)) && /merges\.txt/.test(err.message));
  });

  it('a tokenizer.json that is not a tokenizer is a UserError naming it', async () => {
    const dir = tinyWithout('broken', []);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'NoSuchModel' } }));
    await assert.rejects(load(dir), (err: Error) => err instanceof UserError && err.message.includes('tokenizer.json'));
  });
});
