// The diff of two saved sessions (or of two checkpoints run on the same prompt and saved): B's
// lens against A's as the baseline, in the same grid as a run.
import type { SessionDiffSide } from '../api/types';
import type { SessionDiffView } from '../hooks/useSessions';
import { lensTypeLabel } from '../lib/lensTypes';
import { shortModelName } from '../lib/models';
import { LensGrid } from './LensGrid';

function Side({ letter, name, side, baseline }: { letter: string; name: string; side: SessionDiffSide; baseline?: boolean }) {
  // A session may not record its model or lens type (the original tool's, older ones).
  const lens = side.lens_type ? lensTypeLabel(side.lens_type) : 'lens type not recorded';
  const model = side.model_name ? <span title={side.model_name}>{shortModelName(side.model_name)}</span> : 'model not recorded';
  return (
    <span className="diff-side" data-testid={`session-diff-${letter.toLowerCase()}`}>
      <strong>
        {letter}
        {baseline ? ' (baseline)' : ''}:
      </strong>{' '}
      “{name}” · {model} · {lens}
    </span>
  );
}

export function SessionDiffCard({ view, onClose }: { view: SessionDiffView; onClose: () => void }) {
  const { res } = view;
  // Two checkpoints: both sessions name their model, and the names differ.
  const twoModels = !!res.a.model_name && !!res.b.model_name && res.a.model_name !== res.b.model_name;
  return (
    <section className="card session-diff-card" aria-label="Session comparison" data-testid="session-diff">
      <div className="section-head">
        <h2>Session comparison</h2>
        <button type="button" className="icon-btn" aria-label="Close the session comparison" onClick={onClose}>
          ×
        </button>
      </div>
      <p className="diff-caption" data-testid="session-diff-caption">
        <Side letter="A" name={view.aName} side={res.a} baseline /> <span className="muted">vs</span> <Side letter="B" name={view.bName} side={res.b} />
        {twoModels && <span className="tag tag-session">two checkpoints</span>}
      </p>
      {/* The server projects each session's saved states through its own model's head: the
          comparison is the logit lens's, whichever lens drew the sessions. */}
      <LensGrid
        rows={res.b_logit_lens}
        baselineRows={res.a_logit_lens}
        diff={res.diff}
        tokens={res.input_tokens ?? null}
        defaultView="diff"
        diffLabel="Diff B vs A"
        lens="logit lens"
        testId="session-diff-grid"
      />
    </section>
  );
}
