import { describe, expect, it } from 'vitest';
import { gridStep } from './gridNav';

describe('gridStep', () => {
  it('moves one cell with the arrows, stops at the edges, Home and End along the row', () => {
    expect(gridStep('ArrowRight', 1, 1, 3, 4)).toEqual([1, 2]);
    expect(gridStep('ArrowRight', 1, 3, 3, 4)).toEqual([1, 3]);
    expect(gridStep('ArrowLeft', 1, 0, 3, 4)).toEqual([1, 0]);
    expect(gridStep('ArrowDown', 2, 1, 3, 4)).toEqual([2, 1]);
    expect(gridStep('ArrowUp', 1, 1, 3, 4)).toEqual([0, 1]);
    expect(gridStep('Home', 2, 3, 3, 4)).toEqual([2, 0]);
    expect(gridStep('End', 2, 0, 3, 4)).toEqual([2, 3]);
    expect(gridStep('Enter', 0, 0, 3, 4)).toBeNull();
  });
});
