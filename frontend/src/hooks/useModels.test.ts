import { afterEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, waitFor } from '@testing-library/react';
import { useModels } from './useModels';
import { MODEL_LIST } from '../test/fixtures';
import { stubServer } from '../test/server';

afterEach(() => vi.unstubAllGlobals());

describe('useModels', () => {
  it('lists GET /models on mount, in the server\'s order', async () => {
    const server = stubServer({ models: () => ({ json: MODEL_LIST }) });
    const { result } = renderHook(() => useModels());
    expect(result.current.loading).toBe(true);
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.models.map((m) => m.id)).toEqual(MODEL_LIST.map((m) => m.id));
    expect(result.current.error).toBeNull();
    expect(server.calls.map((c) => c.url)).toEqual(['models']);
  });

  it('says why the list failed, and refresh tries again', async () => {
    let fail = true;
    stubServer({ models: () => (fail ? { status: 500, json: { detail: 'cannot read the Hub cache' } } : { json: MODEL_LIST.slice(0, 2) }) });
    const { result } = renderHook(() => useModels());
    await waitFor(() => expect(result.current.error).toBe('cannot read the Hub cache'));
    expect(result.current.models).toEqual([]);
    fail = false;
    await act(() => result.current.refresh());
    expect(result.current.error).toBeNull();
    expect(result.current.models).toHaveLength(2);
  });

  it('keeps the last list when a refresh fails', async () => {
    let fail = false;
    stubServer({ models: () => (fail ? { status: 502, json: null } : { json: MODEL_LIST }) });
    const { result } = renderHook(() => useModels());
    await waitFor(() => expect(result.current.models).toHaveLength(MODEL_LIST.length));
    fail = true;
    await act(() => result.current.refresh());
    expect(result.current.error).toBe('HTTP 502');
    expect(result.current.models).toHaveLength(MODEL_LIST.length);
  });
});
