// The SAE feature card's state: the feature shown (an SAE's, from a grid cell), what POST
// /sae_features says of it (its top and bottom tokens, and its activation over the run on screen,
// by the run's id), and a corpus scan (POST /sae_feature_corpus): stoppable, its progress on
// /events, its answer the firing frequency, the largest activation and the strongest contexts.
import { useRef, useState } from 'react';
import { api, errorMessage, isAbort } from '../api/client';
import type { SaeCorpusReport, SaeFeaturesResponse } from '../api/types';
import { parseMaxTokens } from '../lib/lensEval';
import { refusalMessage } from '../lib/refusals';
import type { ModelLoader } from './useModelLoader';
import type { RunState } from './useRun';
import { useCorpusChoice, type CorpusChoiceState } from './useCorpusChoice';
import { useStoppableRequest, type RequestStatus } from './useStoppableRequest';

export interface SaeFeatureTarget {
  sae: string;
  feature: number;
  /** The run it was opened from (its activations are read from it), and its tokens. */
  runId?: number;
  tokens: string[] | null;
  /** The position it was opened at. */
  position?: number;
}

export interface SaeFeatureState {
  target: SaeFeatureTarget | null;
  /** Opens the card on a feature of the run on screen. */
  open: (t: { sae: string; feature: number; position?: number }) => void;
  close: () => void;
  data: SaeFeaturesResponse | null;
  loading: boolean;
  /** Why /sae_features failed, or null. */
  error: string | null;
  corpus: CorpusChoiceState;
  maxTokens: string;
  setMaxTokens: (v: string) => void;
  scan: () => Promise<void>;
  scanDisabledReason: string | null;
  /** The scan in progress (Stop cancels it), or the last one. */
  request: RequestStatus;
  report: SaeCorpusReport | null;
}

export function useSaeFeature(loader: ModelLoader, run: Pick<RunState, 'view'>): SaeFeatureState {
  const [target, setTarget] = useState<SaeFeatureTarget | null>(null);
  const [data, setData] = useState<SaeFeaturesResponse | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [maxTokens, setMaxTokens] = useState('64');
  const [report, setReport] = useState<SaeCorpusReport | null>(null);
  const [scanError, setScanError] = useState<string | null>(null);
  const corpus = useCorpusChoice();
  const request = useStoppableRequest(loader.subscribeRunProgress);
  // The feature the card is on: an answer for another (opened meanwhile) is dropped.
  const currentRef = useRef<SaeFeatureTarget | null>(null);

  const open = (t: { sae: string; feature: number; position?: number }) => {
    const view = run.view;
    const next: SaeFeatureTarget = { ...t, runId: view?.runId, tokens: view?.tokens ?? null };
    currentRef.current = next;
    setTarget(next);
    setData(null);
    setError(null);
    setReport(null);
    setScanError(null);
    request.stop();
    setLoading(true);
    api
      .saeFeatures({ sae: t.sae, features: [t.feature], k: 10, ...(next.runId !== undefined ? { run_id: next.runId } : {}) })
      .then((res) => {
        if (currentRef.current === next) setData(res);
      })
      .catch((err: unknown) => {
        if (currentRef.current === next) setError(errorMessage(err));
      })
      .finally(() => {
        if (currentRef.current === next) setLoading(false);
      });
  };

  const close = () => {
    request.stop();
    currentRef.current = null;
    setTarget(null);
  };

  const scan = async () => {
    if (!target) return;
    const fields = corpus.fields();
    if (!fields.ok) return setScanError(fields.error);
    const mt = parseMaxTokens(maxTokens);
    if (!mt.ok) return setScanError(mt.error);
    const t = request.begin();
    setScanError(null);
    try {
      const res = await api.saeFeatureCorpus({ sae: target.sae, feature: target.feature, ...fields.value, max_tokens: mt.value, contexts: 10, window: 8 }, { signal: t.signal, requestId: t.id });
      if (t.isCurrent()) setReport(res);
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return;
      setScanError(refusalMessage(err, 'the scan'));
    } finally {
      request.end(t);
    }
  };

  const scanDisabledReason = !loader.model ? 'No model is loaded' : loader.modelBusy ? 'A model is loading' : null;

  return {
    target,
    open,
    close,
    data,
    loading,
    error,
    corpus,
    maxTokens,
    setMaxTokens,
    scan,
    scanDisabledReason,
    request: { running: request.running, stopped: request.stopped, progress: request.progress, stop: request.stop, error: scanError },
    report,
  };
}
