// The model side of the page: the server's status (GET /model_status + /events, whose "run" events
// it passes on to useRun), the backend and model the header shows, loads this page asks for, and
// the chat-template checkbox, which turns on by default for instruct models (the server says which
// are), how the next load holds the weights (auto, f32, stored), and the lenses attached to the
// model in service.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, errorMessage } from '../api/client';
import type { Backend, ModelDescription, ModelStatus, ServingStatus, WeightsMode } from '../api/types';
import { backendLabel, normalizeBackend, shortModelName } from '../lib/models';
import { servingModel } from '../lib/status';
import { weightsDiffer } from '../lib/weights';
import { useNotify } from './useNotify';
import { useModelStatus, type RunProgressListener } from './useModelStatus';
import type { ModelsState } from './useModels';

export interface PendingLoad {
  /** "" when the server picks its default model. */
  model: string;
  backend: Backend;
}

export interface ModelLoader {
  status: ModelStatus | null;
  /** The model in service, described (the status narrowed to it), or null. */
  model: ServingStatus | null;
  /** Why the server cannot be reached, or null. */
  connectionError: string | null;
  /** Every "run" event of the page's /events stream (any request's); returns the unsubscribe. Stable. */
  subscribeRunProgress: (fn: RunProgressListener) => () => void;
  /** The latest status, for code that awaits past the render it started in. */
  currentStatus: () => ModelStatus | null;
  /** The header's backend: `custom` or `hooked` (a `transformerlens` status shows as `hooked`). */
  backend: Backend;
  selectedModel: string;
  /** The load this page asked for, until the server answers. */
  pendingLoad: PendingLoad | null;
  loaded: boolean;
  /** A load is under way (this page's or anyone's). */
  modelBusy: boolean;
  /** Whether this page's own load request is under way (readable in async code). */
  isLoading: () => boolean;
  useChat: boolean;
  setUseChat: (v: boolean) => void;
  chatAvailable: boolean;
  /** Whether a run applies the chat template now. */
  effectiveChat: boolean;
  chatHint: string;
  /** The last failed load's error, while it is worth a banner (not this page's own, not dismissed). */
  lastError: string | null;
  dismissLastError: () => void;
  /**
   * How loads hold the weights: `auto` (sent as no field: the server's default), `f32` or `stored`.
   * It applies to the next load; the model in service stays as it is.
   */
  weights: WeightsMode;
  setWeights: (w: WeightsMode) => void;
  /** Whether the model in service holds its weights otherwise than `weights` asks (see `reloadWeights`). */
  weightsDiffer: boolean;
  /** Loads the model in service again with the chosen weights. */
  reloadWeights: () => void;
  /**
   * Loads a model (the server's default when `model` is undefined) with the chosen weights; false
   * when it failed, said in a toast (a model too big for the free memory, a 409, as a warning).
   */
  loadModel: (model: string | undefined, backend: Backend) => Promise<boolean>;
  /** The header's backend select: the same model (or the server's default) on the other backend. */
  selectBackend: (b: Backend) => void;
  /** The header's model select and the browser: load `id` on the current backend. */
  selectModel: (id: string) => void;
  /** Loads a session's model, keeping the session's chat-template setting instead of the model's default. */
  switchTo: (model: string, backend: Backend, useChat: boolean) => Promise<boolean>;
  /**
   * Attaches the lens at `path` (on the server's machine: a tuned lens's folder, or a Jacobian
   * lens's file) to the model in service, replacing any other of its kind, and follows the new
   * status. Throws the server's reason (a lens that cannot be read or does not fit the model, no
   * model in service). Stable.
   */
  attachLens: (path: string) => Promise<ModelDescription>;
  /**
   * Asks GET /model_status now (the server also says so on /events): after something changed the
   * model in service's lenses (a fitted Jacobian lens attached). Stable.
   */
  refreshStatus: () => Promise<ModelStatus | null>;
}

const statusKey = (backend: Backend, model: string) => `${normalizeBackend(backend)}|${model}`;

