// Two runs of the history overlaid: in each cell A's top-1 and B's, and B's top-1 probability minus
// A's, coloured on the diff view's diverging scale. What only one run has is shown as that run's
// alone (hatched), and what does not compare is said above the grid (lib/runCompare.ts).
import { useEffect, useMemo, useRef, useState, type KeyboardEvent as ReactKeyboardEvent } from 'react';
import type { RunComparePair, RunHistoryEntry } from '../hooks/useRunHistory';
import { deltaColor, NO_VALUE_COLOR, rgbString, textOn } from '../lib/colors';
import { formatDelta, formatRank } from '../lib/colorModes';
import { gridStep } from '../lib/gridNav';
import { compareRuns, type CompareCell, type CompareColumn, type CrossRank, type RunComparison } from '../lib/runCompare';
import { promptLine, runFacts } from '../lib/runHistory';
import { formatClock } from '../lib/time';
import { formatProb, formatToken } from '../lib/tokens';
import { DiffLegend, TopList } from './LensGrid';

function Side({ letter, entry }: { letter: 'A' | 'B'; entry: RunHistoryEntry }) {
  const text = entry.view.request.text;
  return (
    <span className={`diff-side cmp-side-${letter.toLowerCase()}`} data-testid={`compare-side-${letter.toLowerCase()}`}>
      <strong>
        {letter}
        {letter === 'A' ? ' (baseline of Δ)' : ''}:
      </strong>{' '}
      <span title={text}>
        run #{entry.id} “{promptLine(text, 48)}”
      </span>{' '}
      · {runFacts(entry.view).join(' · ')} · {formatClock(entry.at)}
    </span>
  );
}

/** Where the other run ranks a side's top-1, in words. */
function crossText(who: string, other: string, x: CrossRank | null, matchBy: RunComparison['matchBy']): string {
  if (!x) return `${who}'s top-1 is not in ${other}'s top 5`;
  if (x.rank === 0) return '';
  return `${who}'s top-1 is ${formatRank(x.rank)} in ${other} at ${formatProb(x.prob)}${matchBy === 'text' ? ' (matched by text)' : ''}`;
}

function cellLabel(row: string, pos: number, cell: CompareCell, matchBy: RunComparison['matchBy']): string {
  const at = `${row}, position ${pos}`;
  switch (cell.kind) {
    case 'both': {
      const extra = [cell.same ? 'same top-1' : 'top-1 differs', crossText('A', 'B', cell.aInB, matchBy), crossText('B', 'A', cell.bInA, matchBy)].filter((s) => s !== '');
      return `${at}: A ${formatToken(cell.a.token)} ${formatProb(cell.a.prob)}, B ${formatToken(cell.b.token)} ${formatProb(cell.b.prob)}, Δ ${formatDelta(cell.delta)} (${extra.join('; ')})`;
    }
    case 'a-only':
      return `${at}: only in A, ${formatToken(cell.a.token)} ${formatProb(cell.a.prob)}; not compared`;
    case 'b-only':
      return `${at}: only in B, ${formatToken(cell.b.token)} ${formatProb(cell.b.prob)}; not compared`;
    default:
      return `${at}: in neither run`;
  }
}

function ColumnHead({ col }: { col: CompareColumn }) {
  const tok = (t: string | null | undefined) => (t === undefined ? '—' : t === null ? '?' : formatToken(t));
  const title = `Position ${col.pos}: A ${col.inA ? JSON.stringify(col.a ?? 'unknown') : 'has no such position'}, B ${col.inB ? JSON.stringify(col.b ?? 'unknown') : 'has no such position'}`;
  return (
    <th scope="col" className={`lens-col-head cmp-col-head${col.sameToken ? '' : ' is-different'}`} data-col={col.pos} title={title}>
      {col.sameToken ? (
        <span className="col-token">{tok(col.a)}</span>
      ) : (
        <>
          <span className="col-token cmp-col-a">
            <span className="cmp-letter">A</span>
            {tok(col.a)}
          </span>
          <span className="col-token cmp-col-b">
            <span className="cmp-letter">B</span>
            {tok(col.b)}
          </span>
        </>
      )}
      <span className="col-pos">{col.pos}</span>
    </th>
  );
}

