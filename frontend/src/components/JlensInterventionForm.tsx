// The intervention form's Jacobian-lens operations: steer toward a token, ablate tokens, swap two
// tokens, along their lens vectors, on the block output of a layer the attached Jacobian lens
// covers (or every layer it covers). Each token field says live whether it is one token (and its
// id); α is a number, checked. Without a Jacobian lens it says how to get one.
import { useState } from 'react';
import type { InterventionConfig } from '../api/types';
import type { JlensForm } from '../hooks/useJlensForm';
import { isJlensOp, JLENS_OPS } from '../lib/jlens';
import type { InterventionContext } from '../lib/interventions';
import { layersText } from '../lib/lenses';
import { TokenInput } from './TokenInput';

interface Props {
  form: JlensForm;
  ctx: InterventionContext;
  onAdd: (key: string, config: InterventionConfig) => void;
}

export function JlensInterventionForm({ form: f, ctx, onAdd }: Props) {
  const [error, setError] = useState<string | null>(null);
  const change =
    <T,>(set: (v: T) => void) =>
    (v: T) => {
      set(v);
      setError(null);
    };
  const help = JLENS_OPS.find((o) => o.value === f.op)?.help;
  const add = () => {
    const r = f.build(ctx);
    if (!r.ok) setError(r.error);
    else {
      setError(null);
      onAdd(r.value.key, r.value.config);
    }
  };
  const disabled = f.disabledReason !== null;
  return (
    <fieldset className="form-block jlens-form" aria-label="Jacobian lens interventions">
      <legend>Jacobian lens interventions</legend>
      {disabled ? (
        <p className="hint" data-testid="jlens-form-unavailable">
          {f.disabledReason}
        </p>
      ) : (
        <>
          <p className="hint">
            Along a token’s lens vector (J<sub>ℓ</sub>ᵀ W<sub>U</sub>[:, token]), on block outputs at the layers the lens covers ({layersText(f.covered ?? [])}). {help}
          </p>
          <div className="form-grid">
            <label className="field">
              <span>Operation</span>
              <select
                aria-label="Jacobian lens operation"
                value={f.op}
                onChange={(e) => {
                  if (isJlensOp(e.target.value)) change(f.setOp)(e.target.value);
                }}
              >
                {JLENS_OPS.map((o) => (
                  <option key={o.value} value={o.value}>
                    {o.label}
                  </option>
                ))}
              </select>
            </label>
            <label className="field">
              <span>Layer (block output)</span>
              <select aria-label="Jacobian lens layer" value={f.layer} disabled={f.allLayers} onChange={(e) => change(f.setLayer)(e.target.value)}>
                {(f.covered ?? []).map((l) => (
                  <option key={l} value={String(l)}>
                    Layer {l}
                  </option>
                ))}
              </select>
            </label>
            {f.op !== 'jlens_ablate' && (
              <label className="field">
                <span>α</span>
                <input
                  aria-label="Alpha"
                  className="input input-narrow"
                  type="number"
                  step="0.5"
                  value={f.alpha}
                  aria-invalid={error !== null && /^α/.test(error)}
                  title={
                    f.op === 'jlens_steer'
                      ? 'Strength: α × the median norm of the stream is added along the unit lens vector (negative steers away)'
                      : 'Strength: 1 exchanges the two coordinates, 2 is the paper’s double strength'
                  }
                  onChange={(e) => change(f.setAlpha)(e.target.value)}
                />
              </label>
            )}
            <label className="field">
              <span>Token index</span>
              <input
                aria-label="Jacobian lens token index"
                className="input input-narrow"
                inputMode="numeric"
                placeholder="all"
                title="Empty: every position. Negative counts from the end (-1 = last)."
                value={f.tokenIndex}
                onChange={(e) => change(f.setTokenIndex)(e.target.value)}
              />
            </label>
          </div>
          <div className="patch-tokens">
            {f.op === 'jlens_steer' && <TokenInput label="Steer toward" field={f.token} placeholder="e.g.  Paris or 464" testId="jlens-token" />}
            {f.op === 'jlens_ablate' && (
              <TokenInput label="Tokens to ablate (comma-separated)" field={f.tokens} placeholder="e.g.  Paris,  London" testId="jlens-tokens" title="Each a token string (␣Paris is Paris after a space) or a token id; \, is a comma inside a token" />
            )}
            {f.op === 'jlens_swap' && (
              <>
                <TokenInput label="Source token" field={f.source} placeholder="e.g.  Paris" testId="jlens-source" />
                <TokenInput label="Target token" field={f.target} placeholder="e.g.  London" testId="jlens-target" />
              </>
            )}
          </div>
          <div className="form-actions">
            <label className="check-row inline">
              <input type="checkbox" aria-label="Apply at every layer the Jacobian lens covers" checked={f.allLayers} onChange={(e) => change(f.setAllLayers)(e.target.checked)} />
              <span>Every layer the lens covers</span>
            </label>
            <button type="button" className="btn btn-secondary" onClick={add}>
              Add Jacobian lens intervention
            </button>
          </div>
          {error && (
            <div className="inline-error" role="alert" data-testid="jlens-error">
              {error}
            </div>
          )}
        </>
      )}
    </fieldset>
  );
}
