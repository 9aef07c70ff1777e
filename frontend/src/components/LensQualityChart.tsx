// The Lens quality figure: one SVG holding a title, a legend and four small line charts (KL to
// the output, cross-entropy, entropy, top-1 agreement) with the lens rows on x and a line per
// lens. Hover, or focus a chart and use the arrow keys, to read the values of a row. Drawn with
// presentation attributes only (no CSS classes), so the element exports as a standalone SVG.
import { useId, useState, type KeyboardEvent as ReactKeyboardEvent, type ReactNode, type Ref } from 'react';
import type { Lens } from '../api/types';
import { formatTick, formatValue, labelEvery, linearAxis, logAxis, type Axis } from '../lib/chart';
import { EVAL_METRICS, evalLines, type EvalData, type EvalLine, type EvalMetricSpec } from '../lib/lensEval';

/** The app's palette (styles.css), written out: the exported file has no stylesheet. */
export const CHART_COLORS = {
  background: '#1e293b',
  panel: '#172033',
  grid: '#334155',
  text: '#f8fafc',
  muted: '#94a3b8',
  lines: { logit: '#60a5fa', tuned: '#f59e0b', jacobian: '#34d399' } satisfies Record<Lens, string>,
};

/** The app's font stack, written out for the same reason. */
export const CHART_FONT = "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
const PAD = 16;
const GAP = 14;
const HEAD_H = 50;
const PANEL_H = 230;
// Room for the y tick labels on the left, and for half the last row's name on the right.
const M = { left: 50, right: 40, top: 34, bottom: 56 };

interface Props {
  data: EvalData;
  /** Width available for the figure. */
  width: number;
  /** KL on a log scale (the output row's 0 is then not drawn). */
  logKl: boolean;
  /** Each lens's name in the legend and tooltips ("logit lens", "tuned lens (llama)"). */
  lensNames: Record<Lens, string>;
  title: string;
  svgRef?: Ref<SVGSVGElement>;
}

/** Columns of charts for a width: four side by side when they have room, else two, else one. */
export function chartColumns(width: number): number {
  return width >= 1100 ? 4 : width >= 560 ? 2 : 1;
}

/** Where row `i` of `n` sits across a chart whose box starts at `x0` and is `w` wide. */
function rowX(i: number, n: number, x0: number, w: number): number {
  const plotW = Math.max(10, w - M.left - M.right);
  return x0 + M.left + (n <= 1 ? plotW / 2 : (i * plotW) / (n - 1));
}

function axisOf(spec: EvalMetricSpec, lines: EvalLine[], log: boolean): Axis {
  const values = lines.flatMap((l) => l.metrics[spec.key]);
  if (log) return logAxis(values);
  if (spec.percent) return linearAxis(values, [0, 1]);
  // KL is 0 at the output and is read against 0; cross-entropies and entropies sit far from 0, where
  // an axis from 0 would flatten the differences between the lenses.
  return linearAxis(values, spec.key === 'kl' ? [0] : []);
}

