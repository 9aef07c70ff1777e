// How the server's receipts of applied operations read.
import type { Receipt } from '../api/types';

/** Positions as runs: [0,1,2,3,7,9,10] → "0–3, 7, 9–10". */
export function formatPositions(positions: number[]): string {
  if (positions.length === 0) return 'none';
  const sorted = [...new Set(positions)].sort((a, b) => a - b);
  const runs: string[] = [];
  let start = sorted[0];
  let prev = start;
  for (let i = 1; i <= sorted.length; i++) {
    const p = sorted[i];
    if (p === prev + 1) {
      prev = p;
      continue;
    }
    runs.push(start === prev ? String(start) : `${start}–${prev}`);
    start = p;
    prev = p;
  }
  return runs.join(', ');
}

/** ‖Δ‖ with four significant digits; "—" when the server gives none. */
export function formatNorm(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  if (!Number.isFinite(n)) return String(n);
  if (n === 0) return '0';
  return Math.abs(n) >= 1e5 || Math.abs(n) < 1e-3 ? n.toExponential(3) : String(Number(n.toPrecision(4)));
}

/** The receipt's layer; the schema leaves it out (or null) for the embeddings. */
export function formatLayer(layer: number | null | undefined): string {
  return layer == null ? 'embeddings' : String(layer);
}

/** Receipts that changed nothing: an intervention that matched no position, or a no-op scale. */
export function isNoop(r: Receipt): boolean {
  return r.elements === 0 || r.delta_norm === 0;
}
