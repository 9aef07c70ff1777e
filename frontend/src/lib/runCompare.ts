// Two runs of the history overlaid, cell by cell: A's top-1 and B's, and B's top-1 probability
// minus A's. Rows are matched by the state they read ("Layer 3", "Final Output"; see rowKey),
// positions from the start (position i of A against position i of B, whatever token each holds);
// what only one run has is kept and marked as such, never paired with something else, and what
// cannot be compared is said in words.
import type { LensRow, Prediction } from '../api/types';
import { niceProbMax } from './colors';
import { shortModelName } from './models';
import { formatToken } from './tokens';

/** What a side of the comparison needs of a run. */
export interface CompareSide {
  rows: LensRow[];
  tokens: string[] | null;
  modelName: string;
}

/**
 * A row of the overlay: its name ("A's / B's" where the two name the same state differently) and
 * its index in each run (null where that run has no such row).
 */
export interface CompareRow {
  name: string;
  a: number | null;
  b: number | null;
}

/** A column of the overlay: position `pos`, and the token each run has there (undefined: none; null: not known). */
export interface CompareColumn {
  pos: number;
  a: string | null | undefined;
  b: string | null | undefined;
  inA: boolean;
  inB: boolean;
  /** Both runs have the position and the same token there (false when either token is unknown). */
  sameToken: boolean;
}

/** The other run's view of one side's top-1: its probability and rank there, when among its top-k. */
export interface CrossRank {
  prob: number;
  /** 0 = that run's top-1 too. */
  rank: number;
}

export type CompareCell =
  | {
      kind: 'both';
      a: Prediction;
      b: Prediction;
      /** p_B(B's top-1) − p_A(A's top-1). */
      delta: number;
      /** The two top-1 tokens are the same token. */
      same: boolean;
      /** A's top-1 among B's predictions there (null: not in B's top-k). */
      aInB: CrossRank | null;
      /** B's top-1 among A's predictions there (null: not in A's top-k). */
      bInA: CrossRank | null;
    }
  | { kind: 'a-only'; a: Prediction }
  | { kind: 'b-only'; b: Prediction }
  | { kind: 'none' };

export interface RunComparison {
  rows: CompareRow[];
  columns: CompareColumn[];
  /** cells[row][col] of `rows` × `columns`. */
  cells: CompareCell[][];
  /** Top of the Δ colour scale: the largest |Δ| rounded up to a legend value (niceProbMax). */
  scaleMax: number;
  /** Cells both runs have, and of those, how many have the same top-1. */
  compared: number;
  sameTop1: number;
  /** Mean |Δ| over the compared cells (0 when none). */
  meanAbsDelta: number;
  /** Top-1 tokens are matched by id (one model, one vocabulary) or by their text (two models). */
  matchBy: 'id' | 'text';
  /** What is not comparable, and how it is shown, in words. Empty when the two grids line up. */
  notes: string[];
}

/**
 * The state a row reads, from its name as the server gives it, so that the rows of two lens types
 * pair up where they read the same state: block output's "Layer 3" is combined's "L3 Block Out"
 * (the stream after block 3); "L3 Post-Attn" is the same in post-attention and combined. A name the
 * app does not know is its own key.
 */
export function rowKey(name: string): string {
  if (name === 'Embeddings') return 'resid:0';
  if (name === 'Final Output') return 'final';
  let m = /^Layer (\d+)$/.exec(name) ?? /^L(\d+) Block Out$/.exec(name);
  if (m) return `resid:${Number(m[1]) + 1}`;
  m = /^L(\d+) Post-Attn$/.exec(name);
  if (m) return `attn:${m[1]}`;
  return `name:${name}`;
}

/**
 * The rows of both runs, each state once: A's order, with B's own rows placed after the row B has
 * before them (so a model's extra layers sit where they belong), B's leading ones first.
 */
export function alignRows(a: readonly LensRow[], b: readonly LensRow[]): CompareRow[] {
  const out: CompareRow[] = [];
  const at = new Map<string, number>();
  a.forEach((r, i) => {
    const k = rowKey(r.layer_name);
    if (at.has(k)) return;
    at.set(k, out.length);
    out.push({ name: r.layer_name, a: i, b: null });
  });
  // Where B's next own row goes: after the last row of B placed so far.
  let insertAt = 0;
  const seenB = new Set<string>();
  b.forEach((r, j) => {
    const key = rowKey(r.layer_name);
    if (seenB.has(key)) return;
    seenB.add(key);
    const k = at.get(key);
    if (k !== undefined) {
      const row = out[k];
      row.b = j;
      if (row.name !== r.layer_name) row.name = `${row.name} / ${r.layer_name}`;
      insertAt = k + 1;
      return;
    }
    out.splice(insertAt, 0, { name: r.layer_name, a: null, b: j });
    for (const [name, idx] of at) if (idx >= insertAt) at.set(name, idx + 1);
    at.set(key, insertAt);
    insertAt += 1;
  });
  return out;
}

function positions(rows: readonly LensRow[]): number {
  let n = 0;
  for (const r of rows) n = Math.max(n, r.predictions.length);
  return n;
}

function crossRank(top: Prediction, others: readonly Prediction[], matchBy: 'id' | 'text'): CrossRank | null {
  const i = others.findIndex((p) => (matchBy === 'id' ? p.id === top.id : p.token === top.token));
  return i < 0 ? null : { prob: others[i].prob, rank: i };
}

