// The intervention form's Jacobian-lens part: steer toward a token, ablate tokens, swap two tokens,
// on the block output of a layer the attached Jacobian lens covers (or every layer it covers). Its
// token fields are checked live to be one token each against the model in service's tokenizer;
// α and the token index as typed. What it builds is checked by lib/jlens.ts.
import { useState } from 'react';
import { buildJlensIntervention, DEFAULT_ALPHA, jlensUnavailable, type JlensOp } from '../lib/jlens';
import type { InterventionContext } from '../lib/interventions';
import type { InterventionConfig } from '../api/types';
import type { Result } from '../lib/interventions';
import { modelKey } from '../lib/status';
import type { ModelLoader } from './useModelLoader';
import { useTokenField, useTokenListField, type TokenField, type TokenListField } from './useTokenField';

export interface JlensForm {
  op: JlensOp;
  setOp: (op: JlensOp) => void;
  /** The layer chosen: one the lens covers (the first when the one chosen is no longer covered). */
  layer: string;
  setLayer: (l: string) => void;
  allLayers: boolean;
  setAllLayers: (v: boolean) => void;
  alpha: string;
  setAlpha: (a: string) => void;
  tokenIndex: string;
  setTokenIndex: (t: string) => void;
  /** jlens_steer's token. */
  token: TokenField;
  /** jlens_ablate's tokens. */
  tokens: TokenListField;
  /** jlens_swap's two tokens. */
  source: TokenField;
  target: TokenField;
  /** The layers the attached Jacobian lens covers; null when none is attached. */
  covered: readonly number[] | null;
  /** Why nothing can be added (no Jacobian lens attached), or null. */
  disabledReason: string | null;
  /** The form's intervention, checked against the model and input (`ctx`), or why not. */
  build: (ctx: InterventionContext) => Result<{ key: string; config: InterventionConfig }>;
}

const NEED = 'a lens vector is a single token’s';

export function useJlensForm(loader: Pick<ModelLoader, 'model'>): JlensForm {
  const [op, setOp] = useState<JlensOp>('jlens_steer');
  const [layerChoice, setLayer] = useState('');
  const [allLayers, setAllLayers] = useState(false);
  const [alpha, setAlpha] = useState(DEFAULT_ALPHA);
  const [tokenIndex, setTokenIndex] = useState('');
  const covered = loader.model?.jacobian_lens?.source_layers ?? null;
  // Token strings are checked against the model only while a lens makes the form usable.
  const model = covered ? modelKey(loader.model) : null;
  const on = covered !== null;
  const token = useTokenField('steering', { inUse: on && op === 'jlens_steer', model, need: NEED });
  const tokens = useTokenListField('ablated', { inUse: on && op === 'jlens_ablate', model, need: NEED });
  const source = useTokenField('source', { inUse: on && op === 'jlens_swap', model, need: NEED });
  const target = useTokenField('target', { inUse: on && op === 'jlens_swap', model, need: NEED });
  const layer = covered && covered.length > 0 && !(layerChoice !== '' && covered.includes(Number(layerChoice))) ? String(covered[0]) : layerChoice;

  const build = (ctx: InterventionContext) => {
    // A field that says why its text cannot be sent is the reason, before what is missing.
    const fieldError = (op === 'jlens_steer' ? [token.error] : op === 'jlens_ablate' ? [tokens.error] : [source.error, target.error]).find((e) => e);
    if (fieldError) return { ok: false as const, error: fieldError };
    return buildJlensIntervention(
      { op, layer, allLayers, tokenIndex, alpha, token: token.value, tokens: tokens.value, source: source.value, target: target.value },
      { ...ctx, covered },
    );
  };

  return {
    op,
    setOp,
    layer,
    setLayer,
    allLayers,
    setAllLayers,
    alpha,
    setAlpha,
    tokenIndex,
    setTokenIndex,
    token,
    tokens,
    source,
    target,
    covered,
    disabledReason: jlensUnavailable(covered),
    build,
  };
}
