// The prompt history of a tab: the runs it put on screen, newest first. It lives in memory only
// (sessionStorage holds about 5 MB, less than the lens rows of one long prompt on a deep model), so
// it is bounded twice over: in runs, and in the memory the runs hold, estimated (a run's attention,
// Float32 head means, is most of it on long prompts: 30 layers × 1,000² positions is 120 MB).
import type { Interventions, Lens, LensRow, LensType } from '../api/types';
import type { AttentionTensor } from './attention';
import { countInterventions } from './interventions';
import { lensName } from './lenses';
import { lensTypeLabel } from './lensTypes';
import { shortModelName } from './models';

/** At most this many runs are kept. */
export const HISTORY_MAX_RUNS = 20;
/** Attention is kept for the newest runs up to this many bytes; older runs' is let go. */
export const HISTORY_ATTENTION_BYTES = 64_000_000;
/** The lens rows (and what goes with them) of the newest runs up to this many bytes, estimated. */
export const HISTORY_ROWS_BYTES = 128_000_000;
/**
 * A prediction ({token, prob, id}) as the browser holds it once parsed: 86 bytes measured in V8
 * (Node 20, 31 rows × 200 positions × 5 predictions, heap after gc), rounded up.
 */
export const BYTES_PER_PREDICTION = 90;

/** What of a run the history bounds. */
export interface HistoryRun {
  rows: LensRow[];
  baselineRows?: LensRow[] | null;
  tensor: AttentionTensor | null;
  diff?: unknown[][] | null;
  tracked?: unknown[][][] | null;
}

export interface HistoryEntry<V extends HistoryRun> {
  /** 1, 2, 3… in the order the runs came: the number the list shows. */
  id: number;
  /** When it came (ms since the epoch). */
  at: number;
  view: V;
  /** Its attention was let go to bound the history (the view's `tensor` is then null). */
  attentionDropped: boolean;
}

export interface HistoryLimits {
  maxRuns: number;
  attentionBytes: number;
  rowsBytes: number;
}

export const HISTORY_LIMITS: HistoryLimits = { maxRuns: HISTORY_MAX_RUNS, attentionBytes: HISTORY_ATTENTION_BYTES, rowsBytes: HISTORY_ROWS_BYTES };

function predictions(rows: LensRow[] | null | undefined): number {
  let n = 0;
  for (const r of rows ?? []) for (const p of r.predictions) n += p.length;
  return n;
}

/** The bytes of a run's attention (exact: its matrices' buffers). */
export function attentionBytes(t: AttentionTensor | null): number {
  let n = 0;
  for (const layer of t?.data ?? []) for (const m of layer) n += m.byteLength;
  return n;
}

/** The bytes of a run's lens rows, its baseline's, its diff and tracked tokens, estimated. */
export function rowsBytes(v: HistoryRun): number {
  let cells = predictions(v.rows) + predictions(v.baselineRows);
  for (const row of v.diff ?? []) cells += row.length;
  for (const row of v.tracked ?? []) for (const c of row) cells += c.length;
  return cells * BYTES_PER_PREDICTION;
}

/**
 * `entries` (newest first) within `limits`: the newest `maxRuns`; of those, the newest whose rows
 * fit `rowsBytes` together (the newest always stays: it is on screen anyway); and attention only
 * for the newest that fit `attentionBytes`, the others' let go (a new view without it, marked).
 * Returns the same array when nothing changes.
 */
export function boundHistory<V extends HistoryRun>(entries: readonly HistoryEntry<V>[], limits: HistoryLimits = HISTORY_LIMITS): HistoryEntry<V>[] {
  const out: HistoryEntry<V>[] = [];
  let rows = 0;
  let attention = 0;
  let changed = false;
  for (const e of entries) {
    if (out.length >= limits.maxRuns) {
      changed = true;
      break;
    }
    rows += rowsBytes(e.view);
    if (out.length > 0 && rows > limits.rowsBytes) {
      changed = true;
      break;
    }
    const att = attentionBytes(e.view.tensor);
    if (att > 0 && attention + att > limits.attentionBytes) {
      out.push({ ...e, view: { ...e.view, tensor: null }, attentionDropped: true });
      changed = true;
      continue;
    }
    attention += att;
    out.push(e);
  }
  return changed ? out : (entries as HistoryEntry<V>[]);
}

/** The prompt on one line, at most `max` characters (an ellipsis when cut). */
export function promptLine(text: string, max = 60): string {
  const one = text.replace(/\s+/g, ' ').trim();
  if (one === '') return '(empty prompt)';
  const chars = Array.from(one);
  return chars.length <= max ? one : `${chars.slice(0, max - 1).join('').trimEnd()}…`;
}

/** What `runFacts` reads of a run (the app's RunView has it all). */
export interface RunFactsOf {
  request: { text: string; lens_type: LensType; lens?: Lens | null; interventions: Interventions; apply_chat_template: boolean };
  rows: LensRow[];
  modelName: string;
  lensPath?: string | null;
  generation?: { ids: readonly number[] } | null;
}

/** A run in a few words, for the history and the comparison: model, lens type, lens, tokens, interventions, chat template, tokens written. */
export function runFacts(v: RunFactsOf): string[] {
  const n = countInterventions(v.request.interventions);
  const T = v.rows[0]?.predictions.length ?? 0;
  const out = [shortModelName(v.modelName), lensTypeLabel(v.request.lens_type), lensName(v.request.lens ?? 'logit', v.lensPath), `${T} token${T === 1 ? '' : 's'}`, `${n} intervention${n === 1 ? '' : 's'}`];
  if (v.request.apply_chat_template) out.push('chat template');
  if (v.generation) out.push(`${v.generation.ids.length} written`);
  return out;
}
