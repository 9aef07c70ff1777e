// Run: POST /inference of the controls as they are, its answer becoming the run on screen, its
// refusals said in words with what to do.
import { api, ApiError, errorMessage, isAbort } from '../api/client';
import type { RunRequest } from '../api/types';
import { formatClock } from '../lib/time';
import type { RunInputs } from './useRunInputs';
import { retryTime, type RunTask } from './useRunTask';
import type { RunView, ShownRun } from './useShownRun';

/**
 * Runs the controls as they are, `override` replacing fields; false when it failed (said in a
 * toast) or was stopped. A run started while another is in progress replaces it.
 */
export type RunInference = (override?: Partial<RunRequest>, source?: RunView['source']) => Promise<boolean>;

export function useInference(inputs: Pick<RunInputs, 'request'>, task: Pick<RunTask, 'begin'>, shown: Pick<ShownRun, 'showAnswer'>): RunInference {
  return async (override, source) => {
    const req = inputs.request(override);
    const t = task.begin('run');
    try {
      const res = await api.inference(req, { signal: t.signal, requestId: t.id });
      // Stopped or replaced meanwhile: this answer is not the page's any more.
      if (!t.isCurrent()) return false;
      shown.showAnswer(req, res, source, null);
      return true;
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return false;
      let msg = errorMessage(err);
      let title = 'Inference failed';
      const at = retryTime(err);
      if (err instanceof ApiError && err.status === 409) msg = `${msg}. Run again when the model is ready.`;
      if (err instanceof ApiError && err.status === 400 && /model not loaded/i.test(msg)) msg = `${msg}: choose a model in the header to load one.`;
      // Busy: too many runs wait for their turn. The detail says how many; Retry-After says when.
      if (err instanceof ApiError && err.status === 503) {
        title = 'The server is busy';
        if (at !== null) msg = `${msg.replace(/[.\s]+$/, '')}. Run again after ${formatClock(at)}.`;
      }
      // Anything else (a memory budget or token limit refusal included) is the server's detail as it is.
      t.fail(msg, title, at);
      return false;
    } finally {
      t.end();
    }
  };
}
