// The SAEs of the model in service, beside the lenses in the header: each attached one (name, hook,
// architecture, sizes, dtype, memory) with Remove, and a field for one more: a folder on the
// server's machine (a SAELens folder with cfg.json and sae_weights.safetensors, a Gemma Scope folder
// with params.npz, or `org/name:folder` from the Hub cache), an optional name and hook. One line
// until asked for; the server's refusal is shown under it in words.
import { useId, useState } from 'react';
import type { SaesState } from '../hooks/useSaes';
import { saeSummary } from '../lib/sae';
import { useNotify } from '../hooks/useNotify';

export function SaeCard({ saes: s }: { saes: SaesState }) {
  const { notify } = useNotify();
  const formId = useId();
  const [open, setOpen] = useState(false);
  if (!s.available) return null;
  const attach = async () => {
    const path = s.path.trim();
    if (await s.attach()) {
      setOpen(false);
      notify('success', 'Its row shows in the grid with the next run (SAE features in the run options); its features can be ablated, clamped or steered in the SAE interventions.', `SAE attached from ${path}`);
    }
  };
  return (
    <div className="tuned-lens sae-card" data-testid="sae-card">
      <span className="field-note">
        SAEs: {s.attached.length === 0 && 'none '}
        <button
          type="button"
          className="link-btn tuned-lens-toggle"
          aria-expanded={open}
          aria-controls={formId}
          onClick={() => setOpen(!open)}
        >
          {open ? 'Cancel' : s.attached.length ? 'Add another SAE…' : 'Add SAE…'}
        </button>
      </span>
      {s.attached.length > 0 && (
        <ul className="sae-list" aria-label="Attached SAEs" data-testid="sae-list">
          {s.attached.map((a) => (
            <li key={a.name} className="field-note" data-sae={a.name} title={`${a.source}${a.notes.length ? `\n${a.notes.join('\n')}` : ''}`}>
              <strong>{a.name}</strong> <span className="mono small">{saeSummary(a)}</span>{' '}
              <button
                type="button"
                className="icon-btn"
                aria-label={`Remove SAE ${a.name}`}
                title="Take this SAE off the model"
                disabled={s.removing !== null}
                onClick={() => void s.remove(a.name)}
              >
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      {open && (
        <form
          id={formId}
          className="model-row tuned-lens-form sae-form"
          onSubmit={(e) => {
            e.preventDefault();
            void attach();
          }}
        >
          <input
            className="input mono"
            aria-label="SAE folder"
            placeholder="on the server: an SAE folder, or org/name:folder"
            title="A SAELens folder (cfg.json and sae_weights.safetensors), a Gemma Scope folder (params.npz), or org/name:folder from the Hub cache"
            value={s.path}
            autoFocus
            onChange={(e) => s.setPath(e.target.value)}
          />
          <input className="input input-narrow" aria-label="SAE name" placeholder="name (optional)" value={s.name} onChange={(e) => s.setName(e.target.value)} />
          <input
            className="input mono"
            aria-label="SAE hook"
            placeholder="hook (optional)"
            title="The hook it reads, e.g. blocks.1.hook_resid_post, over what its files say"
            value={s.hook}
            onChange={(e) => s.setHook(e.target.value)}
          />
          <button
            type="submit"
            className="btn btn-small"
            disabled={s.busy || s.attaching || s.path.trim() === ''}
            title={s.busy ? 'A model is loading: attach the SAE once it is ready' : 'Attach this SAE to the model in service'}
          >
            {s.attaching ? 'Loading…' : 'Load SAE'}
          </button>
        </form>
      )}
      {s.error && (
        <span className="field-note lens-error" role="alert" data-testid="sae-error">
          {s.error}
        </span>
      )}
    </div>
  );
}
