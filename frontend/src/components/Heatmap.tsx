// One attention heatmap (rows = queries, columns = keys). Small matrices are DOM cells with their
// values; large ones are drawn on a canvas with thinned-out labels. Both have a hover/keyboard
// tooltip "Query i 'tok' → Key j 'tok': 0.1234" and outline + hatch entries that the run's
// attention interventions blocked.
import { useEffect, useMemo, useRef, useState, type KeyboardEvent as ReactKeyboardEvent } from 'react';
import { attentionColor, rgbString, textOn, viridis } from '../lib/colors';
import { scaleMaxOf } from '../lib/attention';

interface HeatmapProps {
  matrix: Float32Array;
  T: number;
  /** display-formatted tokens */
  tokens: string[];
  title: string;
  /** width available for the whole heatmap, labels included */
  maxWidth: number;
  small?: boolean;
  /** per entry: at how many of `maskLayers` layers it is blocked (0 = not blocked) */
  mask?: Uint8Array | null;
  /** how many layers the heatmap aggregates (1 for a single layer or head) */
  maskLayers?: number;
  onSave?: () => void;
  saving?: boolean;
  testId?: string;
  /** colour gamma: 1 linear, 0.5 square root */
  gamma?: number;
  /** makes the title a button (e.g. open this panel large) */
  onOpen?: () => void;
}

const BLOCK_COLOR = '#fb7185';

function truncate(s: string, n: number): string {
  const chars = Array.from(s);
  return chars.length > n ? `${chars.slice(0, n - 1).join('')}…` : s;
}

export function tooltipText(q: number, k: number, tokens: string[], v: number, blockedAt: number, layers = 1): string {
  const base = `Query ${q} '${tokens[q] ?? ''}' → Key ${k} '${tokens[k] ?? ''}': ${v.toFixed(4)}`;
  if (blockedAt > 0) return layers > 1 ? `${base} (blocked at ${blockedAt} of ${layers} layers)` : `${base} (blocked)`;
  if (k > q) return `${base} (future position: masked by causality)`;
  return base;
}