/** The path of a line through the drawable points, broken where a value cannot be drawn. */
function linePath(points: ({ x: number; y: number } | null)[]): string {
  let d = '';
  let pen = false;
  for (const p of points) {
    if (!p) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`;
    pen = true;
  }
  return d;
}

interface Hover {
  metric: EvalMetricSpec['key'];
  row: number;
}

interface PanelProps {
  spec: EvalMetricSpec;
  lines: EvalLine[];
  layers: string[];
  x0: number;
  y0: number;
  w: number;
  log: boolean;
  lensNames: Record<Lens, string>;
  hover: Hover | null;
  setHover: (h: Hover | null) => void;
}

function Panel({ spec, lines, layers, x0, y0, w, log, lensNames, hover, setHover }: PanelProps) {
  const n = layers.length;
  const axis = axisOf(spec, lines, log);
  const plotW = Math.max(10, w - M.left - M.right);
  const plotH = PANEL_H - M.top - M.bottom;
  const left = x0 + M.left;
  const top = y0 + M.top;
  const xOf = (i: number) => rowX(i, n, x0, w);
  const yOf = (t: number) => top + plotH * (1 - t);
  const spacing = n <= 1 ? plotW : plotW / (n - 1);
  const longest = layers.reduce((m, l) => Math.max(m, l.length), 1);
  // Labels lie flat when they fit side by side, else slant (and are thinned to fit slanted).
  const flat = longest * 6 <= spacing;
  const every = flat ? 1 : labelEvery(n, spacing, 13);
  const row = hover?.metric === spec.key ? hover.row : null;
  const unit = spec.percent ? '%' : `${spec.unit}${log ? ', log scale' : ''}`;
  const skipped = log && lines.some((l) => l.metrics[spec.key].some((v) => Number.isFinite(v) && v <= 0));

  const summary = lines
    .map((l) => {
      const vs = l.metrics[spec.key];
      return `${lensNames[l.lens]} from ${formatValue(vs[0], spec.percent)} at ${layers[0]} to ${formatValue(vs[n - 1], spec.percent)} at ${layers[n - 1]}`;
    })
    .join('; ');

  const rowAt = (clientX: number, target: SVGRectElement) => {
    const box = target.getBoundingClientRect();
    const scale = box.width > 0 ? plotW / box.width : 1;
    const x = (clientX - box.left) * scale;
    return Math.max(0, Math.min(n - 1, Math.round(n <= 1 ? 0 : (x / plotW) * (n - 1))));
  };

  const onKey = (e: ReactKeyboardEvent<SVGGElement>) => {
    let r = row ?? 0;
    if (e.key === 'ArrowLeft') r = Math.max(0, r - 1);
    else if (e.key === 'ArrowRight') r = Math.min(n - 1, r + 1);
    else if (e.key === 'Home') r = 0;
    else if (e.key === 'End') r = n - 1;
    else if (e.key === 'Escape') return setHover(null);
    else return;
    e.preventDefault();
    setHover({ metric: spec.key, row: r });
  };

  return (
    <g
      data-testid={`eval-chart-${spec.key}`}
      role="img"
      aria-label={`${spec.title} (${unit}) per row: ${summary}. Arrow keys read each row.`}
      tabIndex={0}
      onKeyDown={onKey}
      onFocus={() => setHover({ metric: spec.key, row: row ?? 0 })}
      onBlur={() => setHover(null)}
      style={{ outline: 'none' }}
    >
      <title>{spec.help}</title>
      <rect x={x0} y={y0} width={w} height={PANEL_H} rx={8} fill={CHART_COLORS.panel} stroke={row !== null ? '#3b82f6' : CHART_COLORS.grid} />
      <text x={x0 + 12} y={y0 + 20} fill={CHART_COLORS.text} fontSize={13} fontWeight={600}>
        {spec.title}
        <tspan fill={CHART_COLORS.muted} fontWeight={400} fontSize={11}>
          {`  ${unit}`}
        </tspan>
      </text>
      {axis.ticks.map((t) => {
        const at = axis.at(t);
        if (at === null || at < -1e-9 || at > 1 + 1e-9) return null;
        const y = yOf(at);
        return (
          <g key={t}>
            <line x1={left} x2={left + plotW} y1={y} y2={y} stroke={CHART_COLORS.grid} strokeWidth={1} />
            <text x={left - 6} y={y + 3.5} fill={CHART_COLORS.muted} fontSize={10} textAnchor="end">
              {formatTick(t, spec.percent)}
            </text>
          </g>
        );
      })}
      {layers.map((name, i) =>
        i % every === 0 || i === n - 1 ? (
          flat ? (
            <text key={i} x={xOf(i)} y={top + plotH + 16} fill={CHART_COLORS.muted} fontSize={10} textAnchor="middle">
              {name}
            </text>
          ) : (
            <text key={i} x={xOf(i)} y={top + plotH + 12} fill={CHART_COLORS.muted} fontSize={10} textAnchor="end" transform={`rotate(-40 ${xOf(i)} ${top + plotH + 12})`}>
              {name}
            </text>
          )
        ) : null,
      )}
      {skipped && (
        <text x={x0 + 12} y={y0 + PANEL_H - 8} fill={CHART_COLORS.muted} fontSize={10}>
          0 is not drawn on a log scale
        </text>
      )}
      {row !== null && <line data-hover="" x1={xOf(row)} x2={xOf(row)} y1={top} y2={top + plotH} stroke={CHART_COLORS.muted} strokeDasharray="3 3" />}
      {lines.map(({ lens, metrics }) => {
        const values = metrics[spec.key];
        const pts = values.map((v, i) => {
          const at = axis.at(v);
          return at === null ? null : { x: xOf(i), y: yOf(at) };
        });
        const color = CHART_COLORS.lines[lens];
        return (
          <g key={lens} data-lens={lens}>
            <path d={linePath(pts)} fill="none" stroke={color} strokeWidth={2} strokeLinejoin="round" strokeDasharray={DASHES[lens]} />
            {pts.map((p, i) => {
              if (!p) return null;
              const r = i === row ? 4.5 : 3;
              return <Marker key={i} lens={lens} x={p.x} y={p.y} r={r} fill={color} extra={{ 'data-point': '', 'data-row': i, 'data-value': values[i], stroke: CHART_COLORS.panel, strokeWidth: 1 }} />;
            })}
          </g>
        );
      })}
      <rect
        x={left - 8}
        y={top}
        width={plotW + 16}
        height={plotH}
        fill="transparent"
        onMouseMove={(e) => setHover({ metric: spec.key, row: rowAt(e.clientX, e.currentTarget) })}
        onMouseLeave={() => setHover(null)}
      />
    </g>
  );
}

/** Each lens's line: solid for the logit lens, dashed for the tuned lens, dotted for the Jacobian lens. */
const DASHES: Record<Lens, string | undefined> = { logit: undefined, tuned: '6 3', jacobian: '2 3' };

/**
 * A point of a lens's line: a circle for the logit lens, a square for the tuned lens, a diamond for
 * the Jacobian lens, so the lines are told apart without colour too.
 */
function Marker({ lens, x, y, r, fill, extra }: { lens: Lens; x: number; y: number; r: number; fill: string; extra?: Record<string, string | number> }) {
  if (lens === 'tuned') return <rect {...extra} x={x - r} y={y - r} width={2 * r} height={2 * r} fill={fill} />;
  if (lens === 'jacobian') {
    const d = r * 1.35;
    return <polygon {...extra} points={`${x},${y - d} ${x + d},${y} ${x},${y + d} ${x - d},${y}`} fill={fill} />;
  }
  return <circle {...extra} cx={x} cy={y} r={r} fill={fill} />;
}

interface TooltipProps {
  data: EvalData;
  lines: EvalLine[];
  hover: Hover;
  lensNames: Record<Lens, string>;
  /** The hovered row's place in the figure (CSS pixels: the SVG is drawn 1:1), and which side of it the box goes. */
  at: { x: number; y: number; right: boolean };
}

function Tooltip({ data, lines, hover, lensNames, at }: TooltipProps) {
  const spec = EVAL_METRICS.find((m) => m.key === hover.metric)!;
  const style = at.right ? { left: at.x + 12, top: at.y } : { left: at.x - 12, top: at.y, transform: 'translateX(-100%)' };
  return (
    <div className="eval-tooltip" role="tooltip" data-testid="eval-tooltip" style={style}>
      <div className="eval-tooltip-head">
        {spec.title} · {data.layers[hover.row]}
      </div>
      <ul>
        {lines.map((l) => (
          <li key={l.lens}>
            <span className="eval-swatch" style={{ background: CHART_COLORS.lines[l.lens] }} aria-hidden="true" />
            {lensNames[l.lens]}: <strong>{formatValue(l.metrics[hover.metric][hover.row], spec.percent)}</strong>
            {!spec.percent && spec.unit ? ` ${spec.unit}` : ''}
          </li>
        ))}
      </ul>
    </div>
  );
}

/**
 * The frame every chart of the app draws in: an SVG of `width` x `height` on the chart background,
 * titled (and subtitled) at the top left, the title naming the figure for assistive technology.
 */
export function ChartSvg(props: {
  svgRef?: Ref<SVGSVGElement>;
  width: number;
  height: number;
  pad: number;
  titleId: string;
  title: ReactNode;
  subtitle?: ReactNode;
  children: ReactNode;
}) {
  const { svgRef, width: W, height: H, pad, titleId, title, subtitle, children } = props;
  return (
    <svg ref={svgRef} xmlns="http://www.w3.org/2000/svg" width={W} height={H} viewBox={`0 0 ${W} ${H}`} fontFamily={CHART_FONT} aria-labelledby={titleId} role="group">
      <rect x={0} y={0} width={W} height={H} rx={10} fill={CHART_COLORS.background} />
      <text id={titleId} x={pad} y={22} fill={CHART_COLORS.text} fontSize={14} fontWeight={650}>
        {title}
      </text>
      {subtitle !== undefined && (
        <text x={pad} y={42} fill={CHART_COLORS.muted} fontSize={11}>
          {subtitle}
        </text>
      )}
      {children}
    </svg>
  );
}

export function LensQualityChart({ data, width, logKl, lensNames, title, svgRef }: Props) {
  const [hover, setHover] = useState<Hover | null>(null);
  const titleId = useId();
  const lines = evalLines(data);
  const cols = chartColumns(width);
  const rows = Math.ceil(EVAL_METRICS.length / cols);
  const W = Math.max(280, Math.floor(width));
  const panelW = (W - 2 * PAD - (cols - 1) * GAP) / cols;
  const H = HEAD_H + rows * PANEL_H + (rows - 1) * GAP + PAD;
  const boxOf = (i: number) => ({ x0: PAD + (i % cols) * (panelW + GAP), y0: HEAD_H + Math.floor(i / cols) * (PANEL_H + GAP) });
  const hoverAt = (() => {
    if (!hover) return null;
    const { x0, y0 } = boxOf(EVAL_METRICS.findIndex((m) => m.key === hover.metric));
    const x = rowX(hover.row, data.layers.length, x0, panelW);
    return { x, y: y0 + M.top, right: x < x0 + panelW / 2 };
  })();
  let legendX = PAD;
  return (
    <div className="eval-figure" data-testid="eval-figure" onMouseLeave={() => setHover(null)}>
      <ChartSvg svgRef={svgRef} width={W} height={H} pad={PAD} titleId={titleId} title={title}>
        <g data-testid="eval-legend">
          {lines.map((l) => {
            const x = legendX;
            legendX += 40 + lensNames[l.lens].length * 7;
            const color = CHART_COLORS.lines[l.lens];
            return (
              <g key={l.lens} data-lens={l.lens}>
                <line x1={x} x2={x + 24} y1={38} y2={38} stroke={color} strokeWidth={2} strokeDasharray={DASHES[l.lens]} />
                <Marker lens={l.lens} x={x + 12} y={38} r={3} fill={color} />
                <text x={x + 30} y={42} fill={CHART_COLORS.text} fontSize={12}>
                  {lensNames[l.lens]}
                </text>
              </g>
            );
          })}
        </g>
        {EVAL_METRICS.map((spec, i) => {
          const { x0, y0 } = boxOf(i);
          return (
            <Panel
              key={spec.key}
              spec={spec}
              lines={lines}
              layers={data.layers}
              x0={x0}
              y0={y0}
              w={panelW}
              log={logKl && !!spec.log}
              lensNames={lensNames}
              hover={hover}
              setHover={setHover}
            />
          );
        })}
      </ChartSvg>
      {hover && hoverAt && <Tooltip data={data} lines={lines} hover={hover} lensNames={lensNames} at={hoverAt} />}
    </div>
  );
}
