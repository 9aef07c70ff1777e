// Fields that take tokens as the server reads them (an id, or a string that must be exactly one
// token): what is typed, what it reads as, and, for a token string, the model's tokenizer asked a
// moment after the typing stops (POST /tokenize without special tokens) whether it is one token,
// so the field says so (with its id) or why not before anything is sent. One token (a metric's, a
// steered token, a lens vector's), or a comma-separated list (the tokens an ablation removes).
import { useEffect, useState } from 'react';
import { api, errorMessage, isAbort } from '../api/client';
import type { TrackToken } from '../api/types';
import { parseOneToken, parseTrackTokens, severalTokensError } from '../lib/track';
import { TOKENIZE_DELAY_MS, useTokenize } from './useTokenize';

/** A field of one token: what is typed, and what it reads as. */
export interface TokenField {
  text: string;
  set: (v: string) => void;
  /** The token to send, or null while the field says why not (or is empty). */
  value: TrackToken | null;
  error: string | null;
  /** The token's id, once the server has read a token string as one token (or the id typed). */
  id: number | null;
}

export interface TokenFieldOptions {
  /** Whether the field is in use (shown): nothing is checked or asked otherwise. */
  inUse: boolean;
  /** The model in service (`modelKey`): token strings are checked against its tokenizer. */
  model: string | null;
  /** What needs one token, for the error ("the metric needs a single token"). */
  need?: string;
}

/** A field of one token; `name` says which in its messages ("correct", "steering"). */
export function useTokenField(name: string, { inUse, model, need }: TokenFieldOptions): TokenField {
  const [text, set] = useState('');
  const parsed = parseOneToken(text, name);
  const str = inUse && parsed.ok && typeof parsed.value === 'string' ? parsed.value : null;
  const tok = useTokenize(str, { model, special: false });
  const pieces = str !== null && tok.current ? tok.value?.tokens : undefined;
  // Untouched, the field says nothing yet; the button it feeds says what is missing.
  const error = !inUse || text === '' ? null : !parsed.ok ? parsed.error : pieces ? severalTokensError(str ?? '', pieces, need) : null;
  const value = inUse && parsed.ok && !error ? parsed.value : null;
  const id = typeof value === 'number' ? value : pieces?.length === 1 ? (tok.value?.ids[0] ?? null) : null;
  return { text, set, value, error, id };
}

/** A field of comma-separated tokens, each an id or a string that is exactly one token. */
export interface TokenListField {
  text: string;
  set: (v: string) => void;
  /** The tokens to send (none typed: an empty list), or null while the field says why not. */
  value: TrackToken[] | null;
  error: string | null;
  /** Each token's id, where known (ids typed; strings once the server has read them). */
  ids: (number | null)[];
}

/** The ids of token strings, each tokenized on its own; null while unknown (asked, or not asked). */
type Pieces = Map<string, { tokens: string[]; ids: number[] } | { error: string }>;

export function useTokenListField(name: string, { inUse, model, need }: TokenFieldOptions): TokenListField {
  const [text, set] = useState('');
  const parsed = parseTrackTokens(text);
  const strings = inUse && model !== null && parsed.ok ? [...new Set(parsed.value.filter((t): t is string => typeof t === 'string'))] : [];
  const key = strings.length ? JSON.stringify([model, strings]) : null;
  const [answer, setAnswer] = useState<{ key: string; pieces: Pieces } | null>(null);

  useEffect(() => {
    if (key === null) return;
    const [, asked] = JSON.parse(key) as [string, string[]];
    const controller = new AbortController();
    const timer = window.setTimeout(() => {
      void Promise.all(
        asked.map((s) =>
          api.tokenize({ text: s, apply_chat_template: false, add_special_tokens: false }, controller.signal).then(
            (r) => [s, { tokens: r.tokens, ids: r.ids }] as const,
            (err: unknown) => (isAbort(err) ? null : ([s, { error: errorMessage(err) }] as const)),
          ),
        ),
      ).then((results) => {
        if (controller.signal.aborted) return;
        const pieces: Pieces = new Map();
        for (const r of results) if (r) pieces.set(r[0], r[1]);
        setAnswer({ key, pieces });
      });
    }, TOKENIZE_DELAY_MS);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
  }, [key]);

  if (!inUse || text.trim() === '') return { text, set, value: inUse ? [] : null, error: null, ids: [] };
  if (!parsed.ok) return { text, set, value: null, error: parsed.error, ids: [] };
  const pieces = answer && answer.key === key ? answer.pieces : null;
  let error: string | null = null;
  const ids = parsed.value.map((t) => {
    if (typeof t === 'number') return t;
    const p = pieces?.get(t);
    if (!p) return null;
    if ('error' in p) {
      error ??= `Could not check the ${name} token “${t}”: ${p.error}`;
      return null;
    }
    error ??= severalTokensError(t, p.tokens, need);
    return p.ids.length === 1 ? p.ids[0] : null;
  });
  return { text, set, value: error ? null : parsed.value, error, ids };
}
