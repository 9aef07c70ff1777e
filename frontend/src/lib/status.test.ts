import { describe, expect, it } from 'vitest';
import type { ModelStatus } from '../api/types';
import { READY } from '../test/fixtures';
import { modelKey, servingModel } from './status';

describe('servingModel', () => {
  it('is the status when it describes a model in service', () => {
    expect(servingModel(READY)).toBe(READY);
    // Another load under way: the previous model still serves.
    const loading: ModelStatus = { ...READY, status: 'loading', loading: { model_name: 'gpt2', backend: 'hooked', stage: 'resolving' } };
    expect(servingModel(loading)?.model_name).toBe(READY.model_name);
  });
  it('is null without a model in service, or without a status', () => {
    expect(servingModel({ loaded: false, backend: 'custom', status: 'idle' })).toBeNull();
    expect(servingModel({ loaded: false, backend: 'custom', status: 'loading', loading: { model_name: 'gpt2', backend: 'hooked', stage: 'downloading' } })).toBeNull();
    expect(servingModel(null)).toBeNull();
    expect(servingModel(undefined)).toBeNull();
  });
});

describe('modelKey', () => {
  it('changes with the model, its backend and how it holds its weights', () => {
    expect(modelKey(null)).toBeNull();
    const key = modelKey(READY);
    expect(key).toBe('custom|/fixtures/tiny/llama|f32|F32');
    expect(modelKey({ ...READY, backend: 'hooked' })).not.toBe(key);
    expect(modelKey({ ...READY, weights: { ...READY.weights, form: 'stored' } })).not.toBe(key);
    expect(modelKey({ ...READY, tuned_lens: '/lenses/llama' })).toBe(key);
  });
});
