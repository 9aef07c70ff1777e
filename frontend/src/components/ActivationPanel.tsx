// The activation analysis card: residual-stream norms and cosines over the lens rows, and what
// attention and the MLP add at each layer, as row × position heatmaps with values on hover and
// keyboard focus; Export CSV writes all of them as one table.
import { useEffect, useMemo, useRef, useState, type KeyboardEvent as ReactKeyboardEvent } from 'react';
import type { ActivationAnalysis } from '../api/types';
import { analysisCsv, analysisFileName, METRICS, metricRange, metricRowNames, type MetricSpec } from '../lib/analysis';
import { downloadText } from '../lib/download';
import { diverging, rgbString, textOn, viridis, type RGB } from '../lib/colors';
import { shortModelName } from '../lib/models';
import { formatToken } from '../lib/tokens';
import { useWidth } from '../hooks/useWidth';

interface Props {
  analysis: ActivationAnalysis | null | undefined;
  /** lens row names of the run */
  rowNames: string[];
  /** raw input tokens */
  tokens: string[] | null;
  modelName: string;
}

const NA_COLOR: RGB = [30, 41, 59];

export function formatMetric(v: number | null | undefined): string {
  if (v === null || v === undefined) return 'n/a';
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1e4 ? v.toFixed(0) : String(Number(v.toPrecision(4)));
}

function colorOf(spec: MetricSpec, v: number | null, min: number, max: number): RGB {
  if (v === null || !Number.isFinite(v)) return NA_COLOR;
  if (spec.kind === 'cos') return diverging(v);
  return viridis(max > min ? (v - min) / (max - min) : 0.5);
}

interface MatrixProps {
  spec: MetricSpec;
  matrix: (number | null)[][];
  rowNames: string[];
  /** display-formatted tokens */
  tokens: string[];
  maxWidth: number;
}

/** Cells above this count are drawn on a canvas. */
const DOM_CELLS = 2500;

