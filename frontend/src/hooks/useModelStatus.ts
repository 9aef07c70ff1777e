// The server's model status: fetched once, then followed through Server-Sent Events (`GET
// /events`, event "status"). If the stream drops, the browser reconnects by itself; meanwhile the
// status is polled so progress keeps moving. The same stream (the page's only one) carries the
// progress of runs (event "run", every client's): handed to subscribers, never kept as state, so a
// run's layers re-render only what shows them.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, errorMessage, EVENTS_URL } from '../api/client';
import type { ModelStatus, RunProgress } from '../api/types';
import { parseRunProgress } from '../lib/progress';

export type RunProgressListener = (p: RunProgress) => void;

export interface ModelStatusState {
  status: ModelStatus | null;
  /** Why the server could not be reached, or null. */
  connectionError: string | null;
  /** Whether the event stream is open. */
  live: boolean;
  /** Asks for the status now; resolves to it (null when the server could not be reached). */
  refresh: () => Promise<ModelStatus | null>;
  /** Calls `fn` with every "run" event of /events (any request's); returns the unsubscribe. Stable. */
  subscribeRunProgress: (fn: RunProgressListener) => () => void;
}

export function useModelStatus(pollMs = 1500): ModelStatusState {
  const [status, setStatus] = useState<ModelStatus | null>(null);
  const [connectionError, setConnectionError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const mounted = useRef(true);
  const runListeners = useRef(new Set<RunProgressListener>());

  const subscribeRunProgress = useCallback((fn: RunProgressListener) => {
    runListeners.current.add(fn);
    return () => {
      runListeners.current.delete(fn);
    };
  }, []);

  const refresh = useCallback(async (): Promise<ModelStatus | null> => {
    try {
      const s = await api.modelStatus();
      if (!mounted.current) return null;
      setStatus(s);
      setConnectionError(null);
      return s;
    } catch (err) {
      if (!mounted.current) return null;
      setConnectionError(errorMessage(err));
      return null;
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
      es.addEventListener('run', (ev) => {
        const p = parseRunProgress((ev as MessageEvent<string>).data);
        if (!p) return;
        for (const fn of [...runListeners.current]) fn(p);
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

  return { status, connectionError, live, refresh, subscribeRunProgress };
}
