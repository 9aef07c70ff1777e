import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api, ApiError, errorMessage } from './api/client';
import type {
  ActivationAnalysis,
  DiffCell,
  InferenceRequest,
  Interventions,
  LensRow,
  LensType,
  ModelEntry,
  Receipt,
  SessionEntry,
  TrackedProb,
} from './api/types';
import { attentionOfResponse, type AttentionTensor } from './lib/attention';
import { countInterventions, normalizeInterventions, type InterventionContext } from './lib/interventions';
import { backendLabel, DEFAULT_MODEL, isInstructModel, normalizeBackend, shortModelName } from './lib/models';
import { useModelStatus } from './hooks/useModelStatus';
import { NotificationProvider, useNotify } from './components/Notifications';
import { Header, LENS_TYPES } from './components/Header';
import { LoadProgress } from './components/LoadProgress';
import { Controls } from './components/Controls';
import { LensGrid } from './components/LensGrid';
import { AttentionPanel } from './components/AttentionPanel';
import { ModelBrowser } from './components/ModelBrowser';
import { SaveSessionDialog, SessionsDialog } from './components/SessionDialogs';
import { ActivationPanel } from './components/ActivationPanel';
import { SessionDiffCard, type SessionDiffView } from './components/SessionDiff';
import type { RunOptionsValue } from './components/RunOptions';

export const DEFAULT_TEXT = 'The capital of France is';

export interface RunView {
  request: InferenceRequest;
  rows: LensRow[];
  tokens: string[] | null;
  tensor: AttentionTensor | null;
  modelName: string;
  backend: string;
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
}

/** The run-option fields of a request, as they were sent (absent when off). */
function optionFields(o: RunOptionsValue): Pick<InferenceRequest, 'compare' | 'track_tokens' | 'analysis'> {
  return {
    ...(o.compare ? { compare: true } : {}),
    ...(o.track.length > 0 ? { track_tokens: o.track } : {}),
    ...(o.analysis ? { analysis: true } : {}),
  };
}

function sameOptions(req: InferenceRequest, o: RunOptionsValue): boolean {
  return (
    !!req.compare === o.compare &&
    !!req.analysis === o.analysis &&
    JSON.stringify(req.track_tokens ?? []) === JSON.stringify(o.track)
  );
}

/** Transformer layers implied by a lens result (when the model's own count is not known). */
export function inferLayers(rows: number, lens: LensType): number {
  if (rows <= 1) return 0;
  if (lens === 'post_attention') return Math.max(0, rows - 2);
  if (lens === 'combined') return Math.max(0, Math.floor((rows - 1) / 2));
  return rows - 1;
}

const LENS_VALUES = new Set(LENS_TYPES.map((l) => l.value));
const VIZ_ONLY_KEY = 'logitlens.vizOnly';

function readVizOnly(): boolean {
  try {
    return window.localStorage.getItem(VIZ_ONLY_KEY) === '1';
  } catch {
    return false;
  }
}

