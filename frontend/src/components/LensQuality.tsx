// The Lens quality card: how well each row of the grid, read by the logit lens and by the tuned and
// Jacobian lenses attached, predicts what the model outputs, measured over a corpus (POST
// /eval_lens, or a file of `logitlens eval-lens --json`). Four charts with a line per lens, exports
// (CSV numbers, SVG or PNG chart), and the form that runs an evaluation with its progress and Stop.
import { useRef, useState, type ReactNode } from 'react';
import type { Lens } from '../api/types';
import type { LensEvalState, ShownEval } from '../hooks/useLensEval';
import type { EvalData } from '../lib/lensEval';
import { useWidth } from '../hooks/useWidth';
import { downloadText } from '../lib/download';
import { lensPathName, lensName } from '../lib/lenses';
import { evalCsv, evalFileName } from '../lib/lensEval';
import { shortModelName } from '../lib/models';
import { svgMarkup } from '../lib/svgExport';
import { usePngExport } from '../hooks/usePngExport';
import { FileButton } from './FileButton';
import { LensQualityChart } from './LensQualityChart';
import { RunControl } from './RunControl';

/** The lenses measured, each named by its folder or file: "logit lens, tuned lens (llama) and Jacobian lens (jlens.pt)". */
function EvalLenses({ data }: { data: EvalData }) {
  const learned = [
    data.tuned ? { lens: 'tuned' as const, path: data.tuned_lens } : null,
    data.jacobian ? { lens: 'jacobian' as const, path: data.jacobian_lens } : null,
  ].filter((l) => l !== null);
  if (learned.length === 0) return <span data-testid="eval-lenses">logit lens only (no tuned or Jacobian lens was attached)</span>;
  return (
    <span data-testid="eval-lenses">
      logit lens{learned.length === 1 ? ' and ' : ', '}
      {learned.map((l, i) => (
        <span key={l.lens} title={l.path ?? undefined}>
          {i > 0 ? ' and ' : ''}
          {lensName(l.lens, l.path)}
        </span>
      ))}
    </span>
  );
}

/** What the evaluation on screen was made of, and where it came from. */
function EvalMeta({ shown }: { shown: ShownEval }) {
  const { data, source } = shown;
  const parts: ReactNode[] = [];
  if (data.model_name) parts.push(<span title={data.model_name}>{shortModelName(data.model_name)}</span>);
  if (data.documents !== undefined) parts.push(`${data.documents} document${data.documents === 1 ? '' : 's'}`);
  parts.push(`${data.tokens} positions`);
  if (data.max_tokens !== undefined) parts.push(`first ${data.max_tokens} tokens of each`);
  parts.push(<EvalLenses data={data} />);
  const from = source.kind === 'server' ? 'the server’s last evaluation' : source.kind === 'run' ? 'evaluated now' : `file ${source.name}`;
  return (
    <div className="run-meta small eval-meta" data-testid="eval-meta">
      {parts.map((p, i) => (
        <span key={i}>{p}</span>
      ))}
      <span className="tag tag-session">{from}</span>
    </div>
  );
}

function figureTitle(shown: ShownEval): string {
  const { data, source } = shown;
  const what = data.model_name ? shortModelName(data.model_name) : source.kind === 'file' ? source.name : 'evaluation';
  return `Lens quality · ${what} · ${data.tokens} positions`;
}

/** The charts of the evaluation on screen, with the KL scale and the exports. */
function EvalReportView({ shown }: { shown: ShownEval }) {
  const [logKl, setLogKl] = useState(false);
  const boxRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const width = Math.max(280, useWidth(boxRef, 940));
  const { data, source } = shown;
  const lensNames: Record<Lens, string> = { logit: 'logit lens', tuned: lensName('tuned', data.tuned_lens), jacobian: lensName('jacobian', data.jacobian_lens) };
  const base = data.model_name ? shortModelName(data.model_name) : source.kind === 'file' ? source.name.replace(/\.json$/i, '') : 'evaluation';
  // Named by the lenses measured, a Jacobian lens by its file without the extension.
  const name = [base, data.tuned && data.tuned_lens ? lensPathName(data.tuned_lens) : null, data.jacobian && data.jacobian_lens ? lensPathName(data.jacobian_lens).replace(/\.[^.]+$/, '') : null]
    .filter((p) => p)
    .join('_');

  const exportPng = usePngExport();
  const exportSvg = (format: 'svg' | 'png') => {
    const svg = svgRef.current;
    if (!svg) return;
    const file = evalFileName(name, new Date(), format);
    if (format === 'png') exportPng(svg, file);
    else downloadText(svgMarkup(svg), file, 'image/svg+xml;charset=utf-8');
  };

  return (
    <>
      <div className="eval-toolbar">
        <EvalMeta shown={shown} />
        <div className="eval-actions">
          <label className="check-row inline small" title="KL spans decades from the first rows to the output: a log scale shows the late rows apart (the output's 0 is then not drawn)">
            <input type="checkbox" checked={logKl} onChange={(e) => setLogKl(e.target.checked)} />
            <span>Log scale for KL</span>
          </label>
          <button type="button" className="btn btn-small btn-secondary" onClick={() => downloadText(evalCsv(data), evalFileName(name, new Date(), 'csv'))}>
            Export CSV
          </button>
          <button type="button" className="btn btn-small btn-secondary" onClick={() => exportSvg('svg')}>
            Export SVG
          </button>
          <button type="button" className="btn btn-small btn-secondary" onClick={() => exportSvg('png')}>
            Export PNG
          </button>
        </div>
      </div>
      <div ref={boxRef} className="eval-figure-box">
        <LensQualityChart data={data} width={width} logKl={logKl} lensNames={lensNames} title={figureTitle(shown)} svgRef={svgRef} />
      </div>
      <p className="muted small eval-help">
        Per row of the grid, over every position of the corpus: <strong>KL</strong> from the model’s output to the row’s prediction and the{' '}
        <strong>cross-entropy</strong> of the next token (lower is better), the row’s <strong>entropy</strong>, and how often its top-1 token is the output’s
        (<strong>top-1 agreement</strong>, higher is better). All in nats. Hover a chart, or focus it and use the arrow keys, to read the values.
      </p>
    </>
  );
}

