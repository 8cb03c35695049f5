/**
 * CLIP's byte-level BPE tokenizer (SPEC §4.6), run by @huggingface/tokenizers from the
 * checkpoint's `tokenizer.json`, or — for folders that only have the slow tokenizer's files —
 * from `vocab.json` + `merges.txt`, assembled into the tokenizer.json that transformers'
 * `CLIPConverter` would write for them.
 *
 * Sequences are `[bos] + tokens + [eos]`. Longer than the model's context they are cut as
 * transformers (`truncation=True`) and OpenAI's `tokenize(truncate=True)` cut them: the first
 * `maxLength − 1` ids, then eos, so pooling still finds the end-of-text token.
 */
import * as path from 'node:path';
import type { Tokenizer as HfTokenizer } from '@huggingface/tokenizers' with { 'resolution-mode': 'import' };
import { UserError, check } from '../errors.js';
import type { Checkpoint } from '../io/checkpoint.js';

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const SPECIAL_TOKENS_MAP_FILE = 'special_tokens_map.json';
export const VOCAB_FILE = 'vocab.json';
export const MERGES_FILE = 'merges.txt';

/** CLIPTokenizer reads at most this many merges (`[1 : 49152 - 256 - 2 + 1]` of merges.txt). */
const MAX_CLIP_MERGES = 49152 - 256 - 2;

