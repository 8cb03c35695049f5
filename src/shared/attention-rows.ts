/**
 * Reading one token's attention row out of the flat buffers the host sends. Layouts:
 * a layer is [heads, tokens, tokens]; "token rows" are [layers, heads, tokens].
 */

/** Row `token` of one layer [heads, tokens, tokens] for one head, or the mean over heads. */
export function layerRow(layer: Float32Array, heads: number, tokens: number, head: number | 'mean', token: number, out = new Float32Array(tokens)): Float32Array {
  if (head !== 'mean') {
    const from = (head * tokens + token) * tokens;
    out.set(layer.subarray(from, from + tokens));
    return out;
  }
  out.fill(0);
  for (let h = 0; h < heads; h++) {
    const from = (h * tokens + token) * tokens;
    for (let k = 0; k < tokens; k++) out[k]! += layer[from + k]!;
  }
  for (let k = 0; k < tokens; k++) out[k]! /= heads;
  return out;
}

/** From token rows [layers, heads, tokens]: the row of (layer, head), or the mean over heads. */
export function tokenRow(rows: Float32Array, heads: number, tokens: number, layer: number, head: number | 'mean', out = new Float32Array(tokens)): Float32Array {
  const base = layer * heads * tokens;
  if (head !== 'mean') {
    out.set(rows.subarray(base + head * tokens, base + (head + 1) * tokens));
    return out;
  }
  out.fill(0);
  for (let h = 0; h < heads; h++) {
    const from = base + h * tokens;
    for (let k = 0; k < tokens; k++) out[k]! += rows[from + k]!;
  }
  for (let k = 0; k < tokens; k++) out[k]! /= heads;
  return out;
}
