// Attention maths. The server sends attention[layer][head][query][key], either as nested JSON or
// packed as base64 half floats (optionally already averaged over heads); both are kept as one flat
// Float32Array (query-major, T×T) per layer and head, which is lighter than nested arrays for
// long prompts (30 layers × 9 heads × 200² values).
import type { AttentionReduce, InferenceResponse, PackedAttention, RunAttention } from '../api/types';

export interface AttentionTensor {
  layers: number;
  heads: number;
  /** Sequence length: matrices are T×T, row = query, column = key. */
  T: number;
  /** data[layer][head] = T*T values, index query*T + key */
  data: Float32Array[][];
  /** The model layer index of each entry of `data` (0..layers-1 when every layer is there). */
  layerIds: number[];
  /** `head_mean`: data[layer] holds one matrix, the mean over that layer's heads. */
  reduce: AttentionReduce;
}

export type AttentionMode = 'all_average' | 'layer_mean' | 'specific' | 'specific_grid' | 'layer_mean_grid';

export const ATTENTION_MODES: { value: AttentionMode; label: string }[] = [
  { value: 'all_average', label: 'Average of all layers & heads' },
  { value: 'layer_mean', label: 'Layer mean (one layer)' },
  { value: 'specific', label: 'Specific head' },
  { value: 'specific_grid', label: 'All heads of a layer (grid)' },
  { value: 'layer_mean_grid', label: 'All layers, mean of heads (grid)' },
];

/**
 * Flattens the JSON attention; null when it is absent or empty. Ragged rows are zero-filled.
 * `layerIds` are the model layers of its entries (all of them, in order, when absent), `reduce`
 * how its heads were reduced.
 */
export function toAttentionTensor(att: number[][][][] | null | undefined, layerIds?: number[], reduce: AttentionReduce = 'none'): AttentionTensor | null {
  if (!att || att.length === 0 || !att[0] || att[0].length === 0) return null;
  const layers = att.length;
  const heads = att[0].length;
  const T = att[0][0]?.length ?? 0;
  if (T === 0) return null;
  const data: Float32Array[][] = [];
  for (let l = 0; l < layers; l++) {
    const row: Float32Array[] = [];
    for (let h = 0; h < heads; h++) {
      const m = new Float32Array(T * T);
      const src = att[l]?.[h];
      if (src) {
        for (let q = 0; q < T; q++) {
          const r = src[q];
          if (!r) continue;
          for (let k = 0; k < T && k < r.length; k++) m[q * T + k] = r[k];
        }
      }
      row.push(m);
    }
    data.push(row);
  }
  if (layerIds !== undefined && layerIds.length !== layers) {
    throw new Error(`The attention holds ${layers} layers but names ${layerIds.length} (${JSON.stringify(layerIds)})`);
  }
  return { layers, heads, T, data, layerIds: layerIds ? [...layerIds] : Array.from({ length: layers }, (_, i) => i), reduce };
}

/** The value of IEEE-754 binary16 bits (0..0xffff). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  // Exponent 0: zero and subnormals, frac·2^-24 (sign·0 keeps -0).
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : Number.NaN;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

// Every half float is exactly a float32, so one 256 KB table turns decoding into a lookup; it is
// built on first use only.
let halfTable: Float32Array | null = null;
function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let b = 0; b < 65536; b++) halfTable[b] = halfToFloat(b);
  }
  return halfTable;
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
let base64Lookup: Int8Array | null = null;

/**
 * Standard base64 (padding optional) to bytes. Written out rather than through atob: atob builds
 * a binary string as large as the payload before the bytes can be read.
 */
