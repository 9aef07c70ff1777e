import { describe, expect, it } from 'vitest';
import { inferLayers, isLensType, lensTypeLabel } from './lensTypes';

describe('lens types', () => {
  it('inferLayers from the lens rows of each lens type', () => {
    expect(inferLayers(31, 'block_output')).toBe(30);
    expect(inferLayers(32, 'post_attention')).toBe(30);
    expect(inferLayers(62, 'combined')).toBe(30);
    expect(inferLayers(61, 'combined')).toBe(30);
    expect(inferLayers(0, 'block_output')).toBe(0);
  });
  it('knows its lens types, and only those', () => {
    expect(isLensType('post_attention')).toBe(true);
    expect(isLensType('logit')).toBe(false);
    expect(isLensType(undefined)).toBe(false);
    expect(lensTypeLabel('combined')).toBe('Combined (most detailed)');
    expect(lensTypeLabel('tuned')).toBe('tuned');
  });
});
