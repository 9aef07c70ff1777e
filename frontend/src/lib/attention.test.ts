import { describe, expect, it } from 'vitest';
import {
  attentionOfResponse,
  attentionOfRun,
  averageAll,
  base64ToBytes,
  clampIndex,
  decodeF16Base64,
  fromPackedAttention,
  halfToFloat,
  hasHeads,
  headMatrix,
  layerMean,
  maxValue,
  meanOf,
  perLayerMeans,
  scaleMaxOf,
  toAttentionTensor,
  toNested,
} from './attention';
import { attention, floatToHalf, packAttention } from '../test/fixtures';

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
    expect(t.layerIds).toEqual([0, 1]);
    expect(t.reduce).toBe('none');
    expect(hasHeads(t)).toBe(true);
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

// Little-endian half floats of ATT, row-major [layer][head][query][key] (computed independently
// with Python's struct 'e' format).
const ATT_B64 = 'ADwAAAA4ADgAPAAAADQAOgA8AAAAPAAAADwAAAAAADw=';
// Its head means: layer 0 [1, 0, 0.375, 0.625], layer 1 [1, 0, 0.5, 0.5].
const ATT_MEAN_B64 = 'ADwAAAA2ADkAPAAAADgAOA==';

describe('half floats', () => {
  it('decodes known bit patterns', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0x3800)).toBe(0.5);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x3555)).toBe(0.333251953125);
    // Smallest subnormal, largest subnormal, smallest normal.
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x03ff)).toBe(1023 * 2 ** -24);
    expect(halfToFloat(0x0400)).toBe(2 ** -14);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(Object.is(halfToFloat(0x0000), 0)).toBe(true);
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(halfToFloat(0x7c01)).toBeNaN();
    expect(halfToFloat(0xfe00)).toBeNaN();
  });

  it('every pattern decodes like the float32 with the same sign, exponent and mantissa', () => {
    // Normals map to float32 bits by rebiasing the exponent (15 → 127) and shifting the mantissa
    // by 13: an independent derivation of the same value.
    const bytes = new Uint8Array(65536 * 2);
    for (let b = 0; b < 65536; b++) {
      bytes[2 * b] = b & 0xff;
      bytes[2 * b + 1] = b >> 8;
    }
    let bin = '';
    for (const x of bytes) bin += String.fromCharCode(x);
    const all = decodeF16Base64(btoa(bin));
    expect(all.length).toBe(65536);
    const bits = new Uint32Array(1);
    const asFloat = new Float32Array(bits.buffer);
    const wrong: string[] = [];
    for (let b = 0; b < 65536; b++) {
      const exp = (b >> 10) & 0x1f;
      const v = all[b];
      let want = halfToFloat(b);
      if (exp > 0 && exp < 0x1f) {
        bits[0] = ((b & 0x8000) << 16) | ((exp - 15 + 127) << 23) | ((b & 0x3ff) << 13);
        want = asFloat[0];
      }
      const nan = exp === 0x1f && (b & 0x3ff) !== 0;
      if (nan ? !Number.isNaN(v) : !Object.is(v, want)) wrong.push(`0x${b.toString(16)}: ${v}`);
    }
    expect(wrong).toEqual([]);
  });

  it('reads little-endian pairs from base64 with + and / and padding', () => {
    // 00 3c | 00 fc | ff 7b | 01 00
    expect(Array.from(decodeF16Base64('ADwA/P97AQA='))).toEqual([1, -Infinity, 65504, 2 ** -24]);
    expect(decodeF16Base64('').length).toBe(0);
    expect(() => decodeF16Base64('AA==')).toThrow(/odd number of bytes/);
  });

  it('base64 to bytes', () => {
    expect(Array.from(base64ToBytes('TWFu'))).toEqual([77, 97, 110]);
    expect(Array.from(base64ToBytes('TWE='))).toEqual([77, 97]);
    expect(Array.from(base64ToBytes('TQ=='))).toEqual([77]);
    expect(Array.from(base64ToBytes('TWE'))).toEqual([77, 97]);
    expect(Array.from(base64ToBytes('+/+/'))).toEqual([0xfb, 0xff, 0xbf]);
    expect(() => base64ToBytes('TW-u')).toThrow(/unexpected character "-" at 2/);
    expect(() => base64ToBytes('TWFuT')).toThrow(/length/);
    expect(() => base64ToBytes('TQ=A')).toThrow(/unexpected character/);
  });

  it('the fixtures encoder rounds to nearest even', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(65520)).toBe(0x7c00);
    expect(floatToHalf(2 ** -24)).toBe(0x0001);
    expect(floatToHalf(2 ** -26)).toBe(0x0000);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00);
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalf(-0)).toBe(0x8000);
  });
});

