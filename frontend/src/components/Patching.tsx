// The Patching card: activation patching over layers and positions. Two texts that differ in a
// detail (their tokens counted live: they must pair up position by position), where to patch (the
// hook), what to measure (a logit difference or a probability, each token checked to be one
// token), which positions; Run and Stop with the sweep's progress; the result as a heatmap with
// its exports.
import { useId, useRef, useState } from 'react';
import type { Tokenized } from '../hooks/useTokenize';
import type { PatchingState, ShownPatch } from '../hooks/usePatching';
import { usePngExport } from '../hooks/usePngExport';
import { useWidth } from '../hooks/useWidth';
import { formatValue } from '../lib/chart';
import { downloadText } from '../lib/download';
import { shortModelName } from '../lib/models';
import { PATCH_HOOKS, patchCsv, patchFileName, type PatchScale } from '../lib/patch';
import { PatchingChart } from './PatchingChart';
import { RunControl } from './RunControl';
import { TokenInput } from './TokenInput';
import { TokenStrip } from './TokenStrip';

/** What the count line under a text says: its tokens, or that they are being counted, or why not. */
function countText(tok: Tokenized): string {
  if (tok.current && tok.error) return `Could not count the tokens: ${tok.error}`;
  const n = tok.value?.ids.length;
  if (n === undefined) return tok.pending ? 'Counting tokens…' : '';
  return `${n} token${n === 1 ? '' : 's'}${tok.pending ? '…' : ''}`;
}

function PromptField({ label, value, onChange, tok, marked, testId }: { label: string; value: string; onChange: (v: string) => void; tok: Tokenized; marked: ReadonlySet<number>; testId: string }) {
  const id = useId();
  return (
    <div className="patch-prompt stack">
      {/* Named by `for`, not by wrapping: a wrapped textarea's text would be part of its name. */}
      <label className="label" htmlFor={id}>
        {label}
      </label>
      <textarea id={id} className="input" rows={3} value={value} onChange={(e) => onChange(e.target.value)} />
      <div className="muted small patch-count" data-testid={`${testId}-count`}>
        {countText(tok)}
      </div>
      {tok.value && <TokenStrip tokens={tok.value.tokens} label={`${label}: tokens`} marked={marked} testId={`${testId}-tokens`} />}
    </div>
  );
}

/** Positions where the two texts' tokens differ (both counted as they are now). */
function differing(a: Tokenized, b: Tokenized): Set<number> {
  const out = new Set<number>();
  if (!a.current || !b.current || !a.value || !b.value) return out;
  a.value.tokens.forEach((t, i) => {
    if (i < b.value!.tokens.length && b.value!.tokens[i] !== t) out.add(i);
  });
  return out;
}

function PatchForm({ p }: { p: PatchingState }) {
  const uid = useId();
  const marked = differing(p.cleanTokens, p.corruptedTokens);
  return (
    <fieldset className="form-block patch-form" aria-label="Run a patching sweep">
      <legend>Run a patching sweep</legend>
      <p className="hint">
        The corrupted text differs from the clean one in a detail. Each patched run is the corrupted run with one activation (a layer, a position) taken from the clean
        run: where that brings the clean answer back, that activation carries the detail.
      </p>
      <div className="patch-prompts">
        <PromptField label="Clean text" value={p.clean} onChange={p.setClean} tok={p.cleanTokens} marked={marked} testId="patch-clean" />
        <PromptField label="Corrupted text" value={p.corrupted} onChange={p.setCorrupted} tok={p.corruptedTokens} marked={marked} testId="patch-corrupted" />
      </div>
      {p.mismatch && (
        <div className="inline-error" role="alert" data-testid="patch-mismatch">
          {p.mismatch}
        </div>
      )}
      <label className={`check-row inline small patch-chat${p.chatAvailable ? '' : ' is-disabled'}`} title={p.chatAvailable ? undefined : 'The model in service has no chat template'}>
        <input type="checkbox" checked={p.chat && p.chatAvailable} disabled={!p.chatAvailable} onChange={(e) => p.setChat(e.target.checked)} />
        <span>Apply the chat template to both texts</span>
      </label>
      <div className="patch-options">
        <fieldset className="patch-group" aria-label="Hook">
          <legend className="label">Patch at</legend>
          {PATCH_HOOKS.map((h) => (
            <label key={h.value} className="check-row">
              <input type="radio" name={`${uid}-hook`} value={h.value} checked={p.hook === h.value} onChange={() => p.setHook(h.value)} />
              <span>
                {h.label} <code className="small">{h.value}</code>
                <span className="muted small block">{h.help}</span>
              </span>
            </label>
          ))}
        </fieldset>
        <div className="patch-column">
          <fieldset className="patch-group" aria-label="Metric">
            <legend className="label">Measure</legend>
            <div className="segmented" role="radiogroup" aria-label="Metric">
              {(['logit_diff', 'prob'] as const).map((m) => (
                <label key={m} className={`segmented-item${p.metricType === m ? ' is-active' : ''}`}>
                  <input type="radio" name={`${uid}-metric`} value={m} checked={p.metricType === m} onChange={() => p.setMetricType(m)} />
                  <span>{m === 'logit_diff' ? 'Logit difference' : 'Probability'}</span>
                </label>
              ))}
            </div>
            <p className="muted small">
              {p.metricType === 'logit_diff'
                ? 'logit(correct) − logit(wrong) of the next token after the last position.'
                : 'The probability of the token as the next token after the last position.'}{' '}
              A token is its text, spaces included (␣Paris is “ Paris”), or its id.
            </p>
            {p.metricType === 'logit_diff' ? (
              <div className="patch-tokens">
                <TokenInput label="Correct token" field={p.correct} placeholder="e.g.  Paris" testId="patch-correct" />
                <TokenInput label="Wrong token" field={p.wrong} placeholder="e.g.  Madrid" testId="patch-wrong" />
              </div>
            ) : (
              <TokenInput label="Token" field={p.token} placeholder="e.g.  Paris" testId="patch-token" />
            )}
          </fieldset>
          <fieldset className="patch-group" aria-label="Positions">
            <legend className="label">Positions</legend>
            <label className="check-row inline">
              <input type="radio" name={`${uid}-positions`} checked={p.allPositions} onChange={() => p.setAllPositions(true)} />
              <span>All positions</span>
            </label>
            <label className="check-row inline">
              <input type="radio" name={`${uid}-positions`} checked={!p.allPositions} onChange={() => p.setAllPositions(false)} />
              <span>Only</span>
              <input
                className="input input-narrow mono"
                aria-label="Positions to patch"
                placeholder="0, 3, -1"
                value={p.positions}
                onFocus={() => p.setAllPositions(false)}
                onChange={(e) => {
                  p.setAllPositions(false);
                  p.setPositions(e.target.value);
                }}
              />
            </label>
            {p.positionsError && (
              <div className="inline-error" role="alert" data-testid="patch-positions-error">
                {p.positionsError}
              </div>
            )}
          </fieldset>
        </div>
      </div>
      <RunControl
        name="patch"
        request={p.request}
        buttons={[{ label: 'Run patching', busyLabel: 'Patching…', onClick: () => void p.run(), disabledReason: p.runDisabledReason, busy: true }]}
        stopTitle="Stop the sweep: the server cancels it, and what is on screen stays"
        progress={{ label: 'Patching progress', idle: 'Starting the sweep…' }}
        notes={{ stopped: 'Sweep stopped.', error: (e) => e }}
      />
    </fieldset>
  );
}

