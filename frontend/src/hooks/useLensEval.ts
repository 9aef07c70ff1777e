// The Lens quality view's state: which evaluation is on screen (the server's last one for the
// model in service, one just run, or a file), the evaluation form (corpus, max tokens), and the
// evaluation in progress: its request id (sent as `x-logitlens-request`, so its "documents"
// events on /events can be told apart), its AbortController (Stop cancels it on the server), and
// its progress, kept in a store only the progress bar reads.
import { useCallback, useEffect, useState } from 'react';
import { api, errorMessage, isAbort } from '../api/client';
import { readFileText } from '../lib/download';
import { refusalMessage } from '../lib/refusals';
import { countDocuments, parseEvalFile, parseMaxTokens, type EvalData } from '../lib/lensEval';
import { shortModelName } from '../lib/models';
import { modelKey } from '../lib/status';
import { useStoppableRequest, type RequestStatus } from './useStoppableRequest';
import type { ModelLoader } from './useModelLoader';

/** Where the evaluation on screen came from. */
export type EvalSource = { kind: 'server' } | { kind: 'run' } | { kind: 'file'; name: string };

export interface ShownEval {
  data: EvalData;
  source: EvalSource;
}

export const DEFAULT_MAX_TOKENS = '128';

export interface LensEvalState {
  /** The view is open: the server's last evaluation is fetched then, and again when the model changes. */
  open: boolean;
  setOpen: (v: boolean) => void;
  shown: ShownEval | null;
  /** GET /eval_lens is under way. */
  fetching: boolean;
  /** Why the server has no evaluation to show (none made yet with this model, no model, an error), or null. */
  serverNote: string | null;
  corpus: string;
  setCorpus: (v: string) => void;
  /** The file the corpus was read from, until it is edited. */
  corpusFile: string | null;
  /** Reads a text file into the corpus. */
  readCorpusFile: (f: File) => Promise<void>;
  /** Documents in the corpus, counted as the server does. */
  documents: number;
  maxTokens: string;
  setMaxTokens: (v: string) => void;
  /** Why Run evaluation is disabled, or null. */
  runDisabledReason: string | null;
  /** Evaluates the corpus with the model in service; failures are kept in `request.error`. */
  run: () => Promise<void>;
  /** The evaluation in progress (Stop cancels it; what was on screen stays), or the last one. */
  request: RequestStatus;
  /** Opens an evaluation file (`eval-lens --json`, or a report); a file that is not one is said in `fileError`. */
  openFile: (f: File) => Promise<void>;
  fileError: string | null;
}

export function useLensEval(loader: ModelLoader): LensEvalState {
  const { model, modelBusy, status, subscribeRunProgress } = loader;
  const [open, setOpen] = useState(false);
  const [shown, setShown] = useState<ShownEval | null>(null);
  const [fetching, setFetching] = useState(false);
  const [serverNote, setServerNote] = useState<string | null>(null);
  const [corpus, setCorpusState] = useState('');
  const [corpusFile, setCorpusFile] = useState<string | null>(null);
  const [maxTokens, setMaxTokens] = useState(DEFAULT_MAX_TOKENS);
  const [runError, setRunError] = useState<string | null>(null);
  const [fileError, setFileError] = useState<string | null>(null);

  const request = useStoppableRequest(subscribeRunProgress);

  // The server keeps its last evaluation per model loaded.
  const key = modelKey(model);
  const modelName = model?.model_name ?? null;
  const connected = status !== null;

  // The server's last evaluation, when the view opens and whenever another model comes into
  // service. A file the user opened stays; what came from the server (or was run) with another
  // model goes.
  useEffect(() => {
    if (!open) return;
    setShown((s) => (s && s.source.kind !== 'file' && s.data.model_name !== undefined && s.data.model_name !== modelName ? null : s));
    if (!key) {
      setServerNote(connected ? 'No model is in service: load one to evaluate its lenses, or open an evaluation file.' : null);
      return;
    }
    const controller = new AbortController();
    setFetching(true);
    setServerNote(null);
    api
      .lastEval(controller.signal)
      .then((res) => {
        if (controller.signal.aborted) return;
        if (res === null) {
          // None yet with this model: what the server showed before was another model's.
          setShown((s) => (s?.source.kind === 'server' ? null : s));
          setServerNote(
            `No lens evaluation has been made with ${shortModelName(modelName ?? '')} yet: run one below over a corpus (one document per line), or open the output of “logitlens eval-lens --json”.`,
          );
          return;
        }
        // An evaluation run or opened meanwhile is newer than the server's last.
        setShown((s) => (s && s.source.kind !== 'server' && (s.source.kind === 'file' || s.data.model_name === res.model_name) ? s : { data: res, source: { kind: 'server' } }));
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted || isAbort(err)) return;
        setServerNote(`Could not fetch the last evaluation: ${errorMessage(err)}`);
      })
      .finally(() => {
        if (!controller.signal.aborted) setFetching(false);
      });
    return () => {
      controller.abort();
      setFetching(false);
    };
    // The model's key decides when to fetch (a status event that changes nothing else must not);
    // `connected` only tells "no status yet" from "no model".
  }, [open, key, connected, modelName]);

  const setCorpus = useCallback((v: string) => {
    setCorpusState(v);
    setCorpusFile(null);
    setRunError(null);
  }, []);

  const readCorpusFile = async (f: File) => {
    try {
      const text = await readFileText(f);
      setCorpusState(text);
      setCorpusFile(f.name);
      setRunError(null);
    } catch (err) {
      setRunError(`Could not read ${f.name}: ${errorMessage(err)}`);
    }
  };

  const documents = countDocuments(corpus);

  const run = async () => {
    const mt = parseMaxTokens(maxTokens);
    if (!mt.ok) {
      setRunError(mt.error);
      return;
    }
    const t = request.begin();
    setRunError(null);
    try {
      const res = await api.evalLens({ corpus, max_tokens: mt.value }, { signal: t.signal, requestId: t.id });
      if (!t.isCurrent()) return;
      setShown({ data: res, source: { kind: 'run' } });
      setServerNote(null);
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return;
      setRunError(refusalMessage(err, 'the evaluation'));
    } finally {
      request.end(t);
    }
  };

  const openFile = async (f: File) => {
    let text: string;
    try {
      text = await readFileText(f);
    } catch (err) {
      setFileError(`Could not read ${f.name}: ${errorMessage(err)}`);
      return;
    }
    const parsed = parseEvalFile(text, f.name);
    if (!parsed.ok) {
      setFileError(parsed.error);
      return;
    }
    setFileError(null);
    setShown({ data: parsed.value, source: { kind: 'file', name: f.name } });
  };

  const runDisabledReason = !status
    ? 'Connecting to the server…'
    : modelBusy
      ? 'A model is loading: evaluate once it is ready'
      : !model
        ? 'No model is loaded: choose one in the header'
        : documents === 0
          ? 'Type or choose a corpus first: one document per line'
          : null;

  return {
    open,
    setOpen,
    shown,
    fetching,
    serverNote,
    corpus,
    setCorpus,
    corpusFile,
    readCorpusFile,
    documents,
    maxTokens,
    setMaxTokens,
    runDisabledReason,
    run,
    request: { running: request.running, stopped: request.stopped, progress: request.progress, stop: request.stop, error: runError },
    openFile,
    fileError,
  };
}
