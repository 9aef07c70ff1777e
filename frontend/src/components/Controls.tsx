// The Controls card: input text, run options, Run and Generate (with how many tokens to write) and
// Stop while either is in progress, the active interventions with the receipts of the run on
// screen, and the stream, Jacobian-lens, SAE and attention intervention forms.
import { useEffect, useState } from 'react';
import type { Interventions } from '../api/types';
import { MAX_NEW_TOKENS } from '../lib/generate';
import {
  STREAM_LOCATIONS,
  STREAM_OPS,
  addStreamIntervention,
  appendIntervention,
  buildAttentionIntervention,
  buildStreamIntervention,
  countInterventions,
  describeIntervention,
  describeKey,
  interventionWarning,
  removeIntervention,
  type InterventionContext,
  type StreamFormValues,
  type AttentionFormValues,
} from '../lib/interventions';
import { TokenStrip } from './TokenStrip';
import type { RunDisabled } from '../hooks/useRun';
import type { RunInputs } from '../hooks/useRunInputs';
import type { InterventionScope, RunReceipts } from '../hooks/useRunNotes';
import type { RunTask } from '../hooks/useRunTask';
import type { JlensForm } from '../hooks/useJlensForm';
import { JlensInterventionForm } from './JlensInterventionForm';
import type { SaeForm } from '../hooks/useSaeForm';
import { SaeInterventionForm } from './SaeInterventionForm';
import { Receipts } from './Receipts';
import { RunOptions } from './RunOptions';
import { RunControl } from './RunControl';

interface ControlsProps {
  /** The text, the interventions, the run options and the new-tokens field. */
  inputs: RunInputs;
  /** What interventions are checked against, the layers offered, the tokens of the text as run. */
  scope: InterventionScope;
  /** The run side's request: which button spins, Stop, and when a busy server said to try again. */
  task: Pick<RunTask, 'kind' | 'running' | 'stopped' | 'progress' | 'stop' | 'error' | 'retryAt'>;
  /** Run and Generate (the same request, written on token by token), and why each is disabled. */
  actions: { run: () => void; generate: () => void; disabled: RunDisabled };
  /** What the displayed run applied, when the server said. */
  receipts: RunReceipts | null;
  /** The Jacobian lens's operations (steer, ablate, swap), when the page offers them. */
  jlens?: JlensForm;
  /** The SAE operations (splice, ablate, clamp, steer), when the page offers them. */
  sae?: SaeForm;
}

function LayerOptions({ n }: { n: number }) {
  return (
    <>
      {Array.from({ length: n }, (_, i) => (
        <option key={i} value={String(i)}>
          Layer {i}
        </option>
      ))}
    </>
  );
}