function PatchResult({ shown }: { shown: ShownPatch }) {
  const { res, modelName } = shown;
  const [scale, setScale] = useState<PatchScale>('normalized');
  const uid = useId();
  const boxRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const width = Math.max(320, useWidth(boxRef, 940));
  const exportPng = usePngExport();
  const model = shortModelName(modelName);
  const file = (ext: 'csv' | 'png') => patchFileName(model, res.hook, new Date(), ext);
  return (
    <>
      <div className="eval-toolbar">
        <div className="run-meta small" data-testid="patch-meta">
          <span title={modelName}>{model}</span>
          <span>
            {res.layers} layers × {res.positions.length} positions
          </span>
          <span data-testid="patch-values">
            clean {formatValue(res.clean)} · corrupted {formatValue(res.corrupted)}
          </span>
          <span>{res.seconds.toFixed(1)} s</span>
        </div>
        <div className="eval-actions">
          <div className="segmented" role="radiogroup" aria-label="Patching scale">
            {(['normalized', 'raw'] as const).map((s) => (
              <label key={s} className={`segmented-item${scale === s ? ' is-active' : ''}`}>
                <input type="radio" name={`${uid}-scale`} value={s} checked={scale === s} onChange={() => setScale(s)} />
                <span>{s === 'normalized' ? 'Normalized' : 'Raw'}</span>
              </label>
            ))}
          </div>
          <button type="button" className="btn btn-small btn-secondary" onClick={() => downloadText(patchCsv(res), file('csv'))}>
            Export CSV
          </button>
          <button type="button" className="btn btn-small btn-secondary" onClick={() => exportPng(svgRef.current, file('png'))}>
            Export PNG
          </button>
        </div>
      </div>
      <div ref={boxRef} className="eval-figure-box">
        <PatchingChart res={res} scale={scale} width={width} svgRef={svgRef} />
      </div>
      <p className="muted small eval-help">
        Red: patching there moves the metric toward the clean run (1 when normalized: all of it); blue: away from it; the outlined cell restores most. Hover a cell, or
        focus the heatmap and use the arrow keys, to read its values.
      </p>
    </>
  );
}

export function PatchingCard({ p }: { p: PatchingState }) {
  return (
    <section className="card patching-card" aria-label="Activation patching" data-testid="patching">
      <div className="section-head">
        <h2>Activation patching</h2>
        <label className="check-row inline">
          <input type="checkbox" checked={p.open} onChange={(e) => p.setOpen(e.target.checked)} aria-label="Show activation patching" />
          <span>Show activation patching</span>
        </label>
      </div>
      {!p.open ? (
        <p className="muted small">Which layer and position carry the difference between two texts: patch activations of one run into the other. Tick “Show activation patching” to use it.</p>
      ) : (
        <>
          {p.shown && <PatchResult shown={p.shown} />}
          <PatchForm p={p} />
        </>
      )}
    </section>
  );
}
