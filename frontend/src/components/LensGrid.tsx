// The logit-lens grid: a column per input token, a row per lens state, each cell coloured by the
// top-1 probability (or a tracked token's probability, or the entropy, or in the diff view by what
// the interventions took from the baseline's top-1); hover or keyboard focus shows the details.
// Where the page can attribute a token, a click on a cell (or Enter) offers Attribute for its top-1,
// and with a Jacobian lens attached, that token's lens vector.
// A generation's grid marks the positions the model wrote (from `promptTokens` on), and while it
// is written, the token chosen last heads a column whose cells have not come yet.
import { memo, useCallback, useEffect, useId, useMemo, useRef, useState, type KeyboardEvent as ReactKeyboardEvent, type RefObject } from 'react';
import type { LensRow, SaeReadout } from '../api/types';
import type { AttributionTarget } from '../lib/attribution';
import { deltaToScale, diverging, inferno, probToScale, rgbString, textOn, viridis } from '../lib/colors';
import {
  colorModeOptions,
  diffTokens,
  formatDelta,
  formatNats,
  formatRank,
  gridCells,
  hasDiff,
  resolveColorMode,
  trackedTokens,
  type CellSpec,
  type ColorMode,
  type GridData,
  type GridView,
  type LegendSpec,
} from '../lib/colorModes';
import { gridStep } from '../lib/gridNav';
import { formatPercent, formatProb, formatToken } from '../lib/tokens';
import { formatAct, placeSaeRows, readoutMax, saeCellColor, saeCellLabel, saeTooltipLines, topFeature } from '../lib/sae';

interface GridProps {
  rows: LensRow[];
  /** The rows a Jacobian lens transported (by name), marked J at their heads. */
  transported: ReadonlySet<string>;
  tokens: string[] | null;
  compact: boolean;
  cells: CellSpec[][];
  view: GridView;
  label: string;
  promptTokens: number | null;
  pendingToken: string | null;
  /** The SAEs' readouts, each a row after the lens row it reads. */
  sae: readonly SaeReadout[];
}

interface TipState {
  r: number;
  c: number;
  rect: DOMRect;
  /** An SAE row's cell: the SAE's name (r is then -1). */
  sae?: string;
}

/** An SAE's row: its top feature at each position, shaded by its activation ÷ the row's largest. */
function SaeRow({ s, T, tokens, promptTokens, pending }: { s: SaeReadout; T: number; tokens: string[] | null; promptTokens: number | null; pending: boolean }) {
  const max = readoutMax(s);
  return (
    <tr className="sae-row" data-sae={s.name}>
      <th scope="row" className="sticky-col row-name sae-row-name" title={`${s.name} reads ${s.hook} (${s.architecture}, ${s.d_sae} features): the strongest feature at each position`}>
        <span>{s.name}</span>
        <span className="sae-tag">SAE</span>
      </th>
      {Array.from({ length: T }, (_, c) => {
        const p = s.positions[c];
        const top = topFeature(p);
        const bg = saeCellColor(top?.act ?? 0, max);
        return (
          <td key={c} className={`lens-td sae-td${writtenClass(c, promptTokens)}`}>
            {p && (
              <div
                className="lens-cell sae-cell"
                tabIndex={c === 0 ? 0 : -1}
                data-sae-cell=""
                data-sae={s.name}
                data-c={c}
                data-feature={top?.id}
                data-act={top?.act ?? 0}
                aria-label={saeCellLabel(s, c, tokens?.[c])}
                style={{ background: rgbString(bg), color: textOn(bg) }}
              >
                <span className="cell-token">{top ? `#${top.id}` : '–'}</span>
                <span className="cell-prob">{top ? formatAct(top.act) : `L0 ${p.l0}`}</span>
              </div>
            )}
          </td>
        );
      })}
      {pending && <td className={`lens-td is-pending${writtenClass(T, promptTokens)}`} />}
    </tr>
  );
}

/** The classes that set written positions apart, and the line where writing starts. */
function writtenClass(i: number, promptTokens: number | null): string {
  if (promptTokens === null || i < promptTokens) return '';
  return i === promptTokens ? ' is-written is-boundary' : ' is-written';
}

