// What the page shows of a run: the LogitLens card (meta line, stale, error and stopped notes, the
// run's progress while it computes, the lens grid with its diff view, or an empty state) beside the
// controls, and below them the activation analysis and attention panels. The receipts are shown by
// the controls, next to the interventions.
import type { AttributionState } from '../hooks/useAttribution';
import { useRunProgress, type RunProgressStore, type RunState } from '../hooks/useRun';
import { countInterventions } from '../lib/interventions';
import { lensName } from '../lib/lensKinds';
import { lensLabel } from '../lib/lensTypes';
import { shortModelName } from '../lib/models';
import { describeRunProgress } from '../lib/progress';
import { ProgressBar } from './ProgressBar';
import { ActivationPanel } from './ActivationPanel';
import { AttentionPanel } from './AttentionPanel';
import { LensGrid } from './LensGrid';

/** The run in progress: what it is doing ("Layer 12 of 30") and a bar; the only part re-rendered per event. */
export function RunProgressIndicator({ progress }: { progress: RunProgressStore }) {
  const p = useRunProgress(progress);
  const view = describeRunProgress(p);
  return (
    <div className="running-overlay" data-testid="running-indicator">
      <span className="spinner" aria-hidden="true" />
      <span className="run-progress-text" data-testid="run-progress-text">
        {view.text}
      </span>
      <ProgressBar label="Run progress" view={view} className="run-progress" />
    </div>
  );
}

/** `attribution`: the grid's cells offer Attribute (see useAttribution). */
export function ResultsPanel({ run, attribution }: { run: RunState; attribution?: Pick<AttributionState, 'attribute' | 'disabledReason'> }) {
  const { view, running, runError, staleNote, stopped } = run;
  const interventions = view ? countInterventions(view.request.interventions) : 0;
  return (
    <section className="card results" aria-label="LogitLens visualization" aria-busy={running}>
      <div className="section-head">
        <h2>LogitLens</h2>
        {view && (
          <div className="run-meta small" data-testid="run-meta">
            <span title={view.modelName}>{shortModelName(view.modelName)}</span>
            <span>{lensLabel(view.request.lens_type)}</span>
            <span>{view.rows[0]?.predictions.length ?? 0} tokens</span>
            <span>
              {interventions} intervention{interventions === 1 ? '' : 's'}
            </span>
            {view.request.apply_chat_template && <span>chat template</span>}
            {view.diff && <span title="Also run without interventions: the grid has a Diff view">vs baseline</span>}
            {view.source.kind === 'session' && (
              <span className="tag tag-session">
                session “{view.source.name}”{view.source.savedOnly ? ' · saved results' : ''}
              </span>
            )}
          </div>
        )}
      </div>
      {staleNote && !running && (
        <div className="stale-note small" role="note" data-testid="stale-note">
          {staleNote}
        </div>
      )}
      {stopped && !running && (
        <div className="stopped-note small" role="status" data-testid="run-stopped">
          Run stopped.{view ? ' The results below are from the run before.' : ''}
        </div>
      )}
      {runError && view && !running && (
        <div className="inline-error" role="alert">
          Last run failed: {runError}
        </div>
      )}
      <div className={`results-body${running ? ' is-running' : ''}`}>
        {running && <RunProgressIndicator progress={run.progress} />}
        {view ? (
          <LensGrid
            rows={view.rows}
            tokens={view.tokens}
            baselineRows={view.baselineRows}
            diff={view.diff}
            tracked={view.tracked}
            entropy={view.entropy}
            lens={lensName(view.request.lens ?? 'logit', view.tunedLens)}
            onAttribute={attribution && ((t) => void attribution.attribute(t))}
            attributeDisabledReason={attribution?.disabledReason}
          />
        ) : runError ? (
          <div className="empty-state error-state" role="alert">
            <strong>{run.retryAt !== null ? 'The server is busy.' : 'The run failed.'}</strong>
            <p>{runError}</p>
          </div>
        ) : (
          !running && (
            <div className="empty-state" data-testid="empty-results">
              <p>Run the lens to see each layer’s top prediction at every position.</p>
              <p className="muted small">
                Type a prompt, optionally add interventions, then press Run LogitLens (or Ctrl+Enter). Hover or focus a cell for its top 5 tokens.
              </p>
            </div>
          )
        )}
      </div>
    </section>
  );
}

/** The panels below the grid: activation analysis (when asked for) and attention. */
export function RunDetails({ run }: { run: RunState }) {
  const { view } = run;
  if (!view) return null;
  // Run again re-runs the text on screen, even if the text box has changed since.
  const rerun = () => void run.runInference(view.request.text === run.text ? undefined : { text: view.request.text });
  return (
    <>
      {view.request.analysis && (
        <ActivationPanel analysis={view.analysis} rowNames={view.rows.map((r) => r.layer_name)} tokens={view.tokens} modelName={view.modelName} />
      )}
      <AttentionPanel
        tensor={view.tensor}
        tokens={view.tokens}
        interventions={view.request.interventions}
        runId={view.runId}
        modelName={view.modelName}
        text={view.request.text}
        onRerun={rerun}
        canRerun={!run.runDisabledReason && !run.running}
      />
    </>
  );
}
