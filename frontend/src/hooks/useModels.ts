// GET /models: the server's list of models (curated, Hub cache, models folder), fetched on mount
// and again on demand (after a load, `cached` flags may have changed).
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, errorMessage } from '../api/client';
import type { ModelEntry } from '../api/types';

export interface ModelsState {
  /** The last list received; empty until the first answer. */
  models: ModelEntry[];
  loading: boolean;
  /** Why the last request failed, or null. */
  error: string | null;
  refresh: () => Promise<void>;
}

export function useModels(): ModelsState {
  const [models, setModels] = useState<ModelEntry[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const mounted = useRef(true);

  const refresh = useCallback(async () => {
    setLoading(true);
    setError(null);
    try {
      const list = await api.models();
      if (mounted.current) setModels(list);
    } catch (err) {
      if (mounted.current) setError(errorMessage(err));
    } finally {
      if (mounted.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    mounted.current = true;
    void refresh();
    return () => {
      mounted.current = false;
    };
  }, [refresh]);

  return { models, loading, error, refresh };
}
