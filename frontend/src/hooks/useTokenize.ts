// The tokens of a text as the model in service reads it (POST /tokenize), asked a moment after the
// typing stops and again when the model changes, so that a form can show counts and pieces live.
// An answer that arrives for an older text is not the text's any more: `current` says which.
import { useEffect, useState } from 'react';
import { api, errorMessage, isAbort } from '../api/client';
import type { TokenizeResponse } from '../api/types';

export interface TokenizeOptions {
  /** The model in service (`modelKey`): nothing is asked without one. */
  model: string | null;
  chat?: boolean;
  /** false: the bare text, without the BOS (a token string); the server's default is true. */
  special?: boolean;
}

export interface Tokenized {
  /** The last answer, or null (none yet, or the last request failed). */
  value: TokenizeResponse | null;
  /** Why the last request failed, or null. */
  error: string | null;
  /** Whether `value` or `error` are for the text and options as they are now. */
  current: boolean;
  /** The text is being tokenized: asked, and its answer not in yet. */
  pending: boolean;
}

/** How long the typing must pause before the text is sent. */
export const TOKENIZE_DELAY_MS = 250;

/** `text` tokenized; null asks nothing (a field that is empty or not in use). */
export function useTokenize(text: string | null, { model, chat = false, special = true }: TokenizeOptions): Tokenized {
  const key = text === null || model === null ? null : JSON.stringify([text, model, chat, special]);
  const [answer, setAnswer] = useState<{ key: string; value: TokenizeResponse | null; error: string | null } | null>(null);

  useEffect(() => {
    if (key === null || text === null) return;
    const controller = new AbortController();
    const timer = window.setTimeout(() => {
      api
        .tokenize({ text, apply_chat_template: chat, add_special_tokens: special }, controller.signal)
        .then((value) => setAnswer({ key, value, error: null }))
        .catch((err: unknown) => {
          if (!isAbort(err)) setAnswer({ key, value: null, error: errorMessage(err) });
        });
    }, TOKENIZE_DELAY_MS);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
  }, [key, text, chat, special]);

  if (key === null) return { value: null, error: null, current: false, pending: false };
  const current = answer?.key === key;
  return { value: answer?.value ?? null, error: answer?.error ?? null, current, pending: !current };
}
