import type { AttentionReduce, InferenceResponse, LensRow, ModelStatus, PackedAttention } from '../api/types';

export const TOKENS = ['<s>', 'The', ' cat', '\n'];

function preds(seed: number, T: number) {
  return Array.from({ length: T }, (_, i) =>
    Array.from({ length: 5 }, (_, k) => ({ token: k === 0 ? [' the', 'cat', '\t', 'x'][(i + seed) % 4] : `t${k}`, prob: k === 0 ? 0.5 - 0.1 * ((i + seed) % 4) : 0.05, id: k })),
  );
}

export function lensRows(names = ['Embeddings', 'Layer 0', 'Final Output'], T = TOKENS.length): LensRow[] {
  return names.map((layer_name, layer_index) => ({ layer_index, layer_name, predictions: preds(layer_index, T) }));
}

/** attention[layer][head][q][k], causal rows summing to 1 */
export function attention(layers: number, heads: number, T: number): number[][][][] {
  return Array.from({ length: layers }, (_, l) =>
    Array.from({ length: heads }, (_, h) =>
      Array.from({ length: T }, (_, q) => Array.from({ length: T }, (_, k) => (k <= q ? (l + h + 1 + k) / Array.from({ length: q + 1 }, (_, j) => l + h + 1 + j).reduce((a, b) => a + b, 0) : 0))),
    ),
  );
}

/** IEEE-754 half-float bits of `v`, rounded to nearest even (through float32: fine for fixtures). */
export function floatToHalf(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** Base64 of little-endian half floats, as the server packs attention. */
export function halvesToBase64(values: ArrayLike<number>): string {
  let bin = '';
  for (let i = 0; i < values.length; i++) {
    const h = floatToHalf(values[i]);
    bin += String.fromCharCode(h & 0xff, h >> 8);
  }
  return btoa(bin);
}

/** `att` ([layer][head][q][k]) packed like the server's `attention_f16`, optionally head-averaged. */
export function packAttention(att: number[][][][], reduce: AttentionReduce = 'none', layers = att.map((_, l) => l)): PackedAttention {
  const heads = reduce === 'head_mean' ? 1 : att[0].length;
  const T = att[0][0].length;
  const values: number[] = [];
  for (const l of layers) {
    const perHead = att[l];
    const mats = reduce === 'head_mean' ? [perHead[0].map((row, q) => row.map((_, k) => perHead.reduce((a, m) => a + m[q][k], 0) / perHead.length))] : perHead;
    for (const m of mats) for (const row of m) values.push(...row);
  }
  return { layers, heads, tokens: T, reduce, data: halvesToBase64(values) };
}

/** What the app's /inference gets now: head means as half floats, no nested `attention`. */
export function inferenceResponse(text = 'The cat'): InferenceResponse {
  return { text, input_tokens: TOKENS, logit_lens: lensRows(), attention_f16: packAttention(attention(2, 2, TOKENS.length), 'head_mean') };
}

export const READY: ModelStatus = {
  loaded: true,
  backend: 'custom',
  model_name: '/fixtures/tiny/llama',
  model_class: 'LlamaModel',
  num_layers: 2,
  hidden_size: 8,
  num_heads: 2,
  vocab_size: 512,
  instruct: false,
  has_chat_template: true,
  status: 'ready',
  loading: null,
  last_error: null,
};
