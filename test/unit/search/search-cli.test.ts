/** `vision-inspector search` through the bundled CLI (out/cli.js, built by `npm test`'s pretest). */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FoundTarget } from '../../../src/core/search/answer';
import type { SearchResult } from '../../../src/core/search/vstar';
import { GOLDEN, PHOTOS } from '../parity';
import { requireBuiltCli, runCli, type CliResult } from '../cli-runner';

const ROCKET = path.join(PHOTOS, 'rocket.jpg');
const MODEL = path.join(GOLDEN, 'clip-tiny');
let tmp: string;

function cli(...args: string[]): Promise<CliResult> {
  return runCli(args, { env: { ...process.env, XDG_CACHE_HOME: tmp } });
}

describe('vision-inspector search (CLI)', () => {
  before(() => {
    requireBuiltCli();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-search-cli-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('prints every step and the outcome per target; --dump holds the same steps as JSON', async () => {
    const out = path.join(tmp, 'steps.json');
    const r = await cli('search', '--model', MODEL, '--image', ROCKET, '--target', 'rocket', '--target', 'tower', '--min-size', '100', '--max-nodes', '5', '--dump', out);
    assert.equal(r.code, 0, r.stderr);
    const dump = JSON.parse(fs.readFileSync(out, 'utf8')) as { targets: string[]; results: SearchResult[]; found: FoundTarget[]; stats: { crops: number } };
    assert.deepEqual(dump.targets, ['rocket', 'tower']);
    assert.equal(dump.results.length, 2);
    assert.ok(dump.stats.crops > 0);
    const lines = r.stdout.split('\n');
    for (const result of dump.results) {
      assert.ok(result.path.length <= 5);
      assert.equal(result.image.width, 640);
      // every recorded step is printed, in order, under its target
      const start = lines.indexOf(`target "${result.target}":`);
      assert.ok(start >= 0, r.stdout);
      const printed = lines.slice(start + 1).filter((l) => /^ {2}step \d+/.test(l));
      result.steps.forEach((step, i) => assert.match(printed[i]!, new RegExp(`^  step ${step.index}  ${step.kind === 'stop' ? `stop \\(${step.reason}\\)` : `node #${step.node.id} L${step.node.level}`}`)));
      assert.match(r.stdout, new RegExp(`^${result.target}: (found|not found)`, 'm'));
    }
    assert.match(r.stdout, /wrote \d+ steps to /);
  });

  it('--question takes the targets from the question', async () => {
    const out = path.join(tmp, 'q.json');
    const r = await cli('search', '--model', MODEL, '--image', ROCKET, '--question', 'What colour is the smoke below the rocket?', '--min-size', '300', '--dump', out);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')).targets, ['smoke', 'rocket']);
  });

  it('refuses a non-CLIP model and a missing target with a message', async () => {
    const vit = await cli('search', '--model', path.join(GOLDEN, 'vit-tiny'), '--image', ROCKET, '--target', 'x');
    assert.equal(vit.code, 1);
    assert.match(vit.stderr, /is a vit model; search needs a CLIP model/);
    const none = await cli('search', '--model', MODEL, '--image', ROCKET);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /--target/);
  });

  it('--answer-model: Fuyu is asked for the targets, then answers on the found crops (tiny Fuyu: the wiring only)', async () => {
    const out = path.join(tmp, 'answer.json');
    const question = 'What colour is the rocket?';
    const r = await cli('search', '--model', MODEL, '--image', ROCKET, '--question', question, '--answer-model', path.join(GOLDEN, 'fuyu-tiny'), '--min-size', '100', '--max-nodes', '3', '--dump', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fuyu-tiny was asked which objects the question needs/);
    assert.match(r.stdout, /\nanswer: /);
    const dump = JSON.parse(fs.readFileSync(out, 'utf8')) as { targets: string[]; targetsFrom: string; proposal: { targets: string[] }; answer: { prompt: string; imageBox: object } };
    assert.deepEqual(dump.targets, dump.targetsFrom === 'model' ? dump.proposal.targets : ['rocket']);
    assert.ok(dump.answer.prompt.endsWith(`${question}\n`));
  });

  it('--answer-model needs a --question and a Fuyu model', async () => {
    const noQuestion = await cli('search', '--model', MODEL, '--image', ROCKET, '--target', 'rocket', '--answer-model', path.join(GOLDEN, 'fuyu-tiny'));
    assert.equal(noQuestion.code, 1);
    assert.match(noQuestion.stderr, /--answer-model answers a --question/);
    const notFuyu = await cli('search', '--model', MODEL, '--image', ROCKET, '--question', 'Where is the rocket?', '--answer-model', MODEL);
    assert.equal(notFuyu.code, 1);
    assert.match(notFuyu.stderr, /clip-tiny: is a clip model; --answer-model needs a Fuyu model/);
  });
});
