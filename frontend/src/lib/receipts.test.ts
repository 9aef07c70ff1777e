import { describe, expect, it } from 'vitest';
import { formatLayer, formatNorm, formatPositions, isNoop } from './receipts';
import { RECEIPTS } from '../test/fixtures';

describe('receipt formatting', () => {
  it('compresses positions into runs', () => {
    expect(formatPositions([0, 1, 2, 3, 7, 9, 10])).toBe('0–3, 7, 9–10');
    expect(formatPositions([5])).toBe('5');
    expect(formatPositions([3, 1, 2, 2])).toBe('1–3');
    expect(formatPositions([])).toBe('none');
  });
  it('norms with four significant digits, none as a dash', () => {
    expect(formatNorm(12.3456)).toBe('12.35');
    expect(formatNorm(0)).toBe('0');
    expect(formatNorm(null)).toBe('—');
    expect(formatNorm(123456.7)).toBe('1.235e+5');
    expect(formatNorm(0.0000123)).toBe('1.230e-5');
  });
  it('layers and no-ops', () => {
    expect(formatLayer(null)).toBe('embeddings');
    expect(formatLayer(3)).toBe('3');
    expect(RECEIPTS.map(isNoop)).toEqual([false, true, false]);
  });
});
