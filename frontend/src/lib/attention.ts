// Attention maths: the server sends attention[layer][head][query][key]; it is kept as one flat
// Float32Array (query-major, T×T) per layer and head, which is lighter than nested arrays for
// long prompts (30 layers × 9 heads × 200² values).

export interface AttentionTensor {
  layers: number;
  heads: number;
  /** Sequence length: matrices are T×T, row = query, column = key. */
  T: number;
  /** data[layer][head] = T*T values, index query*T + key */
  data: Float32Array[][];
}

export type AttentionMode = 'all_average' | 'layer_mean' | 'specific' | 'specific_grid' | 'layer_mean_grid';

export const ATTENTION_MODES: { value: AttentionMode; label: string }[] = [
  { value: 'all_average', label: 'Average of all layers & heads' },
  { value: 'layer_mean', label: 'Layer mean (one layer)' },
  { value: 'specific', label: 'Specific head' },
  { value: 'specific_grid', label: 'All heads of a layer (grid)' },
  { value: 'layer_mean_grid', label: 'All layers, mean of heads (grid)' },
];

/** Flattens the JSON attention; null when it is absent or empty. Ragged rows are zero-filled. */
export function toAttentionTensor(att: number[][][][] | null | undefined): AttentionTensor | null {
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
  return { layers, heads, T, data };
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

/** Mean over every layer and head (sum / (layers·heads)). */
export function averageAll(t: AttentionTensor): Float32Array {
  return meanOf(t.data.flat());
}

/** Mean over the heads of one layer. */
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
