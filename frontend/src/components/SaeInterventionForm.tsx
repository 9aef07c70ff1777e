// The intervention form's SAE operations, at the hook of an attached SAE: splice its reconstruction
// in, ablate a feature, clamp it to a value, or steer along its decoder row; an optional token
// index. A grid cell's menu fills it ("Use #F"); without an SAE it says how to attach one.
import { useEffect, useRef, useState } from 'react';
import type { InterventionConfig } from '../api/types';
import type { SaeForm } from '../hooks/useSaeForm';
import type { InterventionContext } from '../lib/interventions';
import { isSaeOp, SAE_OPS } from '../lib/sae';

interface Props {
  form: SaeForm;
  ctx: InterventionContext;
  onAdd: (key: string, config: InterventionConfig) => void;
}

export function SaeInterventionForm({ form: f, ctx, onAdd }: Props) {
  const [error, setError] = useState<string | null>(null);
  const boxRef = useRef<HTMLFieldSetElement>(null);
  const featureRef = useRef<HTMLInputElement>(null);
  // Filled from the grid: into view, the feature field focused.
  useEffect(() => {
    if (f.filled === 0) return;
    setError(null);
    boxRef.current?.scrollIntoView?.({ block: 'nearest' });
    featureRef.current?.focus();
  }, [f.filled]);
  const change =
    <T,>(set: (v: T) => void) =>
    (v: T) => {
      set(v);
      setError(null);
    };
  const add = () => {
    const r = f.build(ctx);
    if (!r.ok) setError(r.error);
    else {
      setError(null);
      onAdd(r.value.key, r.value.config);
    }
  };
  const chosen = f.attached.find((s) => s.name === f.sae);
  const help = SAE_OPS.find((o) => o.value === f.op)?.help;
  return (
    <fieldset className="form-block sae-intervention-form" aria-label="SAE interventions" ref={boxRef}>
      <legend>SAE interventions</legend>
      {f.disabledReason ? (
        <p className="hint" data-testid="sae-form-unavailable">
          {f.disabledReason}
        </p>
      ) : (
        <>
          <p className="hint">
            At the SAE’s hook{chosen ? ` (${chosen.hook})` : ''}. {help}
          </p>
          <div className="form-grid">
            <label className="field">
              <span>SAE</span>
              <select aria-label="SAE" value={f.sae} onChange={(e) => change(f.setSae)(e.target.value)}>
                {f.attached.map((s) => (
                  <option key={s.name} value={s.name}>
                    {s.name}
                  </option>
                ))}
              </select>
            </label>
            <label className="field">
              <span>Operation</span>
              <select
                aria-label="SAE operation"
                value={f.op}
                onChange={(e) => {
                  if (isSaeOp(e.target.value)) change(f.setOp)(e.target.value);
                }}
              >
                {SAE_OPS.map((o) => (
                  <option key={o.value} value={o.value}>
                    {o.label}
                  </option>
                ))}
              </select>
            </label>
            {f.op !== 'sae_splice' && (
              <label className="field">
                <span>Feature</span>
                <input
                  ref={featureRef}
                  aria-label="SAE feature"
                  className="input input-narrow"
                  inputMode="numeric"
                  placeholder={chosen ? `0..${chosen.d_sae - 1}` : ''}
                  value={f.feature}
                  onChange={(e) => change(f.setFeature)(e.target.value)}
                />
              </label>
            )}
            {(f.op === 'sae_clamp' || f.op === 'sae_steer') && (
              <label className="field">
                <span>{f.op === 'sae_clamp' ? 'Activation' : 'Coefficient'}</span>
                <input
                  aria-label="SAE value"
                  className="input input-narrow"
                  type="number"
                  step="0.5"
                  value={f.value}
                  title={f.op === 'sae_clamp' ? 'The feature’s activation is set to this' : 'This × the feature’s decoder row is added (negative steers away)'}
                  onChange={(e) => change(f.setValue)(e.target.value)}
                />
              </label>
            )}
            <label className="field">
              <span>Token index</span>
              <input
                aria-label="SAE token index"
                className="input input-narrow"
                inputMode="numeric"
                placeholder="all"
                title="Empty: every position. Negative counts from the end (-1 = last)."
                value={f.tokenIndex}
                onChange={(e) => change(f.setTokenIndex)(e.target.value)}
              />
            </label>
          </div>
          <div className="form-actions">
            <button type="button" className="btn btn-secondary" onClick={add}>
              Add SAE intervention
            </button>
          </div>
          {error && (
            <div className="inline-error" role="alert" data-testid="sae-form-error">
              {error}
            </div>
          )}
        </>
      )}
    </fieldset>
  );
}
