// One request at a time that the server reports on /events and the user can stop: a run (or a
// generation), a lens evaluation. Its id is sent as `x-logitlens-request`, so only its own progress events count;
// its AbortController is what Stop (and leaving the page) uses, which cancels it on the server.
// Starting another replaces it, and whatever a replaced or stopped request still delivers is not
// the page's any more (`isCurrent`).
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { newRequestId } from '../api/client';
import type { RunProgress, RunStage } from '../api/types';
import type { RunProgressListener } from './useModelStatus';

/** The latest progress event of the page's run in progress (null: none yet, or no run). */
export interface RunProgressStore {
  get: () => RunProgress | null;
  subscribe: (onChange: () => void) => () => void;
}

/** A progress store (the page's run's; the lens evaluation's). */
export function createProgressStore(): RunProgressStore & { set: (p: RunProgress | null) => void } {
  let current: RunProgress | null = null;
  const listeners = new Set<() => void>();
  return {
    get: () => current,
    set: (p) => {
      if (p === current) return;
      current = p;
      for (const fn of [...listeners]) fn();
    },
    subscribe: (fn) => {
      listeners.add(fn);
      return () => {
        listeners.delete(fn);
      };
    },
  };
}

/** The progress of the run in progress, for the component that shows it. */
export function useRunProgress(store: RunProgressStore): RunProgress | null {
  return useSyncExternalStore(store.subscribe, store.get, store.get);
}

/**
 * What a view shows of its request (the run's, an evaluation's, a sweep's, an attribution's): its
 * progress and Stop while it runs, and after it whether it was stopped or why it failed.
 */
export interface RequestStatus {
  running: boolean;
  /** The last one was stopped (until the next begins). */
  stopped: boolean;
  progress: RunProgressStore;
  stop: () => void;
  /** Why the last one failed, or null. */
  error: string | null;
}

/** The request begun: its id, its abort signal, and whether it is still the page's. */
export interface Ticket {
  id: string;
  signal: AbortSignal;
  isCurrent: () => boolean;
}

export interface StoppableRequest {
  running: boolean;
  /** The last request was stopped (until the next begins). */
  stopped: boolean;
  progress: RunProgressStore;
  /**
   * Replaces any request in progress. `stages`: the progress events that count (a generation's
   * bar counts tokens, not the layers of each pass); all when absent.
   */
  begin: (stages?: readonly RunStage[]) => Ticket;
  /** The request settled (answer or error): done, unless another replaced it. */
  end: (t: Ticket) => void;
  /**
   * Progress the request's own answer told (a generation's steps), unless another replaced it or
   * the events have already said more of the same stage.
   */
  report: (t: Ticket, p: RunProgress) => void;
  stop: () => void;
}

interface Current {
  id: string;
  controller: AbortController;
  stages?: readonly RunStage[];
}

export function useStoppableRequest(subscribeRunProgress: (fn: RunProgressListener) => () => void): StoppableRequest {
  const [running, setRunning] = useState(false);
  const [stopped, setStopped] = useState(false);
  const [progress] = useState(createProgressStore);
  const currentRef = useRef<Current | null>(null);

  useEffect(
    () =>
      subscribeRunProgress((p) => {
        const cur = currentRef.current;
        if (cur && p.request === cur.id && (!cur.stages || cur.stages.includes(p.stage))) progress.set(p);
      }),
    [subscribeRunProgress, progress],
  );

  // Leaving the page stops its request.
  useEffect(
    () => () => {
      const cur = currentRef.current;
      currentRef.current = null;
      cur?.controller.abort();
    },
    [],
  );

  const stop = useCallback(() => {
    const cur = currentRef.current;
    if (!cur) return;
    // No longer current first: whatever the aborted request still delivers is ignored.
    currentRef.current = null;
    cur.controller.abort();
    progress.set(null);
    setRunning(false);
    setStopped(true);
  }, [progress]);

  const begin = useCallback(
    (stages?: readonly RunStage[]): Ticket => {
      currentRef.current?.controller.abort();
      const cur: Current = { id: newRequestId(), controller: new AbortController(), stages };
      currentRef.current = cur;
      progress.set(null);
      setRunning(true);
      setStopped(false);
      return { id: cur.id, signal: cur.controller.signal, isCurrent: () => currentRef.current === cur };
    },
    [progress],
  );

  const end = useCallback(
    (t: Ticket) => {
      if (!t.isCurrent()) return;
      currentRef.current = null;
      progress.set(null);
      setRunning(false);
    },
    [progress],
  );

  const report = useCallback(
    (t: Ticket, p: RunProgress) => {
      if (!t.isCurrent()) return;
      const now = progress.get();
      // The events (the server's own count) may run ahead of the lines read so far.
      if (now && now.stage === p.stage && now.done > p.done) return;
      progress.set(p);
    },
    [progress],
  );

  return { running, stopped, progress, begin, end, stop, report };
}
