// The SAE quality view's state: the evaluation shown (the server's last one for the model in
// service, fetched when the view opens, or one just run), the form (a .txt corpus or sampled
// documents, max tokens), and the evaluation in progress: stoppable, its progress on /events.
import { useEffect, useState } from 'react';
import { api, errorMessage, isAbort } from '../api/client';
import type { SaeEvalReport } from '../api/types';
import { parseMaxTokens } from '../lib/lensEval';
import { shortModelName } from '../lib/models';
import { refusalMessage } from '../lib/refusals';
import { modelKey } from '../lib/status';
import { useCorpusChoice, type CorpusChoiceState } from './useCorpusChoice';
import type { ModelLoader } from './useModelLoader';
import { useStoppableRequest, type RequestStatus } from './useStoppableRequest';

export interface SaeEvalState {
  open: boolean;
  setOpen: (v: boolean) => void;
  /** The evaluation on screen and whether it was run now or is the server's last. */
  shown: { report: SaeEvalReport; source: 'server' | 'run' } | null;
  fetching: boolean;
  /** Why there is nothing to show yet, or null. */
  serverNote: string | null;
  corpus: CorpusChoiceState;
  maxTokens: string;
  setMaxTokens: (v: string) => void;
  runDisabledReason: string | null;
  run: () => Promise<void>;
  request: RequestStatus;
}

export function useSaeEval(loader: ModelLoader): SaeEvalState {
  const { model, modelBusy, status, subscribeRunProgress } = loader;
  const [open, setOpen] = useState(false);
  const [shown, setShown] = useState<SaeEvalState['shown']>(null);
  const [fetching, setFetching] = useState(false);
  const [serverNote, setServerNote] = useState<string | null>(null);
  const [maxTokens, setMaxTokens] = useState('64');
  const [runError, setRunError] = useState<string | null>(null);
  const corpus = useCorpusChoice();
  const request = useStoppableRequest(subscribeRunProgress);
  const key = modelKey(model);
  const modelName = model?.model_name ?? null;
  const saes = model?.saes?.length ?? 0;

  useEffect(() => {
    if (!open) return;
    setShown((s) => (s && s.report.model_name !== modelName ? null : s));
    if (!key) {
      setServerNote(status ? 'No model is in service: load one and attach SAEs to measure them.' : null);
      return;
    }
    const controller = new AbortController();
    setFetching(true);
    setServerNote(null);
    api
      .lastSaeEval(controller.signal)
      .then((res) => {
        if (controller.signal.aborted) return;
        if (res === null) {
          setShown((s) => (s?.source === 'server' ? null : s));
          setServerNote(`No SAE evaluation has been made with ${shortModelName(modelName ?? '')} yet: run one below.`);
          return;
        }
        setShown((s) => (s && s.source === 'run' && s.report.model_name === res.model_name ? s : { report: res, source: 'server' }));
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted || isAbort(err)) return;
        setServerNote(`Could not fetch the last SAE evaluation: ${errorMessage(err)}`);
      })
      .finally(() => {
        if (!controller.signal.aborted) setFetching(false);
      });
    return () => {
      controller.abort();
      setFetching(false);
    };
    // The model's key decides when to fetch; `status` only tells "no status yet" from "no model".
  }, [open, key, modelName, !!status]);

  const run = async () => {
    const fields = corpus.fields();
    if (!fields.ok) return setRunError(fields.error);
    const mt = parseMaxTokens(maxTokens);
    if (!mt.ok) return setRunError(mt.error);
    const t = request.begin();
    setRunError(null);
    try {
      const res = await api.evalSae({ ...fields.value, max_tokens: mt.value }, { signal: t.signal, requestId: t.id });
      if (!t.isCurrent()) return;
      setShown({ report: res, source: 'run' });
      setServerNote(null);
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return;
      setRunError(refusalMessage(err, 'the evaluation'));
    } finally {
      request.end(t);
    }
  };

  const runDisabledReason = !status
    ? 'Connecting to the server…'
    : modelBusy
      ? 'A model is loading: evaluate once it is ready'
      : !model
        ? 'No model is loaded: choose one in the header'
        : saes === 0
          ? 'Attach an SAE first (SAEs in the header)'
          : null;

  return {
    open,
    setOpen,
    shown,
    fetching,
    serverNote,
    corpus,
    maxTokens,
    setMaxTokens,
    runDisabledReason,
    run,
    request: { running: request.running, stopped: request.stopped, progress: request.progress, stop: request.stop, error: runError },
  };
}
