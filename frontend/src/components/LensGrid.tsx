// The logit-lens grid: a column per input token, a row per lens state, each cell the top-1
// prediction shaded by its probability; hover or keyboard focus shows the top 5.
import { memo, useCallback, useEffect, useRef, useState, type KeyboardEvent as ReactKeyboardEvent } from 'react';
import type { LensRow } from '../api/types';
import { probColor, probToScale, rgbString, textOn, inferno } from '../lib/colors';
import { formatPercent, formatProb, formatToken } from '../lib/tokens';

interface GridProps {
  rows: LensRow[];
  tokens: string[] | null;
  compact: boolean;
}

interface TipState {
  r: number;
  c: number;
  rect: DOMRect;
}

const GridTable = memo(function GridTable({ rows, tokens, compact }: GridProps) {
  const T = rows[0]?.predictions.length ?? 0;
  const last = rows.length - 1;
  return (
    <table className={`lens-table${compact ? ' is-compact' : ''}`} aria-label="Logit lens: top-1 prediction per layer and position (arrow keys move between cells)">
      <thead>
        <tr>
          <th className="sticky-col corner" scope="col">
            <span className="muted small">Layer \ Position</span>
          </th>
          {Array.from({ length: T }, (_, i) => {
            const raw = tokens?.[i];
            return (
              <th key={i} scope="col" className="lens-col-head" data-col={i} title={raw !== undefined ? `Token ${i}: ${JSON.stringify(raw)}` : `Position ${i}`}>
                <span className="col-token">{raw !== undefined ? formatToken(raw) : ''}</span>
                <span className="col-pos">{i}</span>
              </th>
            );
          })}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, r) => (
          <tr key={r} className={`lens-row${r === last ? ' is-final' : ''}`} data-row-name={row.layer_name}>
            <th scope="row" className="sticky-col row-name">
              <span>{row.layer_name}</span>
              {r === last && (
                <span className="final-tag" title="The model's actual next-token prediction">
                  output
                </span>
              )}
            </th>
            {row.predictions.map((preds, c) => {
              const top = preds[0];
              const p = top?.prob ?? 0;
              const bg = probColor(p);
              return (
                <td key={c} className="lens-td">
                  <div
                    className="lens-cell"
                    tabIndex={r === 0 && c === 0 ? 0 : -1}
                    data-cell=""
                    data-r={r}
                    data-c={c}
                    data-prob={p}
                    aria-label={`${row.layer_name}, position ${c}: ${top ? formatToken(top.token) : 'none'} ${formatProb(p)}`}
                    style={{ background: rgbString(bg), color: textOn(bg) }}
                  >
                    <span className="cell-token">{top ? formatToken(top.token) : '—'}</span>
                    {!compact && <span className="cell-prob">{formatProb(p)}</span>}
                  </div>
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
});

function Tooltip({ row, pos, rect, token }: { row: LensRow; pos: number; rect: DOMRect; token: string | undefined }) {
  const W = 240;
  const H = 200;
  let top = rect.bottom + 6;
  if (top + H > window.innerHeight) top = Math.max(6, rect.top - H - 6);
  const left = Math.min(Math.max(rect.left + rect.width / 2, W / 2 + 10), window.innerWidth - W / 2 - 10);
  const preds = row.predictions[pos] ?? [];
  return (
    <div className="lens-tooltip" role="tooltip" data-testid="lens-tooltip" style={{ top, left, width: W }}>
      <div className="tooltip-head">
        {row.layer_name} · Pos {pos}
        {token !== undefined && <span className="tooltip-token"> {formatToken(token)}</span>}
      </div>
      <ol className="tooltip-list">
        {preds.map((p, i) => (
          <li key={i} className={i === 0 ? 'is-top' : ''}>
            <span className="tt-rank">{i + 1}.</span>
            <span className="tt-token mono" title={JSON.stringify(p.token)}>
              {formatToken(p.token)}
            </span>
            <span className="tt-bar" aria-hidden="true">
              <span style={{ width: `${Math.max(2, p.prob * 100)}%` }} />
            </span>
            <span className="tt-prob">{formatPercent(p.prob)}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}

export function ProbLegend() {
  const stops = Array.from({ length: 11 }, (_, i) => i / 10);
  const gradient = `linear-gradient(to right, ${stops.map((t) => rgbString(inferno(0.08 + 0.92 * t))).join(', ')})`;
  const ticks = [0, 0.01, 0.05, 0.25, 0.5, 1];
  return (
    <div className="legend" aria-label="Colour scale: top-1 probability">
      <span className="muted small">Top-1 probability</span>
      <div className="legend-bar-wrap">
        <div className="legend-bar" style={{ background: gradient }} />
        {ticks.map((t) => (
          <span key={t} className="legend-tick" style={{ left: `${probToScale(t) * 100}%` }}>
            {t}
          </span>
        ))}
      </div>
    </div>
  );
}

function cellOf(el: EventTarget | null): HTMLElement | null {
  return el instanceof HTMLElement ? el.closest<HTMLElement>('[data-cell]') : null;
}

export function LensGrid({ rows, tokens }: { rows: LensRow[]; tokens: string[] | null }) {
  const [tip, setTip] = useState<TipState | null>(null);
  const [compact, setCompact] = useState(false);
  const scrollRef = useRef<HTMLDivElement>(null);
  const T = rows[0]?.predictions.length ?? 0;

  const tipEl = useRef<HTMLElement | null>(null);

  const show = useCallback((el: HTMLElement | null) => {
    if (!el) return;
    tipEl.current = el;
    setTip({ r: Number(el.dataset.r), c: Number(el.dataset.c), rect: el.getBoundingClientRect() });
  }, []);

  const hide = useCallback(() => {
    tipEl.current = null;
    setTip(null);
  }, []);

  // Scrolling (the grid or the page) moves the cell: follow it, or hide when it leaves the view.
  const reposition = useCallback(() => {
    const el = tipEl.current;
    const box = scrollRef.current?.getBoundingClientRect();
    if (!el || !el.isConnected || !box) return hide();
    const rect = el.getBoundingClientRect();
    if (rect.right < box.left || rect.left > box.right || rect.bottom < box.top || rect.top > box.bottom) return hide();
    setTip((t) => (t ? { ...t, rect } : t));
  }, [hide]);

  useEffect(() => hide(), [rows, hide]);

  useEffect(() => {
    if (!tip) return;
    window.addEventListener('scroll', reposition, true);
    window.addEventListener('resize', reposition);
    return () => {
      window.removeEventListener('scroll', reposition, true);
      window.removeEventListener('resize', reposition);
    };
  }, [tip, reposition]);

  const onKeyDown = (e: ReactKeyboardEvent<HTMLDivElement>) => {
    const el = cellOf(e.target);
    if (!el) return;
    let r = Number(el.dataset.r);
    let c = Number(el.dataset.c);
    switch (e.key) {
      case 'ArrowLeft':
        c = Math.max(0, c - 1);
        break;
      case 'ArrowRight':
        c = Math.min(T - 1, c + 1);
        break;
      case 'ArrowUp':
        r = Math.max(0, r - 1);
        break;
      case 'ArrowDown':
        r = Math.min(rows.length - 1, r + 1);
        break;
      case 'Home':
        c = 0;
        break;
      case 'End':
        c = T - 1;
        break;
      case 'Escape':
        hide();
        return;
      default:
        return;
    }
    e.preventDefault();
    const next = scrollRef.current?.querySelector<HTMLElement>(`[data-cell][data-r="${r}"][data-c="${c}"]`);
    next?.focus();
  };

  return (
    <div className="lens-grid">
      <div className="lens-toolbar">
        <ProbLegend />
        <label className="check-row inline small">
          <input type="checkbox" checked={compact} onChange={(e) => setCompact(e.target.checked)} />
          <span>Compact cells</span>
        </label>
      </div>
      <div
        className="lens-scroll"
        ref={scrollRef}
        data-testid="lens-grid"
        onMouseOver={(e) => show(cellOf(e.target))}
        onMouseLeave={hide}
        onFocus={(e) => {
          const el = cellOf(e.target);
          if (!el) return;
          // Roving tab stop: the focused cell is the one Tab returns to.
          scrollRef.current?.querySelectorAll<HTMLElement>('[data-cell][tabindex="0"]').forEach((x) => {
            if (x !== el) x.tabIndex = -1;
          });
          el.tabIndex = 0;
          show(el);
        }}
        onBlur={(e) => {
          if (!cellOf(e.relatedTarget)) hide();
        }}
        onKeyDown={onKeyDown}
      >
        <GridTable rows={rows} tokens={tokens} compact={compact} />
      </div>
      {tip && rows[tip.r] && <Tooltip row={rows[tip.r]} pos={tip.c} rect={tip.rect} token={tokens?.[tip.c]} />}
    </div>
  );
}
