import { describe, expect, it } from 'vitest';
import { averageAll, clampIndex, headMatrix, layerMean, maxValue, meanOf, perLayerMeans, scaleMaxOf, toAttentionTensor, toNested } from './attention';

// 2 layers × 2 heads × 2×2
const ATT = [
  [
    [
      [1, 0],
      [0.5, 0.5],
    ],
    [
      [1, 0],
      [0.25, 0.75],
    ],
  ],
  [
    [
      [1, 0],
      [1, 0],
    ],
    [
      [1, 0],
      [0, 1],
    ],
  ],
];

const arr = (m: Float32Array) => Array.from(m, (x) => Number(x.toFixed(6)));

describe('attention tensor', () => {
  it('flattens [layer][head][query][key]', () => {
    const t = toAttentionTensor(ATT)!;
    expect([t.layers, t.heads, t.T]).toEqual([2, 2, 2]);
    expect(arr(t.data[0][1])).toEqual([1, 0, 0.25, 0.75]);
  });
  it('absent or empty attention is null', () => {
    expect(toAttentionTensor(undefined)).toBeNull();
    expect(toAttentionTensor(null)).toBeNull();
    expect(toAttentionTensor([])).toBeNull();
    expect(toAttentionTensor([[]])).toBeNull();
  });
  it('average of all layers and heads = sum / (layers·heads)', () => {
    const t = toAttentionTensor(ATT)!;
    expect(arr(averageAll(t))).toEqual([1, 0, (0.5 + 0.25 + 1 + 0) / 4, (0.5 + 0.75 + 0 + 1) / 4]);
  });
  it('layer mean over heads', () => {
    const t = toAttentionTensor(ATT)!;
    expect(arr(layerMean(t, 0))).toEqual([1, 0, 0.375, 0.625]);
    expect(arr(layerMean(t, 1))).toEqual([1, 0, 0.5, 0.5]);
  });
  it('per-layer means, in order', () => {
    const t = toAttentionTensor(ATT)!;
    expect(perLayerMeans(t).map(arr)).toEqual([
      [1, 0, 0.375, 0.625],
      [1, 0, 0.5, 0.5],
    ]);
  });
  it('stale indices are clamped, never a crash', () => {
    const t = toAttentionTensor(ATT)!;
    expect(arr(headMatrix(t, 29, 31))).toEqual(arr(t.data[1][1]));
    expect(arr(layerMean(t, 7))).toEqual(arr(layerMean(t, 1)));
    expect(clampIndex(-3, 4)).toBe(0);
    expect(clampIndex(Number.NaN, 4)).toBe(0);
    expect(clampIndex(2, 0)).toBe(0);
  });
  it('helpers', () => {
    expect(arr(meanOf([]))).toEqual([]);
    expect(toNested(new Float32Array([1, 0, 0.5, 0.5]), 2)).toEqual([
      [1, 0],
      [0.5, 0.5],
    ]);
    expect(maxValue(new Float32Array([0.1, 0.7, 0.2]))).toBeCloseTo(0.7);
    // Row 0 (always 1) does not set the colour scale.
    expect(scaleMaxOf(new Float32Array([1, 0, 0.4, 0.6]), 2)).toBeCloseTo(0.6);
    expect(scaleMaxOf(new Float32Array([1]), 1)).toBe(1);
  });
});
