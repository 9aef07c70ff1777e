import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import { refusalMessage } from './refusals';

describe('refusalMessage', () => {
  it('says what to do about a loading model, no model or a busy server; anything else as the server said it', () => {
    expect(refusalMessage(new ApiError('model is loading', 409), 'the sweep')).toBe('model is loading: run the sweep once the model is ready.');
    expect(refusalMessage(new ApiError('Model not loaded', 400), 'the sweep')).toBe('Model not loaded: choose a model in the header to load one.');
    expect(refusalMessage(new ApiError('the server is busy; try again in 5 s.', 503, 5), 'the sweep')).toMatch(/^the server is busy; try again in 5 s\. Run it again after .+\.$/);
    expect(refusalMessage(new ApiError('too many tokens', 400), 'the sweep')).toBe('too many tokens');
    expect(refusalMessage(new ApiError('busy', 503), 'the sweep')).toBe('busy');
    expect(refusalMessage(new Error('odd'), 'the sweep')).toBe('odd');
  });
});
