import { describe, expect, it } from 'vitest';
import { attentionColor, inferno, luminance, probColor, probToScale, rgbString, textOn, viridis } from './colors';

describe('colour scales', () => {
  it('viridis has the matplotlib endpoints', () => {
    expect(viridis(0)).toEqual([68, 1, 84]);
    expect(viridis(1)).toEqual([253, 231, 37]);
  });
  it('clamps out-of-range and non-finite input', () => {
    expect(viridis(-1)).toEqual(viridis(0));
    expect(viridis(2)).toEqual(viridis(1));
    expect(inferno(Number.NaN)).toEqual(inferno(0));
  });
  it('interpolates between stops', () => {
    const mid = viridis(0.5);
    expect(mid[1]).toBeGreaterThan(viridis(0.4)[1]);
    expect(mid[1]).toBeLessThan(viridis(0.6)[1]);
  });
  it('rgbString', () => {
    expect(rgbString([1, 2, 3])).toBe('rgb(1, 2, 3)');
  });
});

describe('probability colours', () => {
  it('gets brighter as the probability grows (monotone luminance)', () => {
    let prev = -1;
    for (let i = 0; i <= 100; i++) {
      const l = luminance(probColor(i / 100));
      expect(l).toBeGreaterThanOrEqual(prev);
      prev = l;
    }
  });
  it('separates small probabilities (sqrt scale)', () => {
    expect(probToScale(0.01)).toBeCloseTo(0.1);
    expect(probToScale(0.25)).toBeCloseTo(0.5);
    expect(probToScale(-3)).toBe(0);
    expect(probToScale(7)).toBe(1);
    expect(probColor(0.01)).not.toEqual(probColor(0.04));
  });
  it('low probabilities are dark with light text, high ones light with dark text', () => {
    expect(textOn(probColor(0.01))).toBe('#f8fafc');
    expect(textOn(probColor(0.99))).toBe('#0b1020');
  });
  it('attention colours scale to the given maximum', () => {
    expect(attentionColor(0.5, 0.5)).toEqual(viridis(1));
    expect(attentionColor(0.25, 0.5)).toEqual(viridis(0.5));
    expect(attentionColor(0.3, 0)).toEqual(viridis(0.3));
    expect(attentionColor(0, 1)).toEqual(viridis(0));
    expect(attentionColor(2, 1)).toEqual(viridis(1));
    expect(attentionColor(0.25, 1, 0.5)).toEqual(viridis(0.5));
  });
});
