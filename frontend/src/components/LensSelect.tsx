// The run options' lens select: the logit lens or the tuned lens attached to the model. Offered
// only with a tuned lens attached; disabled, with the reason, for a lens type the tuned lens cannot
// draw (it then shows what the run will use: the logit lens).
import type { Lens } from '../api/types';
import type { TunedLensChoice } from '../hooks/useRunInputs';
import { isLens, LENSES, lensFolderName } from '../lib/lenses';

interface Props {
  value: Lens;
  onChange: (v: Lens) => void;
  choice: TunedLensChoice;
}

const HINTS: Record<Lens, string> = {
  logit: 'Each row’s state through the model’s own final norm and head',
  tuned: 'Each block output through the tuned lens’s translator for its layer, then the head',
  jacobian: 'Each block output moved by the Jacobian lens’s matrix for its layer (the average Jacobian of the output), then the head',
};

export function LensSelect({ value, onChange, choice }: Props) {
  const shown: Lens = choice.disabledReason ? 'logit' : value;
  const folder = lensFolderName(choice.folder);
  return (
    <label className="field lens-field" title={choice.folder}>
      <span>Lens</span>
      <select
        aria-label="Lens (logit or tuned)"
        value={shown}
        disabled={choice.disabledReason !== null}
        onChange={(e) => {
          if (isLens(e.target.value)) onChange(e.target.value);
        }}
      >
        {LENSES.map((l) => (
          <option key={l.value} value={l.value}>
            {l.value === 'tuned' ? `${l.label} (${folder})` : l.label}
          </option>
        ))}
      </select>
      <span className={`small block${choice.disabledReason ? ' lens-warn' : ' muted'}`} data-testid="lens-hint">
        {choice.disabledReason ?? HINTS[shown]}
      </span>
    </label>
  );
}
