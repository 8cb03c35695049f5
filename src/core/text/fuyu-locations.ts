/**
 * Fuyu's location syntax (SPEC §5.3, FuyuProcessor): a prompt may hold `<box>y1, x1, y2, x2</box>`
 * and `<point>x, y</point>` in pixels of the original image. The processor rewrites each tag to a
 * byte token (`<0x00>`/`<0x01>` around a box, `<0x02>`/`<0x03>` around a point) and each coordinate
 * to the vocabulary token spelling round(v / 2 · scale) — the model sees the resized image at half
 * resolution. Generated boxes come back the other way: 2 · int(v / scale).
 */
import { check } from '../errors.js';
import type { FuyuTokenizer } from './fuyu-tokenizer.js';

interface LocationTag {
  name: 'box' | 'point';
  open: string;
  close: string;
  openToken: string;
  closeToken: string;
  /** What the coordinates mean, for messages. */
  form: string;
}

const TAGS: readonly LocationTag[] = [
  { name: 'box', open: '<box>', close: '</box>', openToken: '<0x00>', closeToken: '<0x01>', form: 'y1, x1, y2, x2' },
  { name: 'point', open: '<point>', close: '</point>', openToken: '<0x02>', closeToken: '<0x03>', form: 'x, y' },
];

const TAG_TOKENS = TAGS.flatMap((t) => [t.openToken, t.closeToken]);
const OPEN_TOKENS = TAGS.map((t) => t.openToken);
const HINT = 'Write boxes as <box>y1, x1, y2, x2</box> and points as <point>x, y</point>, in pixels of the original image.';

/** numpy's round: halves to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The prompt's token ids as FuyuProcessor computes them for an image resized by `scaleFactor`:
 * text between tags tokenized piece by piece (each piece as its own `tokenizer(…)` call, so each
 * gets the leading "▁"), tags as their byte tokens, coordinates as number tokens. A prompt without
 * tags is exactly `tokenizer.encode(prompt)`.
 */
export function encodeFuyuPrompt(tokenizer: FuyuTokenizer, prompt: string, scaleFactor: number): number[] {
  let text = prompt;
  for (const tag of TAGS) text = text.replaceAll(tag.open, tag.openToken).replaceAll(tag.close, tag.closeToken);
  // The capture group keeps the tag tokens in the split, so a piece's predecessor says whether it is inside a tag.
  const pieces = text.split(new RegExp(`(${TAG_TOKENS.map((t) => t.replace(/[<>]/g, '\\$&')).join('|')})`));
  const ids: number[] = [];
  pieces.forEach((piece, i) => {
    if (piece === '' || TAG_TOKENS.includes(piece)) return;
    if (i > 0 && OPEN_TOKENS.includes(pieces[i - 1]!)) ids.push(...locationIds(tokenizer, piece, scaleFactor));
    else ids.push(...tokenizer.encode(piece));
  });
  return ids;
}

/** The tokens of one tag's contents: the kind follows the count of values (2: point, 4: box), as the processor decides. */
function locationIds(tokenizer: FuyuTokenizer, contents: string, scaleFactor: number): number[] {
  const values = contents.split(',').map((s) => s.trim());
  const tag = values.length === 2 ? TAGS[1]! : TAGS[0]!;
  check(values.length === 2 || values.length === 4,
    `the prompt's location "${contents}" has ${values.length} values; a box has 4 (${TAGS[0]!.form}), a point 2 (${TAGS[1]!.form}).`, undefined, HINT);
  const id = (token: string): number => {
    const found = tokenizer.tokenToId(token);
    check(found !== undefined, `the tokenizer has no token "${token}" for the location "${contents}".`, tokenizer.source, HINT);
    return found;
  };
  const numbers = values.map((v) => {
    const n = Number(v);
    check(v !== '' && Number.isFinite(n), `the prompt's location "${contents}" holds "${v}", which is not a number.`, undefined, HINT);
    return roundHalfEven((n / 2) * scaleFactor);
  });
  return [id(tag.openToken), ...numbers.map((n) => id(String(n))), id(tag.closeToken)];
}

/**
 * Generated ids as text, with each complete box or point run (open token, numbers, close token)
 * written back as `<box>…</box>` / `<point>…</point>` in pixels of the original image; everything
 * else as `tokenizer.decode`. An unclosed run (still being generated) is decoded as it is.
 */
export function decodeFuyuAnswer(tokenizer: FuyuTokenizer, ids: readonly number[], scaleFactor: number, options: { skipSpecialTokens?: boolean } = {}): string {
  const tagOf = new Map<number, { tag: LocationTag; open: boolean }>();
  for (const tag of TAGS) {
    const open = tokenizer.tokenToId(tag.openToken);
    const close = tokenizer.tokenToId(tag.closeToken);
    if (open !== undefined) tagOf.set(open, { tag, open: true });
    if (close !== undefined) tagOf.set(close, { tag, open: false });
  }
  let text = '';
  let start = 0;
  for (let i = 0; i < ids.length; i++) {
    const opened = tagOf.get(ids[i]!);
    if (!opened?.open) continue;
    const end = ids.findIndex((id, j) => j > i && tagOf.get(id)?.tag === opened.tag && !tagOf.get(id)!.open);
    if (end < 0) break;
    const values = ids.slice(i + 1, end).map((id) => Number(tokenizer.idToToken(id)));
    if (values.length === 0 || !values.every(Number.isInteger)) continue;
    text += tokenizer.decode(ids.slice(start, i), { ...options, stripLeadingSpace: start === 0 });
    text += `${opened.tag.open}${values.map((v) => 2 * Math.trunc(v / scaleFactor)).join(', ')}${opened.tag.close}`;
    start = end + 1;
    i = end;
  }
  return text + tokenizer.decode(ids.slice(start), { ...options, stripLeadingSpace: start === 0 });
}
