// The lens vector view's state: a token (checked live to be one token), how many tokens to list,
// and POST /lens_vector: at each layer the attached Jacobian lens covers, what the token's lens
// vector v = J_ℓᵀ W_U[:, token] says when read back through the model's own head (its top tokens),
// and its norm. One request at a time, stoppable; a lens cell's top token (or a token of the table)
// can ask at once.
import { useState } from 'react';
import { api, isAbort } from '../api/client';
import type { LensVectorResponse } from '../api/types';
import { refusalMessage } from '../lib/refusals';
import { modelKey } from '../lib/status';
import type { ModelLoader } from './useModelLoader';
import { useStoppableRequest, type RequestStatus } from './useStoppableRequest';
import { useTokenField, type TokenField } from './useTokenField';

/** What the view shows: the answer, with the model and lens it was read from. */
export interface ShownLensVector {
  res: LensVectorResponse;
  modelName: string;
  /** The Jacobian lens's file ('' for one fitted here and not saved). */
  lensPath: string;
  k: number;
}

export interface LensVectorState {
  token: TokenField;
  k: string;
  setK: (k: string) => void;
  /** Why Show cannot ask now, or null. */
  runDisabledReason: string | null;
  run: () => Promise<void>;
  /** Fills the field with a token (by its id, exactly) and asks at once: a lens cell's top token. */
  show: (t: { tokenId: number }) => void;
  request: RequestStatus;
  shown: ShownLensVector | null;
  /** Counts the `show` calls: the view comes into sight on each. */
  revealed: number;
}

export const DEFAULT_K = '10';

/** k as typed: a whole number from 1 to 50 (the server's bounds). */
export function parseK(text: string): number | null {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return null;
  const k = Number(t);
  return k >= 1 && k <= 50 ? k : null;
}

export function useLensVector(loader: Pick<ModelLoader, 'model' | 'modelBusy' | 'status' | 'subscribeRunProgress'>, { open }: { open: boolean }): LensVectorState {
  const { model, modelBusy, status } = loader;
  const jacobian = model?.jacobian_lens ?? null;
  const token = useTokenField('lens vector', { inUse: open && jacobian !== null, model: modelKey(model), need: 'a lens vector is a single token’s' });
  const [k, setK] = useState(DEFAULT_K);
  const [shown, setShown] = useState<ShownLensVector | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [revealed, setRevealed] = useState(0);
  const request = useStoppableRequest(loader.subscribeRunProgress);

  const reasonFor = (t: unknown) =>
    !status
      ? 'Connecting to the server…'
      : modelBusy
        ? 'A model is loading: ask once it is ready'
        : !model
          ? 'No model is loaded: choose one in the header'
          : !jacobian
            ? 'No Jacobian lens is attached: attach its file under Lenses in the header, or fit one below.'
            : parseK(k) === null
              ? 'List 1 to 50 tokens per layer'
              : t === null
                ? 'Type a token: a token string (␣Paris is " Paris") or a token id'
                : null;
  const runDisabledReason = token.error ?? reasonFor(token.value);

  const ask = async (t: string | number) => {
    const kk = parseK(k);
    if (!model || !jacobian || kk === null) return;
    const ticket = request.begin();
    setError(null);
    try {
      const res = await api.lensVector({ token: t, k: kk }, ticket.signal);
      if (!ticket.isCurrent()) return;
      setShown({ res, modelName: model.model_name, lensPath: jacobian.path, k: kk });
    } catch (err) {
      if (!ticket.isCurrent() || isAbort(err)) return;
      setError(refusalMessage(err, 'it'));
    } finally {
      request.end(ticket);
    }
  };

  const run = async () => {
    if (runDisabledReason || token.value === null) return;
    await ask(token.value);
  };

  const show = ({ tokenId }: { tokenId: number }) => {
    token.set(String(tokenId));
    setRevealed((n) => n + 1);
    if (reasonFor(tokenId) === null) void ask(tokenId);
  };

  return {
    token,
    k,
    setK,
    runDisabledReason,
    run,
    show,
    request: { running: request.running, stopped: request.stopped, progress: request.progress, stop: request.stop, error },
    shown,
    revealed,
  };
}
