// The tuned lens of the model in service, under the model select: which one is attached, and a
// folder on the server's machine (config.json + params.pt or params.safetensors, as the tuned-lens
// package saves them) to attach with POST /load_lens. One line until asked for, so the header
// keeps its height; the server's refusal is shown in words under the folder field.
import { useId, useState } from 'react';
import { errorMessage } from '../api/client';
import type { ModelDescription, ServingStatus } from '../api/types';
import { lensPathName } from '../lib/lenses';
import { shortModelName } from '../lib/models';
import { useNotify } from '../hooks/useNotify';

interface Props {
  /** The model in service (a lens is attached to it); nothing is shown without one. */
  model: ServingStatus | null;
  /** A model load is under way: a lens attached now would go with the model it replaces. */
  busy: boolean;
  onAttach: (path: string) => Promise<ModelDescription>;
}

export function TunedLensField({ model, busy, onAttach }: Props) {
  const { notify } = useNotify();
  const formId = useId();
  const [open, setOpen] = useState(false);
  const [path, setPath] = useState('');
  const [attaching, setAttaching] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!model) return null;
  const attached = model.tuned_lens ?? null;

  const attach = async () => {
    const folder = path.trim();
    if (!folder || busy || attaching) return;
    setAttaching(true);
    setError(null);
    try {
      const res = await onAttach(folder);
      setOpen(false);
      notify(
        'success',
        'Choose it under Lens in the run options to draw the grid with it; Lens quality compares it with the logit lens.',
        `Tuned lens “${lensPathName(res.tuned_lens ?? folder)}” attached to ${shortModelName(res.model_name)}`,
      );
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setAttaching(false);
    }
  };

  return (
    <div className="tuned-lens" data-testid="tuned-lens">
      <span className="field-note">
        Tuned lens:{' '}
        {attached ? (
          <strong data-testid="tuned-lens-attached" title={attached}>
            {lensPathName(attached)}
          </strong>
        ) : (
          'none'
        )}{' '}
        <button
          type="button"
          className="link-btn tuned-lens-toggle"
          aria-expanded={open}
          aria-controls={formId}
          onClick={() => {
            setOpen(!open);
            setError(null);
          }}
        >
          {open ? 'Cancel' : attached ? 'Change…' : 'Attach…'}
        </button>
      </span>
      {open && (
        <form
          id={formId}
          className="model-row tuned-lens-form"
          onSubmit={(e) => {
            e.preventDefault();
            void attach();
          }}
        >
          <input
            className="input mono"
            aria-label="Tuned lens folder"
            placeholder="folder on the server: config.json + params.pt"
            title="A tuned-lens folder on the server's machine, as the tuned-lens package saves it (config.json and params.pt or params.safetensors)"
            value={path}
            autoFocus
            onChange={(e) => {
              setPath(e.target.value);
              setError(null);
            }}
          />
          <button
            type="submit"
            className="btn btn-small"
            disabled={busy || attaching || path.trim() === ''}
            title={busy ? 'A model is loading: attach the lens once it is ready' : 'Attach this lens to the model in service'}
          >
            {attaching ? 'Loading…' : 'Load lens'}
          </button>
        </form>
      )}
      {error && (
        <span className="field-note lens-error" role="alert" data-testid="tuned-lens-error">
          {error}
        </span>
      )}
    </div>
  );
}
