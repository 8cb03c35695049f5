/**
 * The answering side of V* (SPEC §6.2, §7.4), kept model-agnostic: targets from a question, one
 * search per target, and what an answering model gets back — the found crops with their scores and
 * a zoom box. A Fuyu answerer plugs in through `VisualAnswerer`; without one the UI shows the crops
 * with their CLIP scores.
 */
import type { RgbImage } from '../image/types.js';
import { growBox, visualSearch, type Box, type Detection, type ImageSize, type SearchModel, type SearchOptions, type SearchResult, type SearchStep } from './vstar.js';

/**
 * Words that end a noun phrase: question words, auxiliaries and frequent verbs, prepositions and
 * spatial words, conjunctions, pronouns, determiners, attribute nouns ("colour of the X" asks about
 * X) and words for the image itself.
 */
const BREAK_WORDS = new Set(
  `what which who whom whose where when why how many much
   is are was were be been being am do does did can could will would should shall may might must has have had
   wearing holding doing made look looks like appear appears seen see shown visible located placed sitting standing there here
   of in on at to from with by for about above below under over behind near between beside besides next inside outside into onto
   left right front back top bottom side middle center centre than relative position
   and or but nor not no yes
   it its this that these those they them their he she his her him i you we me my your our us
   a an the any some each every all another other
   color colour colors colours kind type shape size material number texture pattern
   image picture photo photograph scene`
    .split(/\s+/)
    .filter(Boolean),
);

/**
 * Target objects of a question, as a list the user can edit (SPEC §7.4 "noun-phrase heuristic"; no
 * tagger offline): answer options "(A) …" and everything after are dropped, the text is lowercased
 * and cut at every BREAK_WORDS word and punctuation mark, and each remaining run of words is one
 * target ("What is the colour of the woman's umbrella?" → ["woman's umbrella"]; "Is the red cup to
 * the left or right of the laptop?" → ["red cup", "laptop"]). Duplicates are dropped; order kept.
 * Without part-of-speech tags, words outside the list stick to the phrase ("the dog bigger than…"
 * → "dog bigger"): the list is a proposal the user edits.
 */
export function targetsFromQuestion(question: string): string[] {
  const text = question.split(/\(\s*[a-d]\s*\)/i)[0]!.toLowerCase();
  const targets: string[] = [];
  let run: string[] = [];
  const flush = (): void => {
    const phrase = run.join(' ');
    if (phrase && !targets.includes(phrase)) targets.push(phrase);
    run = [];
  };
  for (const token of text.match(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]/gu) ?? []) {
    if (!/[\p{L}\p{N}]/u.test(token) || BREAK_WORDS.has(token)) flush();
    else run.push(token);
  }
  flush();
  return targets;
}

/** One target's outcome, for the answering model or the UI. */
export interface FoundTarget {
  target: string;
  status: SearchResult['status'];
  /** Null when not found. */
  box: Box | null;
  /** The search model's score of the box (CLIP: softmax share against the negatives). */
  score: number | null;
  /** Every instance kept (root multi-instance), the main box first. */
  instances: Detection[];
}

export interface SearchTargetsOptions extends Omit<SearchOptions, 'onStep'> {
  onStep?: (target: string, step: SearchStep) => void;
}

/** One search per target, in order (they share the model's caches). */
export async function searchTargets(model: SearchModel, image: ImageSize, targets: readonly string[], options: SearchTargetsOptions = {}): Promise<SearchResult[]> {
  const results: SearchResult[] = [];
  for (const target of targets) {
    const onStep = options.onStep;
    results.push(await visualSearch(model, image, target, { ...options, onStep: onStep ? (step) => onStep(target, step) : undefined }));
  }
  return results;
}

/**
 * The found boxes of each search. A `not-found` search gives no box even when it saw a weak
 * detection (V*'s benchmark script feeds that box anyway, SPEC §6.5; here it is left out).
 */
export function foundTargets(results: readonly SearchResult[]): FoundTarget[] {
  return results.map((r) => {
    const found = r.status !== 'not-found' && r.detection !== null;
    return { target: r.target, status: r.status, box: found ? r.detection!.box : null, score: found ? r.detection!.score : null, instances: found ? r.instances : [] };
  });
}

/**
 * SPEC §7.4's zoom image for a one-image answering model: the union of every found box, grown ×1.2,
 * each side ≥ 224 px, inside the image. Null when nothing was found (answer on the whole image).
 */
