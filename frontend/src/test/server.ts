// A fake logitlens server for tests: `fetch` answers from per-route handlers (relative URLs, as
// the app sends them) and every call is recorded, with its headers. Handlers are typed by the API:
// each route's request body and its 200 answer, or an error `{detail}` with another status; a
// handler may answer later (a promise, e.g. a `deferred()`), and an aborted request rejects with
// an AbortError as the browser's fetch does. A streamed answer (`ndjson()`) is written line by line
// by the test; aborting the request errors its body with an AbortError and cancels it.
import { vi } from 'vitest';
import type {
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
  GridVisualizationRequest,
  InferenceRequest,
  InferenceResponse,
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
  RunProgress,
  LoadSaeRequest,
  SaeCorpusReport,
  SaeCorpusRequest,
  SaeEvalReport,
  SaeFeaturesRequest,
  SaeFeaturesResponse,
  UnloadSaeRequest,
  SavedFile,
  SaveStateRequest,
  SaveStateResponse,
  SessionConfig,
  SessionDiffResponse,
  SessionEntry,
  SessionRequest,
  TokenizeRequest,
  TokenizeResponse,
  VisualizationRequest,
} from '../api/types';

/** Route (the URL without its query, run ids as `{id}`) → [request body, 200 body]. */
export interface Api {
  model_status: [undefined, ModelStatus];
  models: [undefined, ModelEntry[]];
  load_model: [LoadModelRequest, LoadModelResponse];
  load_lens: [LoadLensRequest, ModelDescription];
  /** GET (no body: the last evaluation, null when none) and POST (a corpus) share the path. */
  eval_lens: [EvalLensRequest | undefined, EvalReport | null];
  lens_vector: [LensVectorRequest, LensVectorResponse];
  /** GET (no body: the kept checkpoint, null when none) and POST (a fit) share the path. */
  fit_jlens: [FitJlensRequest | undefined, FitJlensResponse | FitJlensCheckpoint | null];
  inference: [InferenceRequest, InferenceResponse];
  /** `stream: true` is answered with an `ndjson()` body. */
  generate: [GenerateRequest, GenerateResponse];
  tokenize: [TokenizeRequest, TokenizeResponse];
  patch: [PatchRequest, PatchResponse];
  'runs/{id}/attention': [undefined, RunAttention];
  sessions: [undefined, SessionEntry[]];
  save_state: [SaveStateRequest, SaveStateResponse];
  load_session: [SessionRequest, SessionConfig];
  delete_session: [SessionRequest, DeleteSessionResponse];
  diff_sessions: [DiffSessionsRequest, SessionDiffResponse];
  save_visualization: [VisualizationRequest, SavedFile];
  save_grid_visualization: [GridVisualizationRequest, SavedFile];
  load_sae: [LoadSaeRequest, ModelDescription];
  unload_sae: [UnloadSaeRequest, ModelDescription];
  sae_features: [SaeFeaturesRequest, SaeFeaturesResponse];
  sae_feature_corpus: [SaeCorpusRequest, SaeCorpusReport];
  /** GET (no body: the last evaluation, null when none) and POST (a corpus) share the path. */
  eval_sae: [EvalSaeRequest | undefined, SaeEvalReport | null];
}
export type Route = keyof Api;

const ROUTES: readonly Route[] = [
  'model_status',
  'models',
  'load_model',
  'load_lens',
  'eval_lens',
  'lens_vector',
  'fit_jlens',
  'inference',
  'generate',
  'tokenize',
  'patch',
  'runs/{id}/attention',
  'sessions',
  'save_state',
  'load_session',
  'delete_session',
  'diff_sessions',
  'save_visualization',
  'save_grid_visualization',
  'load_sae',
  'unload_sae',
  'sae_features',
  'sae_feature_corpus',
  'eval_sae',
];

/**
 * A 200 with the route's body, or an error status with the server's `{detail}` (null: a body the
 * server did not write, such as a proxy's error page).
 */
export type Reply<T> =
  | { status?: 200; json: T; headers?: Record<string, string> }
  | { status: number; json: { detail: string } | null; headers?: Record<string, string> }
  | { status?: 200; stream: NdjsonBody; headers?: Record<string, string> };

/** A streamed body the test writes: JSON lines or raw text (a line split across chunks), then the end. */
export interface NdjsonBody {
  readonly stream: ReadableStream<Uint8Array>;
  /** One JSON line, as a chunk of its own. */
  send: (line: unknown) => void;
  /** Raw text, as a chunk. */
  write: (text: string) => void;
  close: () => void;
  /** The page dropped the body (Stop, an abort, an error it read): the server would stop. */
  readonly cancelled: boolean;
}

