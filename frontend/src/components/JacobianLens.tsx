// The Jacobian lens card (closed until asked for): the lens attached to the model in service, what
// a token's lens vector says at each layer it covers (its norm, and the top tokens of the model's
// head on it: a row per layer, a cell per token shaded by its probability; a cell asks for that
// token's own), and fitting a lens from the page (a corpus or sampled documents, the fit's
// settings, its progress, Stop and Resume). Both sit here rather than in Lens quality: they are
// about one lens's directions and how it is made, where Lens quality compares lenses' readouts.
import { useEffect, useRef } from 'react';
import type { JacobianLensState } from '../hooks/useJacobianLens';
import type { JlensFitState } from '../hooks/useJlensFit';
import type { LensVectorState, ShownLensVector } from '../hooks/useLensVector';
import { probColor, rgbString, textOn } from '../lib/colors';
import { checkpointSettingsText, checkpointText, formatSeconds } from '../lib/jlensFit';
import { jacobianSummary, lensPathName } from '../lib/lenses';
import { shortModelName } from '../lib/models';
import { formatNorm } from '../lib/receipts';
import { formatPercent, formatToken } from '../lib/tokens';
import { FileButton } from './FileButton';
import { RunControl } from './RunControl';
import { TokenInput } from './TokenInput';

