/**
 * Fuyu as V*'s answering model (SPEC §7.4 (F)), behind the `VisualAnswerer` seam:
 *
 * - targets: Fuyu is a base model, not tuned to list missing objects as SEAL's VQA model is
 *   (SPEC §6.2), so it is asked with SPEC §7.4's few-shot prompt ("Question: …\nObjects:") on the
 *   whole image (the runner needs an image; V*'s VQA model also sees it), and the first line of
 *   its continuation is parsed as a comma-separated list. V*'s own sentence ("… missing or
 *   unclear: a, b.") is understood too. An answer naming nothing usable gives [] and the caller
 *   falls back to the editable noun-phrase list;
 * - answer: one image per sample (SPEC §7.4), so the found boxes become one zoom image (their
 *   union grown ×1.2, sides ≥ 224 px, `zoomBox`), cropped from the full-resolution image, with
 *   V*'s focus prefix naming the targets. The prefix leaves out V*'s `<box>` coordinates (the
 *   prompt syntax itself is supported, text/fuyu-locations.ts): SPEC §7.4 makes them optional
 *   with an unknown effect on a base model, and the zoom image already is the found region.
 *
 * Greedy generation; new tokens are capped by the room left in the model's context.
 */
import * as path from 'node:path';
import { UserError, check } from '../errors.js';
import { cropImage } from '../image/crop.js';
import { preprocessFuyu } from '../image/preprocess.js';
import type { RgbImage } from '../image/types.js';
import type { FuyuPrompt, FuyuRunner } from '../models/fuyu-runner.js';
import { modelDisplayName } from '../io/hub-layout.js';
import type { FoundTarget, ModelExchange, TargetProposal, VisualAnswerer } from './answer.js';
import type { Box } from './vstar.js';

/** Most targets kept from one proposal (the inspector's search takes at most 8). */
export const MAX_PROPOSED_TARGETS = 8;
/** A target is an object name, not a sentence: longer runs are the model rambling. */
const MAX_TARGET_WORDS = 5;
const MAX_TARGET_CHARS = 40;
/** Replies that name no object. */
const NO_OBJECT = new Set(['none', 'nothing', 'no objects', 'n/a', 'na', 'unknown', 'objects', 'object']);

export const TARGETS_MAX_NEW_TOKENS = 16;
export const ANSWER_MAX_NEW_TOKENS = 32;

/** SPEC §7.4's few-shot prompt; the question is put on one line so that the model's first line is the list. */
export function targetsPrompt(question: string): string {
  return `Question: What is the colour of the umbrella?\nObjects: umbrella\n\nQuestion: ${oneLine(question)}\nObjects:`;
}

/**
 * V*'s focus prefix (SPEC §6.2 step 4, §7.4) without coordinates, then the question and the
 * newline documented Fuyu prompts end with: "Additional visual information to focus on: cup;
 * laptop not existent in the image.\nIs the cup left of the laptop?\n". No targets → the question alone.
 */
export function answerPrompt(question: string, found: readonly FoundTarget[]): string {
  const items = found.map((f) => (f.box ? f.target : `${f.target} not existent in the image`));
  const prefix = items.length > 0 ? `Additional visual information to focus on: ${items.join('; ')}.\n` : '';
  return `${prefix}${oneLine(question)}\n`;
}

/**
 * The objects named in a model's reply: after V*'s missing-objects sentence if present, the
 * first line (without an "Objects:" label), split on commas, semicolons, "and" and slashes; each item
 * loses list bullets, quotes, articles and a trailing full stop, is lowercased, and is kept if it
 * is a short run of words (letters, digits, apostrophes, hyphens). Duplicates and "none" are
 * dropped; at most MAX_PROPOSED_TARGETS. Anything else (empty, byte garbage, a sentence) gives [].
 */