function StreamForm({ ctx, layerOptions, onAdd }: { ctx: InterventionContext; layerOptions: number; onAdd: (key: string, c: ReturnType<typeof buildStreamIntervention>) => void }) {
  const [f, setF] = useState<StreamFormValues>({ layer: '0', location: 'output', op: 'zero', value: '0.5', vector: '', tokenIndex: '', allLayers: false });
  const [error, setError] = useState<string | null>(null);
  const set = (patch: Partial<StreamFormValues>) => {
    setF((old) => ({ ...old, ...patch }));
    setError(null);
  };
  const isEmb = f.layer === 'embeddings' || f.location === 'embeddings';
  const layerValue = f.layer !== 'embeddings' && Number(f.layer) >= layerOptions ? String(Math.max(0, layerOptions - 1)) : f.layer;
  const add = () => {
    const r = buildStreamIntervention({ ...f, layer: layerValue }, ctx);
    if (!r.ok) setError(r.error);
    else {
      setError(null);
      onAdd(r.value.key, r);
    }
  };
  return (
    <fieldset className="form-block" aria-label="Stream interventions">
      <legend>Stream interventions</legend>
      <p className="hint">Zero, scale or add a vector to an activation stream.</p>
      <div className="form-grid">
        <label className="field">
          <span>Layer</span>
          <select aria-label="Stream layer" value={layerValue} disabled={f.allLayers || f.location === 'embeddings'} onChange={(e) => set({ layer: e.target.value })}>
            <LayerOptions n={layerOptions} />
            <option value="embeddings">Embeddings</option>
          </select>
        </label>
        <label className="field">
          <span>Stream</span>
          <select
            aria-label="Stream"
            value={f.layer === 'embeddings' ? 'embeddings' : f.location}
            onChange={(e) => {
              const location = e.target.value as StreamFormValues['location'];
              set({ location, layer: location !== 'embeddings' && f.layer === 'embeddings' ? '0' : f.layer });
            }}
          >
            {STREAM_LOCATIONS.map((l) => (
              <option key={l.value} value={l.value}>
                {l.label}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Operation</span>
          <select aria-label="Operation" value={f.op} onChange={(e) => set({ op: e.target.value as StreamFormValues['op'] })}>
            {STREAM_OPS.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </label>
        {f.op === 'scale' && (
          <label className="field">
            <span>Factor</span>
            <input aria-label="Scale factor" className="input input-narrow" type="number" step="0.1" value={f.value} onChange={(e) => set({ value: e.target.value })} />
          </label>
        )}
        <label className="field">
          <span>Token index</span>
          <input
            aria-label="Token index"
            className="input input-narrow"
            inputMode="numeric"
            placeholder="all"
            title="Empty: every position. Negative counts from the end (-1 = last)."
            value={f.tokenIndex}
            onChange={(e) => set({ tokenIndex: e.target.value })}
          />
        </label>
      </div>
      {f.op === 'add' && (
        <label className="field field-wide">
          <span>
            Vector to add ({ctx.hiddenSize ? `${ctx.hiddenSize} numbers` : 'hidden-size numbers'}, or one number for all)
          </span>
          <textarea
            aria-label="Vector"
            className="input mono"
            rows={2}
            placeholder={ctx.hiddenSize ? `0.1, -0.2, … (${ctx.hiddenSize} values) or 0.5` : '0.1, -0.2, … or 0.5'}
            value={f.vector}
            onChange={(e) => set({ vector: e.target.value })}
          />
        </label>
      )}
      <div className="form-actions">
        <label className="check-row inline">
          <input type="checkbox" aria-label="Apply stream intervention to all layers" checked={f.allLayers && !isEmb} disabled={isEmb} onChange={(e) => set({ allLayers: e.target.checked })} />
          <span>Apply to all layers</span>
        </label>
        <button type="button" className="btn btn-secondary" onClick={add}>
          Add stream intervention
        </button>
      </div>
      {error && (
        <div className="inline-error" role="alert" data-testid="stream-error">
          {error}
        </div>
      )}
    </fieldset>
  );
}

function AttentionForm({ ctx, layerOptions, onAdd }: { ctx: InterventionContext; layerOptions: number; onAdd: (r: ReturnType<typeof buildAttentionIntervention>) => void }) {
  const [f, setF] = useState<AttentionFormValues>({ layer: '0', source: '', target: '', allLayers: false });
  const [error, setError] = useState<string | null>(null);
  const set = (patch: Partial<AttentionFormValues>) => {
    setF((old) => ({ ...old, ...patch }));
    setError(null);
  };
  const layerValue = Number(f.layer) >= layerOptions ? String(Math.max(0, layerOptions - 1)) : f.layer;
  const add = () => {
    const r = buildAttentionIntervention({ ...f, layer: layerValue }, ctx);
    if (!r.ok) setError(r.error);
    else {
      setError(null);
      onAdd(r);
    }
  };
  return (
    <fieldset className="form-block" aria-label="Attention interventions">
      <legend>Attention interventions</legend>
      <p className="hint">Block attention: the target (query) tokens can no longer read the source (key) tokens.</p>
      <div className="form-grid">
        <label className="field">
          <span>Layer</span>
          <select aria-label="Attention layer" value={layerValue} disabled={f.allLayers} onChange={(e) => set({ layer: e.target.value })}>
            <LayerOptions n={layerOptions} />
          </select>
        </label>
        <label className="field">
          <span>Source tokens (keys)</span>
          <input aria-label="Source tokens" className="input" placeholder="e.g. 0 or 1,2" value={f.source} onChange={(e) => set({ source: e.target.value })} />
        </label>
        <label className="field">
          <span>Target tokens (queries)</span>
          <input aria-label="Target tokens" className="input" placeholder="e.g. 3" value={f.target} onChange={(e) => set({ target: e.target.value })} />
        </label>
      </div>
      <div className="form-actions">
        <label className="check-row inline">
          <input type="checkbox" aria-label="Block at all layers" checked={f.allLayers} onChange={(e) => set({ allLayers: e.target.checked })} />
          <span>Apply to all layers</span>
        </label>
        <button type="button" className="btn btn-secondary" onClick={add}>
          Block attention flow
        </button>
      </div>
      {error && (
        <div className="inline-error" role="alert" data-testid="attention-error">
          {error}
        </div>
      )}
    </fieldset>
  );
}

export function InterventionList({ interventions, onChange, ctx }: { interventions: Interventions; onChange: (i: Interventions) => void; ctx: InterventionContext }) {
  const keys = Object.keys(interventions);
  return (
    <section className="active-interventions" aria-label="Active interventions">
      <div className="section-head">
        <h3>Active interventions</h3>
        {keys.length > 0 && (
          <button type="button" className="btn btn-small btn-ghost" onClick={() => onChange({})}>
            Clear all
          </button>
        )}
      </div>
      {keys.length === 0 ? (
        <p className="empty-state small">None: the model runs unchanged. Add one below.</p>
      ) : (
        <ul className="intervention-groups" data-testid="intervention-list">
          {keys.map((key) => (
            <li key={key} className="intervention-group">
              <div className="intervention-key">
                <span>{describeKey(key)}</span>
                <code>{key}</code>
              </div>
              <ul>
                {interventions[key].map((c, i) => {
                  const text = describeIntervention(c);
                  const warn = interventionWarning(key, c, ctx);
                  return (
                    <li key={i} className={`intervention-item${warn ? ' has-warning' : ''}`}>
                      <span className="mono">{text}</span>
                      {warn && (
                        <span className="warn-text" title={warn}>
                          ⚠ {warn}
                        </span>
                      )}
                      <button
                        type="button"
                        className="icon-btn"
                        aria-label={`Remove ${text} from ${key}`}
                        title="Remove"
                        onClick={() => onChange(removeIntervention(interventions, key, i))}
                      >
                        ×
                      </button>
                    </li>
                  );
                })}
              </ul>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** "The server is busy: try again in 8 s", counting down to `at`. */
function RetryCountdown({ at }: { at: number }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (now >= at) return;
    const id = window.setTimeout(() => setNow(Date.now()), Math.min(1000, at - now));
    return () => window.clearTimeout(id);
  }, [now, at]);
  const secs = Math.ceil((at - now) / 1000);
  return <span data-testid="retry-countdown">{secs > 0 ? `The server is busy: try again in ${secs} s.` : 'The server said it may have room now: Run again.'}</span>;
}

export function Controls({ inputs, scope, task, actions, receipts, jlens, sae }: ControlsProps) {
  const n = countInterventions(inputs.interventions);
  const { running, kind } = task;
  const generating = running && kind === 'generate';
  const { disabled } = actions;
  // Before any model is known, offer 32 layers; interventions that do not fit get flagged later.
  const layerOptions = scope.layerOptions || 32;
  const { ctx } = scope;
  return (
    <section className="card controls" aria-label="Controls">
      <h2>Controls</h2>
      <label className="stack" htmlFor="input-text">
        <span className="label">Input text</span>
        <textarea
          id="input-text"
          className="input"
          rows={4}
          value={inputs.text}
          onChange={(e) => inputs.setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              if (!disabled.run && !running) actions.run();
            }
          }}
        />
      </label>
      {scope.tokens && <TokenStrip tokens={scope.tokens} />}
      <RunOptions value={inputs.options} onChange={inputs.setOptions} hasInterventions={n > 0} lenses={{ choices: inputs.lenses, effective: inputs.lens }} saes={inputs.saeCount} />
      <RunControl
        name="run"
        request={task}
        buttons={[
          {
            label: `Run LogitLens${n > 0 ? ` with ${n} intervention${n === 1 ? '' : 's'}` : ''}`,
            busyLabel: 'Running…',
            onClick: actions.run,
            disabledReason: disabled.run,
            busy: kind === 'run',
            className: 'btn-primary btn-run',
            title: 'Run (Ctrl+Enter in the text box)',
          },
          {
            label: 'Generate',
            busyLabel: 'Generating…',
            onClick: actions.generate,
            disabledReason: disabled.generate,
            busy: kind === 'generate',
            className: 'btn-secondary btn-generate',
            title: 'Write on from the text, token by token (greedy), with the interventions applied at every step; the grid grows as it writes',
            rowClassName: 'generate-row',
            beside: (
              <label className="field field-inline gen-count">
                <span>New tokens</span>
                <input
                  aria-label="New tokens"
                  className="input input-narrow"
                  type="number"
                  inputMode="numeric"
                  min={1}
                  max={MAX_NEW_TOKENS}
                  step={1}
                  value={inputs.newTokens.text}
                  aria-invalid={!!inputs.newTokens.error}
                  onChange={(e) => inputs.newTokens.set(e.target.value)}
                />
              </label>
            ),
          },
        ]}
        stopTitle={
          generating
            ? 'Stop the generation: the server stops writing, and the results on screen stay as they are'
            : 'Stop the run: the server stops it between layers, and the results on screen stay as they are'
        }
        hint={
          <div className="run-hint muted small">
            {disabled.run ??
              (running ? (
                `Stop cancels the ${generating ? 'generation' : 'run'} on the server.`
              ) : task.retryAt ? (
                <RetryCountdown at={task.retryAt} />
              ) : (
                'Ctrl+Enter in the text box runs too.'
              ))}
          </div>
        }
        // Shown over the grid, where the results are.
        progress={null}
        notes={null}
      >
        {inputs.newTokens.error && (
          <div className="inline-error small" role="alert" data-testid="max-new-tokens-error">
            {inputs.newTokens.error}
          </div>
        )}
      </RunControl>
      <InterventionList interventions={inputs.interventions} onChange={inputs.setInterventions} ctx={ctx} />
      {receipts && <Receipts receipts={receipts.list} interventions={receipts.interventions} stale={receipts.stale} />}
      <StreamForm
        ctx={ctx}
        layerOptions={layerOptions}
        onAdd={(_key, r) => {
          if (r.ok) inputs.setInterventions(addStreamIntervention(inputs.interventions, r.value.key, r.value.config));
        }}
      />
      {jlens && <JlensInterventionForm form={jlens} ctx={ctx} onAdd={(key, config) => inputs.setInterventions(appendIntervention(inputs.interventions, key, config))} />}
      {sae && <SaeInterventionForm form={sae} ctx={ctx} onAdd={(key, config) => inputs.setInterventions(appendIntervention(inputs.interventions, key, config))} />}
      <AttentionForm
        ctx={ctx}
        layerOptions={layerOptions}
        onAdd={(r) => {
          if (r.ok) inputs.setInterventions(appendIntervention(inputs.interventions, r.value.key, r.value.config));
        }}
      />
    </section>
  );
}
