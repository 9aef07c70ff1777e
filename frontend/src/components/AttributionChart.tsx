// A direct logit attribution as one SVG figure: what each layer's attention and MLP add to the
// token's logit (bars up or down from 0, side by side per layer), and each head's part as a
// layer × head heatmap on the diverging scale. Values on hover and keyboard focus, in an HTML
// tooltip beside the figure; presentation attributes only, so that it exports as it is drawn.
import { useId, useState, type KeyboardEvent as ReactKeyboardEvent, type Ref } from 'react';
import type { Attribution } from '../api/types';
import { attnBias, headsMax } from '../lib/attribution';
import { formatTick, formatValue, labelEvery, linearAxis, textWidth } from '../lib/chart';
import { formatToken } from '../lib/tokens';
import { CHART_COLORS, ChartSvg } from './LensQualityChart';
import { colLabelsHeight, DivergingLegend, rowLabelsWidth, SignedMatrix, type Cell } from './SignedMatrix';

interface Props {
  a: Attribution;
  /** Width available for the figure. */
  width: number;
  svgRef?: Ref<SVGSVGElement>;
}

export const PART_COLORS = { attn: '#60a5fa', mlp: '#f59e0b' };

const PAD = 16;
const AXIS_W = 48;
const BARS_TOP = 74;
const BARS_H = 180;
const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

type Active = { kind: 'layer'; layer: number } | { kind: 'head'; cell: Cell };

function Tooltip({ a, active, at }: { a: Attribution; active: Active; at: { left: number; top: number } }) {
  if (active.kind === 'head') {
    const { r, c } = active.cell;
    return (
      <div className="eval-tooltip" role="tooltip" data-testid="attribution-tooltip" style={at}>
        <div className="eval-tooltip-head">
          Layer {r} · head {c}
        </div>
        <strong>{formatValue(a.heads[r][c])}</strong>
      </div>
    );
  }
  const l = active.layer;
  const bias = attnBias(a, l);
  return (
    <div className="eval-tooltip" role="tooltip" data-testid="attribution-tooltip" style={at}>
      <div className="eval-tooltip-head">Layer {l}</div>
      <ul>
        <li>
          <span className="eval-swatch" style={{ background: PART_COLORS.attn }} aria-hidden="true" />
          attention: <strong>{formatValue(a.attn[l])}</strong>
          {Math.abs(bias) > 1e-6 && <span className="muted"> (heads {formatValue(a.attn[l] - bias)}, bias {formatValue(bias)})</span>}
        </li>
        <li>
          <span className="eval-swatch" style={{ background: PART_COLORS.mlp }} aria-hidden="true" />
          MLP: <strong>{formatValue(a.mlp[l])}</strong>
        </li>
      </ul>
    </div>
  );
}