describe('packed attention', () => {
  it('a known payload lays out [layer][head][query][key]', () => {
    expect(Array.from(decodeF16Base64(ATT_B64))).toEqual([1, 0, 0.5, 0.5, 1, 0, 0.25, 0.75, 1, 0, 1, 0, 1, 0, 0, 1]);
    const t = fromPackedAttention({ layers: [0, 1], heads: 2, tokens: 2, reduce: 'none', data: ATT_B64 })!;
    expect([t.layers, t.heads, t.T, t.reduce]).toEqual([2, 2, 2, 'none']);
    expect(t.layerIds).toEqual([0, 1]);
    expect(hasHeads(t)).toBe(true);
    for (let l = 0; l < 2; l++) for (let h = 0; h < 2; h++) expect(Array.from(t.data[l][h])).toEqual(ATT[l][h].flat());
    // Same tensor as the nested form.
    expect(arr(averageAll(t))).toEqual(arr(averageAll(toAttentionTensor(ATT)!)));
  });

  it('head means: one matrix per layer, and the all-layer average of the full tensor', () => {
    const t = fromPackedAttention({ layers: [0, 1], heads: 1, tokens: 2, reduce: 'head_mean', data: ATT_MEAN_B64 })!;
    expect([t.layers, t.heads, t.T, t.reduce]).toEqual([2, 1, 2, 'head_mean']);
    expect(hasHeads(t)).toBe(false);
    expect(perLayerMeans(t).map(arr)).toEqual([
      [1, 0, 0.375, 0.625],
      [1, 0, 0.5, 0.5],
    ]);
    expect(arr(layerMean(t, 1))).toEqual([1, 0, 0.5, 0.5]);
    // Mean over layers of head means = mean over every layer and head.
    const full = toAttentionTensor(ATT)!;
    expect(arr(averageAll(t))).toEqual(arr(averageAll(full)));
    expect(perLayerMeans(t).map(arr)).toEqual(perLayerMeans(full).map(arr));
  });

  it('a larger tensor round-trips through the fixtures encoder, head means included', () => {
    const att = attention(3, 4, 5);
    const full = fromPackedAttention(packAttention(att))!;
    const mean = fromPackedAttention(packAttention(att, 'head_mean'))!;
    expect([full.layers, full.heads, full.T]).toEqual([3, 4, 5]);
    expect([mean.layers, mean.heads, mean.T]).toEqual([3, 1, 5]);
    const ref = toAttentionTensor(att)!;
    // Half floats keep about 3 significant digits.
    const close = (a: Float32Array, b: Float32Array) => a.forEach((x, i) => expect(Math.abs(x - b[i])).toBeLessThan(1e-3));
    close(full.data[2][3], ref.data[2][3]);
    for (let l = 0; l < 3; l++) close(layerMean(mean, l), layerMean(ref, l));
    close(averageAll(mean), averageAll(ref));
  });

  it('a subset of layers keeps their model indices', () => {
    const t = fromPackedAttention(packAttention(attention(3, 2, 2), 'none', [2]))!;
    expect(t.layers).toBe(1);
    expect(t.layerIds).toEqual([2]);
    expect(t.data[0]).toHaveLength(2);
  });

  it('a payload that does not match its shape is an error; an empty one is null', () => {
    expect(() => fromPackedAttention({ layers: [0, 1], heads: 2, tokens: 3, reduce: 'none', data: ATT_B64 })).toThrow(/holds 16 values; its shape 2×2×3×3 needs 36/);
    expect(() => fromPackedAttention({ layers: [0], heads: -1, tokens: 2, reduce: 'none', data: '' })).toThrow(/Malformed/);
    expect(fromPackedAttention({ layers: [], heads: 2, tokens: 2, reduce: 'none', data: '' })).toBeNull();
    expect(fromPackedAttention({ layers: [0], heads: 2, tokens: 0, reduce: 'none', data: '' })).toBeNull();
  });

  it('an inference response: the packed form first, else the nested one', () => {
    const packed = { layers: [0, 1], heads: 1, tokens: 2, reduce: 'head_mean' as const, data: ATT_MEAN_B64 };
    expect(attentionOfResponse({ attention_f16: packed })!.reduce).toBe('head_mean');
    expect(attentionOfResponse({ attention: ATT })!.heads).toBe(2);
    expect(attentionOfResponse({ attention: null, attention_f16: null })).toBeNull();
    expect(attentionOfResponse({})).toBeNull();
  });

  it('a kept run (GET /runs/{id}/attention): the nested or the packed form, with its layers', () => {
    const att = attention(3, 2, 2);
    const nested = attentionOfRun({ run_id: 4, layers: [1, 2], heads: 2, tokens: 2, reduce: 'none', attention: [att[1], att[2]] })!;
    expect(nested.layerIds).toEqual([1, 2]);
    expect(nested.reduce).toBe('none');
    expect(Array.from(headMatrix(nested, 1, 1))).toEqual(att[2][1].flat().map((v) => Math.fround(v)));
    const packed = attentionOfRun({ run_id: 4, ...packAttention(att, 'head_mean', [0, 2]) })!;
    expect(packed.layerIds).toEqual([0, 2]);
    expect(packed.reduce).toBe('head_mean');
    expect(packed.heads).toBe(1);
    // Layer names that do not match the layers sent.
    expect(() => attentionOfRun({ run_id: 4, layers: [0], heads: 2, tokens: 2, reduce: 'none', attention: [att[0], att[1]] })).toThrow(/holds 2 layers but names 1/);
  });
});
