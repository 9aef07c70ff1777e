// The lenses of the model in service, under the model select: the tuned lens attached (its folder)
// and the Jacobian lens attached (its file, the prompts it averages, the layers it covers), each
// with the server's warning when it may be for another model; and one field for a lens on the
// server's machine to attach with POST /load_lens: a folder is a tuned lens (config.json +
// params.pt or params.safetensors, as the tuned-lens package saves them), a file a Jacobian lens
// (.pt as TransformerLens saves it, a fit checkpoint, or .safetensors); the server tells them
// apart. One line until asked for, so the header keeps its height; the server's refusal is shown
// in words under the field.
import { useId, useState } from 'react';
import { errorMessage } from '../api/client';
import type { ModelDescription, ServingStatus } from '../api/types';
import { attachedKind, attachedLenses, jacobianSummary, layersText, lensPathName } from '../lib/lenses';
import { shortModelName } from '../lib/models';
import { useNotify } from '../hooks/useNotify';

interface Props {
  /** The model in service (a lens is attached to it); nothing is shown without one. */
  model: ServingStatus | null;
  /** A model load is under way: a lens attached now would go with the model it replaces. */
  busy: boolean;
  onAttach: (path: string) => Promise<ModelDescription>;
}

export function LensFileField({ model, busy, onAttach }: Props) {
  const { notify } = useNotify();
  const formId = useId();
  const [open, setOpen] = useState(false);
  const [path, setPath] = useState('');
  const [attaching, setAttaching] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!model) return null;
  const { tuned, jacobian } = attachedLenses(model);
  const warnings = [
    model.tuned_lens_warning ? `Tuned lens: ${model.tuned_lens_warning}` : null,
    jacobian?.warning ? `Jacobian lens: ${jacobian.warning}` : null,
  ].filter((w): w is string => w !== null);

  const attach = async () => {
    const given = path.trim();
    if (!given || busy || attaching) return;
    setAttaching(true);
    setError(null);
    try {
      const before = attachedLenses(model);
      const res = await onAttach(given);
      const after = attachedLenses(res);
      setOpen(false);
      const to = shortModelName(res.model_name);
      const kind = attachedKind(given, before, after);
      if (kind === 'jacobian' && after.jacobian) {
        const j = after.jacobian;
        notify(
          'success',
          `It transports the block outputs of ${layersText(j.source_layers)} (averaged over ${j.n_prompts} prompt${j.n_prompts === 1 ? '' : 's'}). Choose it under Lens in the run options; its lens vectors steer, ablate and swap in the intervention form, and read back in the Jacobian lens view.`,
          `Jacobian lens “${lensPathName(j.path || given)}” attached to ${to}`,
        );
        if (j.warning) notify('warning', j.warning, 'The Jacobian lens may be for another model');
      } else if (kind === 'tuned') {
        notify(
          'success',
          'Choose it under Lens in the run options to draw the grid with it; Lens quality compares it with the logit lens.',
          `Tuned lens “${lensPathName(after.tuned ?? given)}” attached to ${to}`,
        );
        if (res.tuned_lens_warning) notify('warning', res.tuned_lens_warning, 'The tuned lens may be for another model');
      } else {
        notify('success', 'Choose it under Lens in the run options.', `Lens “${lensPathName(given)}” attached to ${to}`);
      }
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setAttaching(false);
    }
  };

  return (
    <div className="tuned-lens" data-testid="lens-file">
      <span className="field-note">
        Lenses:{' '}
        {tuned && (
          <>
            tuned{' '}
            <strong data-testid="tuned-lens-attached" title={tuned}>
              {lensPathName(tuned)}
            </strong>
            {jacobian ? ' · ' : ' '}
          </>
        )}
        {jacobian && (
          <>
            Jacobian{' '}
            <strong data-testid="jacobian-lens-attached" title={jacobian.path || 'fitted by the server, not saved to a file'}>
              {jacobianSummary(jacobian)}
            </strong>{' '}
          </>
        )}
        {!tuned && !jacobian && 'none '}
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
          {open ? 'Cancel' : tuned || jacobian ? 'Attach another…' : 'Attach…'}
        </button>
      </span>
      {warnings.map((w) => (
        <span key={w} className="field-note lens-warn" role="note" data-testid="lens-warning">
          ⚠ {w}
        </span>
      ))}
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
            aria-label="Lens folder or file"
            placeholder="on the server: a tuned-lens folder, or a Jacobian-lens .pt file"
            title="A lens on the server's machine: a tuned-lens folder (config.json and params.pt or params.safetensors, as the tuned-lens package saves it), or a Jacobian-lens file (.pt as TransformerLens saves it, a fit checkpoint, or .safetensors). The server tells them apart; a tuned lens replaces the tuned lens attached, a Jacobian lens the Jacobian lens."
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
        <span className="field-note lens-error" role="alert" data-testid="lens-file-error">
          {error}
        </span>
      )}
    </div>
  );
}
