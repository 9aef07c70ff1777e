// The Controls card: input text, stream and attention interventions, the active list, Run and
// Generate (with how many tokens to write), and Stop while either is in progress.
import { useEffect, useRef, useState } from 'react';
import type { Interventions, Receipt } from '../api/types';
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
import type { TunedLensChoice } from '../hooks/useRun';
import { Receipts } from './Receipts';
import type { RunOptionsValue } from '../lib/runOptions';
import { RunOptions } from './RunOptions';

interface ControlsProps {
  text: string;
  onTextChange: (t: string) => void;
  interventions: Interventions;
  onInterventionsChange: (i: Interventions) => void;
  ctx: InterventionContext;
  /** Layer count to offer in the selects (the model's, or a fallback before one is loaded). */
  layerOptions: number;
  /** The tokens of the current text, when it was run as it is. */
  tokens: string[] | null;
  onRun: () => void;
  running: boolean;
  /** Stops the run in progress; Stop is offered while running when given. */
  onStop?: () => void;
  runDisabledReason: string | null;
  /** When a busy server said to try again (ms since the epoch): the hint under Run counts down. */
  retryAt?: number | null;
  /** Compare / track / analysis (and the lens); the block is left out when not given. */
  runOptions?: RunOptionsValue;
  onRunOptionsChange?: (v: RunOptionsValue) => void;
  /** The tuned lens attached to the model in service: the run options offer a lens select with one. */
  tunedLens?: TunedLensChoice | null;
  /** What the displayed run applied, when the server said. */
  receipts?: { list: Receipt[]; interventions: number; stale: boolean } | null;
  /** Generate: the same request as Run, written on token by token; left out when not given. */
  generate?: GenerateControls;
}

export interface GenerateControls {
  onGenerate: () => void;
  disabledReason: string | null;
  /** The max-new-tokens field as typed, and what is wrong with it. */
  maxNewTokens: string;
  onMaxNewTokensChange: (v: string) => void;
  maxNewTokensError: string | null;
  /** The request in progress is a generation. */
  generating: boolean;
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

export function Controls(p: ControlsProps) {
  const n = countInterventions(p.interventions);
  const g = p.generate;
  const generating = p.running && !!g?.generating;
  const runRef = useRef<HTMLButtonElement>(null);
  const generateRef = useRef<HTMLButtonElement>(null);
  // Stop disappears with the run: focus goes back to the button that started it rather than to the page.
  const stopClicked = useRef<HTMLButtonElement | null>(null);
  useEffect(() => {
    if (!p.running && stopClicked.current) {
      stopClicked.current.focus();
      stopClicked.current = null;
    }
  }, [p.running]);
  return (
    <section className="card controls" aria-label="Controls">
      <h2>Controls</h2>
      <label className="stack" htmlFor="input-text">
        <span className="label">Input text</span>
        <textarea
          id="input-text"
          className="input"
          rows={4}
          value={p.text}
          onChange={(e) => p.onTextChange(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              if (!p.runDisabledReason && !p.running) p.onRun();
            }
          }}
        />
      </label>
      {p.tokens && <TokenStrip tokens={p.tokens} />}
      {p.runOptions && p.onRunOptionsChange && <RunOptions value={p.runOptions} onChange={p.onRunOptionsChange} hasInterventions={n > 0} tunedLens={p.tunedLens} />}
      <div className="run-row">
        <button
          ref={runRef}
          type="button"
          className="btn btn-primary btn-run"
          onClick={p.onRun}
          disabled={!!p.runDisabledReason || p.running}
          aria-busy={p.running}
          title={p.runDisabledReason ?? 'Run (Ctrl+Enter in the text box)'}
        >
          {p.running && !generating ? (
            <>
              <span className="spinner" aria-hidden="true" /> Running…
            </>
          ) : (
            <>Run LogitLens{n > 0 ? ` with ${n} intervention${n === 1 ? '' : 's'}` : ''}</>
          )}
        </button>
        {p.running && p.onStop && (
          <button
            type="button"
            className="btn btn-danger btn-stop"
            onClick={() => {
              stopClicked.current = generating ? generateRef.current : runRef.current;
              p.onStop?.();
            }}
            title={
              generating
                ? 'Stop the generation: the server stops writing, and the results on screen stay as they are'
                : 'Stop the run: the server stops it between layers, and the results on screen stay as they are'
            }
          >
            Stop
          </button>
        )}
      </div>
      {g && (
        <div className="run-row generate-row">
          <button
            ref={generateRef}
            type="button"
            className="btn btn-secondary btn-generate"
            onClick={g.onGenerate}
            disabled={!!g.disabledReason || p.running}
            aria-busy={generating}
            title={g.disabledReason ?? 'Write on from the text, token by token (greedy), with the interventions applied at every step; the grid grows as it writes'}
          >
            {generating ? (
              <>
                <span className="spinner" aria-hidden="true" /> Generating…
              </>
            ) : (
              'Generate'
            )}
          </button>
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
              value={g.maxNewTokens}
              aria-invalid={!!g.maxNewTokensError}
              onChange={(e) => g.onMaxNewTokensChange(e.target.value)}
            />
          </label>
        </div>
      )}
      {g?.maxNewTokensError && (
        <div className="inline-error small" role="alert" data-testid="max-new-tokens-error">
          {g.maxNewTokensError}
        </div>
      )}
      <div className="run-hint muted small">
        {p.runDisabledReason ??
          (p.running && p.onStop ? (
            `Stop cancels the ${generating ? 'generation' : 'run'} on the server.`
          ) : p.retryAt ? (
            <RetryCountdown at={p.retryAt} />
          ) : (
            'Ctrl+Enter in the text box runs too.'
          ))}
      </div>
      <InterventionList interventions={p.interventions} onChange={p.onInterventionsChange} ctx={p.ctx} />
      {p.receipts && <Receipts receipts={p.receipts.list} interventions={p.receipts.interventions} stale={p.receipts.stale} />}
      <StreamForm
        ctx={p.ctx}
        layerOptions={p.layerOptions}
        onAdd={(_key, r) => {
          if (r.ok) p.onInterventionsChange(addStreamIntervention(p.interventions, r.value.key, r.value.config));
        }}
      />
      <AttentionForm
        ctx={p.ctx}
        layerOptions={p.layerOptions}
        onAdd={(r) => {
          if (r.ok) p.onInterventionsChange(appendIntervention(p.interventions, r.value.key, r.value.config));
        }}
      />
    </section>
  );
}