function Cell({ cell, r, c, label, scaleMax }: { cell: CompareCell; r: number; c: number; label: string; scaleMax: number }) {
  const common = { 'data-cmp-cell': '', 'data-r': r, 'data-c': c, 'data-kind': cell.kind, tabIndex: r === 0 && c === 0 ? 0 : -1, 'aria-label': label };
  if (cell.kind === 'both') {
    const bg = deltaColor(cell.delta, scaleMax);
    return (
      <div {...common} className={`lens-cell cmp-cell${cell.same ? '' : ' is-flip'}`} data-delta={cell.delta} style={{ background: rgbString(bg), color: textOn(bg) }}>
        <span className="cmp-tok" data-side="a">
          <span className="cmp-letter">A</span>
          {formatToken(cell.a.token)}
        </span>
        <span className="cmp-tok" data-side="b">
          <span className="cmp-letter">B</span>
          {formatToken(cell.b.token)}
        </span>
        <span className="cell-prob">Δ {formatDelta(cell.delta)}</span>
      </div>
    );
  }
  if (cell.kind === 'none') return <div {...common} className="lens-cell cmp-cell is-none" />;
  const side = cell.kind === 'a-only' ? 'A' : 'B';
  const p = cell.kind === 'a-only' ? cell.a : cell.b;
  return (
    <div {...common} className="lens-cell cmp-cell is-one-side" style={{ background: rgbString(NO_VALUE_COLOR), color: textOn(NO_VALUE_COLOR) }}>
      <span className="cmp-tok" data-side={side.toLowerCase()}>
        <span className="cmp-letter">{side}</span>
        {formatToken(p.token)}
      </span>
      <span className="cell-prob">{side} only</span>
    </div>
  );
}

/** Both runs' top 5 at the cell under the pointer or the keyboard. */
function Details({ pair, cmp, at }: { pair: RunComparePair; cmp: RunComparison; at: { r: number; c: number } | null }) {
  if (!at) return <p className="muted small compare-details">Hover or focus a cell for both runs’ top 5 there (arrow keys move between cells).</p>;
  const row = cmp.rows[at.r];
  const col = cmp.columns[at.c];
  const list = (letter: 'A' | 'B', idx: number | null, inRun: boolean, entry: RunHistoryEntry) => {
    const preds = idx !== null && inRun ? entry.view.rows[idx]?.predictions[col.pos] : undefined;
    return (
      <div className="compare-details-side" data-testid={`compare-details-${letter.toLowerCase()}`}>
        <div className="tooltip-sub">
          {letter}: run #{entry.id}
        </div>
        {preds && preds.length > 0 ? <TopList preds={preds} /> : <p className="muted small">Not in {letter}: {idx === null ? 'no such row' : 'no such position'}.</p>}
      </div>
    );
  };
  return (
    <div className="compare-details" data-testid="compare-details">
      <div className="tooltip-head">
        {row.name} · Pos {col.pos}
      </div>
      <div className="compare-details-sides">
        {list('A', row.a, col.inA, pair.a)}
        {list('B', row.b, col.inB, pair.b)}
      </div>
    </div>
  );
}

