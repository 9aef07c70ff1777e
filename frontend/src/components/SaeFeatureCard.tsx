// The SAE feature card, opened from an SAE cell of the grid: what the feature's decoder row promotes
// and suppresses (top and bottom tokens through the model's head), its activation over the run's
// tokens (a bar per token, the tokens under them), and where it fires in a corpus (a .txt file or
// sampled documents): how often, how strongly, and its strongest contexts with the token marked.
import type { SaeCorpusReport, SaeFeatureTokens } from '../api/types';
import type { SaeFeatureState } from '../hooks/useSaeFeature';
import { formatAct, formatShare } from '../lib/sae';
import { formatToken } from '../lib/tokens';
import { RunControl } from './RunControl';
import { SaeCorpusFields } from './SaeCorpusFields';

function TokenTable({ title, rows, testId }: { title: string; rows: SaeFeatureTokens['top_tokens']; testId: string }) {
  return (
    <table className="sae-token-table" data-testid={testId}>
      <caption>{title}</caption>
      <tbody>
        {rows.map((t) => (
          <tr key={t.id}>
            <td className="mono" title={`token id ${t.id}: ${JSON.stringify(t.token)}`}>
              {formatToken(t.token)}
            </td>
            <td className="num">{formatAct(t.value)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The feature's activation over the run's tokens: a bar per token, its token under it. */
export function Sparkline({ values, tokens, position }: { values: number[]; tokens: string[] | null; position?: number }) {
  const bw = 34;
  const h = 60;
  const labelH = 30;
  const max = Math.max(0, ...values);
  const min = Math.min(0, ...values);
  const span = max - min || 1;
  const zero = h - ((0 - min) / span) * h;
  const W = values.length * bw;
  return (
    <svg className="sae-sparkline" data-testid="sae-sparkline" width={W} height={h + labelH + 4} viewBox={`0 0 ${W} ${h + labelH + 4}`} role="img" aria-label={`Activation over the run's ${values.length} tokens, largest ${formatAct(max)}`}>
      <line x1={0} x2={W} y1={zero} y2={zero} stroke="#475569" strokeWidth={1} />
      {values.map((v, i) => {
        const y = h - ((Math.max(v, 0) - min) / span) * h;
        const y0 = h - ((Math.min(v, 0) - min) / span) * h;
        return (
          <g key={i} data-bar={i} data-value={v}>
            <title>{`${i}: ${tokens?.[i] !== undefined ? `${formatToken(tokens[i])} ` : ''}${formatAct(v)}`}</title>
            <rect x={i * bw + 3} y={y} width={bw - 6} height={Math.max(v === 0 ? 0 : 1, y0 - y)} fill={i === position ? '#fbbf24' : '#f87171'} />
            <text x={i * bw + bw / 2} y={h + 14} textAnchor="middle" fontSize={10} fill="#cbd5e1" fontFamily="monospace">
              {tokens?.[i] !== undefined ? formatToken(tokens[i]).slice(0, 5) : i}
            </text>
            <text x={i * bw + bw / 2} y={h + 27} textAnchor="middle" fontSize={9} fill="#94a3b8">
              {v > 0 ? formatAct(v) : ''}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function CorpusReport({ r }: { r: SaeCorpusReport }) {
  return (
    <div className="sae-corpus-report" data-testid="sae-corpus-report">
      <p className="small" data-testid="sae-corpus-summary">
        Fires at {r.fires} of {r.tokens} positions ({formatShare(r.frequency)}) in {r.documents} document{r.documents === 1 ? '' : 's'}
        {r.sample_seed != null ? ` sampled (seed ${r.sample_seed})` : ''}; max activation {formatAct(r.max_act)}.
      </p>
      {r.contexts.length > 0 && (
        <ol className="sae-contexts" data-testid="sae-contexts">
          {r.contexts.map((c, i) => (
            <li key={i} className="mono small">
              <span className="muted">
                {formatAct(c.act)} · doc {c.document} pos {c.position}:{' '}
              </span>
              {c.tokens.map((t, j) => (
                <span key={j} className={j === c.highlight ? 'sae-fire' : undefined} data-fire={j === c.highlight ? '1' : undefined}>
                  {formatToken(t)}
                </span>
              ))}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

export function SaeFeatureCard({ f }: { f: SaeFeatureState }) {
  const t = f.target;
  if (!t) return null;
  const feature = f.data?.features[0];
  const acts = f.data?.activations?.[0];
  return (
    <section className="card sae-feature-card" aria-label="SAE feature" data-testid="sae-feature-card">
      <div className="section-head">
        <h2>
          SAE feature <span className="mono">#{t.feature}</span> of {t.sae}
        </h2>
        <button type="button" className="icon-btn" aria-label="Close the feature card" onClick={f.close}>
          ×
        </button>
      </div>
      {f.loading && (
        <div className="empty-state small" role="status">
          <span className="spinner" aria-hidden="true" /> Reading the feature…
        </div>
      )}
      {f.error && (
        <div className="inline-error" role="alert" data-testid="sae-feature-error">
          {f.error}
        </div>
      )}
      {f.data && feature && (
        <>
          <p className="muted small" data-testid="sae-feature-meta">
            {f.data.sae.hook} · {f.data.sae.architecture} · {f.data.sae.d_sae} features · decoder norm {formatAct(feature.decoder_norm)}
          </p>
          <div className="sae-token-tables">
            <TokenTable title="Promotes (top tokens)" rows={feature.top_tokens} testId="sae-top-tokens" />
            <TokenTable title="Suppresses (bottom tokens)" rows={feature.bottom_tokens} testId="sae-bottom-tokens" />
          </div>
          {acts ? (
            <div className="sae-sparkline-box">
              <div className="small">Activation over the run’s tokens</div>
              <Sparkline values={acts} tokens={t.tokens} position={t.position} />
            </div>
          ) : (
            <p className="muted small">No run on screen kept by the server: run again to see the activation over its tokens.</p>
          )}
        </>
      )}
      <fieldset className="form-block" aria-label="Where it fires">
        <legend>Where it fires</legend>
        <SaeCorpusFields c={f.corpus} label="Feature corpus" />
        <label className="field field-inline">
          <span>Max tokens</span>
          <input className="input input-narrow" aria-label="Feature scan max tokens" inputMode="numeric" value={f.maxTokens} onChange={(e) => f.setMaxTokens(e.target.value)} />
        </label>
        <RunControl
          name="sae-scan"
          request={f.request}
          buttons={[{ label: 'Scan the corpus', busyLabel: 'Scanning…', onClick: () => void f.scan(), disabledReason: f.scanDisabledReason, busy: true }]}
          stopTitle="Stop the scan: the server cancels it"
          progress={{ label: 'Scan progress', idle: 'Starting the scan…' }}
          notes={{ stopped: 'Scan stopped.', error: (e) => e }}
        />
        {f.report && <CorpusReport r={f.report} />}
      </fieldset>
    </section>
  );
}
