// What a lens cell shows and how it is coloured in each view of the grid: the top-1 probability,
// a tracked token's probability and rank, the entropy, or the change against a baseline run.
import type { DiffCell, LensRow, TrackedProb } from '../api/types';
import { deltaColor, entropyColor, niceProbMax, probColor, type RGB } from './colors';
import { formatProb, formatToken } from './tokens';

/** Everything a grid may colour by; only `rows` is always there. */
export interface GridData {
  rows: LensRow[];
  /** the rows without interventions (or of session A) */
  baselineRows?: LensRow[] | null;
  diff?: DiffCell[][] | null;
  tracked?: TrackedProb[][][] | null;
  entropy?: number[][] | null;
}

export type GridView = 'normal' | 'diff';

/** `tracked:<token id>`: a tracked token is named by id, so the choice survives a re-run. */
export type ColorMode = 'top1' | 'entropy' | `tracked:${number}`;

export interface ColorModeOption {
  value: ColorMode;
  label: string;
}

export interface CellSpec {
  bg: RGB;
  /** first line (the token, or the tracked probability) */
  main: string;
  /** second line (hidden in compact cells) */
  sub: string;
  /** what a screen reader says for the cell */
  label: string;
  /** the number the colour shows */
  value: number;
  /** the top-1 changed against the baseline (diff view) */
  flip: boolean;
  /** the tracked token's rank, 0 = top (tracked mode) */
  rank?: number;
}

export type LegendSpec =
  | { kind: 'prob'; label: string }
  | { kind: 'entropy'; max: number }
  | { kind: 'diff'; max: number };

/** The tracked tokens of a response, once each (a string and its id may name the same token). */
export function trackedTokens(tracked: TrackedProb[][][] | null | undefined): { index: number; id: number; token: string }[] {
  const first = tracked?.[0]?.[0];
  if (!first) return [];
  const seen = new Set<number>();
  const out: { index: number; id: number; token: string }[] = [];
  first.forEach((t, index) => {
    if (seen.has(t.id)) return;
    seen.add(t.id);
    out.push({ index, id: t.id, token: t.token });
  });
  return out;
}

export function colorModeOptions(data: GridData): ColorModeOption[] {
  const out: ColorModeOption[] = [{ value: 'top1', label: 'Top-1 probability' }];
  for (const t of trackedTokens(data.tracked)) out.push({ value: `tracked:${t.id}`, label: `Tracked: ${formatToken(t.token)}` });
  if (data.entropy && data.entropy.length > 0) out.push({ value: 'entropy', label: 'Entropy' });
  return out;
}

/** `mode` when this data can show it, else the top-1 probability. */
export function resolveColorMode(mode: ColorMode, data: GridData): ColorMode {
  return colorModeOptions(data).some((o) => o.value === mode) ? mode : 'top1';
}

/** The diff view needs a diff of the grid's shape. */
export function hasDiff(data: GridData): boolean {
  return !!data.diff && data.diff.length === data.rows.length && data.diff.length > 0;
}

/** Probability change as a signed number with a real minus sign; small changes keep a third decimal. */
export function formatDelta(d: number): string {
  if (!Number.isFinite(d)) return 'NaN';
  const a = Math.abs(d);
  if (a < 0.0005) return '0.00';
  const s = a >= 0.01 ? a.toFixed(2) : a.toFixed(3);
  return `${d < 0 ? '−' : '+'}${s}`;
}

/** A rank (0 = top) the way people count: #1 is the top. */
export function formatRank(rank: number): string {
  return `#${rank + 1}`;
}

export function formatNats(h: number): string {
  return Number.isFinite(h) ? h.toFixed(2) : 'NaN';
}

/** Top of the entropy scale: the grid's largest entropy, rounded up to half a nat. */
export function entropyScaleMax(entropy: number[][] | null | undefined): number {
  let m = 0;
  for (const row of entropy ?? []) for (const h of row) if (Number.isFinite(h) && h > m) m = h;
  return m > 0 ? Math.ceil(m * 2) / 2 : 1;
}

/** Top of the Δ scale: the grid's largest |Δ|, rounded up to a legend-friendly value. */
export function diffScaleMax(diff: DiffCell[][] | null | undefined): number {
  let m = 0;
  for (const row of diff ?? []) for (const d of row) if (Number.isFinite(d.delta_prob)) m = Math.max(m, Math.abs(d.delta_prob));
  return niceProbMax(m);
}

function tokenOfId(rows: LensRow[] | null | undefined, r: number, c: number, id: number): string | null {
  const p = rows?.[r]?.predictions[c]?.find((x) => x.id === id);
  return p ? p.token : null;
}

