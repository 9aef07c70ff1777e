// The model-load progress bar, fed by /events: stage, file/bytes or tensors x/y, percentage.
import type { LoadingStatus } from '../api/types';
import type { PendingLoad } from '../hooks/useModelLoader';
import { describeLoading } from '../lib/progress';
import { backendLabel, shortModelName } from '../lib/models';

interface Props {
  /** The load the server reports (/model_status, /events). */
  loading: LoadingStatus | null | undefined;
  /** The load this page asked for, shown until the server reports it. */
  requested: PendingLoad | null;
}

export function LoadProgress({ loading, requested }: Props) {
  // Until the server reports the load, this page's request is at its first stage.
  const shown: LoadingStatus | null = loading ?? (requested ? { model_name: requested.model, backend: requested.backend, stage: 'resolving' } : null);
  const model = shown?.model_name ?? '';
  const backend = shown?.backend ?? 'custom';
  const view = describeLoading(shown);
  const pct = view.fraction === null ? null : Math.round(view.fraction * 100);
  return (
    <div className="load-progress" data-testid="load-progress" role="status" aria-live="polite">
      <div className="load-progress-text">
        <span className="spinner" aria-hidden="true" />
        <strong>Loading {shortModelName(model)}</strong>
        <span className="muted"> with the {backendLabel(backend)} backend</span>
        <span className="load-stage"> — {view.stage}</span>
        {view.detail && <span className="muted"> · {view.detail}</span>}
        {pct !== null && <span className="load-pct">{pct}%</span>}
      </div>
      <div
        className={`progress${pct === null ? ' progress-indeterminate' : ''}`}
        role="progressbar"
        aria-label={`Loading ${model}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct ?? undefined}
      >
        <div className="progress-fill" style={pct === null ? undefined : { width: `${pct}%` }} />
      </div>
      <div className="load-progress-hint muted">
        You can keep editing the text and interventions or browse saved sessions meanwhile; Run is available once the model is ready.
      </div>
    </div>
  );
}