const GridTable = memo(function GridTable({ rows, transported, tokens, compact, cells, view, label, promptTokens, pendingToken, sae }: GridProps) {
  const T = rows[0]?.predictions.length ?? 0;
  const last = rows.length - 1;
  const pending = pendingToken !== null;
  const placed = useMemo(() => placeSaeRows(rows, sae), [rows, sae]);
  const saeRows = (list: readonly SaeReadout[] | undefined) =>
    (list ?? []).map((s) => <SaeRow key={`sae:${s.name}`} s={s} T={T} tokens={tokens} promptTokens={promptTokens} pending={pending} />);
  return (
    <table className={`lens-table${compact ? ' is-compact' : ''}`} aria-label={label} data-view={view}>
      <thead>
        <tr>
          <th className="sticky-col corner" scope="col">
            <span className="muted small">Layer \ Position</span>
          </th>
          {Array.from({ length: T }, (_, i) => {
            const raw = tokens?.[i];
            const written = promptTokens !== null && i >= promptTokens;
            return (
              <th
                key={i}
                scope="col"
                className={`lens-col-head${writtenClass(i, promptTokens)}`}
                data-col={i}
                data-written={written ? '1' : undefined}
                title={raw !== undefined ? `Token ${i}${written ? ', written by the model' : ''}: ${JSON.stringify(raw)}` : `Position ${i}`}
              >
                <span className="col-token">{raw !== undefined ? formatToken(raw) : ''}</span>
                <span className="col-pos">{i}</span>
              </th>
            );
          })}
          {pending && (
            <th
              scope="col"
              className={`lens-col-head is-pending${writtenClass(T, promptTokens)}`}
              data-col={T}
              data-written="1"
              data-pending="1"
              title={`Token ${T}, just written by the model: its column comes with the next step: ${JSON.stringify(pendingToken)}`}
            >
              <span className="col-token">{formatToken(pendingToken)}</span>
              <span className="col-pos">{T}</span>
            </th>
          )}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, r) => [
          <tr key={r} className={`lens-row${r === last ? ' is-final' : ''}`} data-row-name={row.layer_name} data-transported={transported.has(row.layer_name) ? '1' : undefined}>
            <th scope="row" className="sticky-col row-name">
              <span>{row.layer_name}</span>
              {transported.has(row.layer_name) && (
                <span className="transported-tag" title="Transported by the Jacobian lens’s matrix for this layer, then read through the model’s head">
                  J
                </span>
              )}
              {r === last && (
                <span className="final-tag" title="The model's actual next-token prediction">
                  output
                </span>
              )}
            </th>
            {row.predictions.map((preds, c) => {
              const cell = cells[r]?.[c];
              const cls = `lens-td${writtenClass(c, promptTokens)}`;
              if (!cell) return <td key={c} className={cls} />;
              return (
                <td key={c} className={cls}>
                  <div
                    className={`lens-cell${cell.flip ? ' is-flip' : ''}`}
                    tabIndex={r === 0 && c === 0 ? 0 : -1}
                    data-cell=""
                    data-r={r}
                    data-c={c}
                    data-prob={preds[0]?.prob ?? 0}
                    data-value={cell.value}
                    data-flip={cell.flip ? '1' : undefined}
                    data-rank={cell.rank}
                    aria-label={cell.label}
                    style={{ background: rgbString(cell.bg), color: textOn(cell.bg) }}
                  >
                    <span className="cell-token">{cell.main}</span>
                    {!compact && <span className="cell-prob">{cell.sub}</span>}
                  </div>
                </td>
              );
            })}
            {pending && <td className={`lens-td is-pending${writtenClass(T, promptTokens)}`} />}
          </tr>,
          ...saeRows(placed.after.get(r)),
        ])}
        {saeRows(placed.unplaced)}
      </tbody>
    </table>
  );
});

/** A cell's top predictions, each with its probability as a bar and a percentage. */
export function TopList({ preds }: { preds: LensRow['predictions'][number] }) {
  return (
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
  );
}

