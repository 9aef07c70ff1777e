// The run side of the page: the controls' inputs (text, lens type, interventions, run options,
// how many tokens to generate), POST /inference and POST /generate, and the run on screen with
// what the page says about it (stale, failed, stopped, busy). The run in progress (a run or a
// generation: one at a time) is this hook's: its request id (sent as `x-logitlens-request`), its
// AbortController (Stop), and its progress, which is the "run" events of /events
// (useModelLoader's stream) that carry that id, or a generation's own steps, kept in a small store
// so that only the progress indicator re-renders at each layer (`useRunProgress`). A generation's
// grid grows column by column as its steps arrive (`live`); its whole answer then becomes the run
// on screen, as an /inference answer does.
import { useMemo, useRef, useState } from 'react';
import { api, ApiError, errorMessage, isAbort } from '../api/client';
import { refusalMessage } from '../lib/refusals';
import { useStoppableRequest, type RunProgressStore } from './useStoppableRequest';

export { createProgressStore, useRunProgress, type RunProgressStore } from './useStoppableRequest';
import type { ActivationAnalysis, Backend, DiffCell, InferenceResult, Interventions, Lens, LensRow, LensType, Receipt, RunRequest, TrackedProb } from '../api/types';
import { attentionOfResponse, type AttentionTensor } from '../lib/attention';
import { addStep, DEFAULT_MAX_NEW_TOKENS, EMPTY_STREAM, generationOf, parseMaxNewTokens, type Generation, type StreamGrid } from '../lib/generate';
import { countInterventions, type InterventionContext } from '../lib/interventions';
import { effectiveLens, tunedLensUnavailable } from '../lib/lenses';
import { inferLayers } from '../lib/lensTypes';
import { shortModelName } from '../lib/models';
import { servingModel } from '../lib/status';
import { formatClock } from '../lib/time';
import { useNotify } from './useNotify';
import { optionFields, sameOptions, type RunOptionsValue } from '../lib/runOptions';
import type { ModelLoader } from './useModelLoader';

export const DEFAULT_TEXT = 'The capital of France is';

/**
 * A run on screen: a fresh inference, or a session's (re-run, or only its saved results). The
 * client's own: what the server answered, with what was asked and where it came from.
 */
export interface RunView {
  request: RunRequest;
  rows: LensRow[];
  tokens: string[] | null;
  tensor: AttentionTensor | null;
  modelName: string;
  backend: Backend;
  source: { kind: 'inference' } | { kind: 'session'; name: string; savedOnly: boolean };
  /** The server's id for this run, so Save stores what is on screen. */
  runId?: number;
  /** The same text without interventions (`compare`). */
  baselineRows?: LensRow[] | null;
  diff?: DiffCell[][] | null;
  tracked?: TrackedProb[][][] | null;
  entropy?: number[][] | null;
  analysis?: ActivationAnalysis | null;
  /** What the server applied; absent for saved results and older servers. */
  receipts?: Receipt[] | null;
  /** The tuned lens's folder, when the tuned lens drew the rows (`request.lens` is `tuned`). */
  tunedLens?: string | null;
  /** A generation's: what was written after the prompt (the rows and tokens cover both). */
  generation?: Generation | null;
}

/** A generation in progress: what was asked, and the grid of the steps so far. */
export interface LiveGeneration {
  request: RunRequest;
  maxNewTokens: number;
  grid: StreamGrid;
}

/** The tuned lens the run options offer: the one attached to the model, and why it cannot be used now (else null). */
export interface TunedLensChoice {
  folder: string;
  disabledReason: string | null;
}

export interface RunReceipts {
  list: Receipt[];
  /** interventions of the displayed run */
  interventions: number;
  /** the controls changed since that run */
  stale: boolean;
}