function Main() {
  const { notify } = useNotify();
  const { status, connectionError } = useModelStatus();
  const statusRef = useRef(status);
  statusRef.current = status;

  const [backend, setBackend] = useState<'custom' | 'hooked'>('custom');
  const [selectedModel, setSelectedModel] = useState('');
  const [pendingLoad, setPendingLoad] = useState<{ model: string; backend: string } | null>(null);
  const loadingRef = useRef(false);
  const [useChat, setUseChat] = useState(false);
  const [lensType, setLensType] = useState<LensType>('block_output');
  const [text, setText] = useState(DEFAULT_TEXT);
  const [interventions, setInterventions] = useState<Interventions>({});
  const [run, setRun] = useState<RunView | null>(null);
  const [running, setRunning] = useState(false);
  const [runError, setRunError] = useState<string | null>(null);
  const [runOptions, setRunOptions] = useState<RunOptionsValue>({ compare: false, analysis: false, track: [] });
  const [sessionDiff, setSessionDiff] = useState<SessionDiffView | null>(null);

  const [models, setModels] = useState<ModelEntry[]>([]);
  const [modelsError, setModelsError] = useState<string | null>(null);
  const [modelsLoading, setModelsLoading] = useState(false);

  const [dialog, setDialog] = useState<'save' | 'sessions' | 'browser' | null>(null);
  const [sessions, setSessions] = useState<SessionEntry[] | null>(null);
  const [sessionsLoading, setSessionsLoading] = useState(false);
  const [sessionsError, setSessionsError] = useState<string | null>(null);
  const [vizOnly, setVizOnly] = useState(readVizOnly);
  const [sessionBusy, setSessionBusy] = useState(false);
  const lastLoadedRef = useRef<string | null>(null);
  const keepChatRef = useRef(false);
  const lastLayersRef = useRef<number | undefined>(undefined);
  const [dismissedError, setDismissedError] = useState<string | null>(null);
  const ownErrorsRef = useRef<Set<string>>(new Set());

  const fetchModels = useCallback(async () => {
    setModelsLoading(true);
    setModelsError(null);
    try {
      setModels(await api.models());
    } catch (err) {
      setModelsError(errorMessage(err));
    } finally {
      setModelsLoading(false);
    }
  }, []);

  useEffect(() => {
    void fetchModels();
  }, [fetchModels]);

  // Follow the server: the loaded model (and its instruct flag) once a load is over.
  useEffect(() => {
    if (!status || pendingLoad) return;
    if (status.loaded && status.model_name) {
      const key = `${status.backend}|${status.model_name}`;
      if (lastLoadedRef.current !== key) {
        lastLoadedRef.current = key;
        setSelectedModel(status.model_name);
        setBackend(normalizeBackend(status.backend));
        if (keepChatRef.current) keepChatRef.current = false;
        else setUseChat((status.instruct ?? isInstructModel(status.model_name)) && status.has_chat_template !== false);
        if (lastLoadedRef.current !== null) void fetchModels();
      }
    } else if (status.loading?.model_name && !lastLoadedRef.current) {
      setSelectedModel(status.loading.model_name);
      setBackend(normalizeBackend(status.loading.backend));
    }
  }, [status, pendingLoad, fetchModels]);

  useEffect(() => {
    try {
      window.localStorage.setItem(VIZ_ONLY_KEY, vizOnly ? '1' : '0');
    } catch {
      /* storage may be unavailable */
    }
  }, [vizOnly]);

  const revertSelection = () => {
    const s = statusRef.current;
    setSelectedModel(s?.loaded && s.model_name ? s.model_name : '');
    setBackend(normalizeBackend(s?.loaded ? s.backend : 'custom'));
  };

  const loadModel = async (model: string, be: string): Promise<boolean> => {
    if (loadingRef.current) {
      notify('info', 'A model is already loading; wait for it to finish.');
      return false;
    }
    loadingRef.current = true;
    setPendingLoad({ model, backend: be });
    try {
      await api.loadModel(model, be);
      return true;
    } catch (err) {
      const msg = errorMessage(err);
      ownErrorsRef.current.add(msg);
      notify('error', msg, `Could not load “${shortModelName(model)}” with the ${backendLabel(be)} backend`);
      revertSelection();
      return false;
    } finally {
      loadingRef.current = false;
      setPendingLoad(null);
    }
  };

  const modelBusy = pendingLoad !== null || status?.status === 'loading';
  const loaded = !!status?.loaded;
  const chatAvailable = loaded && status?.has_chat_template !== false;
  const effectiveChat = useChat && chatAvailable;
  const instruct = status?.instruct ?? isInstructModel(status?.model_name);
  const chatHint = !loaded
    ? 'Load a model first'
    : status?.has_chat_template === false
      ? 'This model has no chat template'
      : instruct
        ? 'Wrap the text in the model’s chat template (instruct model)'
        : 'This looks like a base model: a chat template is meant for instruct models';

  if (loaded && status?.num_layers) lastLayersRef.current = status.num_layers;
  const numLayers = loaded ? status?.num_layers : undefined;
  // Before any model is known, offer 32 layers; interventions that do not fit get flagged later.
  const layerOptions = numLayers ?? lastLayersRef.current ?? (run ? inferLayers(run.rows.length, run.request.lens_type) : 0) ?? 0;

  const runMatchesInput =
    !!run &&
    run.request.text === text &&
    run.request.apply_chat_template === effectiveChat &&
    (!status?.model_name || run.modelName === status.model_name);
  const seqLen = runMatchesInput && run?.tokens ? run.tokens.length : undefined;
  const ctx: InterventionContext = { numLayers, hiddenSize: loaded ? status?.hidden_size : undefined, seqLen };

  const runDisabledReason = !status
    ? connectionError
      ? 'The server cannot be reached'
      : 'Connecting to the server…'
    : modelBusy
      ? 'The model is loading: Run is available once it is ready'
      : !loaded
        ? 'No model is loaded: choose one in the header'
        : null;

  const runInference = async (o?: Partial<InferenceRequest>, source?: RunView['source']): Promise<boolean> => {
    const req: InferenceRequest = {
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
      ...o,
    };
    setRunning(true);
    setRunError(null);
    try {
      const res = await api.inference(req);
      let tensor: AttentionTensor | null = null;
      try {
        tensor = attentionOfResponse(res);
      } catch (err) {
        // The lens results are still good: show them without attention.
        notify('error', errorMessage(err), 'Could not read the attention of this run');
      }
      const s = statusRef.current;
      setRun({
        request: req,
        rows: res.logit_lens,
        tokens: res.input_tokens ?? null,
        tensor,
        modelName: s?.model_name ?? selectedModel,
        backend: s?.backend ?? backend,
        source: source ?? { kind: 'inference' },
        runId: res.run_id,
        baselineRows: res.baseline_logit_lens ?? null,
        diff: res.diff ?? null,
        tracked: res.tracked ?? null,
        entropy: res.entropy ?? null,
        analysis: res.analysis ?? null,
        receipts: res.receipts ?? null,
      });
      return true;
    } catch (err) {
      let msg = errorMessage(err);
      if (err instanceof ApiError && err.status === 409) msg = `${msg}. Run again when the model is ready.`;
      if (err instanceof ApiError && err.status === 400 && /model not loaded/i.test(msg)) msg = `${msg}: choose a model in the header to load one.`;
      setRunError(msg);
      notify('error', msg, 'Inference failed');
      return false;
    } finally {
      setRunning(false);
    }
  };

  const onBackendChange = (b: 'custom' | 'hooked') => {
    setBackend(b);
    void loadModel(selectedModel || status?.model_name || DEFAULT_MODEL, b);
  };

  const onModelChange = (id: string) => {
    if (!id) return;
    const entry = models.find((m) => m.id === id);
    setSelectedModel(id);
    setUseChat(entry ? entry.instruct : isInstructModel(id));
    setDialog(null);
    void loadModel(id, backend);
  };

  const fetchSessions = async () => {
    setSessionsLoading(true);
    setSessionsError(null);
    try {
      setSessions(await api.sessions());
    } catch (err) {
      setSessionsError(errorMessage(err));
    } finally {
      setSessionsLoading(false);
    }
  };

  const openSessions = () => {
    setDialog('sessions');
    void fetchSessions();
  };

  const saveSession = async (name: string) => {
    const r = await api.saveState(name, run?.runId);
    notify('success', `Saved as ${r.session_id}`, 'Session saved');
  };

  const compareSessions = async (a: SessionEntry, b: SessionEntry) => {
    const res = await api.diffSessions(a.id, b.id);
    setSessionDiff({ res, aName: a.name, bName: b.name });
    setDialog(null);
  };

  const deleteSession = async (s: SessionEntry) => {
    await api.deleteSession(s.id);
    notify('success', `Deleted “${s.name}”`);
    await fetchSessions();
  };

  const loadSession = async (s: SessionEntry) => {
    setSessionBusy(true);
    try {
      let cfg;
      try {
        cfg = await api.loadSession(s.id);
      } catch (err) {
        notify('error', errorMessage(err), `Could not load session “${s.name}”`);
        return;
      }
      const t = typeof cfg.text === 'string' ? cfg.text : '';
      const iv = normalizeInterventions(cfg.interventions);
      const lens: LensType = LENS_VALUES.has(cfg.lens_type as LensType) ? (cfg.lens_type as LensType) : 'block_output';
      const chat = !!cfg.apply_chat_template;
      setText(t);
      setInterventions(iv);
      setLensType(lens);
      setUseChat(chat);
      const savedRows = cfg.results?.logit_lens;
      if (Array.isArray(savedRows) && savedRows.length > 0) {
        setRun({
          request: { text: t, interventions: iv, lens_type: lens, apply_chat_template: chat, return_attention: false },
          rows: savedRows,
          tokens: Array.isArray(cfg.input_tokens) ? cfg.input_tokens : null,
          tensor: null,
          modelName: cfg.model_name ?? '',
          backend: cfg.backend ?? 'custom',
          source: { kind: 'session', name: s.name, savedOnly: true },
        });
      }
      setDialog(null);
      if (vizOnly) {
        notify(
          'info',
          savedRows?.length ? 'Showing the saved results: the model was not switched and nothing was re-run.' : 'This session has no saved results.',
          `Session “${s.name}”`,
        );
        return;
      }
      const cur = statusRef.current;
      if (cur?.status === 'loading' || loadingRef.current) {
        notify('info', 'A model is loading: the saved results are shown; run again once it is ready.', `Session “${s.name}”`);
        return;
      }
      const wantModel = cfg.model_name;
      const wantBackend = normalizeBackend(cfg.backend);
      if (wantModel && (!cur?.loaded || wantModel !== cur.model_name || wantBackend !== normalizeBackend(cur.backend))) {
        notify('info', `Switching to ${shortModelName(wantModel)} (${backendLabel(wantBackend)}) to re-run the session…`, `Session “${s.name}”`);
        keepChatRef.current = true;
        setSelectedModel(wantModel);
        setBackend(wantBackend);
        const ok = await loadModel(wantModel, wantBackend);
        if (!ok) {
          notify('error', `The saved results are shown, but were not re-run: the session's model ${wantModel} could not be loaded.`, `Session “${s.name}”`);
          return;
        }
      }
      await runInference({ text: t, interventions: iv, lens_type: lens, apply_chat_template: chat }, { kind: 'session', name: s.name, savedOnly: false });
    } finally {
      keepChatRef.current = false;
      setSessionBusy(false);
    }
  };

  const lastError = status?.last_error ?? null;
  const showLastError =
    !!lastError && !modelBusy && lastError !== dismissedError && ![...ownErrorsRef.current].some((e) => e.includes(lastError) || lastError.includes(e));

  const staleNote = useMemo(() => {
    if (!run || modelBusy) return null;
    if (status?.loaded && status.model_name && run.modelName && run.modelName !== status.model_name) {
      return `These results come from ${shortModelName(run.modelName)}; the loaded model is now ${shortModelName(status.model_name)}. Run to recompute them.`;
    }
    if (run.source.kind === 'session') return null;
    const changed =
      run.request.text !== text ||
      run.request.lens_type !== lensType ||
      run.request.apply_chat_template !== effectiveChat ||
      JSON.stringify(run.request.interventions) !== JSON.stringify(interventions) ||
      !sameOptions(run.request, runOptions);
    return changed ? 'The controls changed since this run: Run to update the grid.' : null;
  }, [run, modelBusy, status, text, lensType, effectiveChat, interventions, runOptions]);

  const receipts = useMemo(() => {
    if (!run || !Array.isArray(run.receipts)) return null;
    return {
      list: run.receipts,
      interventions: countInterventions(run.request.interventions),
      stale: JSON.stringify(run.request.interventions) !== JSON.stringify(interventions),
    };
  }, [run, interventions]);

  return (
    <div className="app-container">
      <Header
        status={status}
        connectionError={connectionError}
        backend={backend}
        onBackendChange={onBackendChange}
        selectedModel={selectedModel}
        onModelChange={onModelChange}
        onOpenBrowser={() => {
          setDialog('browser');
          if (models.length === 0) void fetchModels();
        }}
        models={models}
        useChat={useChat}
        onUseChatChange={setUseChat}
        chatAvailable={chatAvailable}
        chatHint={chatHint}
        lensType={lensType}
        onLensTypeChange={setLensType}
        modelBusy={modelBusy}
        canSave={!!run}
        onSave={() => setDialog('save')}
        onLoad={openSessions}
      />
      {connectionError && (
        <div className="banner banner-error" role="alert">
          Cannot reach the logitlens server: {connectionError}. Retrying…
        </div>
      )}
      {modelBusy && <LoadProgress loading={status?.loading} requested={pendingLoad} />}
      {showLastError && (
        <div className="banner banner-error" role="alert">
          <span>The last model load failed: {lastError}</span>
          <button type="button" className="icon-btn" aria-label="Dismiss" onClick={() => setDismissedError(lastError)}>
            ×
          </button>
        </div>
      )}
      <main className="main-grid">
        <Controls
          text={text}
          onTextChange={setText}
          interventions={interventions}
          onInterventionsChange={setInterventions}
          ctx={ctx}
          layerOptions={layerOptions || 32}
          tokens={runMatchesInput ? run?.tokens ?? null : null}
          onRun={() => void runInference()}
          running={running}
          runDisabledReason={runDisabledReason}
          runOptions={runOptions}
          onRunOptionsChange={setRunOptions}
          receipts={receipts}
        />
        <section className="card results" aria-label="LogitLens visualization" aria-busy={running}>
          <div className="section-head">
            <h2>LogitLens</h2>
            {run && (
              <div className="run-meta small" data-testid="run-meta">
                <span title={run.modelName}>{shortModelName(run.modelName)}</span>
                <span>{LENS_TYPES.find((l) => l.value === run.request.lens_type)?.label ?? run.request.lens_type}</span>
                <span>{run.rows[0]?.predictions.length ?? 0} tokens</span>
                <span>
                  {countInterventions(run.request.interventions)} intervention{countInterventions(run.request.interventions) === 1 ? '' : 's'}
                </span>
                {run.request.apply_chat_template && <span>chat template</span>}
                {run.diff && <span title="Also run without interventions: the grid has a Diff view">vs baseline</span>}
                {run.source.kind === 'session' && (
                  <span className="tag tag-session">
                    session “{run.source.name}”{run.source.savedOnly ? ' · saved results' : ''}
                  </span>
                )}
              </div>
            )}
          </div>
          {staleNote && !running && (
            <div className="stale-note small" role="note" data-testid="stale-note">
              {staleNote}
            </div>
          )}
          {runError && run && !running && (
            <div className="inline-error" role="alert">
              Last run failed: {runError}
            </div>
          )}
          <div className={`results-body${running ? ' is-running' : ''}`}>
            {running && (
              <div className="running-overlay" data-testid="running-indicator">
                <span className="spinner" aria-hidden="true" /> Running the model…
              </div>
            )}
            {run ? (
              <LensGrid rows={run.rows} tokens={run.tokens} baselineRows={run.baselineRows} diff={run.diff} tracked={run.tracked} entropy={run.entropy} />
            ) : runError ? (
              <div className="empty-state error-state" role="alert">
                <strong>The run failed.</strong>
                <p>{runError}</p>
              </div>
            ) : (
              !running && (
                <div className="empty-state" data-testid="empty-results">
                  <p>Run the lens to see each layer’s top prediction at every position.</p>
                  <p className="muted small">
                    Type a prompt, optionally add interventions, then press Run LogitLens (or Ctrl+Enter). Hover or focus a cell for its top 5 tokens.
                  </p>
                </div>
              )
            )}
          </div>
        </section>
      </main>
      {sessionDiff && <SessionDiffCard view={sessionDiff} onClose={() => setSessionDiff(null)} />}
      {run?.request.analysis && (
        <ActivationPanel analysis={run.analysis} rowNames={run.rows.map((r) => r.layer_name)} tokens={run.tokens} modelName={run.modelName} />
      )}
      {run && (
        <AttentionPanel
          tensor={run.tensor}
          tokens={run.tokens}
          interventions={run.request.interventions}
          runId={run.runId}
          modelName={run.modelName}
          text={run.request.text}
          onRerun={() => void runInference(run.request.text === text ? undefined : { text: run.request.text })}
          canRerun={!runDisabledReason && !running}
        />
      )}
      {dialog === 'browser' && (
        <ModelBrowser
          models={models}
          modelsError={modelsError}
          modelsLoading={modelsLoading}
          onRetry={() => void fetchModels()}
          backend={backend}
          selectedModel={selectedModel}
          onPick={onModelChange}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog === 'save' && (
        <SaveSessionDialog onSave={saveSession} onClose={() => setDialog(null)} suggestion="" />
      )}
      {dialog === 'sessions' && (
        <SessionsDialog
          sessions={sessions}
          loading={sessionsLoading}
          error={sessionsError}
          onRefresh={() => void fetchSessions()}
          vizOnly={vizOnly}
          onVizOnlyChange={setVizOnly}
          onLoad={(s) => void loadSession(s)}
          onDelete={deleteSession}
          onCompare={compareSessions}
          onClose={() => setDialog(null)}
          busy={sessionBusy}
        />
      )}
    </div>
  );
}

export default function App() {
  return (
    <NotificationProvider>
      <Main />
    </NotificationProvider>
  );
}
