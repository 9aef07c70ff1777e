// What the page shows of a run: the LogitLens card (meta line, stale, error and stopped notes, the
// run's progress while it computes, a generation's text, the lens grid with its diff view, or an
// empty state) beside the controls, and below them the activation analysis and attention panels.
// While a generation is written its grid grows in place of the run on screen. The receipts are
// shown by the controls, next to the interventions.
import type { AttributionState } from '../hooks/useAttribution';
import type { RunState } from '../hooks/useRun';
import { countInterventions } from '../lib/interventions';
import { attachedPath, lensName, NO_LENSES, transportedRowNames } from '../lib/lenses';
import { lensTypeLabel } from '../lib/lensTypes';
import { shortModelName } from '../lib/models';
import { ActivationPanel } from './ActivationPanel';
import { AttentionPanel } from './AttentionPanel';
import { GeneratedText, LiveText } from './Generation';
import { LensGrid, type SaeFeatureTarget } from './LensGrid';
import { RequestNotes, RequestProgress } from './RunControl';

/**
 * `attribution`: the grid's cells offer Attribute (see useAttribution); `lensVector`: they offer
 * their top-1 token's lens vector (with a Jacobian lens attached).
 */
export function ResultsPanel({
  run,
  attribution,
  lensVector,
  saeActions,
}: {
  run: Pick<RunState, 'view' | 'task' | 'live' | 'notes' | 'inputs'>;
  attribution?: Pick<AttributionState, 'attribute' | 'disabledReason'>;
  lensVector?: (t: { tokenId: number; token: string }) => void;
  /** An SAE cell's menu: the feature's card, and the SAE intervention form filled with it. */
  saeActions?: { feature: (t: SaeFeatureTarget) => void; use: (t: SaeFeatureTarget) => void };
}) {
  const { view, task, live } = run;
  const { running, error: runError } = task;
  const { staleNote } = run.notes;
  const interventions = view ? countInterventions(view.request.interventions) : 0;
  const gen = view?.generation ?? null;
  const what = task.kind === 'generate' ? 'Generation' : 'Run';
  return (
    <section className="card results" aria-label="LogitLens visualization" aria-busy={running}>
      <div className="section-head">
        <h2>LogitLens</h2>
        {view && (
          <div className="run-meta small" data-testid="run-meta">
            <span title={view.modelName}>{shortModelName(view.modelName)}</span>
            <span>{lensTypeLabel(view.request.lens_type)}</span>
            <span>{view.rows[0]?.predictions.length ?? 0} tokens</span>
            {gen && <span title="Positions from the prompt's end on were written by the model">{gen.ids.length} written</span>}
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
      <RequestNotes
        request={task}
        name="run"
        stopped={`${what} stopped.${view ? ' The results below are from the run before.' : ''}`}
        // Without a run on screen the failure takes the grid's place, below.
        error={view ? `Last ${what.toLowerCase()} failed: ${runError}` : null}
      />
      <div className={`results-body${running ? (live ? ' is-live' : ' is-running') : ''}`}>
        {running && <RequestProgress progress={task.progress} label="Run progress" testId="running-indicator" textTestId="run-progress-text" overlay={live ? 'inline' : 'over'} />}
        {live ? (
          <>
            <LiveText
              prompt={live.request.text}
              written={live.grid.promptTokens === null ? [] : live.grid.tokens.slice(live.grid.promptTokens)}
              pending={live.grid.pending?.token ?? null}
            />
            <LensGrid
              rows={live.grid.rows}
              tokens={live.grid.tokens}
              lens={lensName(live.request.lens ?? 'logit', live.request.lens ? attachedPath(live.request.lens, run.inputs.lenses?.attached ?? NO_LENSES) : null)}
              // The steps do not name the rows the lens transports; the lens drawing them does.
              transported={live.request.lens === 'jacobian' ? transportedRowNames(run.inputs.lenses?.attached.jacobian ?? null) : null}
              promptTokens={live.grid.promptTokens}
              pendingToken={live.grid.pending?.token ?? null}
            />
          </>
        ) : view ? (
          <>
            {gen && view.tokens && (
              <GeneratedText prompt={view.request.text} generation={gen} written={view.tokens.slice(gen.promptTokens)} interventions={interventions} />
            )}
            <LensGrid
              rows={view.rows}
              tokens={view.tokens}
              baselineRows={view.baselineRows}
              diff={view.diff}
              tracked={view.tracked}
              entropy={view.entropy}
              lens={lensName(view.request.lens ?? 'logit', view.lensPath)}
              transported={view.request.lens === 'jacobian' ? (view.transportedRows ?? null) : null}
              onAttribute={attribution && ((t) => void attribution.attribute(t))}
              attributeDisabledReason={attribution?.disabledReason}
              onLensVector={lensVector}
              sae={view.sae}
              onSaeFeature={saeActions?.feature}
              onUseSaeFeature={saeActions?.use}
              promptTokens={gen?.promptTokens ?? null}
            />
          </>
        ) : runError ? (
          <div className="empty-state error-state" role="alert">
            <strong>{task.retryAt !== null ? 'The server is busy.' : `The ${what.toLowerCase()} failed.`}</strong>
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
export function RunDetails({ run }: { run: Pick<RunState, 'view' | 'inputs' | 'task' | 'disabled' | 'runInference' | 'generate'> }) {
  const { view } = run;
  if (!view) return null;
  // Run again re-runs the text on screen, even if the text box has changed since; a generation is
  // generated again, as far as it was asked to write.
  const override = view.request.text === run.inputs.text ? undefined : { text: view.request.text };
  const gen = view.generation;
  const rerun = () => void (gen ? run.generate(override, { maxNewTokens: gen.maxNewTokens }) : run.runInference(override));
  return (
    <>
      {view.request.analysis && (
        <ActivationPanel analysis={view.analysis} rowNames={view.rows.map((r) => r.layer_name)} tokens={view.tokens} modelName={view.modelName} />
      )}
      <AttentionPanel
        tensor={view.tensor}
        tokens={view.tokens}
        interventions={view.request.interventions}
        promptTokens={view.generation?.promptTokens}
        runId={view.runId}
        modelName={view.modelName}
        text={view.request.text}
        onRerun={rerun}
        canRerun={!run.disabled.run && !run.task.running}
      />
    </>
  );
}