export function parseTargetList(text: string): string[] {
  const sentence = text.toLowerCase().lastIndexOf('missing or unclear:');
  const rest = sentence >= 0 ? text.slice(sentence + 'missing or unclear:'.length) : text;
  // A few-shot continuation goes on with the next example after the list: the first line only.
  const line = rest.trimStart().split(/\n|\bquestion:/i)[0]!.replace(/^\s*objects:/i, '');
  const targets: string[] = [];
  for (const raw of line.split(/[,;/]|\band\b|\d+[.)]\s/i)) {
    const item = raw
      .toLowerCase()
      .replace(/^[\s\-*•"'“”‘’()[\]]+|[\s"'“”‘’()[\].!?:]+$/g, '')
      .replace(/^(?:the|a|an)\s+/, '')
      .replace(/\s+/g, ' ');
    if (!item || NO_OBJECT.has(item) || targets.includes(item)) continue;
    if (item.length > MAX_TARGET_CHARS || item.split(' ').length > MAX_TARGET_WORDS) continue;
    if (!/^[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*(?: [\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*)*$/u.test(item)) continue;
    targets.push(item);
    if (targets.length === MAX_PROPOSED_TARGETS) break;
  }
  return targets;
}

export interface FuyuAnswererOptions {
  targetsMaxNewTokens?: number;
  answerMaxNewTokens?: number;
}

export class FuyuAnswerer implements VisualAnswerer {
  readonly name: string;
  private readonly targetsMaxNewTokens: number;
  private readonly answerMaxNewTokens: number;

  constructor(
    readonly runner: FuyuRunner,
    options: FuyuAnswererOptions = {},
  ) {
    this.name = modelDisplayName(runner.loaded.checkpoint.dir);
    this.targetsMaxNewTokens = options.targetsMaxNewTokens ?? TARGETS_MAX_NEW_TOKENS;
    this.answerMaxNewTokens = options.answerMaxNewTokens ?? ANSWER_MAX_NEW_TOKENS;
  }

  async proposeTargets(request: { question: string; image: RgbImage }, signal?: AbortSignal): Promise<TargetProposal> {
    const { image } = request;
    const exchange = await this.ask(image, { x: 0, y: 0, width: image.width, height: image.height }, targetsPrompt(request.question), this.targetsMaxNewTokens, signal);
    return { ...exchange, targets: parseTargetList(exchange.text) };
  }

  async answer(request: { question: string; image: RgbImage; found: readonly FoundTarget[]; zoom: Box | null }, signal?: AbortSignal): Promise<ModelExchange> {
    const { image, zoom } = request;
    const box = zoom ?? { x: 0, y: 0, width: image.width, height: image.height };
    return this.ask(image, box, answerPrompt(request.question, request.found), this.answerMaxNewTokens, signal);
  }

  /** Greedy generation on `box` of `image`, with as many new tokens as asked and the context allows. */
  private async ask(image: RgbImage, box: Box, prompt: string, maxNewTokens: number, signal?: AbortSignal): Promise<ModelExchange> {
    const { checkpoint } = this.runner.loaded;
    const patches = preprocessFuyu(cropImage(image, box), checkpoint.preprocessorConfig ?? {}, { file: path.join(checkpoint.dir, 'preprocessor_config.json') });
    let prepared: FuyuPrompt;
    try {
      prepared = this.runner.prepare(patches, prompt);
    } catch (err) {
      // The runner says what does not fit; the user also needs to know which model it is about.
      if (err instanceof UserError && !err.file) throw new UserError(`the question does not fit: ${err.message}`, checkpoint.dir);
      throw err;
    }
    const length = prepared.layout.inputIds.length;
    const room = this.runner.model.config.max_position_embeddings - length;
    check(room > 0, `the image and prompt take ${length} tokens, the whole context of this model; nothing is left for an answer.`, checkpoint.dir,
      'Ask a shorter question, or use a model with a longer context.');
    const newTokens = Math.min(maxNewTokens, room);
    // generate() checks the prompt and new tokens against the context again; `room` made them fit.
    const generation = await this.runner.generate(prepared, { maxNewTokens: newTokens, signal });
    return { prompt, imageBox: { ...box }, text: generation.text.trim() };
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
