// The Attribution card: the direct logit attribution of a lens cell's token at its position (asked
// from the grid's cell menu): the token, position and logit, the parts per layer and per head as
// one figure, the sum that checks them, its progress and Stop while it runs, errors in words, and
// the exports.
import { useRef } from 'react';
import type { AttributionState, ShownAttribution } from '../hooks/useAttribution';
import { usePngExport } from '../hooks/usePngExport';
import { useWidth } from '../hooks/useWidth';
import { attributionCsv, attributionFileName, sumChecks, sumCheckText, type AttributionTarget } from '../lib/attribution';
import { formatValue } from '../lib/chart';
import { downloadText } from '../lib/download';
import { shortModelName } from '../lib/models';
import { formatToken } from '../lib/tokens';
import { AttributionChart } from './AttributionChart';
import { RunControl } from './RunControl';

function TargetLine({ target, tokens }: { target: AttributionTarget; tokens: string[] | null }) {
  const at = tokens?.[target.position];
  return (
    <span data-testid="attribution-target">
      <span className="mono tt-chip">{formatToken(target.token)}</span> (id {target.tokenId}, the top-1 of {target.rowName}) at position {target.position}
      {at !== undefined && (
        <>
          {' '}
          after <span className="mono">{formatToken(at)}</span>
        </>
      )}
    </span>
  );
}

function AttributionView({ shown }: { shown: ShownAttribution }) {
  const { attribution: a, modelName } = shown;
  const boxRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const width = Math.max(320, useWidth(boxRef, 940));
  const exportPng = usePngExport();
  const file = (ext: 'csv' | 'png') => attributionFileName(shortModelName(modelName), a.position, new Date(), ext);
  const parts = Object.entries(a.rest_parts);
  return (
    <>
      <div className="eval-toolbar">
        <div className="run-meta small" data-testid="attribution-values">
          <span>
            logit{' '}
            <strong data-testid="attribution-logit" data-value={a.logit}>
              {formatValue(a.logit)}
            </strong>
          </span>
          <span>embeddings {formatValue(a.embed)}</span>
          <span title={parts.map(([k, v]) => `${k}: ${formatValue(v)}`).join('\n') || undefined}>
            rest {formatValue(a.rest)}
            {parts.length > 0 && ` (${parts.map(([k, v]) => `${k} ${formatValue(v)}`).join(', ')})`}
          </span>
        </div>
        <div className="eval-actions">
          <button type="button" className="btn btn-small btn-secondary" onClick={() => downloadText(attributionCsv(a), file('csv'))}>
            Export CSV
          </button>
          <button type="button" className="btn btn-small btn-secondary" onClick={() => exportPng(svgRef.current, file('png'))}>
            Export PNG
          </button>
        </div>
      </div>
      <div className={`small attribution-sum${sumChecks(a) ? '' : ' is-off'}`} data-testid="attribution-sum">
        {sumCheckText(a)} {sumChecks(a) ? '✓' : '(they differ: the parts do not account for the whole logit)'}
      </div>
      <div ref={boxRef} className="eval-figure-box">
        <AttributionChart a={a} width={width} svgRef={svgRef} />
      </div>
      <p className="muted small eval-help">
        Each part is what that component writes into the residual stream, read through the final norm’s scale and the token’s unembedding: up is toward the token,
        down away from it. Hover a layer or a head, or focus the chart and use the arrow keys, to read the values.
      </p>
    </>
  );
}

export function AttributionCard({ at }: { at: AttributionState }) {
  // What was asked last: the attribution on screen, or one that runs or failed after it.
  const target = at.target ?? at.shown?.target ?? null;
  if (!target) return null;
  return (
    <section className="card attribution-card" aria-label="Direct logit attribution" data-testid="attribution">
      <div className="section-head">
        <h2>Direct logit attribution</h2>
        <button type="button" className="icon-btn" aria-label="Close the attribution" onClick={at.close}>
          ×
        </button>
      </div>
      <p className="small attribution-head">
        <TargetLine target={target} tokens={at.shown?.tokens ?? null} />
      </p>
      <RunControl
        name="attribution"
        request={at.request}
        // Asked from a cell of the grid.
        buttons={[]}
        stopTitle="Stop the attribution: the server cancels it"
        progress={{ label: 'Attribution progress', idle: 'Attributing…' }}
        notes={{ stopped: 'Attribution stopped.', error: (e) => `Could not attribute: ${e}` }}
      />
      {at.shown && <AttributionView shown={at.shown} />}
    </section>
  );
}
