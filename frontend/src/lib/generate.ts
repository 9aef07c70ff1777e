// Generation (POST /generate) as pure functions: the max-new-tokens field; the steps' lens columns
// (read from the stream by api/stream.ts) gathered into a grid that grows as the model writes; and
// what was written, with and without the interventions, side by side.
import type { GenerateResponse, GenerateStep, LensRow } from '../api/types';

export const MAX_NEW_TOKENS = 256;
export const DEFAULT_MAX_NEW_TOKENS = 20;

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** The max-new-tokens field: a whole number from 1 to 256, as the server accepts. */
export function parseMaxNewTokens(text: string): Parsed<number> {
  const t = text.trim();
  const range = `a whole number from 1 to ${MAX_NEW_TOKENS}`;
  if (!t) return { ok: false, error: `Type how many tokens to write: ${range}` };
  if (!/^\d+$/.test(t)) return { ok: false, error: `New tokens: “${t}” is not ${range}` };
  const n = Number(t);
  if (n < 1 || n > MAX_NEW_TOKENS) return { ok: false, error: `New tokens: ${n} is not ${range}` };
  return { ok: true, value: n };
}

/** The grid of a generation in progress: the columns of the passes so far. */
export interface StreamGrid {
  rows: LensRow[];
  /** One per column. */
  tokens: string[];
  /** The prompt's token count, once pass 0 has come: columns from here on were written. */
  promptTokens: number | null;
  /** The token the last pass chose, whose column the next pass brings; null once the last pass has come. */
  pending: { id: number; token: string } | null;
  /** Tokens chosen so far. */
  written: number;
}

export const EMPTY_STREAM: StreamGrid = { rows: [], tokens: [], promptTokens: null, pending: null, written: 0 };

/** `g` with the step's columns appended; an error when the step does not continue it. */
export function addStep(g: StreamGrid, s: GenerateStep): Parsed<StreamGrid> {
  const have = g.tokens.length;
  if (s.start !== have) return { ok: false, error: `The server sent the columns from position ${s.start} while ${have} had come` };
  if (g.rows.length > 0 && s.columns.length !== g.rows.length) {
    return { ok: false, error: `The server sent ${s.columns.length} rows for a grid of ${g.rows.length}` };
  }
  const rows =
    g.rows.length === 0
      ? s.columns.map((c) => ({ ...c, predictions: [...c.predictions] }))
      : g.rows.map((row, r) => ({ ...row, predictions: [...row.predictions, ...s.columns[r].predictions] }));
  const chosen = s.token_id != null;
  return {
    ok: true,
    value: {
      rows,
      tokens: [...g.tokens, ...s.tokens],
      promptTokens: g.promptTokens ?? (s.index === 0 ? s.tokens.length : null),
      pending: chosen ? { id: s.token_id!, token: s.token ?? '' } : null,
      written: chosen ? s.index + 1 : s.index,
    },
  };
}

/** What a generation wrote, as the run on screen keeps it. */
export interface Generation {
  /** Positions from here on were written. */
  promptTokens: number;
  /** What was asked (a re-run or an attribution asks it again). */
  maxNewTokens: number;
  ids: number[];
  text: string;
  stoppedAtEos: boolean;
  /** With `compare` and interventions: what the model writes without them. */
  baseline: BaselineContinuation | null;
}

export interface BaselineContinuation {
  ids: number[];
  text: string;
  /** Each token as decode([id]) gives it. */
  tokens: string[];
  /** The first written token at which the two differ; null when they do not. */
  firstDifference: number | null;
}

/** The run on screen's record of a generation answer. */
export function generationOf(res: GenerateResponse, maxNewTokens: number): Generation {
  const b = res.baseline_generation;
  const baseline: BaselineContinuation | null = b
    ? { ids: b.generated_ids, text: b.generated_text, tokens: b.generated_tokens, firstDifference: b.first_difference ?? null }
    : null;
  return { promptTokens: res.prompt_tokens, maxNewTokens, ids: res.generated_ids, text: res.generated_text, stoppedAtEos: res.stopped_at_eos, baseline };
}

/** One column of the two continuations side by side. */
export interface ContinuationColumn {
  /** 0-based index among the written tokens. */
  index: number;
  intervened: { id: number; token: string } | null;
  baseline: { id: number; token: string } | null;
  /** At or after the parting point. */
  diverged: boolean;
}

/** The intervened continuation (`written`: its tokens) and the baseline's, column by column. */
export function alignContinuations(g: Generation, written: string[]): ContinuationColumn[] {
  const b = g.baseline;
  const n = Math.max(g.ids.length, b?.ids.length ?? 0);
  const fd = b?.firstDifference ?? null;
  return Array.from({ length: n }, (_, i) => ({
    index: i,
    intervened: i < g.ids.length ? { id: g.ids[i], token: written[i] ?? '' } : null,
    baseline: b && i < b.ids.length ? { id: b.ids[i], token: b.tokens[i] } : null,
    diverged: fd !== null && i >= fd,
  }));
}

/** What the interventions did to what the model writes, in words (`count`: how many there were). */
export function divergenceNote(g: Generation, count: number): string | null {
  const b = g.baseline;
  if (!b) return null;
  const what = count === 1 ? 'The intervention' : 'The interventions';
  if (b.firstDifference === null) return `${what} did not change what the model writes.`;
  const pos = g.promptTokens + b.firstDifference;
  return `${what} changed what the model writes from token ${b.firstDifference + 1} on (position ${pos}).`;
}