export function zoomBox(found: readonly FoundTarget[], image: ImageSize, grow = 1.2, minSide = 224): Box | null {
  const boxes = found.flatMap((f) => f.instances.map((d) => d.box));
  if (boxes.length === 0) return null;
  const x0 = Math.min(...boxes.map((b) => b.x));
  const y0 = Math.min(...boxes.map((b) => b.y));
  const x1 = Math.max(...boxes.map((b) => b.x + b.width));
  const y1 = Math.max(...boxes.map((b) => b.y + b.height));
  return growBox({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, { x: 0, y: 0, width: image.width, height: image.height }, grow, minSide);
}

/** One request to an answering model, as sent and answered (shown in the replay and printed by the CLI). */
export interface ModelExchange {
  /** The prompt exactly as the model got it. */
  prompt: string;
  /** The part of the image the model saw, in image pixels (the whole image, or the zoom box). */
  imageBox: Box;
  /** The model's text (generated answer, trimmed). */
  text: string;
}

/** V*'s "which objects does the question need?" (SPEC §6.2 step 2), asked of the answering model. */
export interface TargetProposal extends ModelExchange {
  /** The objects parsed from `text`; empty when the text names none usable (the caller falls back). */
  targets: string[];
}

/** The seam for an answering model (Fuyu, SPEC §7.4 (F)); the search side never depends on one. */
export interface VisualAnswerer {
  /** Shown as "answered by …". */
  readonly name: string;
  /** The targets the question needs, in the model's words; optional (a model may only answer). */
  proposeTargets?(request: { question: string; image: RgbImage }, signal?: AbortSignal): Promise<TargetProposal>;
  /** The answer, given what the searches found (SPEC §7.4 feedback: the zoom image). */
  answer(request: { question: string; image: RgbImage; found: readonly FoundTarget[]; zoom: Box | null }, signal?: AbortSignal): Promise<ModelExchange>;
}

export interface QuestionSearch {
  question: string;
  /** The targets searched, and where they came from: the answering model, or the (editable) list. */
  targets: string[];
  targetsFrom: 'model' | 'list';
  /** The answering model's target proposal, when it was asked (also when it named none and the list was used). */
  proposal: TargetProposal | null;
  results: SearchResult[];
  found: FoundTarget[];
  zoom: Box | null;
  /** Null without an answering model. */
  answer: ModelExchange | null;
}

export interface QuestionSearchOptions extends SearchTargetsOptions {
  /** Ask the answerer for the targets first (default true when it can be asked). */
  askTargets?: boolean;
  /** Before each model request: "asking for the targets", "answering". */
  onPhase?: (phase: 'targets' | 'answer', message: string) => void;
}

/**
 * SPEC §6.2 with a §7.4 answerer: the targets come from the answering model when it names any
 * (else from `listTargets`, the user's editable list, e.g. targetsFromQuestion), one search per
 * target with a search model made for that target list (the other targets are its negatives),
 * then the answerer gets the question and what was found. Without an answerer: the searches only.
 */
export async function searchForQuestion(
  question: string,
  image: RgbImage,
  listTargets: readonly string[],
  searchModel: (targets: readonly string[]) => SearchModel,
  answerer: VisualAnswerer | undefined,
  options: QuestionSearchOptions = {},
): Promise<QuestionSearch> {
  const { askTargets = true, onPhase, ...searchOptions } = options;
  let proposal: TargetProposal | null = null;
  if (answerer?.proposeTargets && askTargets && question.trim()) {
    onPhase?.('targets', `Asking ${answerer.name} which objects the question needs…`);
    proposal = await answerer.proposeTargets({ question, image }, options.signal);
  }
  const fromModel = proposal !== null && proposal.targets.length > 0;
  const targets = fromModel ? proposal!.targets : [...listTargets];
  const results = await searchTargets(searchModel(targets), image, targets, searchOptions);
  const found = foundTargets(results);
  const zoom = zoomBox(found, image);
  let answer: ModelExchange | null = null;
  if (answerer && question.trim()) {
    onPhase?.('answer', `${answerer.name} answers on ${zoom ? 'the found crops' : 'the whole image (nothing found)'}…`);
    answer = await answerer.answer({ question, image, found, zoom }, options.signal);
  }
  return { question, targets, targetsFrom: fromModel ? 'model' : 'list', proposal, results, found, zoom, answer };
}
