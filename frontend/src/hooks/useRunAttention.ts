// The attention of a kept run that the panel asks the server for: the single heads of a layer
// (GET /runs/{id}/attention), fetched when a per-head view shows them, with their loading and
// error states; and saving a heatmap or a grid of them as a PNG on the server.
import { useEffect, useState, useSyncExternalStore } from 'react';
import { api, errorMessage } from '../api/client';
import { attentionOfRun, toNested } from '../lib/attention';
import { RunHeadsCache, type HeadsFetcher, type LayerHeads } from '../lib/runHeads';
import { useNotify } from './useNotify';

/** Fetches every head of one layer of a kept run as half floats. */
export const fetchLayerHeads: HeadsFetcher = async (runId, layer) => {
  const res = await api.runAttention(runId, { layers: [layer], format: 'f16' });
  const t = attentionOfRun(res);
  if (!t || t.layerIds[0] !== layer || t.reduce !== 'none') {
    throw new Error(`The server sent attention for layers ${JSON.stringify(res.layers)} (${res.reduce}) instead of the heads of layer ${layer}`);
  }
  return t;
};

export interface RunHeads {
  /** The heads of the layer asked for: loading, ready, or why not; null when not asked (or no run id). */
  heads: LayerHeads | null;
  /** Fetches them again after an error that was not the run being gone. */
  retry: () => void;
}

/**
 * The heads of `layer` of run `runId` while `enabled`, fetched on first use and kept per panel
 * (every view of it shares them). The state is read by key on every render, so a new run or layer
 * never shows the previous one's heads.
 */
export function useRunAttention(runId: number | undefined, layer: number, enabled: boolean): RunHeads {
  const [cache] = useState(() => new RunHeadsCache(fetchLayerHeads));
  const heads = useSyncExternalStore(cache.subscribe, () => (enabled && runId !== undefined ? (cache.get(runId, layer) ?? null) : null));
  useEffect(() => {
    if (enabled && runId !== undefined) cache.request(runId, layer);
  }, [cache, enabled, runId, layer]);
  return {
    heads,
    retry: () => {
      if (runId !== undefined) cache.retry(runId, layer);
    },
  };
}

export interface HeatmapSaving {
  /** Which save is under way (the id it was given), or null. */
  saving: string | null;
  /** Where the server saved the last one. */
  lastSaved: string | null;
  /** Saves one matrix (T×T) as a heatmap titled `title`; `id` names it in `saving`. */
  saveOne: (id: string, m: Float32Array, title: string) => Promise<void>;
  /** Saves several as one grid of heatmaps (`saving` is "grid"). */
  saveGrid: (panels: Float32Array[], title: string, gridType: 'layer_grid' | 'head_grid') => Promise<void>;
}

/** Saving heatmaps of T×T attention over `tokens` (as shown) on the server, said in toasts. */
export function useHeatmapSaving(tokens: string[], T: number): HeatmapSaving {
  const { notify } = useNotify();
  const [saving, setSaving] = useState<string | null>(null);
  const [lastSaved, setLastSaved] = useState<string | null>(null);

  const save = async (id: string, what: string, send: () => Promise<{ filepath: string }>) => {
    setSaving(id);
    try {
      const res = await send();
      setLastSaved(res.filepath);
      notify('success', res.filepath, `${what} saved`);
    } catch (err) {
      notify('error', errorMessage(err), `Could not save the ${what.toLowerCase()}`);
    } finally {
      setSaving(null);
    }
  };

  return {
    saving,
    lastSaved,
    saveOne: (id, m, title) => save(id, 'Heatmap', () => api.saveVisualization(toNested(m, T), tokens, title)),
    saveGrid: (panels, title, gridType) =>
      save('grid', 'Grid', () =>
        api.saveGridVisualization(
          panels.map((m) => toNested(m, T)),
          tokens,
          title,
          gridType,
        ),
      ),
  };
}
