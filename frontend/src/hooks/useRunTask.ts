// The run side's request in progress: a run or a generation, one at a time (starting one replaces
// the other). Its request id, Stop and progress are useStoppableRequest's; on top, what it is, and
// why the last one failed (said in a toast too) with when a busy server said to try again.
import { useState } from 'react';
import { ApiError } from '../api/client';
import type { RunProgress, RunStage } from '../api/types';
import type { ModelLoader } from './useModelLoader';
import { useNotify } from './useNotify';
import { useStoppableRequest, type RunProgressStore } from './useStoppableRequest';

export type RunKind = 'run' | 'generate';

/** One request begun: what it sends, whether it is still the page's, and how it ends. */
export interface RunTicket {
  id: string;
  signal: AbortSignal;
  isCurrent: () => boolean;
  /** Progress its own answer told (a generation's steps). */
  report: (p: RunProgress) => void;
  /** It failed: `message` is kept as the error and said in a toast titled `title`, with when to try again (see `retryTime`). */
  fail: (message: string, title: string, retryAt: number | null) => void;
  /** It settled (answer, error or abort): done, unless another replaced it. */
  end: () => void;
}

export interface RunTask {
  /** What the request in progress, or the last one, is. */
  kind: RunKind;
  running: boolean;
  /** The last one was stopped (until the next begins); the run on screen is the one before. */
  stopped: boolean;
  /** Its progress: its own "run" events of /events, or what its answer told. */
  progress: RunProgressStore;
  /** Stops it (aborts its request; the server stops between layers or tokens). */
  stop: () => void;
  /** Why the last one failed, or null. */
  error: string | null;
  /** When the server said to try again after refusing it as busy (503, ms since the epoch), or null. */
  retryAt: number | null;
  /**
   * Begins a request, replacing any in progress. `stages`: the progress events that count (a
   * generation's bar counts tokens, not the layers of each pass); all when absent.
   */
  begin: (kind: RunKind, stages?: readonly RunStage[]) => RunTicket;
}

/** When a 503 says to try again (ms since the epoch), or null. */
export function retryTime(err: unknown, now = Date.now()): number | null {
  return err instanceof ApiError && err.status === 503 && err.retryAfter !== null ? now + err.retryAfter * 1000 : null;
}

export function useRunTask(loader: Pick<ModelLoader, 'subscribeRunProgress'>): RunTask {
  const { notify } = useNotify();
  const request = useStoppableRequest(loader.subscribeRunProgress);
  const [kind, setKind] = useState<RunKind>('run');
  const [error, setError] = useState<string | null>(null);
  const [retryAt, setRetryAt] = useState<number | null>(null);

  const begin = (k: RunKind, stages?: readonly RunStage[]): RunTicket => {
    const t = request.begin(stages);
    setKind(k);
    setError(null);
    setRetryAt(null);
    return {
      ...t,
      report: (p) => request.report(t, p),
      fail: (message, title, at) => {
        if (!t.isCurrent()) return;
        setRetryAt(at);
        setError(message);
        notify('error', message, title);
      },
      end: () => request.end(t),
    };
  };

  return { kind, running: request.running, stopped: request.stopped, progress: request.progress, stop: request.stop, error, retryAt, begin };
}