export interface RunState {
  text: string;
  setText: (t: string) => void;
  lensType: LensType;
  setLensType: (l: LensType) => void;
  interventions: Interventions;
  setInterventions: (i: Interventions) => void;
  runOptions: RunOptionsValue;
  setRunOptions: (o: RunOptionsValue) => void;
  /** The tuned lens attached to the model in service, for the run options' lens select; null when none is. */
  tunedLens: TunedLensChoice | null;
  /** The lens the next run asks for: the choice when it can be used, else the logit lens. */
  lens: Lens;
  /** The run on screen. */
  view: RunView | null;
  /** Puts a run on screen without running (a session's saved results). */
  show: (v: RunView) => void;
  running: boolean;
  /** The progress of the run in progress (its own "run" events only). */
  progress: RunProgressStore;
  /** Stops the run in progress (aborts its request; the server stops between layers). */
  stop: () => void;
  /** The last run was stopped (until the next one starts); the run on screen is the one before. */
  stopped: boolean;
  /** Why the last run failed, or null. */
  runError: string | null;
  /** When the server said to try again after refusing a run as busy (503, ms since the epoch), or null. */
  retryAt: number | null;
  /**
   * Runs the controls as they are, `override` replacing fields; false when it failed (said in a
   * toast) or was stopped. A run started while another is in progress replaces it.
   */
  runInference: (override?: Partial<RunRequest>, source?: RunView['source']) => Promise<boolean>;
  /** Why Run is disabled, or null. */
  runDisabledReason: string | null;
  /** The max-new-tokens field, as typed. */
  maxNewTokens: string;
  setMaxNewTokens: (v: string) => void;
  /** What is wrong with the field, or null. */
  maxNewTokensError: string | null;
  /** Why Generate is disabled (Run's reasons, or the field), or null. */
  generateDisabledReason: string | null;
  /**
   * Generates from the controls as they are (`override` replacing fields; `maxNewTokens` the
   * field's when absent), streaming: `live` grows as the tokens are written, and the whole answer
   * becomes the run on screen. Like runInference: false when it failed or was stopped, and it
   * replaces a run in progress.
   */
  generate: (override?: Partial<RunRequest>, options?: { maxNewTokens?: number; source?: RunView['source'] }) => Promise<boolean>;
  /** What the request in progress, or the last one, is: a run or a generation. */
  requestKind: 'run' | 'generate';
  /** The generation in progress as its steps arrive, once its first has; else null. */
  live: LiveGeneration | null;
  /** What the interventions are checked against (layers, width, tokens of the text as it was run). */
  ctx: InterventionContext;
  /** Layers the controls offer: the model's, else the last known, else what the run implies (0: unknown). */
  layerOptions: number;
  /** The tokens of the current text, when the run on screen ran it as it is. */
  tokens: string[] | null;
  /** Why the run on screen may not match the controls or the model, or null. */
  staleNote: string | null;
  receipts: RunReceipts | null;
}