function Tooltip({ data, view, r, pos, rect, token }: { data: GridData; view: GridView; r: number; pos: number; rect: DOMRect; token: string | undefined }) {
  const row = data.rows[r];
  const preds = row.predictions[pos] ?? [];
  const d = view === 'diff' ? data.diff?.[r]?.[pos] : undefined;
  const tracked = trackedTokens(data.tracked)
    .map((t) => ({ t, v: data.tracked?.[r]?.[pos]?.[t.index] }))
    .filter((x) => x.v !== undefined);
  const h = data.entropy?.[r]?.[pos];
  const W = d ? 280 : 250;
  // The height is estimated to place the box above the cell when it would not fit below.
  const H = 70 + 20 * preds.length + (d ? 100 : 0) + (tracked.length ? 24 + 19 * tracked.length : 0) + (h !== undefined ? 22 : 0);
  let top = rect.bottom + 6;
  if (top + H > window.innerHeight) top = Math.max(6, rect.top - H - 6);
  const left = Math.min(Math.max(rect.left + rect.width / 2, W / 2 + 10), window.innerWidth - W / 2 - 10);
  const names = d ? diffTokens(data, r, pos) : null;
  return (
    <div className="lens-tooltip" role="tooltip" data-testid="lens-tooltip" style={{ top, left, width: W }}>
      <div className="tooltip-head">
        {row.layer_name} · Pos {pos}
        {token !== undefined && <span className="tooltip-token"> {formatToken(token)}</span>}
      </div>
      {d && names && (
        <dl className="tooltip-diff" data-testid="diff-details">
          <dt>Baseline top-1</dt>
          <dd>
            <span className="mono tt-chip">{formatToken(names.baseline)}</span> {formatProb(d.baseline_prob)} → {formatProb(d.prob)}{' '}
            <span className={d.delta_prob < 0 ? 'tt-loss' : d.delta_prob > 0 ? 'tt-gain' : ''}>(Δ {formatDelta(d.delta_prob)})</span>
          </dd>
          <dt>Now top-1</dt>
          <dd>
            <span className="mono tt-chip">{formatToken(names.now)}</span>
            {d.top_id !== d.baseline_id ? <strong className="tt-flip"> ⇄ changed</strong> : <span className="muted"> (same)</span>}
          </dd>
          <dt>Baseline top-1 rank</dt>
          <dd>{d.rank === 0 ? '#1 (still top)' : formatRank(d.rank)}</dd>
          <dt>KL(baseline ‖ now)</dt>
          <dd>{d.kl.toFixed(4)} nats</dd>
        </dl>
      )}
      <TopList preds={preds} />
      {tracked.length > 0 && (
        <div className="tooltip-tracked">
          <div className="tooltip-sub">Tracked tokens</div>
          <ul>
            {tracked.map(({ t, v }) => (
              <li key={t.id}>
                <span className="mono tt-token" title={JSON.stringify(t.token)}>
                  {formatToken(t.token)}
                </span>
                <span className="tt-prob">{formatPercent(v!.prob)}</span>
                <span className="tt-rank-num">rank {formatRank(v!.rank)}</span>
              </li>
            ))}
          </ul>
        </div>
      )}
      {h !== undefined && h !== null && <div className="tooltip-entropy">Entropy: {formatNats(h)} nats</div>}
    </div>
  );
}

/** An SAE cell's details: every feature listed with its activation, L0 and the reconstruction error. */
function SaeTooltip({ s, pos, rect, token }: { s: SaeReadout; pos: number; rect: DOMRect; token: string | undefined }) {
  const p = s.positions[pos];
  if (!p) return null;
  const lines = saeTooltipLines(p);
  const W = 250;
  const H = 90 + 19 * Math.ceil(lines.features.length / 2);
  let top = rect.bottom + 6;
  if (top + H > window.innerHeight) top = Math.max(6, rect.top - H - 6);
  const left = Math.min(Math.max(rect.left + rect.width / 2, W / 2 + 10), window.innerWidth - W / 2 - 10);
  return (
    <div className="lens-tooltip sae-tooltip" role="tooltip" data-testid="sae-tooltip" style={{ top, left, width: W }}>
      <div className="tooltip-head">
        {s.name} · Pos {pos}
        {token !== undefined && <span className="tooltip-token"> {formatToken(token)}</span>}
      </div>
      <div className="tooltip-sub">{s.hook}</div>
      {lines.features.length > 0 ? (
        <ul className="sae-tooltip-features" data-testid="sae-tooltip-features">
          {lines.features.map((f) => (
            <li key={f} className="mono">
              {f}
            </li>
          ))}
        </ul>
      ) : (
        <div className="muted small">No feature active</div>
      )}
      <div className="tooltip-entropy" data-testid="sae-tooltip-stats">
        {lines.l0} · {lines.recon}
      </div>
    </div>
  );
}

