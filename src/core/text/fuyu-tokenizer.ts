/**
 * Fuyu's tokenizer (SPEC §5.3): a SentencePiece-derived Unigram model with byte fallback, read
 * from the checkpoint's `tokenizer.json`.
 *
 * Why not @huggingface/tokenizers (which the CLIP tokenizer uses): its 0.2.0 Unigram model has no
 * byte fallback, so characters without a piece (newline, tab, accented letters) become `<unk>`
 * instead of `<0xNN>` byte tokens, and Fuyu's prompts end in "\n" (ENGINE-FACTS, Tokenizers).
 * A fallback bolted on after it cannot recover which characters a fused `<unk>` covered, so the
 * whole (small) pipeline is implemented here, following the Rust `tokenizers` crate that produced
 * the reference ids: added tokens split out first, then the normalizer, then Viterbi over piece
 * scores with `<unk>` for characters no piece starts with (score min − 10), consecutive unknowns
 * fused, and unknown pieces spelled as their UTF-8 bytes.
 */
import * as path from 'node:path';
import { UserError, check } from '../errors.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, tokenContent } from './tokenizer.js';

/** Score penalty of an unknown character below the lowest piece score (tokenizers' K_UNK_PENALTY). */
const UNK_PENALTY = 10;

const HINT = 'Use the tokenizer.json saved with the Fuyu checkpoint (a Unigram model).';

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/** A normalizer step of tokenizer.json that Fuyu's (Llama-legacy) tokenizer uses. */
type NormalizerStep = { type: 'Prepend'; prepend: string } | { type: 'Replace'; from: string; to: string };

export interface FuyuEncodeOptions {
  /** Prefix `<s>` as the tokenizer's post-processor does (transformers' add_special_tokens=True). */
  addSpecialTokens?: boolean;
}

export class FuyuTokenizer {
  private readonly pieceIds = new Map<string, number>();
  private readonly minScore: number;
  private readonly maxPieceChars: number;
  /** Added tokens, longest first so that a longer token wins where two start at the same place. */
  private readonly addedTokens: AddedToken[];
  private readonly specialIds: Set<number>;

