// What a run asks for besides the lens type: which lens draws the rows (when a tuned or Jacobian
// lens is attached), a baseline to compare with, tracked tokens, the activation analysis.
import { useId, useState } from 'react';
import type { Lens, TrackToken } from '../api/types';
import type { LensChoices } from '../lib/lenses';
import { LensSelect } from './LensSelect';
import { DEFAULT_SAE_TOP_K, type RunOptionsValue } from '../lib/runOptions';
import { addTrackTokens, hasSeparator, MAX_TRACK_TOKENS, parseTrackTokens, trackTokenLabel } from '../lib/track';

interface TrackInputProps {
  value: TrackToken[];
  onChange: (v: TrackToken[]) => void;
}

/**
 * Tokens as chips. Enter, a comma or leaving the field turns the typed text into chips, so
 * nothing typed is lost when Run is pressed next; the chips show spaces as ␣.
 */
export function TrackTokensInput({ value, onChange }: TrackInputProps) {
  const [draft, setDraft] = useState('');
  const [error, setError] = useState<string | null>(null);
  const hintId = useId();

  /** Adds the tokens of `text`; returns whether it worked (the draft stays for fixing when not). */
  const commit = (text: string): boolean => {
    const parsed = parseTrackTokens(text);
    if (!parsed.ok) {
      setError(parsed.error);
      return false;
    }
    const next = addTrackTokens(value, parsed.value);
    if (!next.ok) {
      setError(next.error);
      return false;
    }
    setError(null);
    if (next.value.length !== value.length) onChange(next.value);
    return true;
  };

  const onInput = (text: string) => {
    setError(null);
    if (!hasSeparator(text)) {
      setDraft(text);
      return;
    }
    // Everything before the last separator is complete; the rest is still being typed.
    const cut = lastSeparator(text);
    if (commit(text.slice(0, cut))) setDraft(text.slice(cut + 1));
    else setDraft(text);
  };

  const preview = draft.trim() === '' ? null : parseTrackTokens(draft);

  return (
    <div className="track-input" data-testid="track-input">
      <label className="label" htmlFor={`${hintId}-input`}>
        Track tokens
      </label>
      <div className="chip-field">
        {value.map((t, i) => (
          <span key={`${typeof t}:${String(t)}`} className="track-chip mono" title={typeof t === 'number' ? `token id ${t}` : JSON.stringify(t)}>
            {trackTokenLabel(t)}
            <button type="button" className="chip-remove" aria-label={`Stop tracking ${trackTokenLabel(t)}`} onClick={() => onChange(value.filter((_, j) => j !== i))}>
              ×
            </button>
          </span>
        ))}
        <input
          id={`${hintId}-input`}
          className="chip-input mono"
          aria-describedby={hintId}
          placeholder={value.length === 0 ? 'e.g.  Paris, 1234' : ''}
          value={draft}
          disabled={value.length >= MAX_TRACK_TOKENS && draft === ''}
          onChange={(e) => onInput(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              if (commit(draft)) setDraft('');
            } else if (e.key === 'Backspace' && draft === '' && value.length > 0) {
              onChange(value.slice(0, -1));
            }
          }}
          onBlur={() => {
            if (draft.trim() !== '' && commit(draft)) setDraft('');
          }}
        />
      </div>
      {/* One line whatever it says: the leaving-the-field commit must not move the Run button under the pointer. */}
      <div className="track-status small">
        {preview?.ok && preview.value.length > 0 ? (
          <span data-testid="track-preview">
            Enter adds: {preview.value.map((t) => <code key={`${typeof t}:${String(t)}`}>{trackTokenLabel(t)}</code>)}
          </span>
        ) : (
          <span className="muted">Enter or a comma adds what you type</span>
        )}
      </div>
      <p id={hintId} className="hint">
        A number is a token id; other text is one token, spaces included: ␣Paris is Paris after a space. Quote for exact text (
        <code>"\n"</code>); <code>\,</code> is a comma. Up to {MAX_TRACK_TOKENS}.
      </p>
      {error && (
        <div className="inline-error" role="alert" data-testid="track-error">
          {error}
        </div>
      )}
    </div>
  );
}

function lastSeparator(text: string): number {
  for (let i = text.length - 1; i >= 0; i--) {
    if (text[i] !== ',') continue;
    // A comma after an odd number of backslashes is written `\,`: part of a token.
    let n = 0;
    for (let j = i - 1; j >= 0 && text[j] === '\\'; j--) n++;
    if (n % 2 === 0) return i;
  }
  return -1;
}

interface RunOptionsProps {
  value: RunOptionsValue;
  onChange: (v: RunOptionsValue) => void;
  /** Whether the current controls have interventions (a comparison needs some to differ). */
  hasInterventions: boolean;
  /** The lens select, offered once a lens is attached to the model, and the lens the next run asks for. */
  lenses?: { choices: LensChoices | null; effective: Lens } | null;
  /** How many SAEs are attached: with any, the SAE features option is offered. */
  saes?: number;
}

export function RunOptions({ value, onChange, hasInterventions, lenses, saes = 0 }: RunOptionsProps) {
  const set = (patch: Partial<RunOptionsValue>) => onChange({ ...value, ...patch });
  const saeId = useId();
  return (
    <fieldset className="run-options" aria-label="Run options">
      <legend className="sr-only">Run options</legend>
      {lenses?.choices && <LensSelect value={lenses.effective} onChange={(lens) => set({ lens })} choices={lenses.choices} />}
      <label className="check-row">
        <input type="checkbox" checked={value.compare} onChange={(e) => set({ compare: e.target.checked })} />
        <span>
          Compare with baseline
          <span className="muted small block">
            {hasInterventions || !value.compare
              ? 'Also runs the text without interventions; the grid gets a Diff view'
              : 'Add an intervention: without one the baseline is the same run'}
          </span>
        </span>
      </label>
      <label className="check-row">
        <input type="checkbox" checked={value.analysis} onChange={(e) => set({ analysis: e.target.checked })} />
        <span>
          Activation analysis
          <span className="muted small block">Residual norms and cosines, attention/MLP output norms</span>
        </span>
      </label>
      {saes > 0 && (
        <div className="check-row sae-option">
          <input type="checkbox" id={`${saeId}-on`} checked={!!value.sae} onChange={(e) => set({ sae: e.target.checked })} />
          <span>
            <label htmlFor={`${saeId}-on`}>SAE features</label>
            <label className="field field-inline sae-top-k">
              <span className="small">top</span>
              <input
                aria-label="SAE features per position"
                className="input input-narrow"
                type="number"
                min={0}
                step={1}
                value={value.saeTopK ?? DEFAULT_SAE_TOP_K}
                disabled={!value.sae}
                title="Features listed a position (0: every active one)"
                onChange={(e) => {
                  const k = Math.trunc(Number(e.target.value));
                  set({ saeTopK: Number.isFinite(k) && k >= 0 ? k : DEFAULT_SAE_TOP_K });
                }}
              />
            </label>
            <span className="muted small block">
              A row per SAE attached ({saes}) under the lens row it reads: each position’s strongest features
            </span>
          </span>
        </div>
      )}
      <TrackTokensInput value={value.track} onChange={(track) => set({ track })} />
    </fieldset>
  );
}
