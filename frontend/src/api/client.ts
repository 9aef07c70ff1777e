// A small fetch wrapper. Every URL is relative: the app is served by the API server itself, and
// `npm run dev` proxies the same paths.
import type {
  Backend,
  DeleteSessionResponse,
  DiffSessionsRequest,
  EvalSaeRequest,
  EvalLensRequest,
  EvalReport,
  FitJlensCheckpoint,
  FitJlensRequest,
  FitJlensResponse,
  GenerateRequest,
  GenerateResponse,
  GenerateResult,
  GenerateStep,
  GridVisualizationRequest,
  InferenceRequest,
  InferenceResult,
  LensVectorRequest,
  LensVectorResponse,
  LoadLensRequest,
  LoadModelRequest,
  LoadModelResponse,
  ModelDescription,
  ModelEntry,
  ModelStatus,
  PatchRequest,
  PatchResponse,
  RunAttention,
  RunAttentionParams,
  RunAttentionQuery,
  SaeCorpusReport,
  SaeCorpusRequest,
  SaeEvalReport,
  SaeFeaturesRequest,
  SaeFeaturesResponse,
  SaeSource,
  SavedFile,
  SaveStateRequest,
  SaveStateResponse,
  SessionConfig,
  SessionDiffResponse,
  SessionEntry,
  SessionRequest,
  TokenizeRequest,
  TokenizeResponse,
  UnloadSaeRequest,
  LoadSaeRequest,
  VisualizationRequest,
  WeightsMode,
} from './types';
import { parseStreamLine, splitLines } from './stream';