export function useRun(loader: ModelLoader): RunState {
  const { notify } = useNotify();
  const [text, setText] = useState(DEFAULT_TEXT);
  const [lensType, setLensType] = useState<LensType>('block_output');
  const [interventions, setInterventions] = useState<Interventions>({});
  const [runOptions, setRunOptions] = useState<RunOptionsValue>({ compare: false, analysis: false, track: [], lens: 'logit' });
  const [view, setView] = useState<RunView | null>(null);
  const [runError, setRunError] = useState<string | null>(null);
  const [retryAt, setRetryAt] = useState<number | null>(null);
  const [maxNewTokens, setMaxNewTokens] = useState(String(DEFAULT_MAX_NEW_TOKENS));
  const [requestKind, setRequestKind] = useState<'run' | 'generate'>('run');
  const [live, setLive] = useState<LiveGeneration | null>(null);
  const lastLayersRef = useRef<number | undefined>(undefined);

  const { status, model, connectionError, loaded, modelBusy, effectiveChat, subscribeRunProgress } = loader;
  const tunedFolder = model?.tuned_lens ?? null;
  // Only a request the server accepts: the tuned lens when one is attached and the lens type allows it.
  const lens = effectiveLens(runOptions.lens, tunedFolder, lensType);
  const tunedLens = useMemo(() => (tunedFolder ? { folder: tunedFolder, disabledReason: tunedLensUnavailable(lensType) } : null), [tunedFolder, lensType]);

  // Only the events of the run in progress count: other clients' runs, and a stopped or replaced
  // run of this page, are ignored.
  const request = useStoppableRequest(subscribeRunProgress);
  const { running, stopped, progress } = request;
  const stop = () => {
    request.stop();
    // A generation stopped midway is not a run the page can keep: the one before stays.
    setLive(null);
  };

  const buildRequest = (override?: Partial<RunRequest>): RunRequest => ({
    text,
    interventions,
    lens_type: lensType,
    apply_chat_template: effectiveChat,
    return_attention: true,
    // Half floats averaged over heads: about 1/30 of the nested JSON of every head (3 MB instead
    // of 96 MB for 200 tokens × 30 layers × 9 heads); a per-head view fetches its layer's heads.
    attention_format: 'f16',
    attention_reduce: 'head_mean',
    // Cheap next to the lens itself, and the grid's Entropy colour mode needs it.
    entropy: true,
    ...optionFields(runOptions),
    // Absent for the logit lens, the server's default.
    ...(lens === 'tuned' ? { lens } : {}),
    ...override,
  });

  /** Puts an answer on screen as the run, with what was asked and where it came from. */
  const showAnswer = (req: RunRequest, res: InferenceResult, source: RunView['source'] | undefined, generation: Generation | null) => {
    let tensor: AttentionTensor | null = null;
    try {
      tensor = attentionOfResponse(res);
    } catch (err) {
      // The lens results are still good: show them without attention.
      notify('error', errorMessage(err), 'Could not read the attention of this run');
    }
    const s = servingModel(loader.currentStatus());
    setView({
      request: req,
      rows: res.logit_lens,
      tokens: res.input_tokens ?? null,
      tensor,
      modelName: s?.model_name ?? loader.selectedModel,
      backend: s?.backend ?? loader.backend,
      source: source ?? { kind: 'inference' },
      runId: res.run_id,
      baselineRows: res.baseline_logit_lens ?? null,
      diff: res.diff ?? null,
      tracked: res.tracked ?? null,
      entropy: res.entropy ?? null,
      analysis: res.analysis ?? null,
      receipts: res.receipts ?? null,
      tunedLens: req.lens === 'tuned' ? (s?.tuned_lens ?? null) : null,
      generation,
    });
  };

  /** A 503 says when to try again: kept for the countdown under Run. */
  const noteRetry = (err: unknown): number | null => {
    if (!(err instanceof ApiError) || err.status !== 503 || err.retryAfter === null) return null;
    const at = Date.now() + err.retryAfter * 1000;
    setRetryAt(at);
    return at;
  };

  const runInference = async (override?: Partial<RunRequest>, source?: RunView['source']): Promise<boolean> => {
    const req = buildRequest(override);
    // A run started while another is in progress (a session's, Run again) replaces it.
    const t = request.begin();
    setRequestKind('run');
    setLive(null);
    setRunError(null);
    setRetryAt(null);
    try {
      const res = await api.inference(req, { signal: t.signal, requestId: t.id });
      // Stopped or replaced meanwhile: this answer is not the page's any more.
      if (!t.isCurrent()) return false;
      showAnswer(req, res, source, null);
      return true;
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return false;
      let msg = errorMessage(err);
      let title = 'Inference failed';
      if (err instanceof ApiError && err.status === 409) msg = `${msg}. Run again when the model is ready.`;
      if (err instanceof ApiError && err.status === 400 && /model not loaded/i.test(msg)) msg = `${msg}: choose a model in the header to load one.`;
      // Busy: too many runs wait for their turn. The detail says how many; Retry-After says when.
      if (err instanceof ApiError && err.status === 503) {
        title = 'The server is busy';
        const at = noteRetry(err);
        if (at !== null) msg = `${msg.replace(/[.\s]+$/, '')}. Run again after ${formatClock(at)}.`;
      }
      // Anything else (a memory budget or token limit refusal included) is the server's detail as it is.
      setRunError(msg);
      notify('error', msg, title);
      return false;
    } finally {
      request.end(t);
    }
  };

  const parsedMax = parseMaxNewTokens(maxNewTokens);
  const maxNewTokensError = parsedMax.ok ? null : parsedMax.error;

  const generate = async (override?: Partial<RunRequest>, options: { maxNewTokens?: number; source?: RunView['source'] } = {}): Promise<boolean> => {
    const max = options.maxNewTokens ?? (parsedMax.ok ? parsedMax.value : null);
    if (max === null) return false;
    const req = buildRequest(override);
    // Its bar counts the tokens written: the layers of each pass would only make it flicker.
    const t = request.begin(['queued', 'generating']);
    setRequestKind('generate');
    setLive(null);
    setRunError(null);
    setRetryAt(null);
    let grid = EMPTY_STREAM;
    try {
      const res = await api.generateStream(
        { ...req, max_new_tokens: max },
        {
          signal: t.signal,
          requestId: t.id,
          onStep: (step) => {
            if (!t.isCurrent()) return;
            const next = addStep(grid, step);
            // A grid with a hole in it would show tokens at the wrong positions: stop there.
            if (!next.ok) throw new Error(next.error);
            grid = next.value;
            setLive({ request: req, maxNewTokens: max, grid });
            request.report(t, { request: t.id, stage: 'generating', done: grid.written, total: max });
          },
        },
      );
      if (!t.isCurrent()) return false;
      showAnswer(req, res, options.source, generationOf(res, max));
      setLive(null);
      return true;
    } catch (err) {
      if (!t.isCurrent() || isAbort(err)) return false;
      const busy = err instanceof ApiError && err.status === 503;
      noteRetry(err);
      const msg = refusalMessage(err, 'the generation');
      setLive(null);
      setRunError(msg);
      notify('error', msg, busy ? 'The server is busy' : 'Generation failed');
      return false;
    } finally {
      request.end(t);
    }
  };

  if (model) lastLayersRef.current = model.num_layers;
  const numLayers = model?.num_layers;
  const layerOptions = numLayers ?? lastLayersRef.current ?? (view ? inferLayers(view.rows.length, view.request.lens_type) : 0);

  const runMatchesInput =
    !!view &&
    view.request.text === text &&
    view.request.apply_chat_template === effectiveChat &&
    (!model || view.modelName === model.model_name);
  // A generation's tokens go on past the text: the controls' are the prompt's.
  const tokens = runMatchesInput ? (view.generation && view.tokens ? view.tokens.slice(0, view.generation.promptTokens) : view.tokens) : null;
  // After a generation, positions it would write are offered too: the next Generate may use them.
  const newTokens = tokens && view?.generation ? (parsedMax.ok ? parsedMax.value : view.generation.maxNewTokens) : undefined;
  const ctx: InterventionContext = { numLayers, hiddenSize: model?.hidden_size, seqLen: tokens ? tokens.length : undefined, ...(newTokens ? { newTokens } : {}) };

  const runDisabledReason = !status
    ? connectionError
      ? 'The server cannot be reached'
      : 'Connecting to the server…'
    : modelBusy
      ? 'The model is loading: Run is available once it is ready'
      : !loaded
        ? 'No model is loaded: choose one in the header'
        : null;

  const staleNote = useMemo(() => {
    if (!view || modelBusy) return null;
    if (model && view.modelName && view.modelName !== model.model_name) {
      return `These results come from ${shortModelName(view.modelName)}; the loaded model is now ${shortModelName(model.model_name)}. Run to recompute them.`;
    }
    if (view.source.kind === 'session') return null;
    const changed =
      view.request.text !== text ||
      view.request.lens_type !== lensType ||
      (view.request.lens ?? 'logit') !== lens ||
      view.request.apply_chat_template !== effectiveChat ||
      JSON.stringify(view.request.interventions) !== JSON.stringify(interventions) ||
      !sameOptions(view.request, runOptions);
    if (!changed) return null;
    return view.generation ? 'The controls changed since this generation: Generate to update it.' : 'The controls changed since this run: Run to update the grid.';
  }, [view, modelBusy, model, text, lensType, lens, effectiveChat, interventions, runOptions]);

  const receipts = useMemo(() => {
    if (!view || !Array.isArray(view.receipts)) return null;
    return {
      list: view.receipts,
      interventions: countInterventions(view.request.interventions),
      stale: JSON.stringify(view.request.interventions) !== JSON.stringify(interventions),
    };
  }, [view, interventions]);

  return {
    text,
    setText,
    lensType,
    setLensType,
    interventions,
    setInterventions,
    runOptions,
    setRunOptions,
    tunedLens,
    lens,
    view,
    show: setView,
    running,
    progress,
    stop,
    stopped,
    runError,
    retryAt,
    runInference,
    runDisabledReason,
    maxNewTokens,
    setMaxNewTokens,
    maxNewTokensError,
    generateDisabledReason: runDisabledReason ?? maxNewTokensError,
    generate,
    requestKind,
    live,
    ctx,
    layerOptions,
    tokens,
    staleNote,
    receipts,
  };
}
