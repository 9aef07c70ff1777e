// The tokens to track, as typed: comma-separated, a bare number is a token id, anything else a
// token string with its leading spaces (SmolLM2/Llama words carry one: " Paris").
import type { TrackToken } from '../api/types';
import type { Result } from './interventions';
import { formatToken } from './tokens';

/** The server's limit. */
export const MAX_TRACK_TOKENS = 16;

/** Splits at commas; `\,` is a comma inside a token and `\\` a backslash. */
function splitParts(text: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && (text[i + 1] === ',' || text[i + 1] === '\\')) {
      cur += text[i + 1];
      i++;
    } else if (ch === ',') {
      parts.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  parts.push(cur);
  return parts;
}

/** Whether `text` has a comma that separates tokens (not one written `\,`). */
export function hasSeparator(text: string): boolean {
  return splitParts(text).length > 1;
}

/**
 * The tokens of `text`. Each comma-separated part keeps its leading spaces and loses its trailing
 * ones; a part of digits only (spaces around allowed) is a token id; a part in double quotes is
 * read as a JSON string, exactly ("\" 42\"", "\"\\n\""). Empty parts are skipped.
 */
export function parseTrackTokens(text: string): Result<TrackToken[]> {
  const out: TrackToken[] = [];
  for (const raw of splitParts(text)) {
    const part = raw.replace(/\s+$/, '');
    const bare = part.trim();
    if (bare === '') continue;
    if (/^\d+$/.test(bare)) {
      const id = Number(bare);
      if (!Number.isSafeInteger(id)) return { ok: false, error: `Token id ${bare} is too large` };
      out.push(id);
    } else if (bare.length >= 2 && bare.startsWith('"') && bare.endsWith('"')) {
      let s: unknown;
      try {
        s = JSON.parse(bare);
      } catch {
        return { ok: false, error: `${bare} is not a valid quoted string (use \\" for a quote, \\n for a newline)` };
      }
      if (typeof s !== 'string' || s === '') return { ok: false, error: 'A quoted token cannot be empty' };
      out.push(s);
    } else {
      out.push(part);
    }
  }
  return { ok: true, value: out };
}

/** `list` with `items` appended, each token once, within the server's limit. */
export function addTrackTokens(list: TrackToken[], items: TrackToken[]): Result<TrackToken[]> {
  const out = [...list];
  for (const t of items) {
    if (out.some((x) => x === t)) continue;
    out.push(t);
  }
  if (out.length > MAX_TRACK_TOKENS) {
    return { ok: false, error: `At most ${MAX_TRACK_TOKENS} tokens can be tracked (this would make ${out.length})` };
  }
  return { ok: true, value: out };
}

/** How a tracked token is shown: spaces visible, ids as #id. */
export function trackTokenLabel(t: TrackToken): string {
  return typeof t === 'number' ? `#${t}` : formatToken(t);
}

/**
 * A token typed in a field that takes exactly one (a metric's, the Jacobian lens's), read as a
 * tracked token is (a number is an id, quotes for exact text, leading spaces kept). `name` says
 * which field ("correct").
 */
export function parseOneToken(text: string, name: string): Result<TrackToken> {
  const parsed = parseTrackTokens(text);
  if (!parsed.ok) return parsed;
  if (parsed.value.length === 0) return { ok: false, error: `Type the ${name} token: a token string (␣Paris is " Paris") or a token id.` };
  if (parsed.value.length > 1) return { ok: false, error: `The ${name} token is one token: drop the comma (\\, is a comma inside a token).` };
  return { ok: true, value: parsed.value[0] };
}

/**
 * Why a token string that the tokenizer cut into `pieces` cannot be taken as one token, or null
 * when it is one; `need` says what needs one ("the metric needs a single token").
 */
export function severalTokensError(text: string, pieces: string[], need = 'the metric needs a single token'): string | null {
  if (pieces.length === 1) return null;
  if (pieces.length === 0) return `“${formatToken(text)}” is no token at all.`;
  return `“${formatToken(text)}” is ${pieces.length} tokens (${pieces.map(formatToken).join(' · ')}): ${need}.`;
}