/** The table of a token's lens vectors: a row per layer, its norm, and its top tokens left to right. */
function LensVectorTable({ shown, onToken }: { shown: ShownLensVector; onToken: (id: number) => void }) {
  const { res } = shown;
  const maxNorm = Math.max(...res.layers.map((l) => l.norm), 0) || 1;
  const k = Math.max(0, ...res.layers.map((l) => l.top.length));
  return (
    <div className="lens-vector-scroll">
      <table className="lens-vector-table" aria-label={`What the lens vector of ${formatToken(res.token)} says at each layer`} data-testid="lens-vector-table">
        <thead>
          <tr>
            <th scope="col">Layer</th>
            <th scope="col" title="‖v‖: how strongly the layer’s state must point along the vector to move the token’s logit">
              ‖v‖
            </th>
            <th scope="col" title="Where the token itself ranks among the tokens its vector reads back as">
              Its rank
            </th>
            {Array.from({ length: k }, (_, i) => (
              <th key={i} scope="col">
                {i + 1}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {res.layers.map((l) => {
            const rank = l.top.findIndex((p) => p.id === res.token_id);
            return (
              <tr key={l.layer} data-layer={l.layer}>
                <th scope="row">{l.layer_name}</th>
                <td className="lv-norm" data-value={l.norm}>
                  <span className="lv-norm-bar" style={{ width: `${Math.max(4, (100 * l.norm) / maxNorm)}%` }} aria-hidden="true" />
                  <span className="lv-norm-text">{formatNorm(l.norm)}</span>
                </td>
                <td className="lv-rank" data-testid="lens-vector-rank">
                  {rank >= 0 ? `#${rank + 1}` : `> ${l.top.length}`}
                </td>
                {l.top.map((p, i) => {
                  const bg = probColor(p.prob);
                  return (
                    <td key={i} className="lv-td">
                      <button
                        type="button"
                        className={`lv-cell${p.id === res.token_id ? ' is-self' : ''}`}
                        style={{ background: rgbString(bg), color: textOn(bg) }}
                        data-id={p.id}
                        data-prob={p.prob}
                        title={`${JSON.stringify(p.token)} (id ${p.id}): ${formatPercent(p.prob)}. Click for its own lens vector.`}
                        onClick={() => onToken(p.id)}
                      >
                        <span className="lv-token mono">{formatToken(p.token)}</span>
                        <span className="lv-prob">{formatPercent(p.prob)}</span>
                      </button>
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function LensVectorView({ lv, available }: { lv: LensVectorState; available: boolean }) {
  const { shown } = lv;
  return (
    <fieldset className="form-block lens-vector" aria-label="Lens vectors">
      <legend>What a token’s lens vector says</legend>
      <p className="hint">
        A token’s lens vector at layer ℓ, v = J<sub>ℓ</sub>ᵀ W<sub>U</sub>[:, token], is the direction of the block output that moves its logit: what steering pushes
        along. Read back through the model’s own head (final norm, unembedding), its top tokens say what the direction means at each layer.
      </p>
      {available && (
        <div className="lens-vector-form">
          <TokenInput label="Token" field={lv.token} placeholder="e.g.  Paris or 464" testId="lens-vector-token" />
          <label className="field field-inline">
            <span>Top</span>
            <input
              className="input input-narrow"
              aria-label="Tokens per layer"
              inputMode="numeric"
              value={lv.k}
              onChange={(e) => lv.setK(e.target.value)}
              title="How many tokens to list per layer (1 to 50)"
            />
          </label>
        </div>
      )}
      <RunControl
        name="lens-vector"
        request={lv.request}
        buttons={[{ label: 'Show its lens vectors', busyLabel: 'Reading…', onClick: () => void lv.run(), disabledReason: lv.runDisabledReason, busy: true, className: 'btn-secondary' }]}
        stopTitle="Stop waiting for the lens vectors; what is on screen stays"
        progress={{ label: 'Lens vector progress', idle: 'Reading the lens vectors through the model’s head…' }}
        notes={{ stopped: 'Stopped.', error: (e) => e }}
      />
      {shown && (
        <>
          <div className="run-meta small lens-vector-meta" data-testid="lens-vector-meta">
            <span className="mono">{formatToken(shown.res.token)}</span>
            <span>id {shown.res.token_id}</span>
            <span title={shown.lensPath || undefined}>{shown.lensPath ? lensPathName(shown.lensPath) : 'lens fitted here'}</span>
            <span title={shown.modelName}>{shortModelName(shown.modelName)}</span>
            <span>top {shown.k} per layer</span>
          </div>
          <LensVectorTable shown={shown} onToken={(id) => lv.show({ tokenId: id })} />
        </>
      )}
    </fieldset>
  );
}

function FitForm({ fit }: { fit: JlensFitState }) {
  const { form, set, checkpoint, result } = fit;
  const running = fit.request.running;
  return (
    <fieldset className="form-block eval-form jlens-fit" aria-label="Fit a Jacobian lens">
      <legend>Fit a Jacobian lens</legend>
      <p className="hint">
        The server averages the Jacobian of the model’s output with respect to each block output over the prompts (no training), saves the lens under its
        saved_states and attaches it. Each prompt is cut to the max sequence length, its first positions skipped; the dim batch is how many dimensions one
        backward pass takes (more is faster and needs more memory).
      </p>
      <div className="segmented" role="radiogroup" aria-label="Fit on">
        {(['corpus', 'sample'] as const).map((s) => (
          <label key={s} className={`segmented-item${form.source === s ? ' is-active' : ''}`}>
            <input type="radio" name="jlens-fit-source" value={s} checked={form.source === s} onChange={() => set({ source: s })} />
            <span>{s === 'corpus' ? 'A corpus' : 'Sampled from the model'}</span>
          </label>
        ))}
      </div>
      {form.source === 'corpus' ? (
        <>
          <textarea
            className="input mono"
            aria-label="Fit corpus"
            rows={4}
            placeholder={'One prompt per line.\nThe old lighthouse keeper climbed the spiral stairs…'}
            value={form.corpus}
            onChange={(e) => set({ corpus: e.target.value })}
          />
          <div className="eval-form-row">
            <FileButton label="Choose a .txt file…" accept=".txt,text/plain" ariaLabel="Fit corpus file" onFile={(f) => void fit.readCorpusFile(f)} />
            <span className="muted small" data-testid="fit-documents">
              {fit.documents} document{fit.documents === 1 ? '' : 's'}
              {fit.corpusFile ? ` · from ${fit.corpusFile}` : ''}
            </span>
          </div>
        </>
      ) : (
        <div className="eval-form-row">
          <label className="field field-inline">
            <span>Documents</span>
            <input className="input input-narrow" aria-label="Sampled documents" inputMode="numeric" value={form.sample} onChange={(e) => set({ sample: e.target.value })} />
          </label>
          <label className="field field-inline">
            <span>Seed</span>
            <input className="input input-narrow" aria-label="Sampling seed" inputMode="numeric" value={form.seed} onChange={(e) => set({ seed: e.target.value })} />
          </label>
        </div>
      )}
      <div className="eval-form-row jlens-fit-settings">
        <label className="field field-inline">
          <span>Max prompts</span>
          <input className="input input-narrow" aria-label="Max prompts" inputMode="numeric" placeholder="all" value={form.maxPrompts} onChange={(e) => set({ maxPrompts: e.target.value })} />
        </label>
        <label className="field field-inline">
          <span>Max sequence length</span>
          <input className="input input-narrow" aria-label="Max sequence length" inputMode="numeric" value={form.maxSeqLen} onChange={(e) => set({ maxSeqLen: e.target.value })} />
        </label>
        <label className="field field-inline">
          <span>Skip first</span>
          <input className="input input-narrow" aria-label="Skip first positions" inputMode="numeric" value={form.skipFirst} onChange={(e) => set({ skipFirst: e.target.value })} />
        </label>
        <label className="field field-inline">
          <span>Dim batch</span>
          <input className="input input-narrow" aria-label="Dim batch" inputMode="numeric" value={form.dimBatch} onChange={(e) => set({ dimBatch: e.target.value })} />
        </label>
      </div>
      <RunControl
        name="fit"
        request={fit.request}
        buttons={[
          { label: 'Fit a Jacobian lens', busyLabel: 'Fitting…', onClick: () => void fit.run(false), disabledReason: fit.runDisabledReason, busy: !fit.resuming },
          ...(checkpoint && !running
            ? [
                {
                  label: `Resume (${checkpointText(checkpoint)})`,
                  busyLabel: 'Resuming…',
                  onClick: () => void fit.run(true),
                  disabledReason: fit.resumeDisabledReason,
                  busy: fit.resuming,
                  className: 'btn-secondary',
                  title: 'Continue the fit the server kept when it was stopped, with its own settings (the corpus must be the same)',
                },
              ]
            : running && fit.resuming
              ? [{ label: 'Resume', busyLabel: 'Resuming…', onClick: () => {}, disabledReason: null, busy: true, className: 'btn-secondary' }]
              : []),
        ]}
        stopTitle="Stop the fit: the server keeps what it has fitted so far, which Resume continues"
        progress={{ label: 'Fit progress', idle: 'Starting the fit…', describe: fit.describeProgress }}
        notes={{ stopped: checkpoint ? `Fit stopped: the server kept ${checkpointText(checkpoint)}; Resume continues it.` : 'Fit stopped.', error: (e) => e }}
      />
      {checkpoint && !running && (
        <div className="muted small fit-checkpoint" data-testid="fit-checkpoint">
          Kept on the server: {checkpointText(checkpoint)}
          {checkpointSettingsText(checkpoint) ? ` · ${checkpointSettingsText(checkpoint)}` : ''}
          {fit.resumeDisabledReason ? <span className="lens-warn"> · {fit.resumeDisabledReason}</span> : null}
        </div>
      )}
      {fit.checkpointError && (
        <div className="muted small" role="note" data-testid="fit-checkpoint-error">
          {fit.checkpointError}
        </div>
      )}
      {result && !running && (
        <div className="fit-result small" role="status" data-testid="fit-result">
          {result.resumed ? 'Resumed and fitted' : 'Fitted'} on {result.res.n_prompts} prompt{result.res.n_prompts === 1 ? '' : 's'}
          {result.res.skipped > 0 ? ` (${result.res.skipped} skipped: too short)` : ''} in {formatSeconds(result.res.seconds)}; saved to{' '}
          <code title={result.res.saved}>{result.res.saved}</code> and attached to {shortModelName(result.modelName)} ({jacobianSummary(result.res.jacobian_lens)}).
        </div>
      )}
    </fieldset>
  );
}

export function JacobianLensCard({ jl }: { jl: JacobianLensState }) {
  const cardRef = useRef<HTMLElement>(null);
  // A lens cell asked for a token's lens vector: bring the card into sight.
  const { revealed } = jl.vector;
  useEffect(() => {
    if (revealed > 0) cardRef.current?.scrollIntoView?.({ behavior: 'smooth', block: 'start' });
  }, [revealed]);
  return (
    <section ref={cardRef} className="card jacobian-lens-card" aria-label="Jacobian lens" data-testid="jacobian-lens">
      <div className="section-head">
        <h2>Jacobian lens</h2>
        <label className="check-row inline">
          <input type="checkbox" checked={jl.open} onChange={(e) => jl.setOpen(e.target.checked)} aria-label="Show the Jacobian lens" />
          <span>Show the Jacobian lens</span>
        </label>
      </div>
      {!jl.open ? (
        <p className="muted small">
          A matrix per layer that carries the block output to the final layer before the model’s head: what a token’s direction says at each layer, and fitting
          a lens from the page. Tick “Show the Jacobian lens” to see it.
        </p>
      ) : (
        <>
          <p className="small jlens-attached" data-testid="jlens-attached">
            {jl.attached ? (
              <>
                Attached: <strong title={jl.attached.path || undefined}>{jacobianSummary(jl.attached)}</strong>
                {jl.attached.warning && <span className="lens-warn"> ⚠ {jl.attached.warning}</span>}
              </>
            ) : (
              <span className="muted">No Jacobian lens is attached: attach its file under Lenses in the header, or fit one below.</span>
            )}
          </p>
          <LensVectorView lv={jl.vector} available={jl.attached !== null} />
          <FitForm fit={jl.fit} />
        </>
      )}
    </section>
  );
}