const CLIP_SPECIAL_DEFAULTS = { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', pad_token: '<|endoftext|>' };
type SpecialTokenKey = keyof typeof CLIP_SPECIAL_DEFAULTS;

/** A batch of token ids as the text tower takes it: row-major [B, T]. */
export interface TokenBatch {
  inputIds: BigInt64Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: BigInt64Array;
  dims: [number, number];
}

export interface Encoded {
  ids: number[];
  /** The text had more tokens than fit; the ids were cut as described above. */
  truncated: boolean;
}

export type Padding =
  /** Pad every row to the longest row (the least work for a batched run). */
  | 'longest'
  /** Pad every row to maxLength, as `CLIPProcessor(..., padding="max_length")` (the golden fixtures). */
  | 'max_length';

export class ClipTokenizer {
  private constructor(
    private readonly tokenizer: HfTokenizer,
    /** The file the vocabulary came from, for messages. */
    readonly source: string,
    readonly bosId: number,
    /** `<|endoftext|>`: CLIP pools the text tower at its first occurrence. */
    readonly eosId: number,
    readonly padId: number,
  ) {}

  /**
   * The tokenizer of a model folder: tokenizer.json, else vocab.json + merges.txt; undefined
   * when the folder has neither (a vision-only use of the checkpoint needs none).
   */
  static async fromCheckpoint(checkpoint: Checkpoint): Promise<ClipTokenizer | undefined> {
    const config = asObject(await checkpoint.readJson(TOKENIZER_CONFIG_FILE), path.join(checkpoint.dir, TOKENIZER_CONFIG_FILE));
    const specialMap = asObject(await checkpoint.readJson(SPECIAL_TOKENS_MAP_FILE), path.join(checkpoint.dir, SPECIAL_TOKENS_MAP_FILE));
    const special = (key: SpecialTokenKey): string => tokenContent(config?.[key]) ?? tokenContent(specialMap?.[key]) ?? CLIP_SPECIAL_DEFAULTS[key];

    let json = await checkpoint.readJson(TOKENIZER_FILE);
    let source = path.join(checkpoint.dir, TOKENIZER_FILE);
    if (json === undefined) {
      const vocabFile = path.join(checkpoint.dir, VOCAB_FILE);
      const vocab = await checkpoint.readJson(VOCAB_FILE);
      const merges = await checkpoint.readText(MERGES_FILE);
      if (vocab === undefined && merges === undefined) return undefined;
      check(vocab !== undefined, `has ${MERGES_FILE} but no ${VOCAB_FILE}, so its tokenizer is incomplete.`, checkpoint.dir, TOKENIZER_HINT);
      check(merges !== undefined, `has ${VOCAB_FILE} but no ${MERGES_FILE}, so its tokenizer is incomplete.`, checkpoint.dir, TOKENIZER_HINT);
      const vocabMap = asObject(vocab, vocabFile);
      check(vocabMap && Object.values(vocabMap).every((id) => Number.isInteger(id)), 'must map every token to an integer id.', vocabFile, TOKENIZER_HINT);
      json = clipTokenizerJson(vocabMap as Record<string, number>, parseMerges(merges), {
        bos: special('bos_token'),
        eos: special('eos_token'),
        unk: special('unk_token'),
      });
      source = vocabFile;
    }
    check(typeof json === 'object' && json !== null && !Array.isArray(json), 'must contain a JSON object.', source, TOKENIZER_HINT);

    const { Tokenizer } = await import('@huggingface/tokenizers');
    let tokenizer: HfTokenizer;
    try {
      tokenizer = new Tokenizer(json, config ?? {});
    } catch (err) {
      throw new UserError(`cannot be used as a tokenizer (${(err as Error).message}).`, source, TOKENIZER_HINT);
    }
    const idOf = (key: SpecialTokenKey): number => {
      const token = special(key);
      const id = tokenizer.token_to_id(token);
      check(id !== undefined, `has no id for its ${key.replace('_token', '')} token "${token}".`, source, TOKENIZER_HINT);
      return id;
    };
    const eosId = idOf('eos_token');
    return new ClipTokenizer(tokenizer, source, idOf('bos_token'), eosId, tokenizer.token_to_id(special('pad_token')) ?? eosId);
  }

  /** `[bos] + tokens + [eos]`, cut to `maxLength` ids keeping eos last. */
  encode(text: string, maxLength: number): Encoded {
    check(maxLength >= 2, `a context of ${maxLength} tokens cannot hold the start and end tokens.`);
    const ids = this.tokenizer.encode(text).ids;
    if (ids.length <= maxLength) return { ids, truncated: false };
    return { ids: [...ids.slice(0, maxLength - 1), this.eosId], truncated: true };
  }

  /** Token strings of `ids` (for display). */
  tokens(ids: readonly number[]): string[] {
    return ids.map((id) => this.tokenizer.id_to_token(id) ?? `<${id}>`);
  }

  /** Encodes and pads `texts` into one [B, T] batch (padding with the pad token, mask 0). */
  encodeBatch(texts: readonly string[], maxLength: number, padding: Padding): TokenBatch & { truncated: boolean[] } {
    const encoded = texts.map((t) => this.encode(t, maxLength));
    const batch = padBatch(encoded.map((e) => e.ids), this.padId, padding === 'max_length' ? maxLength : undefined);
    return { ...batch, truncated: encoded.map((e) => e.truncated) };
  }
}

/** The error for text requests on a checkpoint folder without tokenizer files. */
export function missingTokenizerError(dir: string): UserError {
  return new UserError(
    `has no tokenizer: neither ${TOKENIZER_FILE} nor ${VOCAB_FILE} + ${MERGES_FILE}, so text cannot be turned into token ids.`,
    dir,
    'Copy the tokenizer files of the model into the folder (they come with every CLIP checkpoint on the Hugging Face Hub), or pass input_ids with --pixel-values.',
  );
}

/** Rows of ids into a [B, T] batch, T = `length` or the longest row. */
export function padBatch(rows: readonly (readonly number[])[], padId: number, length?: number): TokenBatch {
  const T = length ?? Math.max(0, ...rows.map((r) => r.length));
  const inputIds = new BigInt64Array(rows.length * T).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(rows.length * T);
  rows.forEach((row, b) => {
    if (row.length > T) throw new Error(`row ${b} has ${row.length} ids, more than the batch length ${T}`);
    row.forEach((id, t) => {
      inputIds[b * T + t] = BigInt(id);
      attentionMask[b * T + t] = 1n;
    });
  });
  return { inputIds, attentionMask, dims: [rows.length, T] };
}

const TOKENIZER_HINT = 'Download the tokenizer files of the model again (tokenizer.json, or vocab.json and merges.txt).';

/** merges.txt as CLIPTokenizer reads it: the first line is a version header, one "a b" pair a line. */
function parseMerges(text: string): [string, string][] {
  return text
    .trim()
    .split('\n')
    .slice(1, 1 + MAX_CLIP_MERGES)
    .map((line) => line.trim().split(/\s+/))
    .filter((pair): pair is [string, string] => pair.length === 2);
}

/** The tokenizer.json transformers' CLIPConverter builds from the slow tokenizer's files. */
function clipTokenizerJson(vocab: Record<string, number>, merges: [string, string][], special: { bos: string; eos: string; unk: string }): object {
  const added = [...new Set([special.bos, special.eos])].filter((t) => vocab[t] !== undefined);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map((content) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true })),
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [special.eos, vocab[special.eos]],
      cls: [special.bos, vocab[special.bos]],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: special.unk,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** A special token as tokenizer_config.json writes it: a string or an AddedToken object. */
export function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return undefined;
}

function asObject(value: unknown, file: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  check(typeof value === 'object' && value !== null && !Array.isArray(value), 'must contain a JSON object.', file, TOKENIZER_HINT);
  return value as Record<string, unknown>;
}


