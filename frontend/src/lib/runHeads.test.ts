import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError } from '../api/client';
import type { PackedAttention, RunAttention } from '../api/types';
import { attention, packAttention } from '../test/fixtures';
import { fetchLayerHeads } from '../hooks/useRunAttention';
import { HEADS_GONE_MESSAGE, RunHeadsCache, type HeadsFetcher } from './runHeads';

const ATT = attention(3, 2, 4);

function payload(runId: number, layer: number): PackedAttention & RunAttention {
  return { run_id: runId, ...packAttention(ATT, 'none', [layer]) };
}

/** Mocks api.runAttention with the server's answer for kept runs; other runs are 404. */
function mockClient(kept: number[] = [7]) {
  return vi.spyOn(api, 'runAttention').mockImplementation(async (runId, query) => {
    if (!kept.includes(runId)) throw new ApiError(`run ${runId} is not kept (the server keeps the 16 most recent runs)`, 404);
    const layer = query?.layers?.[0] ?? 0;
    return payload(runId, layer);
  });
}

/** Resolves once every pending promise callback has run. */
const flush = () => new Promise<void>((r) => setTimeout(r, 0));

describe('RunHeadsCache', () => {
  afterEach(() => vi.restoreAllMocks());

  it('fetches the heads of one layer once, as f16, and tells listeners', async () => {
    const spy = mockClient();
    const cache = new RunHeadsCache(fetchLayerHeads);
    const listener = vi.fn();
    cache.subscribe(listener);
    expect(cache.get(7, 1)).toBeUndefined();
    cache.request(7, 1);
    expect(cache.get(7, 1)).toEqual({ status: 'loading' });
    cache.request(7, 1);
    await flush();
    const state = cache.get(7, 1);
    expect(state?.status).toBe('ready');
    if (state?.status !== 'ready') return;
    expect([state.tensor.layers, state.tensor.heads, state.tensor.T]).toEqual([1, 2, 4]);
    expect(state.tensor.layerIds).toEqual([1]);
    expect(state.tensor.data[0][1][4 * 3]).toBeCloseTo(ATT[1][1][3][0], 3);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy).toHaveBeenCalledWith(7, { layers: [1], format: 'f16' });
    expect(listener).toHaveBeenCalledTimes(2);
    // Cached: asking again (another view of the same layer) fetches nothing.
    cache.request(7, 1);
    await flush();
    expect(spy).toHaveBeenCalledTimes(1);
    cache.request(7, 2);
    await flush();
    expect(spy).toHaveBeenCalledTimes(2);
    expect(cache.get(7, 2)?.status).toBe('ready');
    expect(cache.get(7, 1)?.status).toBe('ready');
  });

  it('a run the server no longer keeps (404) says so and is not fetched again', async () => {
    const spy = mockClient([]);
    const cache = new RunHeadsCache(fetchLayerHeads);
    cache.request(3, 0);
    await flush();
    expect(cache.get(3, 0)).toEqual({ status: 'error', message: HEADS_GONE_MESSAGE, gone: true });
    expect(HEADS_GONE_MESSAGE).toBe("This run's per-head attention is no longer kept on the server; run again to see heads");
    cache.request(3, 0);
    cache.retry(3, 0);
    await flush();
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('other errors carry the server detail and can be retried', async () => {
    const fetcher = vi.fn<HeadsFetcher>().mockRejectedValueOnce(new ApiError('layer 9 is out of range', 400)).mockResolvedValueOnce(fromPayload(7, 0));
    const cache = new RunHeadsCache(fetcher);
    cache.request(7, 0);
    await flush();
    expect(cache.get(7, 0)).toEqual({ status: 'error', message: 'layer 9 is out of range', gone: false });
    cache.retry(7, 0);
    expect(cache.get(7, 0)).toEqual({ status: 'loading' });
    await flush();
    expect(cache.get(7, 0)?.status).toBe('ready');
    expect(fetcher).toHaveBeenCalledTimes(2);
  });

  it('a new run drops the older run’s layers, and a late answer for it is ignored', async () => {
    let release: (() => void) | null = null;
    const fetcher = vi.fn<HeadsFetcher>(async (runId, layer) => {
      if (runId === 1) await new Promise<void>((r) => (release = r));
      return fromPayload(runId, layer);
    });
    const cache = new RunHeadsCache(fetcher);
    cache.request(1, 0);
    cache.request(2, 0);
    expect(cache.get(1, 0)).toBeUndefined();
    release!();
    await flush();
    expect(cache.get(1, 0)).toBeUndefined();
    expect(cache.get(2, 0)?.status).toBe('ready');
  });

  it('keeps at most `capacity` layers, the least recently requested going first', async () => {
    const fetcher = vi.fn<HeadsFetcher>(async (runId, layer) => fromPayload(runId, layer % 3));
    const cache = new RunHeadsCache(fetcher, 2);
    cache.request(7, 0);
    cache.request(7, 1);
    cache.request(7, 0);
    cache.request(7, 2);
    await flush();
    expect(cache.get(7, 1)).toBeUndefined();
    expect(cache.get(7, 0)?.status).toBe('ready');
    expect(cache.get(7, 2)?.status).toBe('ready');
  });

  it('rejects an answer for another layer', async () => {
    vi.spyOn(api, 'runAttention').mockResolvedValue(payload(7, 2));
    await expect(fetchLayerHeads(7, 1)).rejects.toThrow(/instead of the heads of layer 1/);
  });
});

function fromPayload(runId: number, layer: number) {
  const p = payload(runId, layer);
  return {
    layers: 1,
    heads: p.heads,
    T: p.tokens,
    data: [ATT[layer].map((m) => new Float32Array(m.flat()))],
    layerIds: [layer],
    reduce: 'none' as const,
  };
}