export function useModelLoader(models: ModelsState): ModelLoader {
  const { notify } = useNotify();
  const { status, connectionError, subscribeRunProgress, refresh } = useModelStatus();
  const statusRef = useRef(status);
  statusRef.current = status;
  const model = servingModel(status);

  const [backend, setBackend] = useState<Backend>('custom');
  const [selectedModel, setSelectedModel] = useState('');
  const [pendingLoad, setPendingLoad] = useState<PendingLoad | null>(null);
  const loadingRef = useRef(false);
  const [useChat, setUseChat] = useState(false);
  const [weights, setWeightsState] = useState<WeightsMode>('auto');
  // Read by loadModel, which stays stable.
  const weightsRef = useRef<WeightsMode>('auto');
  const [dismissedError, setDismissedError] = useState<string | null>(null);
  // Errors this page already showed in a toast: the status banner does not repeat them.
  const ownErrorsRef = useRef<Set<string>>(new Set());
  // backend|model of the loaded model last followed, so each load is followed once.
  const lastLoadedRef = useRef<string | null>(null);
  // The chat setting a session switch keeps for the model it loads (null: the model's default).
  const keepChatRef = useRef<boolean | null>(null);

  const refreshModels = models.refresh;
  // Follow the server: the loaded model (and its instruct flag) once a load is over.
  useEffect(() => {
    if (!status || pendingLoad) return;
    const serving = servingModel(status);
    if (serving) {
      const key = statusKey(serving.backend, serving.model_name);
      if (lastLoadedRef.current !== key) {
        lastLoadedRef.current = key;
        setSelectedModel(serving.model_name);
        setBackend(normalizeBackend(serving.backend));
        const kept = keepChatRef.current;
        keepChatRef.current = null;
        setUseChat(kept ?? (serving.instruct && serving.has_chat_template));
        // A load may have downloaded a model: its `cached` flag changed.
        void refreshModels();
      }
    } else if (status.loading?.model_name && !lastLoadedRef.current) {
      setSelectedModel(status.loading.model_name);
      setBackend(normalizeBackend(status.loading.backend));
    }
  }, [status, pendingLoad, refreshModels]);

  const loadModel = useCallback(
    async (model: string | undefined, be: Backend): Promise<boolean> => {
      if (loadingRef.current) {
        notify('info', 'A model is already loading; wait for it to finish.');
        return false;
      }
      loadingRef.current = true;
      setPendingLoad({ model: model ?? '', backend: be });
      const w = weightsRef.current;
      try {
        await api.loadModel(model, be, w === 'auto' ? undefined : w);
        return true;
      } catch (err) {
        const msg = errorMessage(err);
        ownErrorsRef.current.add(msg);
        const s = servingModel(statusRef.current);
        if (err instanceof ApiError && err.status === 409) {
          // Refused before anything changed: not a failure of the app, and the model in service stays.
          const kept = s ? ` ${shortModelName(s.model_name)} stays loaded.` : '';
          notify('warning', `${msg}${kept}`, `Not enough memory to load “${shortModelName(model)}”`);
        } else {
          notify('error', msg, `Could not load “${shortModelName(model)}” with the ${backendLabel(be)} backend`);
        }
        // Back to what the server has.
        setSelectedModel(s ? s.model_name : '');
        setBackend(s ? normalizeBackend(s.backend) : 'custom');
        return false;
      } finally {
        loadingRef.current = false;
        setPendingLoad(null);
      }
    },
    [notify],
  );

  const selectBackend = (b: Backend) => {
    setBackend(b);
    // Nothing chosen yet: the server's first model for that backend, else its own default.
    const fallback = models.models.find((m) => m.backends.includes(b))?.id;
    void loadModel(selectedModel || model?.model_name || fallback, b);
  };

  const selectModel = (id: string) => {
    if (!id) return;
    const entry = models.models.find((m) => m.id === id);
    setSelectedModel(id);
    // Unlisted ids get the server's instruct flag once loaded.
    if (entry) setUseChat(entry.instruct);
    void loadModel(id, backend);
  };

  const switchTo = async (model: string, be: Backend, chat: boolean): Promise<boolean> => {
    keepChatRef.current = chat;
    setSelectedModel(model);
    setBackend(be);
    const ok = await loadModel(model, be);
    if (!ok) keepChatRef.current = null;
    return ok;
  };

  const setWeights = (w: WeightsMode) => {
    weightsRef.current = w;
    setWeightsState(w);
  };

  const attachLens = useCallback(
    async (path: string) => {
      const res = await api.loadLens(path);
      // The server also says so on /events; asking keeps the page right when the stream is down,
      // and code awaiting this (a session's re-run) reads the new status before the next render.
      const s = await refresh();
      if (s) statusRef.current = s;
      return res;
    },
    [refresh],
  );

  const refreshStatus = useCallback(async () => {
    const s = await refresh();
    if (s) statusRef.current = s;
    return s;
  }, [refresh]);

  const reloadWeights = () => {
    if (model) void loadModel(model.model_name, model.backend);
  };

  const loaded = model !== null;
  const modelBusy = pendingLoad !== null || status?.status === 'loading';
  const chatAvailable = !!model?.has_chat_template;
  const chatHint = !model
    ? 'Load a model first'
    : !model.has_chat_template
      ? 'This model has no chat template'
      : model.instruct
        ? 'Wrap the text in the model’s chat template (instruct model)'
        : 'This looks like a base model: a chat template is meant for instruct models';

  const lastError = status?.last_error ?? null;
  const showLastError =
    !!lastError && !modelBusy && lastError !== dismissedError && ![...ownErrorsRef.current].some((e) => e.includes(lastError) || lastError.includes(e));

  return {
    status,
    model,
    connectionError,
    subscribeRunProgress,
    currentStatus: () => statusRef.current,
    backend,
    selectedModel,
    pendingLoad,
    loaded,
    modelBusy,
    isLoading: () => loadingRef.current,
    useChat,
    setUseChat,
    chatAvailable,
    effectiveChat: useChat && chatAvailable,
    chatHint,
    lastError: showLastError ? lastError : null,
    dismissLastError: () => setDismissedError(lastError),
    weights,
    setWeights,
    weightsDiffer: weightsDiffer(model?.weights, weights),
    reloadWeights,
    loadModel,
    selectBackend,
    selectModel,
    switchTo,
    attachLens,
    refreshStatus,
  };
}
