// The run options' lens select: the logit lens, or the tuned or Jacobian lens attached to the model.
// Offered once a lens is attached; a lens that is not is listed but cannot be chosen, with the
// reason in its tooltip. For a lens type only the logit lens draws it is disabled, with the reason
// (it then shows what the run will use: the logit lens).
import type { Lens } from '../api/types';
import { isLens, type LensChoices } from '../lib/lenses';

interface Props {
  /** The lens the next run asks for (the choice when it can be used). */
  value: Lens;
  onChange: (v: Lens) => void;
  choices: LensChoices;
}

const HINTS: Record<Lens, string> = {
  logit: 'Each row’s state through the model’s own final norm and head',
  tuned: 'Each block output through the tuned lens’s translator for its layer, then the head',
  jacobian: 'Each block output moved by the Jacobian lens’s matrix for its layer (the average Jacobian of the output), then the head; the rows it transports are marked J',
};

export function LensSelect({ value, onChange, choices }: Props) {
  const shown: Lens = choices.disabledReason ? 'logit' : value;
  const path = choices.options.find((o) => o.value === shown)?.path ?? undefined;
  return (
    <label className="field lens-field" title={path}>
      <span>Lens</span>
      <select
        aria-label="Lens (logit, tuned or Jacobian)"
        value={shown}
        disabled={choices.disabledReason !== null}
        onChange={(e) => {
          if (isLens(e.target.value)) onChange(e.target.value);
        }}
      >
        {choices.options.map((o) => (
          <option key={o.value} value={o.value} disabled={o.disabledReason !== null} title={o.disabledReason ?? o.path ?? undefined}>
            {o.label}
          </option>
        ))}
      </select>
      <span className={`small block${choices.disabledReason ? ' lens-warn' : ' muted'}`} data-testid="lens-hint">
        {choices.disabledReason ?? HINTS[shown]}
      </span>
    </label>
  );
}