/** "Layer 3", "Layer 3 and Layer 4", "Layer 3, Layer 4, Layer 5 and 7 more". */
export function nameList(names: readonly string[], shown = 3): string {
  if (names.length <= shown + 1) return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  return `${names.slice(0, shown).join(', ')} and ${names.length - shown} more`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "position 5" or "positions 5–9". */
function posRange(from: number, to: number): string {
  return from === to ? `position ${from}` : `positions ${from}–${to}`;
}

export function compareRuns(a: CompareSide, b: CompareSide): RunComparison {
  const matchBy = a.modelName && b.modelName && a.modelName !== b.modelName ? 'text' : 'id';
  const rows = alignRows(a.rows, b.rows);
  const Ta = positions(a.rows);
  const Tb = positions(b.rows);
  const T = Math.max(Ta, Tb);
  const columns: CompareColumn[] = Array.from({ length: T }, (_, pos) => {
    const inA = pos < Ta;
    const inB = pos < Tb;
    const ta = inA ? (a.tokens ? a.tokens[pos] : null) : undefined;
    const tb = inB ? (b.tokens ? b.tokens[pos] : null) : undefined;
    return { pos, a: ta, b: tb, inA, inB, sameToken: inA && inB && typeof ta === 'string' && ta === tb };
  });

  let compared = 0;
  let sameTop1 = 0;
  let sumAbs = 0;
  let maxAbs = 0;
  const cells: CompareCell[][] = rows.map((row) =>
    columns.map((col): CompareCell => {
      const pa = row.a !== null ? (a.rows[row.a].predictions[col.pos] ?? []) : [];
      const pb = row.b !== null ? (b.rows[row.b].predictions[col.pos] ?? []) : [];
      const ta = pa[0];
      const tb = pb[0];
      if (ta && tb) {
        const delta = tb.prob - ta.prob;
        const same = matchBy === 'id' ? ta.id === tb.id : ta.token === tb.token;
        compared += 1;
        if (same) sameTop1 += 1;
        if (Number.isFinite(delta)) {
          sumAbs += Math.abs(delta);
          maxAbs = Math.max(maxAbs, Math.abs(delta));
        }
        return { kind: 'both', a: ta, b: tb, delta, same, aInB: crossRank(ta, pb, matchBy), bInA: crossRank(tb, pa, matchBy) };
      }
      if (ta) return { kind: 'a-only', a: ta };
      if (tb) return { kind: 'b-only', b: tb };
      return { kind: 'none' };
    }),
  );

  const notes: string[] = [];
  if (matchBy === 'text') {
    // Short names, unless they are the same (two folders named "llama").
    const [na, nb] = shortModelName(a.modelName) === shortModelName(b.modelName) ? [a.modelName, b.modelName] : [shortModelName(a.modelName), shortModelName(b.modelName)];
    notes.push(
      `A and B ran on different models (${na} and ${nb}): rows are matched by layer number, not by depth, and top-1 tokens by their text, since the two vocabularies number tokens differently.`,
    );
  }
  if (Ta !== Tb) {
    const [longer, shorter, from, to] = Ta > Tb ? ['A', 'B', Tb, Ta - 1] : ['B', 'A', Ta, Tb - 1];
    notes.push(
      `A has ${plural(Ta, 'position')}, B ${Tb}: ${posRange(from, to)} ${from === to ? 'is' : 'are'} only in ${longer} and shown as ${longer}'s alone, not compared (${shorter} has nothing there).`,
    );
  }
  if (a.tokens && b.tokens) {
    const common = Math.min(Ta, Tb);
    let first = -1;
    let differ = 0;
    for (let i = 0; i < common; i++) {
      if (!columns[i].sameToken) {
        differ += 1;
        if (first < 0) first = i;
      }
    }
    if (differ > 0) {
      notes.push(
        `The inputs differ: ${plural(differ, 'shared position')} of ${common} hold${differ === 1 ? 's' : ''} different tokens (first at position ${first}, “${formatToken(a.tokens[first])}” in A, “${formatToken(b.tokens[first])}” in B); their columns compare what each run predicts after its own token, aligned by position from the start.`,
      );
    }
  } else if (Ta > 0 && Tb > 0) {
    const missing = !a.tokens && !b.tokens ? 'Neither run records' : !a.tokens ? 'A does not record' : 'B does not record';
    notes.push(`${missing} its input tokens: whether the same token sits at each position cannot be checked.`);
  }
  const aOnly = rows.filter((r) => r.b === null).map((r) => r.name);
  const bOnly = rows.filter((r) => r.a === null).map((r) => r.name);
  if (aOnly.length > 0) notes.push(`${plural(aOnly.length, 'row')} only in A (${nameList(aOnly)}), shown as A's alone, not compared.`);
  if (bOnly.length > 0) notes.push(`${plural(bOnly.length, 'row')} only in B (${nameList(bOnly)}), shown as B's alone, not compared.`);
  if (compared === 0) notes.push('No cell is in both runs: there is nothing to compare.');

  return {
    rows,
    columns,
    cells,
    scaleMax: niceProbMax(maxAbs),
    compared,
    sameTop1,
    meanAbsDelta: compared > 0 ? sumAbs / compared : 0,
    matchBy,
    notes,
  };
}
