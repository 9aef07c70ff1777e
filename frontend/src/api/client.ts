// A small fetch wrapper. Every URL is relative: the app is served by the API server itself, and
// `npm run dev` proxies the same paths.
import type {
  Backend,
  DeleteSessionResponse,
  DiffSessionsRequest,
  GridVisualizationRequest,
  InferenceRequest,
  InferenceResult,
  LoadModelRequest,
  LoadModelResponse,
  ModelEntry,
  ModelStatus,
  RunAttention,
  RunAttentionParams,
  RunAttentionQuery,
  SavedFile,
  SaveStateRequest,
  SaveStateResponse,
  SessionConfig,
  SessionDiffResponse,
  SessionEntry,
  SessionRequest,
  VisualizationRequest,
} from './types';

/** An HTTP or network failure, with the server's `detail` in words. */
export class ApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * The words for a failed response. Every error of the server is JSON `{"detail": "<string>"}`;
 * any other body (a proxy's HTML page, an empty body) did not come from it and says nothing the
 * status line does not, so the status line is shown instead.
 */
export function errorDetail(body: string, status: number, statusText = ''): string {
  try {
    const parsed: unknown = JSON.parse(body);
    const detail = parsed && typeof parsed === 'object' ? (parsed as { detail?: unknown }).detail : undefined;
    if (typeof detail === 'string' && detail.trim()) return detail.trim();
  } catch {
    // not JSON
  }
  return `HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
}

/** The message for anything thrown by fetch or by our own code. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof TypeError) return `Cannot reach the server: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

async function request<T>(
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  signal?: AbortSignal,
  onHeaders?: (h: Headers) => void,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json', accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(`Cannot reach the server (${errorMessage(err)})`, 0);
  }
  const text = await res.text();
  onHeaders?.(res.headers);
  if (!res.ok) {
    throw new ApiError(errorDetail(text, res.status, res.statusText), res.status);
  }
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(`The server sent a response that is not JSON (HTTP ${res.status})`, res.status);
  }
}

/**
 * The path of GET /runs/{id}/attention. Absent options are left out so the server's defaults
 * apply; layers are comma-separated (`layers=0,5`), as the server parses them.
 */
export function runAttentionPath(runId: number, query: RunAttentionQuery = {}): string {
  // The schema's parameters, written out in this order; commas stay as they are (`layers=0,5`).
  const params: RunAttentionParams = {};
  if (query.layers !== undefined) params.layers = query.layers.map((l) => String(Math.trunc(l))).join(',');
  if (query.format !== undefined) params.format = query.format;
  if (query.reduce !== undefined) params.reduce = query.reduce;
  const pairs = Object.entries(params).map(([k, v]) => `${k}=${encodeURIComponent(v).replace(/%2C/g, ',')}`);
  const base = `runs/${encodeURIComponent(String(runId))}/attention`;
  return pairs.length ? `${base}?${pairs.join('&')}` : base;
}

// Paths are relative to the page: `logitlens serve` serves the app at its root.
export const api = {
  modelStatus: () => request<ModelStatus>('GET', 'model_status'),
  models: () => request<ModelEntry[]>('GET', 'models'),
  /** Without a model name the server loads its default model. */
  loadModel: (model_name: string | undefined, backend: Backend) =>
    request<LoadModelResponse>('POST', 'load_model', (model_name === undefined ? { backend } : { model_name, backend }) satisfies LoadModelRequest),
  inference: async (req: InferenceRequest, signal?: AbortSignal): Promise<InferenceResult> => {
    let runId: string | null = null;
    const res = await request<InferenceResult>('POST', 'inference', req, signal, (h) => {
      runId = h.get('x-logitlens-run-id');
    });
    return runId === null ? res : { ...res, run_id: Number(runId) };
  },
  /**
   * The attention of a run the server still keeps (it keeps only its most recent runs): an
   * evicted or unknown id is an ApiError with status 404. The nested or the packed form, as
   * `format` asks (see `attentionOfRun`).
   */
  runAttention: (runId: number, query: RunAttentionQuery = {}, signal?: AbortSignal) =>
    request<RunAttention>('GET', runAttentionPath(runId, query), undefined, signal),
  /** Saves `runId` (the run on screen) when given, else the server's last run. */
  saveState: (name: string, runId?: number) =>
    request<SaveStateResponse>('POST', 'save_state', (runId === undefined ? { name } : { name, run_id: runId }) satisfies SaveStateRequest),
  sessions: () => request<SessionEntry[]>('GET', 'sessions'),
  loadSession: (session_id: string) => request<SessionConfig>('POST', 'load_session', { session_id } satisfies SessionRequest),
  /** The lens of session `b` against session `a` (the baseline): 400 with the reason when they do not compare. */
  diffSessions: (a: string, b: string) => request<SessionDiffResponse>('POST', 'diff_sessions', { a, b } satisfies DiffSessionsRequest),
  deleteSession: (session_id: string) => request<DeleteSessionResponse>('POST', 'delete_session', { session_id } satisfies SessionRequest),
  saveVisualization: (attention_data: number[][], tokens: string[], title: string) =>
    request<SavedFile>('POST', 'save_visualization', { attention_data, tokens, title } satisfies VisualizationRequest),
  saveGridVisualization: (grid_data: number[][][], tokens: string[], title: string, grid_type: 'layer_grid' | 'head_grid') =>
    request<SavedFile>('POST', 'save_grid_visualization', { grid_data, tokens, title, grid_type } satisfies GridVisualizationRequest),
};

export const EVENTS_URL = 'events';