/** An HTTP or network failure, with the server's `detail` in words. */
export class ApiError extends Error {
  readonly status: number;
  /** Seconds to wait before trying again, from a `Retry-After` header (503 busy), else null. */
  readonly retryAfter: number | null;
  constructor(message: string, status: number, retryAfter: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * Seconds from a `Retry-After` header: a number of seconds, or an HTTP date (relative to `now`);
 * null when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  const v = value?.trim();
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Whether `err` is the rejection of a fetch that was aborted (AbortController). */
export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

/** The request header naming a run in its "run" progress events on /events. */
export const REQUEST_HEADER = 'x-logitlens-request';

/**
 * A fresh id for `x-logitlens-request` (32 hex digits; the server keeps 64 characters).
 * crypto.getRandomValues works on plain http too, unlike crypto.randomUUID.
 */
export function newRequestId(): string {
  const bytes = new Uint8Array(16);
  if (typeof crypto !== 'undefined' && typeof crypto.getRandomValues === 'function') crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
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

interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** Headers besides content-type and accept. */
  headers?: Record<string, string>;
  /** Sees the response's headers (before the body is checked). */
  onHeaders?: (h: Headers) => void;
}

async function send(method: 'GET' | 'POST', path: string, { body, signal, headers }: RequestOptions, accept = 'application/json'): Promise<Response> {
  try {
    return await fetch(path, {
      method,
      headers: {
        ...(body === undefined ? { accept } : { 'content-type': 'application/json', accept }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (isAbort(err)) throw err;
    throw new ApiError(`Cannot reach the server (${errorMessage(err)})`, 0);
  }
}

function refused(res: Response, text: string): ApiError {
  return new ApiError(errorDetail(text, res.status, res.statusText), res.status, parseRetryAfter(res.headers.get('retry-after')));
}

async function request<T>(method: 'GET' | 'POST', path: string, options: RequestOptions = {}): Promise<T> {
  const res = await send(method, path, options);
  // An abort while the body is read rejects with the same AbortError.
  const text = await res.text();
  options.onHeaders?.(res.headers);
  if (!res.ok) throw refused(res, text);
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
  /**
   * Without a model name the server loads its default model; without `weights`, its default way
   * of holding them (`auto` unless it was started with `--weights`). A model that does not fit in
   * the memory available is refused with a 409 (the model in service stays).
   */
  loadModel: (model_name: string | undefined, backend: Backend, weights?: WeightsMode) =>
    request<LoadModelResponse>('POST', 'load_model', {
      body: {
        ...(model_name === undefined ? {} : { model_name }),
        backend,
        ...(weights === undefined ? {} : { weights }),
      } satisfies LoadModelRequest,
    }),
  /**
   * Attaches the lens at `path` on the server's machine to the model in service: a folder is a
   * tuned lens (the answer's `tuned_lens`), a file a Jacobian lens (`jacobian_lens`). A lens that
   * cannot be read or does not fit the model is a 400 saying why; no model in service, a 409.
   */
  loadLens: (path: string) => request<ModelDescription>('POST', 'load_lens', { body: { path } satisfies LoadLensRequest }),
  /**
   * What the lens vector of `token` (an id, or a string that is exactly one token) says at each
   * layer the attached Jacobian lens covers: its norm and the top `k` tokens of the model's head on
   * it. Without a Jacobian lens, or for a string of several tokens, a 400 saying why.
   */
  lensVector: (req: LensVectorRequest, signal?: AbortSignal) => request<LensVectorResponse>('POST', 'lens_vector', { body: req, signal }),
  /**
   * Fits a Jacobian lens on the model in service and attaches it. Like `evalLens`, `requestId` goes
   * in `x-logitlens-request` (its "run" events are `fitting`: done of total), and aborting `signal`
   * stops the fit on the server, which keeps a checkpoint that `resume: true` continues.
   */
  fitJlens: (req: FitJlensRequest, { signal, requestId = newRequestId() }: { signal?: AbortSignal; requestId?: string } = {}) =>
    request<FitJlensResponse>('POST', 'fit_jlens', { body: req, signal, headers: { [REQUEST_HEADER]: requestId } }),
  /** The checkpoint a stopped fit left on the server (prompts done of all, its settings), or null when there is none. */
  fitCheckpoint: (signal?: AbortSignal) => request<FitJlensCheckpoint | null>('GET', 'fit_jlens', { signal }),
  /** The last lens evaluation made with the model in service; null when none has been made with it yet. */
  lastEval: (signal?: AbortSignal) => request<EvalReport | null>('GET', 'eval_lens', { signal }),
  /**
   * Evaluates the lenses of the model in service over a corpus. Like `inference`, `requestId` goes
   * in `x-logitlens-request` (its "run" events are `documents` done of total), and aborting
   * `signal` rejects with an AbortError and cancels the evaluation on the server.
   */
  evalLens: (req: EvalLensRequest, { signal, requestId = newRequestId() }: { signal?: AbortSignal; requestId?: string } = {}) =>
    request<EvalReport>('POST', 'eval_lens', { body: req, signal, headers: { [REQUEST_HEADER]: requestId } }),
  /**
   * Attaches SAEs (folders on the server's machine) to the model in service, all or none: one that
   * cannot be read or does not fit the model (its width, its hook) is a 400 saying why.
   */
  loadSae: (saes: SaeSource[]) => request<ModelDescription>('POST', 'load_sae', { body: { saes } satisfies LoadSaeRequest }),
  /** Takes attached SAEs off the model in service. */
  unloadSae: (names: string[]) => request<ModelDescription>('POST', 'unload_sae', { body: { names } satisfies UnloadSaeRequest }),
  /** What features say (their decoder rows through the head), and with `run_id` their activations over that kept run. */
  saeFeatures: (req: SaeFeaturesRequest, signal?: AbortSignal) => request<SaeFeaturesResponse>('POST', 'sae_features', { body: req, signal }),
  /**
   * Where a feature fires over a corpus. Like `evalLens`, `requestId` goes in `x-logitlens-request`
   * (its "run" events count documents), and aborting `signal` stops the scan on the server.
   */
  saeFeatureCorpus: (req: SaeCorpusRequest, { signal, requestId = newRequestId() }: { signal?: AbortSignal; requestId?: string } = {}) =>
    request<SaeCorpusReport>('POST', 'sae_feature_corpus', { body: req, signal, headers: { [REQUEST_HEADER]: requestId } }),
  /** The last SAE evaluation made with the model in service, or null. */
  lastSaeEval: (signal?: AbortSignal) => request<SaeEvalReport | null>('GET', 'eval_sae', { signal }),
  /** Measures the attached SAEs over a corpus; stoppable and reported like `evalLens`. */
  evalSae: (req: EvalSaeRequest, { signal, requestId = newRequestId() }: { signal?: AbortSignal; requestId?: string } = {}) =>
    request<SaeEvalReport>('POST', 'eval_sae', { body: req, signal, headers: { [REQUEST_HEADER]: requestId } }),
  /** The tokens of `text` as the model in service reads it. */
  tokenize: (req: TokenizeRequest, signal?: AbortSignal) => request<TokenizeResponse>('POST', 'tokenize', { body: req, signal }),
  /**
   * An activation-patching sweep. Like `evalLens`, `requestId` goes in `x-logitlens-request` (its
   * "run" events are `patching`: patched runs done of total), and aborting `signal` cancels it.
   */
  patch: (req: PatchRequest, { signal, requestId = newRequestId() }: { signal?: AbortSignal; requestId?: string } = {}) =>
    request<PatchResponse>('POST', 'patch', { body: req, signal, headers: { [REQUEST_HEADER]: requestId } }),
  /**
   * Runs the model. `requestId` (a fresh one when absent) goes in the `x-logitlens-request`
   * header, so the run's "run" events on /events can be told apart from other runs'. Aborting
   * `signal` rejects with an AbortError (see `isAbort`), and the server stops the run.
   */
  inference: async (req: InferenceRequest, { signal, requestId = newRequestId() }: { signal?: AbortSignal; requestId?: string } = {}): Promise<InferenceResult> => {
    let runId: string | null = null;
    const res = await request<InferenceResult>('POST', 'inference', {
      body: req,
      signal,
      headers: { [REQUEST_HEADER]: requestId },
      onHeaders: (h) => {
        runId = h.get('x-logitlens-run-id');
      },
    });
    return runId === null ? res : { ...res, run_id: Number(runId) };
  },
  /**
   * A generation's whole answer at once (no stream). Attribute asks a generation's cell this way:
   * /inference would read the prompt alone, without the written tokens.
   */
  generate: async (req: GenerateRequest, { signal, requestId = newRequestId() }: { signal?: AbortSignal; requestId?: string } = {}): Promise<GenerateResult> => {
    let runId: string | null = null;
    const res = await request<GenerateResponse>('POST', 'generate', {
      body: { ...req, stream: false },
      signal,
      headers: { [REQUEST_HEADER]: requestId },
      onHeaders: (h) => {
        runId = h.get('x-logitlens-run-id');
      },
    });
    return runId === null ? res : { ...res, run_id: Number(runId) };
  },
  /**
   * A generation as it is written: `onStep` gets each pass as its line arrives (a throw from it
   * ends the generation with that error), and the answer is the `done` line's, with its run id. A
   * refusal before the start is an ApiError, as for /inference; an `error` line, a line that cannot
   * be read, or a stream that ends before `done` rejects with an Error saying so. Aborting `signal`
   * rejects with an AbortError and stops the generation on the server.
   */
  generateStream: async (
    req: GenerateRequest,
    { signal, requestId = newRequestId(), onStep }: { signal?: AbortSignal; requestId?: string; onStep: (s: GenerateStep) => void },
  ): Promise<GenerateResult> => {
    const res = await send('POST', 'generate', { body: { ...req, stream: true }, signal, headers: { [REQUEST_HEADER]: requestId } }, 'application/x-ndjson');
    if (!res.ok) throw refused(res, await res.text());
    // A server that does not stream answers the whole body as JSON.
    if (!res.body || (res.headers.get('content-type') ?? '').startsWith('application/json')) {
      const run = res.headers.get('x-logitlens-run-id');
      const whole = JSON.parse(await res.text()) as GenerateResponse;
      return run === null ? whole : { ...whole, run_id: Number(run) };
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let rest = '';
    const read = (lines: string[]): GenerateResult | null => {
      for (const line of lines) {
        const l = parseStreamLine(line);
        if (l.kind === 'step') onStep(l.step);
        else if (l.kind === 'done') return l.runId === null ? l.response : { ...l.response, run_id: l.runId };
        else if (l.kind === 'error') throw new Error(`The generation failed: ${l.detail}`);
        else if (l.kind === 'malformed') throw new Error(l.error);
      }
      return null;
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        const cut = splitLines(rest, done ? decoder.decode() : decoder.decode(value, { stream: true }));
        rest = cut.rest;
        const answer = read(done ? [...cut.lines, ...(rest.trim() ? [rest] : [])] : cut.lines);
        if (answer) return answer;
        if (done) throw new Error('The server ended the stream before the generation was done');
      }
    } finally {
      // Done, or ended by an error line or a throw from onStep: dropping the body stops the server.
      reader.cancel().catch(() => {});
    }
  },
  /**
   * The attention of a run the server still keeps (it keeps only its most recent runs): an
   * evicted or unknown id is an ApiError with status 404. The nested or the packed form, as
   * `format` asks (see `attentionOfRun`).
   */
  runAttention: (runId: number, query: RunAttentionQuery = {}, signal?: AbortSignal) =>
    request<RunAttention>('GET', runAttentionPath(runId, query), { signal }),
  /** Saves `runId` (the run on screen) when given, else the server's last run. */
  saveState: (name: string, runId?: number) =>
    request<SaveStateResponse>('POST', 'save_state', { body: (runId === undefined ? { name } : { name, run_id: runId }) satisfies SaveStateRequest }),
  sessions: () => request<SessionEntry[]>('GET', 'sessions'),
  loadSession: (session_id: string) => request<SessionConfig>('POST', 'load_session', { body: { session_id } satisfies SessionRequest }),
  /** The lens of session `b` against session `a` (the baseline): 400 with the reason when they do not compare. */
  diffSessions: (a: string, b: string) => request<SessionDiffResponse>('POST', 'diff_sessions', { body: { a, b } satisfies DiffSessionsRequest }),
  deleteSession: (session_id: string) => request<DeleteSessionResponse>('POST', 'delete_session', { body: { session_id } satisfies SessionRequest }),
  saveVisualization: (attention_data: number[][], tokens: string[], title: string) =>
    request<SavedFile>('POST', 'save_visualization', { body: { attention_data, tokens, title } satisfies VisualizationRequest }),
  saveGridVisualization: (grid_data: number[][][], tokens: string[], title: string, grid_type: 'layer_grid' | 'head_grid') =>
    request<SavedFile>('POST', 'save_grid_visualization', { body: { grid_data, tokens, title, grid_type } satisfies GridVisualizationRequest }),
};

export const EVENTS_URL = 'events';
