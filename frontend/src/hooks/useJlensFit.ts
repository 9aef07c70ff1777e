// Fitting a Jacobian lens from the page: the form (a corpus typed or read from a file, or documents
// the model samples; max prompts, max sequence length, positions skipped, dimensions per backward
// pass), the fit in progress (its id on /events, whose `fitting` events are its progress; Stop
// aborts it, and the server keeps a checkpoint), the checkpoint a stopped fit left (GET /fit_jlens,
// which Resume continues), and the last fit's answer: the file it was saved to, and the lens now
// attached to the model in service.
import { useCallback, useEffect, useState } from 'react';
import { api, errorMessage, isAbort } from '../api/client';
import type { FitJlensCheckpoint, FitJlensRequest, FitJlensResponse, RunProgress } from '../api/types';
import { readFileText } from '../lib/download';
import { describeFitProgress, FIT_DEFAULTS, fitRequest, resumeRequest, type FitFormValues } from '../lib/jlensFit';
import type { RunProgressView } from '../lib/progress';
import { countDocuments } from '../lib/lensEval';
import { refusalMessage } from '../lib/refusals';
import { modelKey } from '../lib/status';
import type { ModelLoader } from './useModelLoader';
import { useStoppableRequest, type RequestStatus } from './useStoppableRequest';

/** A fit that ended: the server's answer, and the model it was made with. */
export interface FitResult {
  res: FitJlensResponse;
  modelName: string;
  /** It continued a checkpoint. */
  resumed: boolean;
}

export interface JlensFitState {
  form: FitFormValues;
  set: (patch: Partial<FitFormValues>) => void;
  /** The file the corpus was read from, until it is edited. */
  corpusFile: string | null;
  readCorpusFile: (f: File) => Promise<void>;
  /** Documents in the corpus, counted as the server does. */
  documents: number;
  /** Why Fit cannot start, or null. */
  runDisabledReason: string | null;
  /**
   * Fits (or, with `resume`, continues the checkpoint kept on the server, with its settings);
   * failures are kept in `request.error`.
   */
  run: (resume?: boolean) => Promise<void>;
  /** Why Resume cannot continue the checkpoint (its corpus not typed again), or null. */
  resumeDisabledReason: string | null;
  /** The fit's progress in words: which prompt, from the passes its events count. */
  describeProgress: (p: RunProgress | null) => RunProgressView;
  /** Which button started the fit in progress. */
  resuming: boolean;
  request: RequestStatus;
  /** The checkpoint a stopped fit left on the server, or null. */
  checkpoint: FitJlensCheckpoint | null;
  /** Why the checkpoint could not be asked for, or null. */
  checkpointError: string | null;
  result: FitResult | null;
}

/** The stages of a fit's progress: waiting its turn, sampling a corpus, fitting. */
const FIT_STAGES = ['queued', 'sampling', 'fitting'] as const;

/** The server's dim batch when a request leaves it out. */
const FIT_DEFAULT_DIM_BATCH = 8;

/** After a Stop, the waits (ms) before asking again for the checkpoint the server writes as it stops. */
const STOP_POLLS = [300, 700, 1500, 3000];

