import { describe, expect, it } from 'vitest';
import {
  attentionColor,
  deltaColor,
  deltaToScale,
  diverging,
  DIVERGING_NEUTRAL,
  entropyColor,
  inferno,
  luminance,
  niceProbMax,
  NO_VALUE_COLOR,
  probColor,
  probToScale,
  rgbString,
  signedColor,
  textOn,
  viridis,
} from './colors';

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

describe('diff colour scale (Δ probability)', () => {
  const blueish = (c: number[]) => c[2] - c[0];
  it('is neutral at no change, blue for lost probability, red for gained', () => {
    expect(deltaColor(0, 0.1)).toEqual(DIVERGING_NEUTRAL);
    const lost = deltaColor(-0.05, 0.1);
    const gained = deltaColor(0.05, 0.1);
    expect(blueish(lost)).toBeGreaterThan(60);
    expect(gained[0] - gained[2]).toBeGreaterThan(60);
  });
  it('gets lighter with the size of the change, the same on both sides', () => {
    let prevNeg = luminance(DIVERGING_NEUTRAL);
    let prevPos = luminance(DIVERGING_NEUTRAL);
    for (let i = 1; i <= 20; i++) {
      const d = (i / 20) * 0.2;
      // Away from the middle stop the lightness grows; near it both sides stay as dark as the neutral.
      const ln = luminance(deltaColor(-d, 0.2));
      const lp = luminance(deltaColor(d, 0.2));
      expect(ln).toBeGreaterThanOrEqual(prevNeg - 0.01);
      expect(lp).toBeGreaterThanOrEqual(prevPos - 0.01);
      prevNeg = ln;
      prevPos = lp;
    }
    expect(luminance(deltaColor(-0.2, 0.2))).toBeGreaterThan(0.5);
    expect(luminance(deltaColor(0.2, 0.2))).toBeGreaterThan(0.5);
  });
  it('uses a signed square root of |Δ| / max, clamped at the ends', () => {
    expect(deltaToScale(-0.025, 0.1)).toBeCloseTo(-0.5);
    expect(deltaToScale(0.1, 0.1)).toBe(1);
    expect(deltaToScale(-3, 0.1)).toBe(-1);
    expect(deltaToScale(Number.NaN, 0.1)).toBe(0);
    expect(deltaToScale(0.25, 0)).toBeCloseTo(0.5);
    expect(deltaColor(-5, 0.1)).toEqual(diverging(-1));
    expect(diverging(1)).not.toEqual(diverging(-1));
    expect(diverging(Number.POSITIVE_INFINITY)).toEqual(DIVERGING_NEUTRAL);
  });
  it('fits the scale to the largest change with legend-friendly steps', () => {
    expect(niceProbMax(0)).toBe(0.001);
    expect(niceProbMax(0.03)).toBe(0.05);
    expect(niceProbMax(-0.07)).toBe(0.1);
    expect(niceProbMax(0.1)).toBe(0.1);
    expect(niceProbMax(0.6)).toBe(1);
    expect(niceProbMax(3)).toBe(1);
  });
  it('text stays readable on every diff colour', () => {
    expect(textOn(deltaColor(0, 1))).toBe('#f8fafc');
    expect(textOn(deltaColor(-1, 1))).toBe('#0b1020');
    expect(textOn(deltaColor(1, 1))).toBe('#0b1020');
  });
});

describe('entropy colours', () => {
  it('run viridis from 0 to the scale top', () => {
    expect(entropyColor(0, 6)).toEqual(viridis(0));
    expect(entropyColor(6, 6)).toEqual(viridis(1));
    expect(entropyColor(3, 6)).toEqual(viridis(0.5));
    expect(entropyColor(9, 6)).toEqual(viridis(1));
  });

  it('a signed value: linear on the diverging scale −max..max, red up and blue down', () => {
    expect(signedColor(0, 1)).toEqual(diverging(0));
    expect(signedColor(1, 2)).toEqual(diverging(0.5));
    expect(signedColor(-3, 2)).toEqual(diverging(-1));
    expect(signedColor(0.5, 0)).toEqual(diverging(0.5));
    expect(signedColor(null, 1)).toEqual(NO_VALUE_COLOR);
    expect(signedColor(Number.NaN, 1)).toEqual(NO_VALUE_COLOR);
    expect(signedColor(1, 1)[0]).toBeGreaterThan(signedColor(1, 1)[2]);
    expect(signedColor(-1, 1)[2]).toBeGreaterThan(signedColor(-1, 1)[0]);
  });
});