/** What a clicked SAE cell offers for its top feature: its card, and the SAE intervention form filled with it. */
export interface SaeFeatureTarget {
  sae: string;
  feature: number;
  position: number;
}

function SaeCellMenu({
  s,
  pos,
  rect,
  onFeatureCard,
  onUseFeature,
  onClose,
  boxRef,
}: {
  s: SaeReadout;
  pos: number;
  rect: DOMRect;
  onFeatureCard?: (t: SaeFeatureTarget) => void;
  onUseFeature?: (t: SaeFeatureTarget) => void;
  onClose: () => void;
  boxRef: RefObject<HTMLDivElement | null>;
}) {
  const top = topFeature(s.positions[pos]);
  if (!top) return null;
  const t = { sae: s.name, feature: top.id, position: pos };
  const W = 260;
  const H = 110;
  const left = Math.min(Math.max(rect.left, 10), window.innerWidth - W - 10);
  let y = rect.bottom + 6;
  if (y + H > window.innerHeight) y = Math.max(6, rect.top - H);
  return (
    <div
      ref={boxRef}
      className="cell-menu"
      role="menu"
      aria-label={`${s.name} · Pos ${pos}`}
      data-testid="sae-cell-menu"
      style={{ top: y, left, width: W }}
      onKeyDown={(e) => {
        if (e.key === 'Escape') onClose();
      }}
    >
      {onFeatureCard && (
        <button
          type="button"
          role="menuitem"
          className="btn btn-small btn-secondary"
          autoFocus
          title="What the feature promotes and suppresses, its activation over this run, and where it fires in a corpus"
          onClick={() => {
            onFeatureCard(t);
            onClose();
          }}
        >
          Feature card
        </button>
      )}
      {onUseFeature && (
        <button
          type="button"
          role="menuitem"
          className="btn btn-small btn-secondary"
          autoFocus={!onFeatureCard}
          title="Fill the SAE intervention form with this SAE and feature"
          onClick={() => {
            onUseFeature(t);
            onClose();
          }}
        >
          Use #{top.id} in the SAE intervention form
        </button>
      )}
      <span className="muted small">
        #{top.id} of {s.name}, {formatAct(top.act)} at position {pos}
      </span>
    </div>
  );
}

/** What a clicked cell offers for its top-1 token: Attribute it at its position, read its lens vector. */
interface CellMenuProps {
  row: LensRow;
  pos: number;
  rect: DOMRect;
  reason: string | null;
  onAttribute?: (t: AttributionTarget) => void;
  onLensVector?: (t: { tokenId: number; token: string }) => void;
  onClose: () => void;
  boxRef: RefObject<HTMLDivElement | null>;
}

function CellMenu({ row, pos, rect, reason, onAttribute, onLensVector, onClose, boxRef }: CellMenuProps) {
  const top1 = row.predictions[pos]?.[0];
  if (!top1) return null;
  const W = 240;
  const H = (onAttribute ? 90 : 0) + (onLensVector ? 80 : 0);
  const left = Math.min(Math.max(rect.left, 10), window.innerWidth - W - 10);
  let top = rect.bottom + 6;
  if (top + H > window.innerHeight) top = Math.max(6, rect.top - H);
  return (
    <div
      ref={boxRef}
      className="cell-menu"
      role="menu"
      aria-label={`${row.layer_name} · Pos ${pos}`}
      data-testid="cell-menu"
      style={{ top, left, width: W }}
      onKeyDown={(e) => {
        if (e.key === 'Escape') onClose();
      }}
    >
      {onAttribute && (
        <>
          <button
            type="button"
            role="menuitem"
            className="btn btn-small btn-secondary"
            autoFocus
            disabled={!!reason}
            title="How much each layer's attention and MLP, and each head, write to this token's logit at this position (direct logit attribution)"
            onClick={() => {
              onAttribute({ tokenId: top1.id, token: top1.token, position: pos, rowName: row.layer_name });
              onClose();
            }}
          >
            Attribute <span className="mono">{formatToken(top1.token)}</span>
          </button>
          <span className="muted small">{reason ?? `its logit at position ${pos}, layer by layer`}</span>
        </>
      )}
      {onLensVector && (
        <>
          <button
            type="button"
            role="menuitem"
            className="btn btn-small btn-secondary"
            autoFocus={!onAttribute}
            title="What this token's direction in the Jacobian lens says at each layer it covers, read back through the model's head"
            onClick={() => {
              onLensVector({ tokenId: top1.id, token: top1.token });
              onClose();
            }}
          >
            Lens vector of <span className="mono">{formatToken(top1.token)}</span>
          </button>
          <span className="muted small">its Jacobian-lens direction, layer by layer</span>
        </>
      )}
    </div>
  );
}

