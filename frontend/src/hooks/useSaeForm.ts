// The intervention form's SAE part: which attached SAE, the operation (splice, ablate, clamp, steer),
// the feature, the value and the token index, as typed; filled from a grid cell's menu ("Use #F");
// what it builds is checked by lib/sae.ts against the SAEs attached.
import { useState } from 'react';
import type { AttachedSae, InterventionConfig } from '../api/types';
import type { InterventionContext, Result } from '../lib/interventions';
import { buildSaeIntervention, saeUnavailable, type SaeOp } from '../lib/sae';
import type { ModelLoader } from './useModelLoader';

export interface SaeForm {
  /** The SAEs attached (the select's choices). */
  attached: AttachedSae[];
  /** The SAE chosen: the first attached when the one chosen is not attached any more. */
  sae: string;
  setSae: (v: string) => void;
  op: SaeOp;
  setOp: (v: SaeOp) => void;
  feature: string;
  setFeature: (v: string) => void;
  value: string;
  setValue: (v: string) => void;
  tokenIndex: string;
  setTokenIndex: (v: string) => void;
  /** Fills the form with a feature of an SAE (from the grid); ablation unless a feature operation is chosen. */
  fill: (t: { sae: string; feature: number }) => void;
  /** Counts the fills, so the form can come into view and take the focus. */
  filled: number;
  /** Why nothing can be added (no SAE attached), or null. */
  disabledReason: string | null;
  build: (ctx: InterventionContext) => Result<{ key: string; config: InterventionConfig }>;
}

export function useSaeForm(loader: Pick<ModelLoader, 'model'>): SaeForm {
  const attached = loader.model?.saes ?? [];
  const [choice, setSae] = useState('');
  const [op, setOp] = useState<SaeOp>('sae_ablate');
  const [feature, setFeature] = useState('');
  const [value, setValue] = useState('4');
  const [tokenIndex, setTokenIndex] = useState('');
  const [filled, setFilled] = useState(0);
  const sae = attached.some((s) => s.name === choice) ? choice : (attached[0]?.name ?? '');

  const fill = (t: { sae: string; feature: number }) => {
    setSae(t.sae);
    setFeature(String(t.feature));
    setOp((o) => (o === 'sae_splice' ? 'sae_ablate' : o));
    setFilled((n) => n + 1);
  };

  return {
    attached,
    sae,
    setSae,
    op,
    setOp,
    feature,
    setFeature,
    value,
    setValue,
    tokenIndex,
    setTokenIndex,
    fill,
    filled,
    disabledReason: saeUnavailable(attached),
    build: (ctx) => buildSaeIntervention({ sae, op, feature, value, tokenIndex }, { ...ctx, attached }),
  };
}
