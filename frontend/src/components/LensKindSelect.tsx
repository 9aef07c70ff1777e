// The run options' lens select: the logit lens or the tuned lens attached to the model. Offered
// only with a tuned lens attached; disabled, with the reason, for a lens type the tuned lens cannot
// draw (it then shows what the run will use: the logit lens).
import type { LensKind } from '../api/types';
import type { TunedLensChoice } from '../hooks/useRun';
import { isLensKind, LENS_KINDS, lensFolderName } from '../lib/lensKinds';

interface Props {
  value: LensKind;
  onChange: (v: LensKind) => void;
  choice: TunedLensChoice;
}

const HINTS: Record<LensKind, string> = {
  logit: 'Each row’s state through the model’s own final norm and head',
  tuned: 'Each block output through the tuned lens’s translator for its layer, then the head',
};

export function LensKindSelect({ value, onChange, choice }: Props) {
  const shown: LensKind = choice.disabledReason ? 'logit' : value;
  const folder = lensFolderName(choice.folder);
  return (
    <label className="field lens-kind-field" title={choice.folder}>
      <span>Lens</span>
      <select
        aria-label="Lens (logit or tuned)"
        value={shown}
        disabled={choice.disabledReason !== null}
        onChange={(e) => {
          if (isLensKind(e.target.value)) onChange(e.target.value);
        }}
      >
        {LENS_KINDS.map((l) => (
          <option key={l.value} value={l.value}>
            {l.value === 'tuned' ? `${l.label} (${folder})` : l.label}
          </option>
        ))}
      </select>
      <span className={`small block${choice.disabledReason ? ' lens-kind-warn' : ' muted'}`} data-testid="lens-kind-hint">
        {choice.disabledReason ?? HINTS[shown]}
      </span>
    </label>
  );
}
