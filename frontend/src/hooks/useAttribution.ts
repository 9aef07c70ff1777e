// Attribute, from a lens cell: the run on screen posted again with `attribution` (the cell's top-1
// token at its position), which the server answers from the run's kept layers. One request at a
// time that can be stopped, like a run; the attribution shown belongs to the run it was asked of,
// and goes when another run is on screen. A generation's is asked of /generate (with as many new
// tokens as it was asked for: greedy decoding writes the same ones), since /inference would read
// the prompt alone.
import { useState } from 'react';
import { api, isAbort } from '../api/client';
import { refusalMessage } from '../lib/refusals';
import type { Attribution } from '../api/types';
import type { AttributionTarget } from '../lib/attribution';
import type { ModelLoader } from './useModelLoader';
import type { RunState } from './useRun';
import type { RunView } from './useShownRun';
import { useStoppableRequest, type RequestStatus } from './useStoppableRequest';

export interface ShownAttribution {
  attribution: Attribution;
  target: AttributionTarget;
  modelName: string;
  /** The run's input tokens. */
  tokens: string[] | null;
}

export interface AttributionState {
  /** The attribution on screen (of the run on screen), or null. */
  shown: ShownAttribution | null;
  /** What is being attributed, or was last (for the panel's head while it runs or after it failed). */
  target: AttributionTarget | null;
  attribute: (t: AttributionTarget) => Promise<void>;
  /** Why Attribute cannot run now, or null. */
  disabledReason: string | null;
  /** The attribution in progress, or the last one asked of the run on screen (stopped, or why it failed). */
  request: RequestStatus;
  /** Closes the panel (and stops what it was doing). */
  close: () => void;
}

export function useAttribution(run: Pick<RunState, 'view' | 'task' | 'disabled'>, loader: ModelLoader): AttributionState {
  const request = useStoppableRequest(loader.subscribeRunProgress);
  // Each belongs to the run it was asked of: another run on screen hides them.
  const [shown, setShown] = useState<(ShownAttribution & { view: RunView }) | null>(null);
  const [asked, setAsked] = useState<{ target: AttributionTarget; view: RunView } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { view } = run;

  const disabledReason = run.task.running
    ? 'A run is in progress'
    : run.disabled.run
      ? run.disabled.run
      : view && loader.model && view.modelName !== loader.model.model_name
        ? 'The grid was made with another model: run it again first'
        : null;

  const attribute = async (target: AttributionTarget) => {
    if (!view || disabledReason) return;
    const t = request.begin();
    setAsked({ target, view });
    setError(null);
    try {
      const asked = { ...view.request, attribution: { token: target.tokenId, position: target.position } };
      const options = { signal: t.signal, requestId: t.id };
      const gen = view.generation;
      const res = gen ? await api.generate({ ...asked, max_new_tokens: gen.maxNewTokens }, options) : await api.inference(asked, options);
      if (!t.isCurrent()) return;
      if (!res.attribution) {
        setError('The server answered without an attribution: it may be older than this page.');
        return;
      }
      setShown({ attribution: res.attribution, target, modelName: view.modelName, tokens: res.input_tokens ?? view.tokens, view });
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return;
      setError(refusalMessage(err, 'the attribution'));
    } finally {
      request.end(t);
    }
  };

  const close = () => {
    request.stop();
    setShown(null);
    setAsked(null);
    setError(null);
  };

  const current = asked?.view === view;
  return {
    shown: shown?.view === view ? shown : null,
    target: current ? asked!.target : null,
    attribute,
    disabledReason,
    request: { running: request.running, progress: request.progress, stop: request.stop, stopped: current && request.stopped, error: current ? error : null },
    close,
  };
}
