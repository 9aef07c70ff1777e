// The Patching view's state: the two texts and their tokens (counted live: a sweep pairs them
// position by position), the hook, the metric and its tokens (each checked to be one token), the
// positions, and the sweep in progress (request id, Stop, its `patching` progress) or on screen.
import { useState } from 'react';
import { api, isAbort } from '../api/client';
import { refusalMessage } from '../lib/refusals';
import type { PatchHook, PatchRequest, PatchResponse } from '../api/types';
import { countMismatch, parsePositions, positionsError } from '../lib/patch';
import { modelKey } from '../lib/status';
import type { ModelLoader } from './useModelLoader';
import { useStoppableRequest, type RequestStatus } from './useStoppableRequest';
import { useTokenField, type TokenField } from './useTokenField';
import { useTokenize, type Tokenized } from './useTokenize';

export type MetricType = PatchRequest['metric']['type'];

/** A metric token field: what is typed, and what it reads as. */
export type MetricTokenField = TokenField;

/** A sweep on screen, with the model and texts it was made with. */
export interface ShownPatch {
  res: PatchResponse;
  request: PatchRequest;
  modelName: string;
}

export interface PatchingState {
  open: boolean;
  setOpen: (v: boolean) => void;
  clean: string;
  setClean: (v: string) => void;
  corrupted: string;
  setCorrupted: (v: string) => void;
  cleanTokens: Tokenized;
  corruptedTokens: Tokenized;
  /** Both texts are counted as they are now, and the counts differ: said in words. */
  mismatch: string | null;
  chat: boolean;
  setChat: (v: boolean) => void;
  /** Whether the model in service has a chat template to apply. */
  chatAvailable: boolean;
  hook: PatchHook;
  setHook: (h: PatchHook) => void;
  metricType: MetricType;
  setMetricType: (m: MetricType) => void;
  correct: MetricTokenField;
  wrong: MetricTokenField;
  token: MetricTokenField;
  allPositions: boolean;
  setAllPositions: (v: boolean) => void;
  positions: string;
  setPositions: (v: string) => void;
  /** Why the positions typed cannot be sent, or null. */
  positionsError: string | null;
  runDisabledReason: string | null;
  run: () => Promise<void>;
  /** The sweep in progress (Stop cancels it; what was on screen stays), or the last one. */
  request: RequestStatus;
  shown: ShownPatch | null;
}

export const DEFAULT_CLEAN = 'The capital of France is';
export const DEFAULT_CORRUPTED = 'The capital of Spain is';

export function usePatching(loader: ModelLoader): PatchingState {
  const { model, modelBusy, status, subscribeRunProgress } = loader;
  const [open, setOpen] = useState(false);
  const [clean, setClean] = useState(DEFAULT_CLEAN);
  const [corrupted, setCorrupted] = useState(DEFAULT_CORRUPTED);
  const [chat, setChat] = useState(false);
  const [hook, setHook] = useState<PatchHook>('resid_pre');
  const [metricType, setMetricType] = useState<MetricType>('logit_diff');
  const [allPositions, setAllPositions] = useState(true);
  const [positions, setPositions] = useState('');
  const [shown, setShown] = useState<ShownPatch | null>(null);
  const [runError, setRunError] = useState<string | null>(null);
  const request = useStoppableRequest(subscribeRunProgress);

  // Nothing is asked of the server while the view is closed.
  const key = open ? modelKey(model) : null;
  const chatOn = chat && loader.chatAvailable;
  const cleanTokens = useTokenize(clean.trim() ? clean : null, { model: key, chat: chatOn });
  const corruptedTokens = useTokenize(corrupted.trim() ? corrupted : null, { model: key, chat: chatOn });
  const correct = useTokenField('correct', { inUse: metricType === 'logit_diff', model: key });
  const wrong = useTokenField('wrong', { inUse: metricType === 'logit_diff', model: key });
  const token = useTokenField('metric', { inUse: metricType === 'prob', model: key });

  const cleanCount = cleanTokens.current ? cleanTokens.value?.ids.length : undefined;
  const corruptedCount = corruptedTokens.current ? corruptedTokens.value?.ids.length : undefined;
  const mismatch = cleanCount !== undefined && corruptedCount !== undefined ? countMismatch(cleanCount, corruptedCount) : null;

  const parsedPositions = allPositions ? null : parsePositions(positions);
  const positionsProblem = !parsedPositions ? null : !parsedPositions.ok ? parsedPositions.error : cleanCount !== undefined ? positionsError(parsedPositions.value, cleanCount) : null;

  const metricFields = metricType === 'logit_diff' ? [correct, wrong] : [token];
  const missing = metricFields.some((f) => f.value === null && !f.error);
  const runDisabledReason = !status
    ? 'Connecting to the server…'
    : modelBusy
      ? 'A model is loading: patch once it is ready'
      : !model
        ? 'No model is loaded: choose one in the header'
        : !clean.trim() || !corrupted.trim()
          ? 'Type a clean and a corrupted text'
          : mismatch
            ? 'The two texts need the same number of tokens'
            : (metricFields.find((f) => f.error)?.error ??
              (missing ? (metricType === 'logit_diff' ? 'Type the correct and the wrong token of the metric' : 'Type the token whose probability to measure') : positionsProblem));

  const run = async () => {
    if (runDisabledReason) return;
    const metric: PatchRequest['metric'] =
      metricType === 'logit_diff' ? { type: 'logit_diff', correct: correct.value!, wrong: wrong.value! } : { type: 'prob', token: token.value! };
    const req: PatchRequest = {
      clean_text: clean,
      corrupted_text: corrupted,
      hook,
      metric,
      positions: parsedPositions?.ok ? parsedPositions.value : 'all',
      apply_chat_template: chatOn,
    };
    const t = request.begin();
    setRunError(null);
    try {
      const res = await api.patch(req, { signal: t.signal, requestId: t.id });
      if (!t.isCurrent()) return;
      setShown({ res, request: req, modelName: model?.model_name ?? '' });
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return;
      setRunError(refusalMessage(err, 'the sweep'));
    } finally {
      request.end(t);
    }
  };

  return {
    open,
    setOpen,
    clean,
    setClean,
    corrupted,
    setCorrupted,
    cleanTokens,
    corruptedTokens,
    mismatch,
    chat,
    setChat,
    chatAvailable: loader.chatAvailable,
    hook,
    setHook,
    metricType,
    setMetricType,
    correct,
    wrong,
    token,
    allPositions,
    setAllPositions,
    positions,
    setPositions,
    positionsError: positionsProblem,
    runDisabledReason,
    run,
    request: { running: request.running, stopped: request.stopped, progress: request.progress, stop: request.stop, error: runError },
    shown,
  };
}
