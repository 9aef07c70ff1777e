import { useEffect, useSyncExternalStore } from 'react';
import type { LayerHeads, RunHeadsCache } from '../lib/runHeads';

/**
 * The heads of `layer` of run `runId` while `enabled`, fetched on first use; null when disabled
 * or before the fetch starts. The state is read from the cache by key on every render, so a new
 * run or layer never shows the previous one's heads.
 */
export function useRunHeads(cache: RunHeadsCache, runId: number | undefined, layer: number, enabled: boolean): LayerHeads | null {
  const state = useSyncExternalStore(cache.subscribe, () => (enabled && runId !== undefined ? cache.get(runId, layer) ?? null : null));
  useEffect(() => {
    if (enabled && runId !== undefined) cache.request(runId, layer);
  }, [cache, enabled, runId, layer]);
  return state;
}
