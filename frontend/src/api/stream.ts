// The wire format of a streamed /generate: newline-delimited JSON cut into lines as chunks arrive
// (a line may span chunks, a chunk may hold several), each line read as an event and checked before
// the app uses it.
import type { GenerateResponse, GenerateStep } from './types';

/**
 * The complete lines of `pending + chunk`, and what is left of a line not yet ended. Blank lines
 * are dropped and a line may end with \r\n.
 */
export function splitLines(pending: string, chunk: string): { lines: string[]; rest: string } {
  const parts = (pending + chunk).split('\n');
  const rest = parts.pop() ?? '';
  const lines = parts.map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
  return { lines, rest };
}

/** One line of the stream, read. */
export type StreamLine =
  | { kind: 'step'; step: GenerateStep }
  | { kind: 'done'; response: GenerateResponse; runId: number | null }
  | { kind: 'error'; detail: string }
  /** A JSON object of a type this page does not know (a newer server's): skipped. */
  | { kind: 'other'; type: string }
  | { kind: 'malformed'; error: string };

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

function stepProblem(o: Record<string, unknown>): string | null {
  if (!isCount(o.index)) return 'its index is not a count';
  if (!isCount(o.start)) return 'its start is not a count';
  if (o.token_id != null && !isCount(o.token_id)) return 'its token_id is not a token id';
  if (o.token != null && typeof o.token !== 'string') return 'its token is not a string';
  if (!isStrings(o.tokens)) return 'its tokens are not strings';
  if (!Array.isArray(o.columns)) return 'it has no columns';
  const n = o.tokens.length;
  for (const row of o.columns) {
    if (!isObject(row) || typeof row.layer_name !== 'string' || !Array.isArray(row.predictions)) return 'a column row is not a lens row';
    if (row.predictions.length !== n) return `a row has ${row.predictions.length} positions for ${n} tokens`;
  }
  return null;
}

function responseProblem(r: unknown): string | null {
  if (!isObject(r)) return 'it has no response';
  if (!Array.isArray(r.logit_lens) || !isStrings(r.input_tokens)) return 'its response has no lens rows';
  if (!Array.isArray(r.generated_ids) || !isCount(r.prompt_tokens)) return 'its response does not say what was written';
  return null;
}

function short(line: string): string {
  return line.length > 80 ? `${line.slice(0, 80)}…` : line;
}

/** A line of a streamed /generate: a step, the whole answer (`done`), an error, or what it is not. */
export function parseStreamLine(line: string): StreamLine {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { kind: 'malformed', error: `The server sent a line that is not JSON: ${short(line)}` };
  }
  if (!isObject(v) || typeof v.type !== 'string') return { kind: 'malformed', error: `The server sent a line without a type: ${short(line)}` };
  const bad = (why: string): StreamLine => ({ kind: 'malformed', error: `The server sent a ${v.type} line that cannot be read (${why})` });
  switch (v.type) {
    case 'step': {
      const why = stepProblem(v);
      return why ? bad(why) : { kind: 'step', step: v as unknown as GenerateStep };
    }
    case 'done': {
      const why = responseProblem(v.response);
      // The run id rides on the line itself (a stream has no x-logitlens-run-id header).
      return why ? bad(why) : { kind: 'done', response: v.response as GenerateResponse, runId: isCount(v.run_id) ? v.run_id : null };
    }
    case 'error':
      return { kind: 'error', detail: typeof v.detail === 'string' && v.detail.trim() ? v.detail.trim() : 'the server did not say why' };
    default:
      return { kind: 'other', type: v.type };
  }
}