function ScaleBar({ title, gradient, ticks, note }: { title: string; gradient: string; ticks: { at: number; text: string }[]; note?: string }) {
  return (
    <div className="legend" role="img" aria-label={`Colour scale: ${title}${note ? `; ${note}` : ''}; from ${ticks[0]?.text} to ${ticks[ticks.length - 1]?.text}`}>
      <span className="muted small legend-title">{title}</span>
      <div className="legend-bar-wrap">
        <div className="legend-bar" style={{ background: gradient }} />
        {ticks.map((t) => (
          <span key={t.text} className="legend-tick" style={{ left: `${t.at * 100}%` }}>
            {t.text}
          </span>
        ))}
      </div>
      {note && <span className="muted small legend-note">{note}</span>}
    </div>
  );
}

export function ProbLegend({ label = 'Top-1 probability' }: { label?: string }) {
  const stops = Array.from({ length: 11 }, (_, i) => i / 10);
  const gradient = `linear-gradient(to right, ${stops.map((t) => rgbString(inferno(0.08 + 0.92 * t))).join(', ')})`;
  const ticks = [0, 0.01, 0.05, 0.25, 0.5, 1].map((t) => ({ at: probToScale(t), text: String(t) }));
  return <ScaleBar title={label} gradient={gradient} ticks={ticks} />;
}

