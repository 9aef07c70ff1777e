// The SAE quality card: how well each attached SAE reconstructs what it reads, measured over a
// corpus (POST /eval_sae; GET /eval_sae, the last one, when opened): a row per SAE with what its
// splice costs in cross-entropy (ΔCE), the share of the loss it recovers against zeroing its hook,
// the KL of the spliced output, explained variance, MSE, mean L0 and dead features; the form that
// runs an evaluation (a .txt file or sampled documents, max tokens) with its progress and Stop.
import type { SaeEvalState } from '../hooks/useSaeEval';
import { shortModelName } from '../lib/models';
import { saeQualityCells } from '../lib/sae';
import { RunControl } from './RunControl';
import { SaeCorpusFields } from './SaeCorpusFields';

function Report({ shown }: { shown: NonNullable<SaeEvalState['shown']> }) {
  const r = shown.report;
  return (
    <>
      <div className="run-meta small eval-meta" data-testid="sae-eval-meta">
        <span title={r.model_name}>{shortModelName(r.model_name)}</span>
        <span>
          {r.documents} document{r.documents === 1 ? '' : 's'}
          {r.sample_seed != null ? ` sampled (seed ${r.sample_seed})` : ''}
        </span>
        <span>{r.tokens} positions</span>
        <span>first {r.max_tokens} tokens of each</span>
        {r.exclude_special && <span>special tokens kept out</span>}
        <span className="tag tag-session">{shown.source === 'server' ? 'the server’s last evaluation' : 'evaluated now'}</span>
      </div>
      <div className="table-scroll">
        <table className="sae-quality-table" data-testid="sae-quality-table">
          <thead>
            <tr>
              <th scope="col">SAE</th>
              <th scope="col" title="Cross-entropy with the reconstruction spliced in − clean (nats; lower is better)">
                ΔCE
              </th>
              <th scope="col" title="(CE zero-ablated − CE spliced) / (CE zero-ablated − CE clean): 100% is as clean">
                Loss recovered
              </th>
              <th scope="col" title="Mean KL(clean ‖ spliced) of the output distributions (nats)">
                KL
              </th>
              <th scope="col" title="1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²">
                EV
              </th>
              <th scope="col" title="Mean ‖x − x̂‖² / d_in">
                MSE
              </th>
              <th scope="col" title="Mean active features per position">
                L0
              </th>
              <th scope="col" title="Features active at no position counted, of all">
                Dead / d_sae
              </th>
            </tr>
          </thead>
          <tbody>
            {r.saes.map((q) => {
              const c = saeQualityCells(q);
              return (
                <tr key={q.name} data-sae={q.name}>
                  <th scope="row" title={`${q.hook} · ${q.architecture}`}>
                    {c.name} <span className="muted small mono">{c.hook}</span>
                  </th>
                  <td className="num">{c.deltaCe}</td>
                  <td className="num">{c.lossRecovered}</td>
                  <td className="num">{c.kl}</td>
                  <td className="num">{c.ev}</td>
                  <td className="num">{c.mse}</td>
                  <td className="num">{c.l0}</td>
                  <td className="num">{c.dead}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}

export function SaeQualityCard({ ev }: { ev: SaeEvalState }) {
  return (
    <section className="card sae-quality-card" aria-label="SAE quality" data-testid="sae-quality">
      <div className="section-head">
        <h2>SAE quality</h2>
        <label className="check-row inline">
          <input type="checkbox" checked={ev.open} onChange={(e) => ev.setOpen(e.target.checked)} aria-label="Show SAE quality" />
          <span>Show SAE quality</span>
        </label>
      </div>
      {!ev.open ? (
        <p className="muted small">How much each attached SAE costs the model when its reconstruction is spliced in, over a corpus. Tick “Show SAE quality” to see it.</p>
      ) : (
        <>
          {ev.fetching && !ev.shown && (
            <div className="empty-state small" role="status" data-testid="sae-eval-fetching">
              <span className="spinner" aria-hidden="true" /> Fetching the last SAE evaluation…
            </div>
          )}
          {ev.serverNote && !ev.shown && (
            <div className="empty-state small" role="status" data-testid="sae-eval-note">
              {ev.serverNote}
            </div>
          )}
          {ev.shown && <Report shown={ev.shown} />}
          <fieldset className="form-block eval-form" aria-label="Run an SAE evaluation">
            <legend>Run an SAE evaluation</legend>
            <SaeCorpusFields c={ev.corpus} label="SAE corpus" />
            <label className="field field-inline">
              <span>Max tokens</span>
              <input className="input input-narrow" aria-label="SAE evaluation max tokens" inputMode="numeric" value={ev.maxTokens} onChange={(e) => ev.setMaxTokens(e.target.value)} />
            </label>
            <RunControl
              name="sae-eval"
              request={ev.request}
              buttons={[{ label: 'Evaluate the SAEs', busyLabel: 'Evaluating…', onClick: () => void ev.run(), disabledReason: ev.runDisabledReason, busy: true }]}
              stopTitle="Stop the evaluation: the server cancels it, and what is on screen stays"
              progress={{ label: 'SAE evaluation progress', idle: 'Starting the evaluation…' }}
              notes={{ stopped: 'SAE evaluation stopped.', error: (e) => e }}
            />
          </fieldset>
        </>
      )}
    </section>
  );
}
