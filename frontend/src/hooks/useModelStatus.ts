// The server's model status: fetched once, then followed through Server-Sent Events (`GET
// /events`, event "status"). If the stream drops, the browser reconnects by itself; meanwhile the
// status is polled so progress keeps moving.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, errorMessage, EVENTS_URL } from '../api/client';
import type { ModelStatus } from '../api/types';

export interface ModelStatusState {
  status: ModelStatus | null;
  /** Why the server could not be reached, or null. */
  connectionError: string | null;
  /** Whether the event stream is open. */
  live: boolean;
  refresh: () => Promise<void>;
}

export function useModelStatus(pollMs = 1500): ModelStatusState {
  const [status, setStatus] = useState<ModelStatus | null>(null);
  const [connectionError, setConnectionError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const mounted = useRef(true);

  const refresh = useCallback(async () => {
    try {
      const s = await api.modelStatus();
      if (!mounted.current) return;
      setStatus(s);
      setConnectionError(null);
    } catch (err) {
      if (!mounted.current) return;
      setConnectionError(errorMessage(err));
    }
  }, []);

  useEffect(() => {
    mounted.current = true;
    void refresh();
    let es: EventSource | null = null;
    if (typeof EventSource !== 'undefined') {
      es = new EventSource(EVENTS_URL);
      es.addEventListener('open', () => setLive(true));
      es.addEventListener('status', (ev) => {
        try {
          const s = JSON.parse((ev as MessageEvent<string>).data) as ModelStatus;
          setStatus(s);
          setConnectionError(null);
          setLive(true);
        } catch {
          /* a malformed event is skipped */
        }
      });
      es.addEventListener('error', () => setLive(false));
    }
    return () => {
      mounted.current = false;
      es?.close();
    };
  }, [refresh]);

  // Poll while the stream is down (or absent), faster while a model loads.
  const loading = status?.status === 'loading';
  useEffect(() => {
    if (live) return;
    const id = window.setInterval(() => void refresh(), loading ? pollMs : pollMs * 4);
    return () => window.clearInterval(id);
  }, [live, loading, pollMs, refresh]);

  return { status, connectionError, live, refresh };
}
