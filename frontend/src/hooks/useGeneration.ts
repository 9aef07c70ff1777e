// Generate: a streamed POST /generate of the controls as they are. Its grid grows column by column
// as the steps arrive (`live`); its whole answer then becomes the run on screen, as a run's does.
import { useState } from 'react';
import { api, ApiError, isAbort } from '../api/client';
import type { RunRequest } from '../api/types';
import { addStep, EMPTY_STREAM, generationOf, type StreamGrid } from '../lib/generate';
import { refusalMessage } from '../lib/refusals';
import type { RunInputs } from './useRunInputs';
import { retryTime, type RunTask } from './useRunTask';
import type { RunView, ShownRun } from './useShownRun';

/** A generation in progress: what was asked, and the grid of the steps so far. */
export interface LiveGeneration {
  request: RunRequest;
  maxNewTokens: number;
  grid: StreamGrid;
}

export interface GenerationState {
  /**
   * Generates from the controls as they are (`override` replacing fields; `maxNewTokens` the
   * field's when absent), streaming: `live` grows as the tokens are written, and the whole answer
   * becomes the run on screen. Like a run: false when it failed or was stopped, and it replaces a
   * run in progress.
   */
  generate: (override?: Partial<RunRequest>, options?: { maxNewTokens?: number; source?: RunView['source'] }) => Promise<boolean>;
  /** The generation in progress as its steps arrive, once its first has; else null. */
  live: LiveGeneration | null;
}

export function useGeneration(inputs: Pick<RunInputs, 'request' | 'newTokens'>, task: Pick<RunTask, 'begin' | 'running' | 'kind'>, shown: Pick<ShownRun, 'showAnswer'>): GenerationState {
  const [live, setLive] = useState<LiveGeneration | null>(null);

  const generate: GenerationState['generate'] = async (override, options = {}) => {
    const max = options.maxNewTokens ?? inputs.newTokens.value;
    if (max === null) return false;
    const req = inputs.request(override);
    // Its bar counts the tokens written: the layers of each pass would only make it flicker.
    const t = task.begin('generate', ['queued', 'generating']);
    setLive(null);
    let grid = EMPTY_STREAM;
    try {
      const res = await api.generateStream(
        { ...req, max_new_tokens: max },
        {
          signal: t.signal,
          requestId: t.id,
          onStep: (step) => {
            if (!t.isCurrent()) return;
            const next = addStep(grid, step);
            // A grid with a hole in it would show tokens at the wrong positions: stop there.
            if (!next.ok) throw new Error(next.error);
            grid = next.value;
            setLive({ request: req, maxNewTokens: max, grid });
            t.report({ request: t.id, stage: 'generating', done: grid.written, total: max });
          },
        },
      );
      if (!t.isCurrent()) return false;
      shown.showAnswer(req, res, options.source, generationOf(res, max));
      setLive(null);
      return true;
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return false;
      const busy = err instanceof ApiError && err.status === 503;
      setLive(null);
      t.fail(refusalMessage(err, 'the generation'), busy ? 'The server is busy' : 'Generation failed', retryTime(err));
      return false;
    } finally {
      t.end();
    }
  };

  // A generation stopped midway, or replaced by a run, is not one the page can keep: the grid so far goes.
  return { generate, live: task.running && task.kind === 'generate' ? live : null };
}