export function RunCompareCard({ pair, onClose }: { pair: RunComparePair; onClose: () => void }) {
  const { a, b } = pair;
  const cmp = useMemo(
    () => compareRuns({ rows: a.view.rows, tokens: a.view.tokens, modelName: a.view.modelName }, { rows: b.view.rows, tokens: b.view.tokens, modelName: b.view.modelName }),
    [a, b],
  );
  const [at, setAt] = useState<{ r: number; c: number } | null>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const cardRef = useRef<HTMLElement>(null);
  // Opened from the history's button: the keyboard (and the view) goes to the comparison.
  useEffect(() => cardRef.current?.focus(), []);
  const R = cmp.rows.length;
  const C = cmp.columns.length;
  const pct = cmp.compared > 0 ? Math.round((100 * cmp.sameTop1) / cmp.compared) : 0;

  const cellOf = (t: EventTarget | null) => (t instanceof HTMLElement ? t.closest<HTMLElement>('[data-cmp-cell]') : null);
  const point = (el: HTMLElement | null) => {
    if (el) setAt({ r: Number(el.dataset.r), c: Number(el.dataset.c) });
  };
  const onKeyDown = (e: ReactKeyboardEvent<HTMLDivElement>) => {
    const el = cellOf(e.target);
    if (!el) return;
    const step = gridStep(e.key, Number(el.dataset.r), Number(el.dataset.c), R, C);
    if (!step) return;
    e.preventDefault();
    scrollRef.current?.querySelector<HTMLElement>(`[data-cmp-cell][data-r="${step[0]}"][data-c="${step[1]}"]`)?.focus();
  };

  return (
    <section className="card run-compare-card" aria-label="Run comparison" data-testid="run-compare" ref={cardRef} tabIndex={-1}>
      <div className="section-head">
        <h2>Compare runs</h2>
        <button type="button" className="icon-btn" aria-label="Close the run comparison" onClick={onClose}>
          ×
        </button>
      </div>
      <p className="diff-caption" data-testid="compare-caption">
        <Side letter="A" entry={a} /> <span className="muted">vs</span> <Side letter="B" entry={b} />
      </p>
      <div className="compare-notes small" role="note" data-testid="compare-notes">
        {cmp.notes.length > 0 ? (
          <ul>
            {cmp.notes.map((n) => (
              <li key={n}>{n}</li>
            ))}
          </ul>
        ) : (
          <p>The two grids line up: the same rows, the same number of positions and the same token at each.</p>
        )}
      </div>
      <div className="lens-toolbar">
        <div className="lens-toolbar-left">
          <DiffLegend max={cmp.scaleMax} title="Δ top-1 probability: B − A" note="blue = A’s higher, red = B’s higher" flip="top-1 tokens differ" testId="compare-legend" />
          <span className="legend-flip small">
            <span className="one-side-swatch" aria-hidden="true" /> in one run only (not compared)
          </span>
        </div>
        <span className="small compare-summary" data-testid="compare-summary">
          {cmp.compared > 0
            ? `${cmp.compared} cells in both runs: the same top-1 in ${cmp.sameTop1} (${pct}%), mean |Δ| ${cmp.meanAbsDelta.toFixed(3)}`
            : 'No cell is in both runs.'}
        </span>
      </div>
      <p className="muted small compare-key">
        Each cell: <span className="cmp-letter">A</span> A’s top-1 token, <span className="cmp-letter">B</span> B’s, then Δ = B’s top-1 probability − A’s (each its own top-1).
      </p>
      <div
        className="lens-scroll"
        ref={scrollRef}
        data-testid="compare-grid"
        onMouseOver={(e) => point(cellOf(e.target))}
        onFocus={(e) => {
          const el = cellOf(e.target);
          if (!el) return;
          // Roving tab stop: the focused cell is the one Tab returns to.
          scrollRef.current?.querySelectorAll<HTMLElement>('[data-cmp-cell][tabindex="0"]').forEach((x) => {
            if (x !== el) x.tabIndex = -1;
          });
          el.tabIndex = 0;
          point(el);
        }}
        onKeyDown={onKeyDown}
      >
        <table className="lens-table compare-table" aria-label="B against A: both top-1 tokens and the change of the top-1 probability per layer and position (arrow keys move between cells)">
          <thead>
            <tr>
              <th className="sticky-col corner" scope="col">
                <span className="muted small">Layer \ Position</span>
              </th>
              {cmp.columns.map((col) => (
                <ColumnHead key={col.pos} col={col} />
              ))}
            </tr>
          </thead>
          <tbody>
            {cmp.rows.map((row, r) => (
              <tr key={row.name} className="lens-row" data-row-name={row.name} data-in={row.a === null ? 'b' : row.b === null ? 'a' : 'both'}>
                <th scope="row" className="sticky-col row-name">
                  <span>{row.name}</span>
                  {row.a === null && <span className="tag cmp-only-tag">B only</span>}
                  {row.b === null && <span className="tag cmp-only-tag">A only</span>}
                </th>
                {cmp.cells[r].map((cell, c) => (
                  <td key={c} className="lens-td">
                    <Cell cell={cell} r={r} c={c} label={cellLabel(row.name, cmp.columns[c].pos, cell, cmp.matchBy)} scaleMax={cmp.scaleMax} />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Details pair={pair} cmp={cmp} at={at && at.r < R && at.c < C ? at : null} />
    </section>
  );
}