  private constructor(
    private readonly pieces: readonly (readonly [string, number])[],
    private readonly unkId: number,
    private readonly byteFallback: boolean,
    added: readonly AddedToken[],
    private readonly normalizer: readonly NormalizerStep[],
    /** The file the vocabulary came from, for messages. */
    readonly source: string,
    /** Token strings named by tokenizer_config.json / special_tokens_map.json. */
    readonly bosToken: string,
    readonly eosToken: string,
  ) {
    let min = Infinity;
    let longest = 1;
    pieces.forEach(([piece, score], id) => {
      if (!this.pieceIds.has(piece)) this.pieceIds.set(piece, id);
      min = Math.min(min, score);
      longest = Math.max(longest, [...piece].length);
    });
    this.minScore = min;
    this.maxPieceChars = longest;
    this.addedTokens = [...added].sort((a, b) => b.content.length - a.content.length);
    this.specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));
  }

  /** Parses a tokenizer.json object (Unigram model); `file` names it in errors. */
  static fromJson(json: unknown, file: string, special: { bos?: string; eos?: string } = {}): FuyuTokenizer {
    check(isObject(json), 'must contain a JSON object.', file, HINT);
    const model = json['model'];
    check(isObject(model) && model['type'] === 'Unigram',
      `has a ${isObject(model) ? String(model['type']) : 'missing'} model; Fuyu's tokenizer is a Unigram model.`, file, HINT);
    const vocab = model['vocab'];
    check(Array.isArray(vocab) && vocab.every((e) => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number'),
      'model.vocab must be a list of [piece, score] pairs.', file, HINT);
    // Fuyu's Llama-legacy tokenizer has none; another one would change the segmentation silently.
    check(json['pre_tokenizer'] === null || json['pre_tokenizer'] === undefined,
      `has a pre_tokenizer, which Fuyu's tokenizer does not use and this implementation does not support.`, file, HINT);
    const unkId = model['unk_id'];
    check(typeof unkId === 'number' && unkId >= 0 && unkId < vocab.length, 'model.unk_id must index model.vocab.', file, HINT);
    const added = Array.isArray(json['added_tokens'])
      ? (json['added_tokens'] as unknown[]).filter(isObject).map((t) => ({ id: Number(t['id']), content: String(t['content']), special: t['special'] === true }))
      : [];
    const tokenizer = new FuyuTokenizer(
      vocab as [string, number][], unkId, model['byte_fallback'] === true, added, parseNormalizer(json['normalizer'], file), file,
      special.bos ?? '<s>', special.eos ?? '|ENDOFTEXT|',
    );
    return tokenizer;
  }

  /** The tokenizer of a model folder; a UserError when it has no tokenizer.json. */
  static async fromCheckpoint(checkpoint: Checkpoint): Promise<FuyuTokenizer> {
    const file = path.join(checkpoint.dir, TOKENIZER_FILE);
    const json = await checkpoint.readJson(TOKENIZER_FILE);
    check(json !== undefined, `has no ${TOKENIZER_FILE}; Fuyu needs its tokenizer to lay out the prompt.`, checkpoint.dir, HINT);
    const config = await checkpoint.readJson(TOKENIZER_CONFIG_FILE);
    const tokenOf = (key: string): string | undefined => tokenContent(isObject(config) ? config[key] : undefined);
    return FuyuTokenizer.fromJson(json, file, { bos: tokenOf('bos_token'), eos: tokenOf('eos_token') });
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  tokenToId(token: string): number | undefined {
    return this.addedTokens.find((t) => t.content === token)?.id ?? this.pieceIds.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedTokens.find((t) => t.id === id)?.content ?? this.pieces[id]?.[0];
  }

  /** Token ids of `text`, as transformers' `tokenizer(text, add_special_tokens=…).input_ids`. */
  encode(text: string, options: FuyuEncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (options.addSpecialTokens) {
      const bos = this.tokenToId(this.bosToken);
      check(bos !== undefined, `has no id for its bos token "${this.bosToken}".`, this.source, HINT);
      ids.push(bos);
    }
    for (const segment of this.splitAdded(text)) {
      if (typeof segment === 'number') ids.push(segment);
      else ids.push(...this.encodeNormalized(this.normalize(segment)));
    }
    return ids;
  }

  /** Token strings of `ids` (for display). */
  tokens(ids: readonly number[]): string[] {
    return ids.map((id) => this.idToToken(id) ?? `<${id}>`);
  }

  /**
   * Text of `ids` through the Llama-style decoder of tokenizer.json: "▁" → space; each run of
   * byte tokens → its bytes if they are valid UTF-8, else one U+FFFD per byte (tokenizers'
   * ByteFallback decoder, which the reference's generated_text shows); one leading space
   * stripped. Special tokens are skipped when asked, as `decode(…, skip_special_tokens=True)`.
   */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean; /** false: keep the leading space (text continuing other text). */ stripLeadingSpace?: boolean } = {}): string {
    let text = '';
    let run: number[] = [];
    const flush = (): void => {
      if (run.length === 0) return;
      try {
        text += new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(run));
      } catch {
        text += '\ufffd'.repeat(run.length);
      }
      run = [];
    };
    for (const id of ids) {
      if (options.skipSpecialTokens && this.specialIds.has(id)) continue;
      const token = this.idToToken(id) ?? '';
      const byte = this.byteFallback ? /^<0x([0-9A-F]{2})>$/.exec(token) : null;
      if (byte) {
        run.push(parseInt(byte[1]!, 16));
        continue;
      }
      flush();
      text += token.replaceAll('\u2581', ' ');
    }
    flush();
    return options.stripLeadingSpace !== false && text.startsWith(' ') ? text.slice(1) : text;
  }

  /** `ids` without its trailing run of byte tokens (`<0xNN>`), which may be an unfinished character. */
  withoutTrailingBytes(ids: readonly number[]): number[] {
    let end = ids.length;
    while (end > 0 && this.byteFallback && /^<0x[0-9A-F]{2}>$/.test(this.idToToken(ids[end - 1]!) ?? '')) end--;
    return ids.slice(0, end);
  }

  /** `text` cut around added tokens (exact, un-normalized matches), leftmost then longest first. */
  private splitAdded(text: string): (string | number)[] {
    const out: (string | number)[] = [];
    let start = 0;
    let i = 0;
    while (i < text.length) {
      const hit = this.addedTokens.find((t) => t.content.length > 0 && text.startsWith(t.content, i));
      if (!hit) {
        i++;
        continue;
      }
      if (i > start) out.push(text.slice(start, i));
      out.push(hit.id);
      i += hit.content.length;
      start = i;
    }
    if (start < text.length) out.push(text.slice(start));
    return out;
  }

  private normalize(text: string): string {
    let s = text;
    for (const step of this.normalizer) {
      // tokenizers' Prepend leaves an empty string empty.
      if (step.type === 'Prepend') s = s.length > 0 ? step.prepend + s : s;
      else s = s.replaceAll(step.from, step.to);
    }
    return s;
  }

  /** Viterbi segmentation of one normalized string into piece ids (tokenizers' `encode_optimized`). */
  private encodeNormalized(text: string): number[] {
    const chars = [...text];
    const n = chars.length;
    if (n === 0) return [];
    const unkScore = this.minScore - UNK_PENALTY;
    // best[i]: the best segmentation of chars[0:i]: its score, and the last piece (start, id).
    const score = new Float64Array(n + 1).fill(-Infinity);
    const from = new Int32Array(n + 1).fill(-1);
    const pieceOf = new Int32Array(n + 1).fill(-1);
    score[0] = 0;
    for (let start = 0; start < n; start++) {
      if (from[start] === -1 && start !== 0) continue;
      let hasSingleChar = false;
      let piece = '';
      // Pieces starting here in increasing length, like the trie's common-prefix search; a tie
      // keeps the first (shorter) candidate, as tokenizers does (strictly greater replaces).
      for (let end = start + 1; end <= Math.min(n, start + this.maxPieceChars); end++) {
        piece += chars[end - 1]!;
        const id = this.pieceIds.get(piece);
        if (id === undefined) continue;
        if (end === start + 1) hasSingleChar = true;
        const candidate = score[start]! + this.pieces[id]![1];
        if (from[end] === -1 || candidate > score[end]!) {
          score[end] = candidate;
          from[end] = start;
          pieceOf[end] = id;
        }
      }
      if (!hasSingleChar) {
        const end = start + 1;
        const candidate = score[start]! + unkScore;
        if (from[end] === -1 || candidate > score[end]!) {
          score[end] = candidate;
          from[end] = start;
          pieceOf[end] = this.unkId;
        }
      }
    }
    // Backtrack into (start, end, id) pieces, fusing runs of unknown characters.
    const spans: { start: number; end: number; id: number }[] = [];
    for (let end = n; end > 0; end = from[end]!) {
      const span = { start: from[end]!, end, id: pieceOf[end]! };
      const last = spans[spans.length - 1];
      if (last && last.id === this.unkId && span.id === this.unkId) last.start = span.start;
      else spans.push(span);
    }
    spans.reverse();
    const ids: number[] = [];
    for (const { start, end, id } of spans) {
      if (id !== this.unkId || !this.byteFallback) {
        ids.push(id);
        continue;
      }
      const bytes = new TextEncoder().encode(chars.slice(start, end).join(''));
      const byteIds = Array.from(bytes, (b) => this.pieceIds.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
      // tokenizers keeps <unk> when any byte token is missing from the vocabulary.
      if (byteIds.every((b) => b !== undefined)) ids.push(...(byteIds as number[]));
      else ids.push(this.unkId);
    }
    return ids;
  }
}

function parseNormalizer(raw: unknown, file: string): NormalizerStep[] {
  if (raw === null || raw === undefined) return [];
  check(isObject(raw), 'has a normalizer that is not an object.', file, HINT);
  if (raw['type'] === 'Sequence') {
    check(Array.isArray(raw['normalizers']), 'has a Sequence normalizer without a list of normalizers.', file, HINT);
    return (raw['normalizers'] as unknown[]).flatMap((n) => parseNormalizer(n, file));
  }
  if (raw['type'] === 'Prepend' && typeof raw['prepend'] === 'string') return [{ type: 'Prepend', prepend: raw['prepend'] }];
  const pattern = raw['pattern'];
  if (raw['type'] === 'Replace' && isObject(pattern) && typeof pattern['String'] === 'string' && typeof raw['content'] === 'string') {
    return [{ type: 'Replace', from: pattern['String'], to: raw['content'] }];
  }
  throw new UserError(`has a ${String(raw['type'])} normalizer; Fuyu's tokenizer supports Prepend and string Replace.`, file, HINT);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