export function EntropyLegend({ max }: { max: number }) {
  const gradient = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map((t) => rgbString(viridis(t))).join(', ')})`;
  const ticks = [0, 0.5, 1].map((t) => ({ at: t, text: formatNats(max * t).replace(/\.00$/, '') }));
  return <ScaleBar title="Entropy (nats)" gradient={gradient} ticks={ticks} note="purple = confident, yellow = spread out" />;
}

/**
 * The Δ scale from −max to max, and the outline of a cell whose top-1 changed; the run comparison
 * says what its Δ is and what its outline marks.
 */
export function DiffLegend({
  max,
  title = 'Δ p(baseline top-1)',
  note = 'blue = lost, red = gained',
  flip = 'top-1 changed',
  testId = 'diff-legend',
}: {
  max: number;
  title?: string;
  note?: string;
  flip?: string;
  testId?: string;
}) {
  const stops = Array.from({ length: 21 }, (_, i) => i / 10 - 1);
  const gradient = `linear-gradient(to right, ${stops.map((t) => rgbString(diverging(t))).join(', ')})`;
  const ticks = [-max, -max / 4, 0, max / 4, max].map((v) => ({ at: (deltaToScale(v, max) + 1) / 2, text: v === 0 ? '0' : formatDelta(v) }));
  return (
    <div className="legend-group" data-testid={testId}>
      <ScaleBar title={title} gradient={gradient} ticks={ticks} note={note} />
      <span className="legend-flip small">
        <span className="flip-swatch" aria-hidden="true" /> ⇄ {flip}
      </span>
    </div>
  );
}

function Legend({ spec }: { spec: LegendSpec }) {
  if (spec.kind === 'diff') return <DiffLegend max={spec.max} />;
  if (spec.kind === 'entropy') return <EntropyLegend max={spec.max} />;
  return <ProbLegend label={spec.label} />;
}

function cellOf(el: EventTarget | null): HTMLElement | null {
  return el instanceof HTMLElement ? el.closest<HTMLElement>('[data-cell]') : null;
}

/** A lens cell or an SAE row's cell. */
function anyCellOf(el: EventTarget | null): HTMLElement | null {
  return el instanceof HTMLElement ? el.closest<HTMLElement>('[data-cell],[data-sae-cell]') : null;
}

const EMPTY_SAE: readonly SaeReadout[] = [];

/** A name inside a quoted attribute selector. */
function attrValue(v: string): string {
  return v.replace(/["\\]/g, '\\$&');
}

interface LensGridProps extends GridData {
  tokens: string[] | null;
  /** The view shown first when there is a diff (the session comparison opens on it). */
  defaultView?: GridView;
  /** Name of the diff view's toggle. */
  diffLabel?: string;
  /** Which lens drew the rows, in words ("logit lens", "tuned lens (llama)"): said beside the legend. */
  lens?: string;
  /**
   * A Jacobian lens's grid: the rows it transported (the others are read as the logit lens reads
   * them), marked at their heads and named beside the legend; null otherwise.
   */
  transported?: readonly string[] | null;
  testId?: string;
  /** Offers Attribute on a clicked cell: the direct logit attribution of its top-1 token at its position. */
  onAttribute?: (t: AttributionTarget) => void;
  /** Why Attribute cannot run now, or null. */
  attributeDisabledReason?: string | null;
  /** Offers a clicked cell's top-1 token's lens vector (with a Jacobian lens attached). */
  onLensVector?: (t: { tokenId: number; token: string }) => void;
  /** A generation's: the prompt's token count (later positions were written by the model). */
  promptTokens?: number | null;
  /** While a generation is written: the token chosen last, before its column comes. */
  pendingToken?: string | null;
  /** What the attached SAEs read (the run's `sae`): a row each, after the lens row it reads. */
  sae?: readonly SaeReadout[] | null;
  /** Offers an SAE cell's top feature's card. */
  onSaeFeature?: (t: SaeFeatureTarget) => void;
  /** Offers to fill the SAE intervention form with an SAE cell's top feature. */
  onUseSaeFeature?: (t: SaeFeatureTarget) => void;
}

export function LensGrid({
  rows,
  tokens,
  baselineRows,
  diff,
  tracked,
  entropy,
  defaultView = 'normal',
  diffLabel = 'Diff vs baseline',
  lens = 'logit lens',
  transported = null,
  testId = 'lens-grid',
  onAttribute,
  attributeDisabledReason = null,
  onLensVector,
  promptTokens = null,
  pendingToken = null,
  sae = null,
  onSaeFeature,
  onUseSaeFeature,
}: LensGridProps) {
  const readouts = sae ?? EMPTY_SAE;
  const [tip, setTip] = useState<TipState | null>(null);
  // The menu belongs to the rows it was opened on: other rows close it.
  const [menuState, setMenu] = useState<(TipState & { rows: LensRow[] }) | null>(null);
  const menu = menuState?.rows === rows ? menuState : null;
  const menuOpen = menu !== null;
  const menuRef = useRef<HTMLDivElement>(null);
  const [compact, setCompact] = useState(false);
  const [viewState, setView] = useState<GridView>(defaultView);
  const [modeState, setMode] = useState<ColorMode>('top1');
  const scrollRef = useRef<HTMLDivElement>(null);
  const T = rows[0]?.predictions.length ?? 0;
  const uid = useId();

  const data = useMemo<GridData>(() => ({ rows, baselineRows, diff, tracked, entropy }), [rows, baselineRows, diff, tracked, entropy]);
  const diffAvailable = hasDiff(data);
  const view: GridView = diffAvailable ? viewState : 'normal';
  // A choice the data cannot show (a token no longer tracked) falls back without being forgotten.
  const mode = resolveColorMode(modeState, data);
  const modeOptions = useMemo(() => colorModeOptions(data), [data]);
  const { cells, legend } = useMemo(() => gridCells(data, view, mode), [data, view, mode]);
  const lensTitle = lens.charAt(0).toUpperCase() + lens.slice(1);
  // A set whose identity follows the names, so the memoized table re-renders only when they change.
  const transportedKey = transported ? transported.join('\n') : null;
  const transportedSet = useMemo(() => new Set(transportedKey ? transportedKey.split('\n') : []), [transportedKey]);
  const tableLabel =
    view === 'diff'
      ? `${lensTitle} diff: each cell coloured by the change of the baseline top-1 probability (arrow keys move between cells)`
      : `${lensTitle}: top-1 prediction per layer and position (arrow keys move between cells)`;

  const tipEl = useRef<HTMLElement | null>(null);
  const show = useCallback((el: HTMLElement | null) => {
    if (!el) return;
    tipEl.current = el;
    if (el.dataset.sae !== undefined) setTip({ r: -1, c: Number(el.dataset.c), rect: el.getBoundingClientRect(), sae: el.dataset.sae });
    else setTip({ r: Number(el.dataset.r), c: Number(el.dataset.c), rect: el.getBoundingClientRect() });
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
    if (rect.bottom < 0 || rect.top > window.innerHeight) return hide();
    setTip((t) => (t ? { ...t, rect } : t));
  }, [hide]);

  useEffect(() => hide(), [rows, hide]);

  // While a generation is written, its newest column is the one to watch.
  useEffect(() => {
    const el = scrollRef.current;
    if (pendingToken !== null && el) el.scrollLeft = el.scrollWidth;
  }, [pendingToken, T]);

  const hasActions = !!onAttribute || !!onLensVector;
  const hasSaeActions = !!onSaeFeature || !!onUseSaeFeature;
  const menuCellSelector = (m: TipState) => (m.sae !== undefined ? `[data-sae-cell][data-sae="${attrValue(m.sae)}"][data-c="${m.c}"]` : `[data-cell][data-r="${m.r}"][data-c="${m.c}"]`);
  const openMenu = (el: HTMLElement | null) => {
    if (!el) return;
    if (el.dataset.sae !== undefined) {
      if (hasSaeActions) setMenu({ r: -1, c: Number(el.dataset.c), rect: el.getBoundingClientRect(), rows, sae: el.dataset.sae });
    } else if (hasActions) setMenu({ r: Number(el.dataset.r), c: Number(el.dataset.c), rect: el.getBoundingClientRect(), rows });
  };
  const closeMenu = () => {
    // Back to the cell, where the keyboard was.
    if (menu) scrollRef.current?.querySelector<HTMLElement>(menuCellSelector(menu))?.focus();
    setMenu(null);
  };

  // The menu goes with a click elsewhere, and follows its cell when something scrolls.
  useEffect(() => {
    if (!menuOpen) return;
    const away = (e: Event) => {
      if (!(e.target instanceof Node) || !menuRef.current?.contains(e.target)) setMenu(null);
    };
    const scrolled = () =>
      setMenu((m) => {
        const el = m && scrollRef.current?.querySelector<HTMLElement>(menuCellSelector(m));
        return m && el ? { ...m, rect: el.getBoundingClientRect() } : null;
      });
    document.addEventListener('mousedown', away);
    window.addEventListener('scroll', scrolled, true);
    return () => {
      document.removeEventListener('mousedown', away);
      window.removeEventListener('scroll', scrolled, true);
    };
  }, [menuOpen]);

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
    const saeEl = anyCellOf(e.target);
    if (saeEl && saeEl.dataset.sae !== undefined) {
      // An SAE row: left and right along it, Enter for its menu.
      let c = Number(saeEl.dataset.c);
      if (e.key === 'Escape') return hide();
      if (e.key === 'Enter') return openMenu(saeEl);
      if (e.key === 'ArrowLeft') c = Math.max(0, c - 1);
      else if (e.key === 'ArrowRight') c = Math.min(T - 1, c + 1);
      else return;
      e.preventDefault();
      scrollRef.current?.querySelector<HTMLElement>(`[data-sae-cell][data-sae="${attrValue(saeEl.dataset.sae)}"][data-c="${c}"]`)?.focus();
      return;
    }
    const el = cellOf(e.target);
    if (!el) return;
    if (e.key === 'Escape') return hide();
    if (e.key === 'Enter') return openMenu(el);
    const step = gridStep(e.key, Number(el.dataset.r), Number(el.dataset.c), rows.length, T);
    if (!step) return;
    const [r, c] = step;
    e.preventDefault();
    const next = scrollRef.current?.querySelector<HTMLElement>(`[data-cell][data-r="${r}"][data-c="${c}"]`);
    next?.focus();
  };

  return (
    <div className="lens-grid">
      <div className="lens-toolbar">
        <div className="lens-toolbar-left">
          <span className="grid-lens small" data-testid="grid-lens" title="Which lens turned each state into the predictions of its row">
            Drawn by the <strong>{lens}</strong>
          </span>
          {transported && (
            <span className="legend-transported small" data-testid="transported-legend">
              <span className="transported-tag" aria-hidden="true">
                J
              </span>{' '}
              {transported.length > 0
                ? `transported by its matrices: ${transported.join(', ')}; the other rows read as the logit lens reads them`
                : 'no row transported: every row read as the logit lens reads it'}
            </span>
          )}
          <Legend spec={legend} />
          {readouts.length > 0 && (
            <span className="legend-sae small" data-testid="sae-legend">
              <span className="sae-tag">SAE</span> rows: each position’s strongest feature #id and its activation, lighter the nearer the row’s largest
            </span>
          )}
          {promptTokens !== null && (promptTokens < T || pendingToken !== null) && (
            <span className="legend-written small" data-testid="written-legend">
              <span className="written-swatch" aria-hidden="true" /> written by the model (from position {promptTokens})
            </span>
          )}
        </div>
        <div className="lens-toolbar-right">
          {diffAvailable && (
            <div className="segmented" role="radiogroup" aria-label="Grid view">
              {(['normal', 'diff'] as const).map((v) => (
                <label key={v} className={`segmented-item${view === v ? ' is-active' : ''}`}>
                  <input type="radio" name={`${uid}-view`} value={v} checked={view === v} onChange={() => setView(v)} />
                  <span>{v === 'normal' ? 'Normal' : diffLabel}</span>
                </label>
              ))}
            </div>
          )}
          {view === 'normal' && modeOptions.length > 1 && (
            <label className="field field-inline">
              <span>Colour by</span>
              <select aria-label="Grid colour mode" value={mode} onChange={(e) => setMode(e.target.value as ColorMode)}>
                {modeOptions.map((o) => (
                  <option key={o.value} value={o.value}>
                    {o.label}
                  </option>
                ))}
              </select>
            </label>
          )}
          <label className="check-row inline small">
            <input type="checkbox" checked={compact} onChange={(e) => setCompact(e.target.checked)} />
            <span>Compact cells</span>
          </label>
        </div>
      </div>
      <div
        className={`lens-scroll${hasActions ? ' has-actions' : ''}${hasSaeActions ? ' has-sae-actions' : ''}`}
        ref={scrollRef}
        data-testid={testId}
        onMouseOver={(e) => show(anyCellOf(e.target))}
        onClick={(e) => openMenu(anyCellOf(e.target))}
        onMouseLeave={hide}
        onFocus={(e) => {
          const el = anyCellOf(e.target);
          if (!el) return;
          if (el.dataset.sae !== undefined) return show(el);
          // Roving tab stop: the focused cell is the one Tab returns to.
          scrollRef.current?.querySelectorAll<HTMLElement>('[data-cell][tabindex="0"]').forEach((x) => {
            if (x !== el) x.tabIndex = -1;
          });
          el.tabIndex = 0;
          show(el);
        }}
        onBlur={(e) => {
          if (!anyCellOf(e.relatedTarget)) hide();
        }}
        onKeyDown={onKeyDown}
      >
        <GridTable rows={rows} transported={transportedSet} tokens={tokens} compact={compact} cells={cells} view={view} label={tableLabel} promptTokens={promptTokens} pendingToken={pendingToken} sae={readouts} />
      </div>
      {tip && !menu && tip.sae !== undefined && (() => {
        const s = readouts.find((x) => x.name === tip.sae);
        return s ? <SaeTooltip s={s} pos={tip.c} rect={tip.rect} token={tokens?.[tip.c]} /> : null;
      })()}
      {tip && !menu && tip.sae === undefined && rows[tip.r] && <Tooltip data={data} view={view} r={tip.r} pos={tip.c} rect={tip.rect} token={tokens?.[tip.c]} />}
      {menu && menu.sae !== undefined && (() => {
        const s = readouts.find((x) => x.name === menu.sae);
        return s ? <SaeCellMenu s={s} pos={menu.c} rect={menu.rect} onFeatureCard={onSaeFeature} onUseFeature={onUseSaeFeature} onClose={closeMenu} boxRef={menuRef} /> : null;
      })()}
      {menu && menu.sae === undefined && hasActions && rows[menu.r] && (
        <CellMenu
          row={rows[menu.r]}
          pos={menu.c}
          rect={menu.rect}
          reason={attributeDisabledReason}
          onAttribute={onAttribute}
          onLensVector={onLensVector}
          onClose={closeMenu}
          boxRef={menuRef}
        />
      )}
    </div>
  );
}
