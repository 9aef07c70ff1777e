// A matrix of signed values drawn in SVG on the diverging colour scale, −max (blue) through 0 to
// max (red), and that scale's legend: patching's layer × position and attribution's layer × head.
// Both are <g> parts of a figure that draws its own title and tooltip, so that the figure exports
// as one standalone SVG (presentation attributes only). Hover a cell, or focus the matrix and use
// the arrow keys; the figure gets the cell under the cursor through `onActive`.
import type { KeyboardEvent as ReactKeyboardEvent, MouseEvent as ReactMouseEvent } from 'react';
import { diverging, rgbString, signedColor, textOn } from '../lib/colors';
import { formatTick, formatValue } from '../lib/chart';
import { CHART_COLORS } from './LensQualityChart';

export interface Cell {
  r: number;
  c: number;
}

export interface MatrixGeometry {
  x: number;
  y: number;
  /** Room for the row labels, left of the cells. */
  labelW: number;
  cellW: number;
  cellH: number;
}

interface Props extends MatrixGeometry {
  values: (number | null)[][];
  rowLabels: string[];
  colLabels: string[];
  /** The end of the colour scale (values beyond it take its ends). */
  max: number;
  active: Cell | null;
  onActive: (c: Cell | null) => void;
  /** A cell to outline (the most useful patch). */
  highlight?: Cell | null;
  /** What a screen reader says of the matrix. */
  label: string;
  testId?: string;
}

const LABEL_CHAR_W = 6;

/** The height of the column labels, written at −45° under the cells. */
export function colLabelsHeight(labels: string[]): number {
  const longest = labels.reduce((m, l) => Math.max(m, Array.from(l).length), 1);
  return Math.ceil(Math.min(110, 16 + longest * LABEL_CHAR_W * 0.72));
}

/** The row labels' width. */
export function rowLabelsWidth(labels: string[]): number {
  const longest = labels.reduce((m, l) => Math.max(m, l.length), 1);
  return Math.min(110, 12 + longest * LABEL_CHAR_W);
}

function truncate(s: string, n: number): string {
  const chars = Array.from(s);
  return chars.length > n ? `${chars.slice(0, n - 1).join('')}…` : s;
}

function cellOf(e: ReactMouseEvent<SVGGElement>): Cell | null {
  const el = (e.target as Element).closest?.('[data-r]');
  return el ? { r: Number(el.getAttribute('data-r')), c: Number(el.getAttribute('data-c')) } : null;
}

export function SignedMatrix({ x, y, labelW, cellW, cellH, values, rowLabels, colLabels, max, active, onActive, highlight, label, testId }: Props) {
  const R = values.length;
  const C = values[0]?.length ?? 0;
  const left = x + labelW;
  const bottom = y + R * cellH;
  const rowEvery = Math.max(1, Math.ceil(11 / cellH));
  const colEvery = Math.max(1, Math.ceil(11 / cellW));
  const showValues = cellW >= 40 && cellH >= 18;

  const onKey = (e: ReactKeyboardEvent<SVGGElement>) => {
    let { r, c } = active ?? { r: 0, c: 0 };
    if (e.key === 'ArrowLeft') c = Math.max(0, c - 1);
    else if (e.key === 'ArrowRight') c = Math.min(C - 1, c + 1);
    else if (e.key === 'ArrowUp') r = Math.max(0, r - 1);
    else if (e.key === 'ArrowDown') r = Math.min(R - 1, r + 1);
    else if (e.key === 'Escape') return onActive(null);
    else return;
    e.preventDefault();
    onActive({ r, c });
  };

  return (
    <g
      data-testid={testId}
      role="img"
      aria-label={`${label}. Arrow keys read the values.`}
      tabIndex={0}
      onKeyDown={onKey}
      onFocus={() => onActive(active ?? { r: 0, c: 0 })}
      onBlur={() => onActive(null)}
      onMouseMove={(e) => {
        const cell = cellOf(e);
        if (cell && (cell.r !== active?.r || cell.c !== active?.c)) onActive(cell);
      }}
      onMouseLeave={() => onActive(null)}
      style={{ outline: 'none' }}
    >
      {rowLabels.map((name, r) =>
        r % rowEvery === 0 || r === R - 1 ? (
          <text key={r} x={left - 6} y={y + r * cellH + cellH / 2 + 3.5} fill={CHART_COLORS.muted} fontSize={10} textAnchor="end">
            {name}
          </text>
        ) : null,
      )}
      {colLabels.map((name, c) => {
        if (c % colEvery !== 0 && c !== C - 1) return null;
        const cx = left + c * cellW + cellW / 2;
        return (
          <text key={c} x={cx} y={bottom + 12} fill={CHART_COLORS.muted} fontSize={10} textAnchor="end" transform={`rotate(-45 ${cx} ${bottom + 12})`}>
            {truncate(name, 16)}
          </text>
        );
      })}
      {values.map((row, r) =>
        row.map((v, c) => {
          const bg = signedColor(v, max);
          return (
            <g key={`${r}-${c}`}>
              <rect data-cell="" data-r={r} data-c={c} data-value={v ?? ''} x={left + c * cellW} y={y + r * cellH} width={cellW} height={cellH} fill={rgbString(bg)} stroke={CHART_COLORS.panel} strokeWidth={0.5} />
              {showValues && v !== null && (
                <text x={left + c * cellW + cellW / 2} y={y + r * cellH + cellH / 2 + 3.5} fill={textOn(bg)} fontSize={10} textAnchor="middle" pointerEvents="none">
                  {formatTick(Number(v.toPrecision(2)))}
                </text>
              )}
            </g>
          );
        }),
      )}
      {highlight && (
        <rect
          data-testid={testId ? `${testId}-best` : undefined}
          x={left + highlight.c * cellW + 1}
          y={y + highlight.r * cellH + 1}
          width={cellW - 2}
          height={cellH - 2}
          fill="none"
          stroke="#facc15"
          strokeWidth={2}
          pointerEvents="none"
        />
      )}
      {active && (
        <rect data-hover="" x={left + active.c * cellW} y={y + active.r * cellH} width={cellW} height={cellH} fill="none" stroke="#fff" strokeWidth={2} pointerEvents="none" />
      )}
    </g>
  );
}

/** The diverging scale from −max to max as a bar of `width`, with its ends and 0 written under it. */
export function DivergingLegend({ x, y, width, max, title }: { x: number; y: number; width: number; max: number; title: string }) {
  const steps = 40;
  const w = width / steps;
  return (
    <g data-testid="diverging-legend">
      <text x={x} y={y - 5} fill={CHART_COLORS.muted} fontSize={11}>
        {title}
      </text>
      {Array.from({ length: steps }, (_, i) => (
        <rect key={i} x={x + i * w} y={y} width={w + 0.5} height={10} fill={rgbString(diverging((2 * (i + 0.5)) / steps - 1))} />
      ))}
      {[-max, 0, max].map((v, i) => (
        <text key={i} x={x + (i * width) / 2} y={y + 23} fill={CHART_COLORS.muted} fontSize={10} textAnchor={i === 0 ? 'start' : i === 2 ? 'end' : 'middle'}>
          {v === 0 ? '0' : `${v < 0 ? '−' : ''}${formatValue(Math.abs(v))}`}
        </text>
      ))}
    </g>
  );
}