/** The baseline top-1 and the new top-1 of a diff cell, as strings when the lens rows name them. */
export function diffTokens(data: GridData, r: number, c: number): { baseline: string; now: string } {
  const d = data.diff?.[r]?.[c];
  const base = data.baselineRows?.[r]?.predictions[c]?.[0];
  const now = data.rows[r]?.predictions[c]?.[0];
  const baseline = base && (!d || base.id === d.baseline_id) ? base.token : d ? tokenOfId(data.rows, r, c, d.baseline_id) ?? `#${d.baseline_id}` : '';
  const nowTok = now && (!d || now.id === d.top_id) ? now.token : d ? tokenOfId(data.rows, r, c, d.top_id) ?? `#${d.top_id}` : '';
  return { baseline, now: nowTok };
}

/** The cells of a whole grid in one view and colour mode, and the legend that goes with them. */
export function gridCells(data: GridData, view: GridView, mode: ColorMode): { cells: CellSpec[][]; legend: LegendSpec } {
  const { rows } = data;
  if (view === 'diff' && hasDiff(data)) {
    const max = diffScaleMax(data.diff);
    const cells = rows.map((row, r) =>
      row.predictions.map((_, c) => {
        const d = data.diff![r]?.[c];
        if (!d) return missingCell(row.layer_name, c);
        const flip = d.top_id !== d.baseline_id;
        const t = diffTokens(data, r, c);
        const delta = formatDelta(d.delta_prob);
        return {
          bg: deltaColor(d.delta_prob, max),
          main: formatToken(t.now),
          sub: flip ? `⇄ ${delta}` : delta,
          label: `${row.layer_name}, position ${c}: baseline top-1 ${formatToken(t.baseline)} ${formatProb(d.baseline_prob)} → ${formatProb(d.prob)} (Δ ${delta})${flip ? `, top-1 changed to ${formatToken(t.now)}` : ''}`,
          value: d.delta_prob,
          flip,
        };
      }),
    );
    return { cells, legend: { kind: 'diff', max } };
  }
  const m = resolveColorMode(mode, data);
  if (m === 'entropy') {
    const max = entropyScaleMax(data.entropy);
    const cells = rows.map((row, r) =>
      row.predictions.map((preds, c) => {
        const h = data.entropy?.[r]?.[c];
        const top = preds[0];
        if (h === undefined || h === null) return missingCell(row.layer_name, c);
        return {
          bg: entropyColor(h, max),
          main: top ? formatToken(top.token) : '—',
          sub: `H ${formatNats(h)}`,
          label: `${row.layer_name}, position ${c}: ${top ? formatToken(top.token) : 'none'} ${formatProb(top?.prob ?? 0)}, entropy ${formatNats(h)} nats`,
          value: h,
          flip: false,
        };
      }),
    );
    return { cells, legend: { kind: 'entropy', max } };
  }
  if (m !== 'top1') {
    const id = Number(m.slice('tracked:'.length));
    const tok = trackedTokens(data.tracked).find((t) => t.id === id);
    if (tok) {
      const name = formatToken(tok.token);
      const cells = rows.map((row, r) =>
        row.predictions.map((_, c) => {
          const t = data.tracked?.[r]?.[c]?.[tok.index];
          if (!t) return missingCell(row.layer_name, c);
          return {
            bg: probColor(t.prob),
            main: formatProb(t.prob),
            sub: formatRank(t.rank),
            label: `${row.layer_name}, position ${c}: ${name} ${formatProb(t.prob)}, rank ${t.rank + 1}`,
            value: t.prob,
            flip: false,
            rank: t.rank,
          };
        }),
      );
      return { cells, legend: { kind: 'prob', label: `p(${name})` } };
    }
  }
  const cells = rows.map((row) =>
    row.predictions.map((preds, c) => {
      const top = preds[0];
      const p = top?.prob ?? 0;
      return {
        bg: probColor(p),
        main: top ? formatToken(top.token) : '—',
        sub: formatProb(p),
        label: `${row.layer_name}, position ${c}: ${top ? formatToken(top.token) : 'none'} ${formatProb(p)}`,
        value: p,
        flip: false,
      };
    }),
  );
  return { cells, legend: { kind: 'prob', label: 'Top-1 probability' } };
}

function missingCell(rowName: string, c: number): CellSpec {
  return { bg: [30, 41, 59], main: '—', sub: '', label: `${rowName}, position ${c}: no data`, value: Number.NaN, flip: false };
}