export function base64ToBytes(s: string): Uint8Array {
  if (!base64Lookup) {
    base64Lookup = new Int8Array(128).fill(-1);
    for (let i = 0; i < BASE64_ALPHABET.length; i++) base64Lookup[BASE64_ALPHABET.charCodeAt(i)] = i;
  }
  const lookup = base64Lookup;
  let end = s.length;
  if (end % 4 === 0) {
    if (end > 0 && s.charCodeAt(end - 1) === 61) end--;
    if (end > 0 && s.charCodeAt(end - 1) === 61) end--;
  }
  if (end % 4 === 1) throw new Error(`Invalid base64: a length of ${s.length} characters is impossible`);
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? lookup[c] : -1;
    if (v < 0) throw new Error(`Invalid base64: unexpected character ${JSON.stringify(s[i])} at ${i}`);
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** Base64 of little-endian half floats → their values. */
export function decodeF16Base64(b64: string): Float32Array {
  const bytes = base64ToBytes(b64);
  if (bytes.length % 2 !== 0) throw new Error(`Half-float data has an odd number of bytes (${bytes.length})`);
  const table = halfToFloatTable();
  const out = new Float32Array(bytes.length / 2);
  for (let i = 0, b = 0; i < out.length; i++, b += 2) out[i] = table[bytes[b] | (bytes[b + 1] << 8)];
  return out;
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0;
}

/**
 * The tensor of a packed payload ([layers][heads][query][key] half floats); null when it holds no
 * layer or no token. Throws when the data does not match the announced shape. The matrices are
 * views into one buffer, not copies.
 */
export function fromPackedAttention(p: PackedAttention): AttentionTensor | null {
  if (!Array.isArray(p.layers) || !p.layers.every(isCount) || !isCount(p.heads) || !isCount(p.tokens)) {
    throw new Error(`Malformed attention payload: layers ${JSON.stringify(p.layers)}, heads ${p.heads}, tokens ${p.tokens}`);
  }
  const reduce: AttentionReduce = p.reduce === 'head_mean' ? 'head_mean' : 'none';
  const values = decodeF16Base64(p.data ?? '');
  const layers = p.layers.length;
  const { heads, tokens: T } = p;
  const expected = layers * heads * T * T;
  if (values.length !== expected) {
    throw new Error(`The attention payload holds ${values.length} values; its shape ${layers}×${heads}×${T}×${T} needs ${expected}`);
  }
  if (layers === 0 || heads === 0 || T === 0) return null;
  const data: Float32Array[][] = [];
  for (let l = 0; l < layers; l++) {
    const row: Float32Array[] = [];
    for (let h = 0; h < heads; h++) {
      const start = (l * heads + h) * T * T;
      row.push(values.subarray(start, start + T * T));
    }
    data.push(row);
  }
  return { layers, heads, T, data, layerIds: [...p.layers], reduce };
}

/** The attention of an inference response: the packed form when present, else the nested one. */
export function attentionOfResponse(res: Pick<InferenceResponse, 'attention' | 'attention_f16'>): AttentionTensor | null {
  if (res.attention_f16) return fromPackedAttention(res.attention_f16);
  return toAttentionTensor(res.attention ?? null);
}

/** The attention of a kept run (GET /runs/{id}/attention), in whichever form the server sent. */
export function attentionOfRun(res: RunAttention): AttentionTensor | null {
  if ('data' in res) return fromPackedAttention(res);
  return toAttentionTensor(res.attention, res.layers, res.reduce === 'head_mean' ? 'head_mean' : 'none');
}

/** Whether single heads can be read from the tensor itself (not only their means). */
export function hasHeads(t: AttentionTensor): boolean {
  return t.reduce === 'none';
}

/** Element-wise mean of equally sized matrices. */
export function meanOf(mats: Float32Array[]): Float32Array {
  if (mats.length === 0) return new Float32Array(0);
  const n = mats[0].length;
  const acc = new Float64Array(n);
  for (const m of mats) for (let i = 0; i < n; i++) acc[i] += m[i];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = acc[i] / mats.length;
  return out;
}

/**
 * Mean over every layer and head (sum / (layers·heads)). Every layer has the same number of
 * heads, so for a head-mean tensor the mean of the layer means is that same value.
 */
export function averageAll(t: AttentionTensor): Float32Array {
  return meanOf(t.data.flat());
}

/** Mean over the heads of one layer (a copy of the matrix for a head-mean tensor). */
export function layerMean(t: AttentionTensor, layer: number): Float32Array {
  return meanOf(t.data[clampIndex(layer, t.layers)]);
}

/** The mean over heads of every layer, in layer order. */
export function perLayerMeans(t: AttentionTensor): Float32Array[] {
  return t.data.map((heads) => meanOf(heads));
}

/** One head's matrix; indices are clamped to the tensor (stale slider values never crash). */
export function headMatrix(t: AttentionTensor, layer: number, head: number): Float32Array {
  return t.data[clampIndex(layer, t.layers)][clampIndex(head, t.heads)];
}

export function clampIndex(i: number, n: number): number {
  if (n <= 0) return 0;
  if (!Number.isFinite(i) || i < 0) return 0;
  return i >= n ? n - 1 : Math.floor(i);
}

/** A flat T×T matrix as nested rows (what the PNG endpoints take). */
export function toNested(m: Float32Array, T: number): number[][] {
  const out: number[][] = [];
  for (let q = 0; q < T; q++) {
    const row: number[] = new Array(T);
    for (let k = 0; k < T; k++) row[k] = Number(m[q * T + k].toFixed(6));
    out.push(row);
  }
  return out;
}

/**
 * The top of a heatmap's colour scale: the largest value outside query row 0 (which can only
 * attend to itself, so it is always 1 and would flatten every other entry), or the plain
 * maximum for a 1×1 matrix.
 */
export function scaleMaxOf(m: Float32Array, T: number): number {
  if (T <= 1) return maxValue(m);
  let mx = 0;
  for (let i = T; i < m.length; i++) if (m[i] > mx) mx = m[i];
  return mx;
}

export function maxValue(m: Float32Array): number {
  let mx = 0;
  for (let i = 0; i < m.length; i++) if (m[i] > mx) mx = m[i];
  return mx;
}