export function AttributionChart({ a, width, svgRef }: Props) {
  const [active, setActive] = useState<Active | null>(null);
  const titleId = useId();
  const L = a.attn.length;
  const H = a.heads[0]?.length ?? 0;
  const title = `Direct logit attribution · ${formatToken(a.token)} at position ${a.position} · logit ${formatValue(a.logit)}`;
  const subtitle = `embeddings ${formatValue(a.embed)} · rest ${formatValue(a.rest)} · per layer:`;
  // The key of the bars' colours, after the subtitle.
  const keyX = PAD + 10 + textWidth(subtitle, 11);
  const groupW = clamp((width - 2 * PAD - AXIS_W) / Math.max(1, L), 12, 64);
  const barW = Math.max(3, groupW * 0.36);
  const rowLabels = Array.from({ length: L }, (_, l) => `Layer ${l}`);
  const colLabels = Array.from({ length: H }, (_, h) => `head ${h}`);
  const labelW = rowLabelsWidth(rowLabels);
  const cellW = clamp(Math.floor((width - 2 * PAD - labelW) / Math.max(1, H)), 12, 44);
  const cellH = clamp(Math.floor(320 / Math.max(1, L)), 10, 22);
  const W = Math.max(360, 2 * PAD + AXIS_W + L * groupW, 2 * PAD + textWidth(title, 14), keyX + 190, 2 * PAD + labelW + H * cellW);
  const axis = linearAxis([...a.attn, ...a.mlp], [0]);
  const plotLeft = PAD + AXIS_W;
  const yOf = (v: number) => BARS_TOP + BARS_H * (1 - (axis.at(v) ?? 0));
  const zero = yOf(0);
  const every = labelEvery(L, groupW, 16);
  const headsTop = BARS_TOP + BARS_H + 58;
  const legendY = headsTop + L * cellH + colLabelsHeight(colLabels) + 22;
  const Htotal = legendY + 38;
  const max = headsMax(a);

  const onBarsKey = (e: ReactKeyboardEvent<SVGGElement>) => {
    let l = active?.kind === 'layer' ? active.layer : 0;
    if (e.key === 'ArrowLeft') l = Math.max(0, l - 1);
    else if (e.key === 'ArrowRight') l = Math.min(L - 1, l + 1);
    else if (e.key === 'Home') l = 0;
    else if (e.key === 'End') l = L - 1;
    else if (e.key === 'Escape') return setActive(null);
    else return;
    e.preventDefault();
    setActive({ kind: 'layer', layer: l });
  };

  const tipAt = !active
    ? null
    : active.kind === 'layer'
      ? { left: plotLeft + (active.layer + 1) * groupW + 6, top: BARS_TOP }
      : { left: PAD + labelW + (active.cell.c + 1) * cellW + 6, top: headsTop + active.cell.r * cellH };

  return (
    <div className="eval-figure" data-testid="attribution-figure">
      <ChartSvg svgRef={svgRef} width={W} height={Htotal} pad={PAD} titleId={titleId} title={title} subtitle={subtitle}>
        {(['attn', 'mlp'] as const).map((k, i) => (
          <g key={k}>
            <rect x={keyX + i * 90} y={33} width={10} height={10} fill={PART_COLORS[k]} />
            <text x={keyX + 15 + i * 90} y={42} fill={CHART_COLORS.text} fontSize={11}>
              {k === 'attn' ? 'attention' : 'MLP'}
            </text>
          </g>
        ))}
        <g
          data-testid="attribution-bars"
          role="img"
          aria-label={`What each of ${L} layers' attention and MLP add to the logit. Arrow keys read each layer.`}
          tabIndex={0}
          onKeyDown={onBarsKey}
          onFocus={() => setActive({ kind: 'layer', layer: active?.kind === 'layer' ? active.layer : 0 })}
          onBlur={() => setActive(null)}
          onMouseMove={(e) => {
            const el = (e.target as Element).closest?.('[data-layer]');
            const layer = el ? Number(el.getAttribute('data-layer')) : null;
            if (layer !== null && (active?.kind !== 'layer' || active.layer !== layer)) setActive({ kind: 'layer', layer });
          }}
          onMouseLeave={() => setActive(null)}
          style={{ outline: 'none' }}
        >
          {axis.ticks.map((t) => (
            <g key={t}>
              <line x1={plotLeft} x2={plotLeft + L * groupW} y1={yOf(t)} y2={yOf(t)} stroke={CHART_COLORS.grid} strokeWidth={t === 0 ? 1.5 : 1} />
              <text x={plotLeft - 6} y={yOf(t) + 3.5} fill={CHART_COLORS.muted} fontSize={10} textAnchor="end">
                {formatTick(t)}
              </text>
            </g>
          ))}
          {a.attn.map((_, l) => {
            const x = plotLeft + l * groupW;
            return (
              <g key={l} data-layer={l}>
                <rect x={x} y={BARS_TOP} width={groupW} height={BARS_H} fill="transparent" />
                {(['attn', 'mlp'] as const).map((k, i) => {
                  const v = a[k][l];
                  const y = yOf(v);
                  return (
                    <rect
                      key={k}
                      data-bar={k}
                      data-value={v}
                      x={x + groupW / 2 - barW + i * barW}
                      y={Math.min(y, zero)}
                      width={barW - 1}
                      height={Math.max(0.5, Math.abs(zero - y))}
                      fill={PART_COLORS[k]}
                    />
                  );
                })}
                {(l % every === 0 || l === L - 1) && (
                  <text x={x + groupW / 2} y={BARS_TOP + BARS_H + 14} fill={CHART_COLORS.muted} fontSize={10} textAnchor="middle">
                    {l}
                  </text>
                )}
              </g>
            );
          })}
          <text x={plotLeft} y={BARS_TOP + BARS_H + 30} fill={CHART_COLORS.muted} fontSize={11}>
            layer
          </text>
          {active?.kind === 'layer' && (
            <rect data-hover="" x={plotLeft + active.layer * groupW} y={BARS_TOP} width={groupW} height={BARS_H} fill="none" stroke={CHART_COLORS.muted} strokeDasharray="3 3" pointerEvents="none" />
          )}
        </g>
        <text x={PAD} y={headsTop - 10} fill={CHART_COLORS.text} fontSize={12} fontWeight={600}>
          Heads: each head’s part of its layer’s attention
        </text>
        <SignedMatrix
          x={PAD}
          y={headsTop}
          labelW={labelW}
          cellW={cellW}
          cellH={cellH}
          values={a.heads}
          rowLabels={rowLabels}
          colLabels={colLabels}
          max={max}
          active={active?.kind === 'head' ? active.cell : null}
          onActive={(cell) => setActive(cell && { kind: 'head', cell })}
          label={`Each head's part of the logit: ${L} layers by ${H} heads`}
          testId="attribution-heads"
        />
        <DivergingLegend x={PAD + labelW} y={legendY} width={Math.min(240, W - 2 * PAD - labelW)} max={max} title="head’s part of the logit" />
      </ChartSvg>
      {active && tipAt && <Tooltip a={a} active={active} at={tipAt} />}
    </div>
  );
}