export function MatrixHeatmap({ spec, matrix, rowNames, tokens, maxWidth }: MatrixProps) {
  const R = matrix.length;
  const T = matrix[0]?.length ?? 0;
  const { min, max } = useMemo(() => metricRange(matrix), [matrix]);
  const labelW = Math.min(120, 14 + 7 * rowNames.reduce((m, n) => Math.max(m, n.length), 4));
  const cellW = Math.max(3, Math.min(34, Math.floor((maxWidth - labelW - 4) / Math.max(1, T))));
  const cellH = R > 40 ? 10 : 18;
  const showCols = cellW >= 12;
  const headH = showCols ? 56 : 0;
  const colStep = Math.max(1, Math.ceil(14 / cellW));
  const useCanvas = R * T > DOM_CELLS;
  const W = labelW + T * cellW;
  const H = headH + R * cellH;
  const [cursor, setCursor] = useState<{ r: number; c: number; x?: number; y?: number } | null>(null);
  const bodyRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);

  useEffect(() => {
    if (!useCanvas) return;
    const canvas = canvasRef.current;
    const ctx = canvas?.getContext?.('2d');
    if (!canvas || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    const w = T * cellW;
    const h = R * cellH;
    canvas.width = Math.ceil(w * dpr);
    canvas.height = Math.ceil(h * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    for (let r = 0; r < R; r++) {
      for (let c = 0; c < T; c++) {
        ctx.fillStyle = rgbString(colorOf(spec, matrix[r][c] ?? null, min, max));
        ctx.fillRect(c * cellW, r * cellH, cellW, cellH);
      }
    }
  }, [useCanvas, matrix, spec, min, max, R, T, cellW, cellH]);

  const at = (clientX: number, clientY: number) => {
    const box = bodyRef.current?.getBoundingClientRect();
    if (!box) return null;
    const c = Math.floor((clientX - box.left - labelW) / cellW);
    const r = Math.floor((clientY - box.top - headH) / cellH);
    return r >= 0 && c >= 0 && r < R && c < T ? { r, c, x: clientX, y: clientY } : null;
  };

  const onKey = (e: ReactKeyboardEvent<HTMLDivElement>) => {
    let { r, c } = cursor ?? { r: 0, c: 0 };
    if (e.key === 'ArrowLeft') c = Math.max(0, c - 1);
    else if (e.key === 'ArrowRight') c = Math.min(T - 1, c + 1);
    else if (e.key === 'ArrowUp') r = Math.max(0, r - 1);
    else if (e.key === 'ArrowDown') r = Math.min(R - 1, r + 1);
    else if (e.key === 'Escape') return setCursor(null);
    else return;
    e.preventDefault();
    setCursor({ r, c });
  };

  const text = (r: number, c: number) => `${rowNames[r]} · pos ${c} ${tokens[c] ?? ''}: ${formatMetric(matrix[r]?.[c])}`;
  const gradient =
    spec.kind === 'cos'
      ? `linear-gradient(to right, ${[-1, -0.5, 0, 0.5, 1].map((t) => rgbString(diverging(t))).join(', ')})`
      : `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map((t) => rgbString(viridis(t))).join(', ')})`;
  const lo = spec.kind === 'cos' ? '−1' : formatMetric(min);
  const hi = spec.kind === 'cos' ? '1' : formatMetric(max);
  const tipPos = (cur: { r: number; c: number; x?: number; y?: number }) => {
    const box = bodyRef.current?.getBoundingClientRect();
    const x = cur.x ?? (box?.left ?? 0) + labelW + (cur.c + 1) * cellW;
    const y = cur.y ?? (box?.top ?? 0) + headH + (cur.r + 1) * cellH;
    return { left: Math.max(4, Math.min(x + 12, window.innerWidth - 300)), top: Math.min(y + 14, window.innerHeight - 40) };
  };

  return (
    <figure className="matrix-heatmap" data-testid={`analysis-${spec.key}`} style={{ maxWidth: '100%' }}>
      <figcaption className="heatmap-head">
        <span className="heatmap-title" title={spec.help}>
          {spec.title}
        </span>
        <span className="heatmap-scale" title={spec.kind === 'cos' ? 'Diverging scale from −1 (blue) through 0 to 1 (red)' : 'viridis from the smallest to the largest value'}>
          <span className="scale-bar" style={{ background: gradient }} />
          <span className="muted small">
            {lo} – {hi}
          </span>
        </span>
      </figcaption>
      <div
        ref={bodyRef}
        className="heatmap-body"
        tabIndex={0}
        role="img"
        aria-label={`${spec.title}: ${R} ${spec.axis === 'row' ? 'lens rows' : 'layers'} by ${T} positions, from ${lo} to ${hi}. Arrow keys read the values.`}
        onKeyDown={onKey}
        onBlur={() => setCursor(null)}
        onMouseMove={(e) => setCursor(at(e.clientX, e.clientY))}
        onMouseLeave={() => setCursor(null)}
        style={{ width: W, height: H, position: 'relative' }}
      >
        <div className="mx-grid" style={{ gridTemplateColumns: `${labelW}px ${T * cellW}px`, gridTemplateRows: `${headH}px ${R * cellH}px` }}>
          <div />
          <div className="mx-cols" style={{ gridTemplateColumns: `repeat(${T}, ${cellW}px)` }}>
            {showCols && tokens.map((t, c) => <span key={c} className="mx-col-label">{c % colStep === 0 ? t : ''}</span>)}
          </div>
          <div className="mx-rows" style={{ gridTemplateRows: `repeat(${R}, ${cellH}px)` }}>
            {rowNames.map((n, r) => (
              <span key={r} className="mx-row-label" style={{ fontSize: cellH < 14 ? 8 : 10 }}>
                {n}
              </span>
            ))}
          </div>
          {useCanvas ? (
            <canvas ref={canvasRef} style={{ width: T * cellW, height: R * cellH, display: 'block' }} />
          ) : (
            <div className="mx-cells" style={{ gridTemplateColumns: `repeat(${T}, ${cellW}px)`, gridTemplateRows: `repeat(${R}, ${cellH}px)` }}>
              {matrix.map((row, r) =>
                row.map((v, c) => {
                  const bg = colorOf(spec, v, min, max);
                  return (
                    <div
                      key={`${r}-${c}`}
                      className={`mx-cell${v === null ? ' is-na' : ''}`}
                      data-r={r}
                      data-c={c}
                      data-value={v === null ? '' : v}
                      title={text(r, c)}
                      style={{ background: rgbString(bg), color: textOn(bg) }}
                    />
                  );
                }),
              )}
            </div>
          )}
        </div>
        {cursor && (
          <div className="hm-cursor" aria-hidden="true" style={{ left: labelW + cursor.c * cellW, top: headH + cursor.r * cellH, width: cellW, height: cellH }} />
        )}
      </div>
      {cursor && (
        <div className="hm-tooltip" role="tooltip" data-testid="analysis-tooltip" style={tipPos(cursor)}>
          {spec.title}: {text(cursor.r, cursor.c)}
        </div>
      )}
    </figure>
  );
}

export function ActivationPanel({ analysis, rowNames, tokens, modelName }: Props) {
  const cardRef = useRef<HTMLElement>(null);
  const width = Math.max(280, useWidth(cardRef, 940));
  const T = analysis?.resid_norm[0]?.length ?? 0;
  const display = useMemo(() => Array.from({ length: T }, (_, i) => formatToken(tokens?.[i] ?? String(i))), [tokens, T]);
  const exportCsv = () => {
    if (!analysis) return;
    downloadText(analysisCsv(analysis, rowNames, tokens), analysisFileName(shortModelName(modelName), new Date()));
  };
  return (
    <section className="card analysis-card" aria-label="Activation analysis" ref={cardRef} data-testid="analysis-panel">
      <div className="section-head">
        <h2>Activation analysis</h2>
        {analysis && (
          <button type="button" className="btn btn-secondary btn-small" onClick={exportCsv}>
            Export CSV
          </button>
        )}
      </div>
      {!analysis ? (
        <p className="muted small">The server sent no activation analysis with this run.</p>
      ) : (
        <>
          <p className="muted small">
            Hover a cell, or focus a heatmap and use the arrow keys, to read its value. Norms are coloured from their smallest to their largest value;
            cosines from −1 (blue) to 1 (red).
          </p>
          <div className="analysis-grid">
            {METRICS.map((spec) => {
              const m = analysis[spec.key];
              if (!Array.isArray(m) || m.length === 0) return null;
              return <MatrixHeatmap key={spec.key} spec={spec} matrix={m} rowNames={metricRowNames(spec, m.length, rowNames)} tokens={display} maxWidth={width} />;
            })}
          </div>
        </>
      )}
    </section>
  );
}