/** Runs an evaluation: the corpus (typed, pasted or read from a .txt file), max tokens, Run and Stop. */
function EvalForm({ ev }: { ev: LensEvalState }) {
  return (
    <fieldset className="form-block eval-form" aria-label="Run an evaluation">
      <legend>Run an evaluation</legend>
      <p className="hint">
        One document per line (blank lines are skipped); the model in service reads the first tokens of each, and the logit lens and every lens attached to it
        (tuned, Jacobian) are measured against its output.
      </p>
      <textarea
        className="input mono"
        aria-label="Corpus"
        rows={5}
        placeholder={'The old lighthouse keeper climbed the spiral stairs…\nIn 1969 Apollo 11 landed on the Moon…'}
        value={ev.corpus}
        onChange={(e) => ev.setCorpus(e.target.value)}
      />
      <div className="eval-form-row">
        <FileButton label="Choose a .txt file…" accept=".txt,text/plain" ariaLabel="Corpus file" onFile={(f) => void ev.readCorpusFile(f)} />
        <span className="muted small" data-testid="eval-documents">
          {ev.documents} document{ev.documents === 1 ? '' : 's'}
          {ev.corpusFile ? ` · from ${ev.corpusFile}` : ''}
        </span>
        <label className="field field-inline">
          <span>Max tokens</span>
          <input
            className="input input-narrow"
            aria-label="Max tokens per document"
            inputMode="numeric"
            value={ev.maxTokens}
            onChange={(e) => ev.setMaxTokens(e.target.value)}
            title="Each document's first tokens; the server says when this is over its limit"
          />
        </label>
      </div>
      <RunControl
        name="eval"
        request={ev.request}
        buttons={[{ label: 'Run evaluation', busyLabel: 'Evaluating…', onClick: () => void ev.run(), disabledReason: ev.runDisabledReason, busy: true }]}
        stopTitle="Stop the evaluation: the server cancels it, and what is on screen stays"
        progress={{ label: 'Evaluation progress', idle: 'Starting the evaluation…' }}
        notes={{ stopped: 'Evaluation stopped.', error: (e) => e }}
      />
    </fieldset>
  );
}

export function LensQualityCard({ ev }: { ev: LensEvalState }) {
  return (
    <section className="card lens-quality-card" aria-label="Lens quality" data-testid="lens-quality">
      <div className="section-head">
        <h2>Lens quality</h2>
        <label className="check-row inline">
          <input type="checkbox" checked={ev.open} onChange={(e) => ev.setOpen(e.target.checked)} aria-label="Show lens quality" />
          <span>Show lens quality</span>
        </label>
      </div>
      {!ev.open ? (
        <p className="muted small">
          How well each row, read by the logit lens and by a tuned or Jacobian lens, predicts the model’s output over a corpus. Tick “Show lens quality” to see it.
        </p>
      ) : (
        <>
          <div className="eval-source">
            <FileButton label="Open file…" accept=".json,application/json" ariaLabel="Evaluation file" onFile={(f) => void ev.openFile(f)} />
            <span className="muted small">the JSON of “logitlens eval-lens --json”, or a report of the server</span>
          </div>
          {ev.fileError && (
            <div className="inline-error" role="alert" data-testid="eval-file-error">
              {ev.fileError}
            </div>
          )}
          {ev.fetching && !ev.shown && (
            <div className="empty-state small" role="status" data-testid="eval-fetching">
              <span className="spinner" aria-hidden="true" /> Fetching the last evaluation…
            </div>
          )}
          {ev.serverNote && !ev.shown && (
            <div className="empty-state small" role="status" data-testid="eval-note">
              {ev.serverNote}
            </div>
          )}
          {ev.shown && <EvalReportView shown={ev.shown} />}
          <EvalForm ev={ev} />
        </>
      )}
    </section>
  );
}