export function ndjson(): NdjsonBody {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
    cancel: () => {
      cancelled = true;
    },
  });
  const write = (text: string) => {
    if (!cancelled) controller.enqueue(encoder.encode(text));
  };
  return {
    stream,
    send: (line) => write(`${JSON.stringify(line)}\n`),
    write,
    close: () => {
      if (!cancelled) controller.close();
    },
    get cancelled() {
      return cancelled;
    },
  };
}

/** `body` as the browser's fetch hands it over: an abort errors it with an AbortError and drops it. */
function abortable(body: ReadableStream<Uint8Array>, signal: AbortSignal | null | undefined): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let ended = false;
  return new ReadableStream<Uint8Array>({
    start(c) {
      signal?.addEventListener('abort', () => {
        if (ended) return;
        ended = true;
        c.error(abortError());
        reader.cancel().catch(() => {});
      });
    },
    async pull(c) {
      const { done, value } = await reader.read();
      if (ended) return;
      if (done) {
        ended = true;
        c.close();
      } else c.enqueue(value);
    },
    cancel(reason) {
      ended = true;
      return reader.cancel(reason);
    },
  });
}

export type Handler<R extends Route> = (body: Api[R][0], url: string, headers: Record<string, string>) => Reply<Api[R][1]> | Promise<Reply<Api[R][1]>>;
export type Routes = { [R in Route]?: Handler<R> };

export interface FakeServer {
  /** Route → handler; replace entries to change answers. */
  routes: Routes;
  calls: { url: string; body: unknown; headers: Record<string, string> }[];
}

/** A promise with its resolve, for a handler that answers when the test says. */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function abortError(): DOMException {
  return new DOMException('The operation was aborted.', 'AbortError');
}

/** The request's headers as a plain object, names in lower case. */
function headersOf(init?: RequestInit): Record<string, string> {
  const out: Record<string, string> = {};
  new Headers(init?.headers).forEach((v, k) => (out[k] = v));
  return out;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

function isRoute(r: string): r is Route {
  return (ROUTES as readonly string[]).includes(r);
}

/** The answer of `route`'s handler, if there is one. */
function answer<R extends Route>(routes: Routes, route: R, body: Api[R][0], url: string, headers: Record<string, string>): Reply<Api[R][1]> | Promise<Reply<Api[R][1]>> | undefined {
  return routes[route]?.(body, url, headers);
}

/** runs/42/attention?… → runs/{id}/attention */
function routeOf(url: string): string {
  return url.split('?')[0].replace(/^runs\/\d+\//, 'runs/{id}/');
}

/**
 * Stubs the global fetch (undo with vi.unstubAllGlobals). Unknown routes are a 404 with a detail.
 * A request whose signal aborts before its handler answers rejects with an AbortError.
 */
export function stubServer(routes: Routes): FakeServer {
  const server: FakeServer = { routes, calls: [] };
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const body = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
      const headers = headersOf(init);
      server.calls.push({ url, body, headers });
      const signal = init?.signal;
      if (signal?.aborted) throw abortError();
      const route = routeOf(url);
      const pending = isRoute(route) ? answer(server.routes, route, body, url, headers) : undefined;
      const aborted = new Promise<never>((_, reject) => signal?.addEventListener('abort', () => reject(abortError())));
      aborted.catch(() => {});
      const r = await Promise.race([Promise.resolve(pending), aborted]);
      if (!r) return json(404, { detail: `no route ${url}` });
      if ('stream' in r) return new Response(abortable(r.stream.stream, signal), { status: r.status ?? 200, headers: { 'content-type': 'application/x-ndjson', ...r.headers } });
      return json(r.status ?? 200, r.json, r.headers);
    }),
  );
  return server;
}

/**
 * A stand-in for the browser's EventSource (jsdom has none), so tests can push /events "status"
 * and "run" events. Install with vi.stubGlobal('EventSource', FakeEventSource).
 */
export class FakeEventSource {
  static instances: FakeEventSource[] = [];
  readonly url: string;
  closed = false;
  private readonly listeners = new Map<string, Set<(ev: MessageEvent<string>) => void>>();

  constructor(url: string) {
    this.url = url;
    FakeEventSource.instances.push(this);
  }

  addEventListener(type: string, fn: (ev: MessageEvent<string>) => void) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(fn);
  }

  close() {
    this.closed = true;
  }

  emit(type: string, data: unknown) {
    const ev = new MessageEvent(type, { data: JSON.stringify(data) });
    for (const fn of this.listeners.get(type) ?? []) fn(ev);
  }

  /** Sends a status event (the body of /model_status) on every open source. */
  static status(s: ModelStatus) {
    for (const es of FakeEventSource.instances) if (!es.closed) es.emit('status', s);
  }

  /** Sends a run progress event on every open source. */
  static run(p: RunProgress) {
    for (const es of FakeEventSource.instances) if (!es.closed) es.emit('run', p);
  }

  /** The open sources: the page should have one. */
  static open(): FakeEventSource[] {
    return FakeEventSource.instances.filter((es) => !es.closed);
  }
}