export function useJlensFit(loader: Pick<ModelLoader, 'model' | 'modelBusy' | 'status' | 'subscribeRunProgress' | 'refreshStatus'>, { open }: { open: boolean }): JlensFitState {
  const { model, modelBusy, status, refreshStatus } = loader;
  const [form, setForm] = useState<FitFormValues>(FIT_DEFAULTS);
  const [corpusFile, setCorpusFile] = useState<string | null>(null);
  const [checkpoint, setCheckpoint] = useState<FitJlensCheckpoint | null>(null);
  const [checkpointError, setCheckpointError] = useState<string | null>(null);
  const [result, setResult] = useState<FitResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [resuming, setResuming] = useState(false);
  // The passes per prompt of the fit in progress: the model's width and the request's dim batch.
  const [shape, setShape] = useState<{ hiddenSize: number; dimBatch: number } | null>(null);
  const request = useStoppableRequest(loader.subscribeRunProgress);
  const key = modelKey(model);

  const fetchCheckpoint = useCallback(async (signal?: AbortSignal) => {
    try {
      const c = await api.fitCheckpoint(signal);
      if (signal?.aborted) return;
      setCheckpoint(c ?? null);
      setCheckpointError(null);
    } catch (err) {
      if (isAbort(err) || signal?.aborted) return;
      setCheckpoint(null);
      setCheckpointError(`Could not ask for a kept checkpoint: ${errorMessage(err)}`);
    }
  }, []);

  // The checkpoint kept for the model in service, when the view opens and when another model comes.
  useEffect(() => {
    if (!open || !key) {
      setCheckpoint(null);
      return;
    }
    const controller = new AbortController();
    void fetchCheckpoint(controller.signal);
    return () => controller.abort();
  }, [open, key, fetchCheckpoint]);

  // Stopped: the server keeps what it fitted so far once the fit has seen the Stop, a moment
  // later; asked until it is there, for Resume.
  const { stopped } = request;
  useEffect(() => {
    if (!stopped) return;
    const controller = new AbortController();
    let timer = 0;
    const ask = async (attempt: number) => {
      const c = await api.fitCheckpoint(controller.signal).catch(() => null);
      if (controller.signal.aborted) return;
      if (c || attempt >= STOP_POLLS.length) {
        setCheckpoint(c ?? null);
        return;
      }
      timer = window.setTimeout(() => void ask(attempt + 1), STOP_POLLS[attempt]);
    };
    void ask(0);
    return () => {
      controller.abort();
      window.clearTimeout(timer);
    };
  }, [stopped]);

  const set = (patch: Partial<FitFormValues>) => {
    setForm((f) => ({ ...f, ...patch }));
    if (patch.corpus !== undefined) setCorpusFile(null);
    setError(null);
  };

  const readCorpusFile = async (f: File) => {
    try {
      const text = await readFileText(f);
      setForm((old) => ({ ...old, source: 'corpus', corpus: text }));
      setCorpusFile(f.name);
      setError(null);
    } catch (err) {
      setError(`Could not read ${f.name}: ${errorMessage(err)}`);
    }
  };

  const checked = fitRequest(form);
  const runDisabledReason = !status
    ? 'Connecting to the server…'
    : modelBusy
      ? 'A model is loading: fit once it is ready'
      : !model
        ? 'No model is loaded: choose one in the header'
        : checked.ok
          ? null
          : checked.error;

  const resumed = checkpoint ? resumeRequest(form, checkpoint) : null;
  const serverReason = !status ? 'Connecting to the server…' : modelBusy ? 'A model is loading: fit once it is ready' : !model ? 'No model is loaded: choose one in the header' : null;
  const resumeDisabledReason = serverReason ?? (resumed && !resumed.ok ? resumed.error : null);

  const run = async (resume = false) => {
    let req: FitJlensRequest;
    if (resume) {
      if (resumeDisabledReason || !resumed?.ok) return;
      req = resumed.value;
    } else {
      if (runDisabledReason || !checked.ok) return;
      req = { ...checked.value, resume: false };
    }
    if (!model) return;
    const t = request.begin(FIT_STAGES);
    setResuming(resume);
    setShape({ hiddenSize: model.hidden_size, dimBatch: req.dim_batch ?? FIT_DEFAULT_DIM_BATCH });
    setError(null);
    try {
      const res = await api.fitJlens(req, { signal: t.signal, requestId: t.id });
      if (!t.isCurrent()) return;
      setResult({ res, modelName: model.model_name, resumed: resume });
      setCheckpoint(null);
      // The server attached the lens: the header and the lens select follow now, not at the next event.
      await refreshStatus();
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return;
      setError(refusalMessage(err, 'the fit'));
    } finally {
      request.end(t);
    }
  };

  return {
    form,
    set,
    corpusFile,
    readCorpusFile,
    documents: countDocuments(form.corpus),
    runDisabledReason,
    run,
    resumeDisabledReason,
    describeProgress: (p) => describeFitProgress(p, shape, 'Starting the fit…'),
    resuming,
    request: { running: request.running, stopped: request.stopped, progress: request.progress, stop: request.stop, error },
    checkpoint,
    checkpointError,
    result,
  };
}
