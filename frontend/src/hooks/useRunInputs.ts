// The controls' inputs: the text, the lens type, the interventions, the run options, how many
// tokens to generate; the lens the next run asks for (a tuned or Jacobian lens only when it can
// draw it), and the request they make together.
import { useMemo, useState } from 'react';
import type { Interventions, Lens, LensType, RunRequest } from '../api/types';
import { DEFAULT_MAX_NEW_TOKENS, parseMaxNewTokens } from '../lib/generate';
import { attachedLenses, effectiveLens, lensChoices, type LensChoices } from '../lib/lenses';
import { DEFAULT_SAE_TOP_K, optionFields, saeFields, type RunOptionsValue } from '../lib/runOptions';
import type { ModelLoader } from './useModelLoader';

export const DEFAULT_TEXT = 'The capital of France is';

/** The new-tokens field of Generate: as typed, and what it reads as. */
export interface NewTokensField {
  text: string;
  set: (v: string) => void;
  /** The count to ask for, or null while `error` says why not. */
  value: number | null;
  error: string | null;
}

export interface RunInputs {
  text: string;
  setText: (t: string) => void;
  lensType: LensType;
  setLensType: (l: LensType) => void;
  interventions: Interventions;
  setInterventions: (i: Interventions) => void;
  options: RunOptionsValue;
  setOptions: (o: RunOptionsValue) => void;
  newTokens: NewTokensField;
  /** The run options' lens select: the lenses attached to the model in service; null when none is. */
  lenses: LensChoices | null;
  /** The lens the next run asks for: the choice when it can be used, else the logit lens. */
  lens: Lens;
  /** How many SAEs are attached to the model in service (the SAE features option applies then). */
  saeCount: number;
  /** The request the controls make as they are, `override` replacing fields. */
  request: (override?: Partial<RunRequest>) => RunRequest;
}

export function useRunInputs(loader: Pick<ModelLoader, 'model' | 'effectiveChat'>): RunInputs {
  const [text, setText] = useState(DEFAULT_TEXT);
  const [lensType, setLensType] = useState<LensType>('block_output');
  const [interventions, setInterventions] = useState<Interventions>({});
  const [options, setOptions] = useState<RunOptionsValue>({ compare: false, analysis: false, track: [], lens: 'logit', sae: true, saeTopK: DEFAULT_SAE_TOP_K });
  const [newTokensText, setNewTokensText] = useState(String(DEFAULT_MAX_NEW_TOKENS));

  const tuned = loader.model?.tuned_lens ?? null;
  const jacobian = loader.model?.jacobian_lens ?? null;
  // Each status event brings a new description: the choices change only when the lenses do.
  const jacobianKey = jacobian ? JSON.stringify(jacobian) : null;
  const attached = useMemo(() => attachedLenses({ tuned_lens: tuned, jacobian_lens: jacobian }), [tuned, jacobianKey]);
  // Only a request the server accepts: a learned lens when it is attached and the lens type allows it.
  const lens = effectiveLens(options.lens, attached, lensType);
  const lenses = useMemo(() => lensChoices(attached, lensType), [attached, lensType]);
  const parsed = parseMaxNewTokens(newTokensText);
  const saeCount = loader.model?.saes?.length ?? 0;

  const request = (override?: Partial<RunRequest>): RunRequest => ({
    text,
    interventions,
    lens_type: lensType,
    apply_chat_template: loader.effectiveChat,
    return_attention: true,
    // Half floats averaged over heads: about 1/30 of the nested JSON of every head (3 MB instead
    // of 96 MB for 200 tokens × 30 layers × 9 heads); a per-head view fetches its layer's heads.
    attention_format: 'f16',
    attention_reduce: 'head_mean',
    // Cheap next to the lens itself, and the grid's Entropy colour mode needs it.
    entropy: true,
    ...optionFields(options),
    // The attached SAEs' features, when asked for and there are some.
    ...saeFields(options, saeCount),
    // Absent for the logit lens, the server's default.
    ...(lens !== 'logit' ? { lens } : {}),
    ...override,
  });

  return {
    text,
    setText,
    lensType,
    setLensType,
    interventions,
    setInterventions,
    options,
    setOptions,
    newTokens: { text: newTokensText, set: setNewTokensText, value: parsed.ok ? parsed.value : null, error: parsed.ok ? null : parsed.error },
    lenses,
    lens,
    saeCount,
    request,
  };
}