export function Heatmap({ matrix, T, tokens, title, maxWidth, small, mask, maskLayers = 1, onSave, saving, testId, gamma = 1, onOpen }: HeatmapProps) {
  const scaleMax = useMemo(() => scaleMaxOf(matrix, T) || 1, [matrix, T]);
  const showLabels = !small || T <= 32;
  const labelChars = small ? 7 : 10;
  const longest = useMemo(() => tokens.reduce((m, t) => Math.max(m, Math.min(Array.from(t).length, labelChars)), 1), [tokens, labelChars]);
  const charW = small ? 5.6 : 6.2;
  const labelW = showLabels ? Math.ceil(Math.max(24, Math.min(small ? 56 : 84, 10 + longest * charW))) : 0;
  const headH = showLabels ? Math.ceil(Math.max(18, Math.min(small ? 46 : 70, 8 + longest * charW))) : 0;
  const maxCell = small ? 20 : 40;
  const fit = (maxWidth - labelW - 4) / Math.max(1, T);
  const domCell = Math.min(maxCell, Math.floor(fit));
  const useCanvas = T > 40 || domCell < 12;
  // Canvas cells may be fractional (1.5 px thumbnails in grids); DOM cells are whole pixels.
  const cell = useCanvas ? Math.max(small ? 1 : 3, Math.min(maxCell, fit)) : domCell;
  const step = Math.max(1, Math.ceil(11 / cell));
  const showValues = !useCanvas && cell >= 30;

  const [cursor, setCursor] = useState<{ q: number; k: number } | null>(null);
  const [hoverPos, setHoverPos] = useState<{ x: number; y: number } | null>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const wrapRef = useRef<HTMLDivElement>(null);

  const W = Math.ceil(labelW + T * cell);
  const H = Math.ceil(headH + T * cell);

  useEffect(() => {
    if (!useCanvas) return;
    const canvas = canvasRef.current;
    const ctx = canvas?.getContext?.('2d');
    if (!canvas || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.ceil(W * dpr);
    canvas.height = Math.ceil(H * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    for (let q = 0; q < T; q++) {
      for (let k = 0; k < T; k++) {
        const v = matrix[q * T + k];
        if (k > q) {
          ctx.fillStyle = '#111a2e';
        } else {
          ctx.fillStyle = rgbString(attentionColor(v, scaleMax, gamma));
        }
        // Whole-pixel edges, so fractional cells leave no seams.
        const x0 = Math.floor(labelW + k * cell);
        const y0 = Math.floor(headH + q * cell);
        ctx.fillRect(x0, y0, Math.floor(labelW + (k + 1) * cell) - x0, Math.floor(headH + (q + 1) * cell) - y0);
      }
    }
    if (mask) {
      ctx.strokeStyle = BLOCK_COLOR;
      ctx.lineWidth = Math.max(1, Math.min(2, cell / 6));
      for (let q = 0; q < T; q++) {
        for (let k = 0; k < T; k++) {
          if (!mask[q * T + k]) continue;
          const x = labelW + k * cell;
          const y = headH + q * cell;
          ctx.strokeRect(x + 0.5, y + 0.5, Math.max(1, cell - 1), Math.max(1, cell - 1));
          ctx.beginPath();
          ctx.moveTo(x, y + cell);
          ctx.lineTo(x + cell, y);
          ctx.stroke();
        }
      }
    }
    if (showLabels) {
      ctx.fillStyle = '#94a3b8';
      ctx.font = `${small ? 9 : 10}px ui-monospace, SFMono-Regular, Menlo, monospace`;
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'right';
      for (let i = 0; i < T; i += step) {
        ctx.fillText(truncate(tokens[i] ?? '', labelChars), labelW - 4, headH + i * cell + cell / 2);
      }
      ctx.save();
      ctx.textAlign = 'left';
      for (let i = 0; i < T; i += step) {
        ctx.save();
        ctx.translate(labelW + i * cell + cell / 2, headH - 4);
        ctx.rotate(-Math.PI / 2);
        ctx.fillText(truncate(tokens[i] ?? '', labelChars), 0, 0);
        ctx.restore();
      }
      ctx.restore();
    }
  }, [useCanvas, matrix, T, cell, labelW, headH, W, H, mask, scaleMax, showLabels, step, tokens, small, labelChars, gamma]);

  const cellAt = (clientX: number, clientY: number): { q: number; k: number } | null => {
    const el = useCanvas ? canvasRef.current : wrapRef.current?.querySelector('.hm-grid');
    if (!el) return null;
    const r = el.getBoundingClientRect();
    const k = Math.floor((clientX - r.left - labelW) / cell);
    const q = Math.floor((clientY - r.top - headH) / cell);
    if (q < 0 || k < 0 || q >= T || k >= T) return null;
    return { q, k };
  };

  const onKey = (e: ReactKeyboardEvent<HTMLDivElement>) => {
    const c = cursor ?? { q: 0, k: 0 };
    let { q, k } = c;
    switch (e.key) {
      case 'ArrowLeft':
        k = Math.max(0, k - 1);
        break;
      case 'ArrowRight':
        k = Math.min(T - 1, k + 1);
        break;
      case 'ArrowUp':
        q = Math.max(0, q - 1);
        break;
      case 'ArrowDown':
        q = Math.min(T - 1, q + 1);
        break;
      case 'Escape':
        setCursor(null);
        return;
      default:
        return;
    }
    e.preventDefault();
    setHoverPos(null);
    setCursor({ q, k });
  };

  const active = cursor;
  const tooltipPos = (c: { q: number; k: number }) => {
    let x: number;
    let y: number;
    if (hoverPos) {
      x = hoverPos.x + 14;
      y = hoverPos.y + 16;
    } else {
      const r = wrapRef.current?.getBoundingClientRect();
      x = (r?.left ?? 0) + labelW + (c.k + 1) * cell + 4;
      y = (r?.top ?? 0) + headH + (c.q + 1) * cell + 4;
    }
    return { left: Math.max(4, Math.min(x, window.innerWidth - 340)), top: Math.min(y, window.innerHeight - 40) };
  };
  const activeText = active ? tooltipText(active.q, active.k, tokens, matrix[active.q * T + active.k], mask?.[active.q * T + active.k] ?? 0, maskLayers) : '';
  const blockedCount = useMemo(() => (mask ? mask.reduce((n, x) => n + (x > 0 ? 1 : 0), 0) : 0), [mask]);

  return (
    <figure
      className={`heatmap${small ? ' heatmap-small' : ''}`}
      data-testid={testId}
      data-title={title}
      style={{ width: Math.max(W, small ? 210 : 360) + 22 }}
    >
      <figcaption className="heatmap-head">
        {onOpen ? (
          <button type="button" className="heatmap-title link-btn" onClick={onOpen} title="Open this one large">
            {title} ↗
          </button>
        ) : (
          <span className="heatmap-title">{title}</span>
        )}
        <span className="heatmap-scale" title="Colour scale of this heatmap: viridis from 0 to its largest value outside row 0 (the first token can only attend to itself)">
          <span className="scale-bar" style={{ background: `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map((t) => rgbString(viridis(t))).join(',')})` }} />
          {gamma !== 1 && <span className="muted small">√</span>}
          <span className="muted small">0–{scaleMax.toFixed(2)}</span>
        </span>
        {blockedCount > 0 && (
          <span className="blocked-legend small" title="Entries blocked by the attention interventions of this run">
            <span className="blocked-swatch" />
            {small ? '' : ' blocked'}
          </span>
        )}
        {onSave && (
          <button type="button" className="btn btn-small save-btn" onClick={onSave} disabled={saving} title="Render this heatmap to a PNG on the server" aria-label={`Save ${title} as PNG`}>
            {saving ? 'Saving…' : small ? 'Save' : 'Save PNG'}
          </button>
        )}
      </figcaption>
      <div
        ref={wrapRef}
        className="heatmap-body"
        tabIndex={0}
        role="img"
        aria-label={`${title}: attention of ${T} query tokens (rows) to ${T} key tokens (columns). Arrow keys read the values.`}
        aria-describedby={undefined}
        onKeyDown={onKey}
        onBlur={() => setCursor(null)}
        onMouseMove={(e) => {
          const c = cellAt(e.clientX, e.clientY);
          setCursor(c);
          setHoverPos(c ? { x: e.clientX, y: e.clientY } : null);
        }}
        onMouseLeave={() => {
          setCursor(null);
          setHoverPos(null);
        }}
        style={{ width: W, height: H }}
      >
        {useCanvas ? (
          <canvas ref={canvasRef} className="hm-canvas" style={{ width: W, height: H }} data-testid={testId ? `${testId}-canvas` : undefined} />
        ) : (
          <div
            className="hm-grid"
            style={{
              gridTemplateColumns: `${labelW}px repeat(${T}, ${cell}px)`,
              gridTemplateRows: `${headH}px repeat(${T}, ${cell}px)`,
            }}
          >
            <div className="hm-corner" />
            {Array.from({ length: T }, (_, k) => (
              <div key={`c${k}`} className="hm-col-label" title={`Key ${k}: ${tokens[k] ?? ''}`}>
                {showLabels && k % step === 0 ? truncate(tokens[k] ?? '', labelChars) : ''}
              </div>
            ))}
            {Array.from({ length: T }, (_, q) => [
              <div key={`r${q}`} className="hm-row-label" title={`Query ${q}: ${tokens[q] ?? ''}`}>
                {showLabels && q % step === 0 ? truncate(tokens[q] ?? '', labelChars) : ''}
              </div>,
              ...Array.from({ length: T }, (_, k) => {
                const v = matrix[q * T + k];
                const blockedAt = mask?.[q * T + k] ?? 0;
                const blocked = blockedAt > 0;
                const future = k > q;
                const bg = attentionColor(v, scaleMax, gamma);
                return (
                  <div
                    key={`${q}-${k}`}
                    className={`hm-cell${blocked ? ' hm-blocked' : ''}${future ? ' hm-future' : ''}`}
                    data-q={q}
                    data-k={k}
                    data-value={v}
                    title={tooltipText(q, k, tokens, v, blockedAt, maskLayers)}
                    style={future ? undefined : { background: rgbString(bg), color: textOn(bg) }}
                  >
                    {showValues && !future ? v.toFixed(2) : ''}
                  </div>
                );
              }),
            ])}
          </div>
        )}
        {active && (
          <div
            className="hm-cursor"
            aria-hidden="true"
            style={{ left: labelW + active.k * cell, top: headH + active.q * cell, width: cell, height: cell }}
          />
        )}
      </div>
      {active && (
        <div className="hm-tooltip" role="tooltip" data-testid="heatmap-tooltip" style={tooltipPos(active)}>
          {activeText}
        </div>
      )}
    </figure>
  );
}
