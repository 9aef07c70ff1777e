import { describe, expect, it } from 'vitest';
import { describeLoading } from './progress';

describe('describeLoading', () => {
  it('downloading: file, bytes and fraction', () => {
    const v = describeLoading({ model_name: 'm', backend: 'custom', stage: 'downloading', file: 'model.safetensors', bytes: 49_000_000, total_bytes: 98_000_000, progress: null });
    expect(v.stage).toBe('Downloading');
    expect(v.detail).toBe('model.safetensors · 49.0 MB / 98.0 MB');
    expect(v.fraction).toBeCloseTo(0.5);
  });
  it('loading tensors: x / y and the server progress', () => {
    const v = describeLoading({ model_name: 'm', backend: 'custom', stage: 'loading_tensors', tensors_done: 77, tensors_total: 272, progress: 0.283 });
    expect(v.stage).toBe('Loading tensors');
    expect(v.detail).toBe('tensors 77 / 272');
    expect(v.fraction).toBeCloseTo(0.283);
  });
  it('all tensors read: an indeterminate "preparing" phase', () => {
    const v = describeLoading({ model_name: 'm', backend: 'custom', stage: 'loading_tensors', tensors_done: 272, tensors_total: 272, progress: 1 });
    expect(v.stage).toBe('Preparing model');
    expect(v.fraction).toBeNull();
  });
  it('resolving has no fraction', () => {
    expect(describeLoading({ model_name: 'm', backend: 'custom', stage: 'resolving' })).toEqual({ stage: 'Resolving', detail: '', fraction: null });
    expect(describeLoading(null).fraction).toBeNull();
  });
});
