// What the page says about the run on screen beside the run itself: whether the controls or the
// model changed since (stale), what it applied (receipts), and what the controls know from it to
// check interventions against (the layers, the width, the tokens of the text as it was run).
import { useMemo, useRef } from 'react';
import type { Receipt } from '../api/types';
import { countInterventions, type InterventionContext } from '../lib/interventions';
import { inferLayers } from '../lib/lensTypes';
import { shortModelName } from '../lib/models';
import { sameOptions } from '../lib/runOptions';
import type { ModelLoader } from './useModelLoader';
import type { RunInputs } from './useRunInputs';
import type { RunView } from './useShownRun';

export interface RunReceipts {
  list: Receipt[];
  /** interventions of the displayed run */
  interventions: number;
  /** the controls changed since that run */
  stale: boolean;
}

export interface RunNotes {
  /** Why the run on screen may not match the controls or the model, or null. */
  staleNote: string | null;
  receipts: RunReceipts | null;
}

/** What interventions are checked against, and the layers the controls offer. */
export interface InterventionScope {
  ctx: InterventionContext;
  /** Layers the controls offer: the model's, else the last known, else what the run implies (0: unknown). */
  layerOptions: number;
  /** The tokens of the current text, when the run on screen ran it as it is. */
  tokens: string[] | null;
}

type Inputs = Pick<RunInputs, 'text' | 'lensType' | 'lens' | 'interventions' | 'options' | 'newTokens' | 'saeCount'>;

export function useRunNotes(loader: Pick<ModelLoader, 'model' | 'modelBusy' | 'effectiveChat'>, inputs: Inputs, view: RunView | null): RunNotes {
  const { model, modelBusy, effectiveChat } = loader;
  const { text, lensType, lens, interventions, options, saeCount } = inputs;

  const staleNote = useMemo(() => {
    if (!view || modelBusy) return null;
    if (model && view.modelName && view.modelName !== model.model_name) {
      return `These results come from ${shortModelName(view.modelName)}; the loaded model is now ${shortModelName(model.model_name)}. Run to recompute them.`;
    }
    if (view.source.kind === 'session') return null;
    const changed =
      view.request.text !== text ||
      view.request.lens_type !== lensType ||
      (view.request.lens ?? 'logit') !== lens ||
      view.request.apply_chat_template !== effectiveChat ||
      JSON.stringify(view.request.interventions) !== JSON.stringify(interventions) ||
      !sameOptions(view.request, options, saeCount);
    if (!changed) return null;
    return view.generation ? 'The controls changed since this generation: Generate to update it.' : 'The controls changed since this run: Run to update the grid.';
  }, [view, modelBusy, model, text, lensType, lens, effectiveChat, interventions, options, saeCount]);

  const receipts = useMemo(() => {
    if (!view || !Array.isArray(view.receipts)) return null;
    return {
      list: view.receipts,
      interventions: countInterventions(view.request.interventions),
      stale: JSON.stringify(view.request.interventions) !== JSON.stringify(interventions),
    };
  }, [view, interventions]);

  return { staleNote, receipts };
}

export function useInterventionScope(loader: Pick<ModelLoader, 'model' | 'effectiveChat'>, inputs: Pick<RunInputs, 'text' | 'newTokens'>, view: RunView | null): InterventionScope {
  const { model, effectiveChat } = loader;
  const lastLayersRef = useRef<number | undefined>(undefined);
  if (model) lastLayersRef.current = model.num_layers;
  const numLayers = model?.num_layers;
  const layerOptions = numLayers ?? lastLayersRef.current ?? (view ? inferLayers(view.rows.length, view.request.lens_type) : 0);

  const runMatchesInput = !!view && view.request.text === inputs.text && view.request.apply_chat_template === effectiveChat && (!model || view.modelName === model.model_name);
  // A generation's tokens go on past the text: the controls' are the prompt's.
  const tokens = runMatchesInput ? (view.generation && view.tokens ? view.tokens.slice(0, view.generation.promptTokens) : view.tokens) : null;
  // After a generation, positions it would write are offered too: the next Generate may use them.
  const newTokens = tokens && view?.generation ? (inputs.newTokens.value ?? view.generation.maxNewTokens) : undefined;
  // The Jacobian lens's layers once a model is known (null: none attached to it).
  const jlensLayers = model ? (model.jacobian_lens?.source_layers ?? null) : undefined;
  // The SAEs attached, once a model is known (their operations are checked against them).
  const saes = model ? (model.saes ?? []).map((s) => ({ name: s.name, hook: s.hook })) : undefined;
  const ctx: InterventionContext = {
    numLayers,
    hiddenSize: model?.hidden_size,
    seqLen: tokens ? tokens.length : undefined,
    ...(newTokens ? { newTokens } : {}),
    ...(jlensLayers !== undefined ? { jlensLayers } : {}),
    ...(saes !== undefined ? { saes } : {}),
  };
  return { ctx, layerOptions, tokens };
}
