// The run side of the page, composed of its parts: the controls' inputs (useRunInputs), the
// request in progress, a run or a generation, one at a time (useRunTask), the run on screen
// (useShownRun), Run (useInference), Generate with its growing grid (useGeneration), and what is
// said about the run on screen (useRunNotes, useInterventionScope). App and the views take the
// parts they need.
import type { ModelLoader } from './useModelLoader';
import { useGeneration, type GenerationState } from './useGeneration';
import { useInference, type RunInference } from './useInference';
import { useInterventionScope, useRunNotes, type InterventionScope, type RunNotes } from './useRunNotes';
import { useRunInputs, type RunInputs } from './useRunInputs';
import { useRunTask, type RunTask } from './useRunTask';
import { useShownRun, type RunView } from './useShownRun';

/** Why Run and Generate are disabled, or null. */
export interface RunDisabled {
  run: string | null;
  /** Run's reasons, or the new-tokens field's. */
  generate: string | null;
}

export interface RunState {
  inputs: RunInputs;
  task: RunTask;
  /** The run on screen. */
  view: RunView | null;
  /** Puts a run on screen without running (a session's saved results). */
  show: (v: RunView) => void;
  runInference: RunInference;
  generate: GenerationState['generate'];
  live: GenerationState['live'];
  disabled: RunDisabled;
  scope: InterventionScope;
  notes: RunNotes;
}

/** Why nothing can run on the server now (no connection, a load under way, no model), or null. */
export function runDisabledReason(loader: Pick<ModelLoader, 'status' | 'connectionError' | 'modelBusy' | 'loaded'>): string | null {
  if (!loader.status) return loader.connectionError ? 'The server cannot be reached' : 'Connecting to the server…';
  if (loader.modelBusy) return 'The model is loading: Run is available once it is ready';
  return loader.loaded ? null : 'No model is loaded: choose one in the header';
}

export function useRun(loader: ModelLoader): RunState {
  const inputs = useRunInputs(loader);
  const task = useRunTask(loader);
  const shown = useShownRun(loader);
  const runInference = useInference(inputs, task, shown);
  const { generate, live } = useGeneration(inputs, task, shown);
  const notes = useRunNotes(loader, inputs, shown.view);
  const scope = useInterventionScope(loader, inputs, shown.view);
  const run = runDisabledReason(loader);
  return {
    inputs,
    task,
    view: shown.view,
    show: shown.show,
    runInference,
    generate,
    live,
    disabled: { run, generate: run ?? inputs.newTokens.error },
    scope,
    notes,
  };
}
