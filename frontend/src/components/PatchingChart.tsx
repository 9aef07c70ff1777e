// A patching sweep as one SVG figure: a layer × position heatmap of the metric (normalized, or
// raw) on the diverging scale around 0, the positions labelled with their tokens (clean/corrupted
// where the texts differ), the most useful patch outlined, and the scale's legend. Values on hover
// and keyboard focus, in an HTML tooltip beside the figure.
import { useId, useState, type Ref } from 'react';
import type { PatchResponse } from '../api/types';
import { formatValue, textWidth } from '../lib/chart';
import { bestCell, columnLabel, columnTokens, metricLabel, PATCH_HOOKS, scaleMax, type PatchScale } from '../lib/patch';
import { formatToken } from '../lib/tokens';
import { ChartSvg } from './LensQualityChart';
import { colLabelsHeight, DivergingLegend, rowLabelsWidth, SignedMatrix, type Cell } from './SignedMatrix';

interface Props {
  res: PatchResponse;
  scale: PatchScale;
  /** Width available for the figure. */
  width: number;
  svgRef?: Ref<SVGSVGElement>;
}

const PAD = 16;
const TOP = 62;
const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

function Tooltip({ res, cell, at }: { res: PatchResponse; cell: Cell; at: { left: number; top: number } }) {
  const { pos, clean, corrupted } = columnTokens(res, cell.c);
  const n = res.normalized[cell.r]?.[cell.c];
  return (
    <div className="eval-tooltip" role="tooltip" data-testid="patch-tooltip" style={at}>
      <div className="eval-tooltip-head">
        Layer {cell.r} · position {pos}
      </div>
      <ul>
        <li>
          {clean === corrupted ? (
            <>
              token <span className="mono">{formatToken(clean)}</span>
            </>
          ) : (
            <>
              clean <span className="mono">{formatToken(clean)}</span>, corrupted <span className="mono">{formatToken(corrupted)}</span>
            </>
          )}
        </li>
        <li>
          value <strong data-testid="patch-tooltip-value">{formatValue(res.values[cell.r][cell.c])}</strong>
        </li>
        <li>
          normalized <strong data-testid="patch-tooltip-normalized">{n === null || n === undefined ? 'n/a (clean = corrupted)' : formatValue(n)}</strong>
        </li>
      </ul>
    </div>
  );
}

export function PatchingChart({ res, scale, width, svgRef }: Props) {
  const [active, setActive] = useState<Cell | null>(null);
  const titleId = useId();
  const L = res.values.length;
  const P = res.positions.length;
  const rowLabels = Array.from({ length: L }, (_, l) => `Layer ${l}`);
  const colLabels = res.positions.map((_, j) => `${res.positions[j]} ${columnLabel(res, j)}`);
  const labelW = rowLabelsWidth(rowLabels);
  const cellW = clamp(Math.floor((width - 2 * PAD - labelW) / Math.max(1, P)), 12, 56);
  const cellH = clamp(Math.floor(440 / Math.max(1, L)), 12, 26);
  const colH = colLabelsHeight(colLabels);
  const legendY = TOP + L * cellH + colH + 22;
  const hook = PATCH_HOOKS.find((h) => h.value === res.hook)?.label ?? res.hook;
  const title = `Activation patching · ${hook} · ${metricLabel(res.metric)}`;
  const subtitle = `clean ${formatValue(res.clean)} · corrupted ${formatValue(res.corrupted)} · ${scale === 'normalized' ? 'normalized (patched − corrupted) / (clean − corrupted)' : 'raw metric'} · x: position, token (clean/corrupted)`;
  const W = Math.max(360, Math.ceil(2 * PAD + labelW + P * cellW), 2 * PAD + textWidth(title, 14), 2 * PAD + textWidth(subtitle, 11));
  const H = legendY + 38;
  const values = scale === 'normalized' ? res.normalized : res.values;
  const max = scaleMax(res, scale);
  const legendTitle = scale === 'normalized' ? 'normalized: 0 = corrupted, 1 = clean restored' : metricLabel(res.metric);
  const best = bestCell(res.normalized);
  const tipAt = active && { left: PAD + labelW + (active.c + 1) * cellW + 6, top: TOP + active.r * cellH };

  return (
    <div className="eval-figure" data-testid="patch-figure">
      <ChartSvg svgRef={svgRef} width={W} height={H} pad={PAD} titleId={titleId} title={title} subtitle={subtitle}>
        <SignedMatrix
          x={PAD}
          y={TOP}
          labelW={labelW}
          cellW={cellW}
          cellH={cellH}
          values={values}
          rowLabels={rowLabels}
          colLabels={colLabels}
          max={max}
          active={active}
          onActive={setActive}
          highlight={best && { r: best.layer, c: best.col }}
          label={`Patching ${scale === 'normalized' ? 'effect, normalized' : 'metric'}: ${L} layers by ${P} positions`}
          testId="patch-heatmap"
        />
        <DivergingLegend x={PAD + labelW} y={legendY} width={Math.min(240, W - 2 * PAD - labelW)} max={max} title={legendTitle} />
      </ChartSvg>
      {active && tipAt && <Tooltip res={res} cell={active} at={tipAt} />}
    </div>
  );
}
