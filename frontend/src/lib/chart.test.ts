import { describe, expect, it } from 'vitest';
import { formatTick, formatValue, labelEvery, linearAxis, logAxis, niceStep, textWidth } from './chart';

describe('linear axis', () => {
  it('takes round steps', () => {
    expect(niceStep(1.38, 4)).toBe(0.5);
    expect(niceStep(7, 4)).toBe(2);
    expect(niceStep(0.03, 4)).toBe(0.01);
    expect(niceStep(0, 4)).toBe(1);
  });

  it('widens the values to round ticks, keeping what it must include', () => {
    const kl = linearAxis([1.38, 0.64, 0.28, 0], [0]);
    expect(kl.lo).toBe(0);
    expect(kl.hi).toBe(1.5);
    expect(kl.ticks).toEqual([0, 0.5, 1, 1.5]);
    expect(kl.at(0)).toBe(0);
    expect(kl.at(1.5)).toBe(1);
    expect(kl.at(0.75)).toBeCloseTo(0.5);
    expect(kl.at(NaN)).toBeNull();
    // Cross-entropies near 7 nats: the axis stays around them.
    const ce = linearAxis([7.05, 6.97, 7.0, 6.99]);
    expect(ce.lo).toBeLessThanOrEqual(6.97);
    expect(ce.hi).toBeGreaterThanOrEqual(7.05);
    expect(ce.hi - ce.lo).toBeLessThan(1);
    // A fraction: 0 to 1 whatever the values.
    expect(linearAxis([0.1, 0.3], [0, 1]).ticks).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });

  it('a flat line gets an axis around it; no values, 0..1', () => {
    const flat = linearAxis([2, 2, 2]);
    expect(flat.lo).toBeLessThan(2);
    expect(flat.hi).toBeGreaterThan(2);
    expect(flat.at(2)).toBeCloseTo(0.5);
    const none = linearAxis([NaN]);
    expect([none.lo, none.hi]).toEqual([0, 1]);
  });
});

describe('log axis', () => {
  it('ends at round values around the data and leaves out what a log scale cannot show', () => {
    const a = logAxis([1.38, 0.64, 0.028, 0]);
    expect([a.lo, a.hi]).toEqual([0.02, 2]);
    expect(a.ticks).toEqual([0.02, 0.05, 0.1, 0.2, 0.5, 1, 2]);
    expect(a.at(0.02)).toBe(0);
    expect(a.at(2)).toBe(1);
    expect(a.at(0.2)).toBeCloseTo(0.5);
    expect(a.at(0)).toBeNull();
    expect(a.at(-1)).toBeNull();
  });

  it('many decades: ticks at the powers of ten only, at most 8 decades', () => {
    expect(logAxis([1e-5, 0.3]).ticks).toEqual([1e-5, 1e-4, 1e-3, 0.01, 0.1]);
    expect(logAxis([1e-5, 0.3]).hi).toBe(0.5);
    const wide = logAxis([1e-12, 3]);
    expect(wide.hi).toBe(5);
    expect(wide.lo).toBeCloseTo(5e-8);
  });

  it('a single value gets an axis around it', () => {
    expect(logAxis([0.5]).ticks).toEqual([0.5, 1]);
    expect(logAxis([0.3, 0.7]).ticks).toEqual([0.2, 0.5, 1]);
  });
});

describe('labels', () => {
  it('formats ticks and values', () => {
    expect(formatTick(0.30000000000000004)).toBe('0.3');
    expect(formatTick(0)).toBe('0');
    expect(formatTick(0.0001)).toBe('1e-4');
    expect(formatTick(12000)).toBe('12k');
    expect(formatTick(0.25, true)).toBe('25%');
    expect(formatValue(1.3741695648768284)).toBe('1.374');
    expect(formatValue(0.00625, true)).toBe('0.6%');
    expect(formatValue(0.00012345)).toBe('1.23e-4');
    expect(formatValue(NaN)).toBe('n/a');
    expect(formatValue(0)).toBe('0');
  });

  it('thins x labels that would overlap', () => {
    expect(labelEvery(4, 80, 60)).toBe(1);
    expect(labelEvery(33, 10, 60)).toBe(6);
    expect(labelEvery(1, 0, 60)).toBe(1);
  });
});

describe('textWidth', () => {
  it('grows with the characters and the font size', () => {
    expect(textWidth('', 12)).toBe(0);
    expect(textWidth('abcd', 10)).toBe(24);
    expect(textWidth('é…', 10)).toBe(12);
  });
});
