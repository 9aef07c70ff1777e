// A fake logitlens server for tests: `fetch` answers from per-route handlers (relative URLs, as
// the app sends them) and every call is recorded. Handlers are typed by the API: each route's
// request body and its 200 answer, or an error `{detail}` with another status.
import { vi } from 'vitest';
import type {
  DeleteSessionResponse,
  DiffSessionsRequest,
  GridVisualizationRequest,
  InferenceRequest,
  InferenceResponse,
  LoadModelRequest,
  LoadModelResponse,
  ModelEntry,
  ModelStatus,
  RunAttention,
  SavedFile,
  SaveStateRequest,
  SaveStateResponse,
  SessionConfig,
  SessionDiffResponse,
  SessionEntry,
  SessionRequest,
  VisualizationRequest,
} from '../api/types';

/** Route (the URL without its query, run ids as `{id}`) → [request body, 200 body]. */
export interface Api {
  model_status: [undefined, ModelStatus];
  models: [undefined, ModelEntry[]];
  load_model: [LoadModelRequest, LoadModelResponse];
  inference: [InferenceRequest, InferenceResponse];
  'runs/{id}/attention': [undefined, RunAttention];
  sessions: [undefined, SessionEntry[]];
  save_state: [SaveStateRequest, SaveStateResponse];
  load_session: [SessionRequest, SessionConfig];
  delete_session: [SessionRequest, DeleteSessionResponse];
  diff_sessions: [DiffSessionsRequest, SessionDiffResponse];
  save_visualization: [VisualizationRequest, SavedFile];
  save_grid_visualization: [GridVisualizationRequest, SavedFile];
}
export type Route = keyof Api;

const ROUTES: readonly Route[] = [
  'model_status',
  'models',
  'load_model',
  'inference',
  'runs/{id}/attention',
  'sessions',
  'save_state',
  'load_session',
  'delete_session',
  'diff_sessions',
  'save_visualization',
  'save_grid_visualization',
];

/**
 * A 200 with the route's body, or an error status with the server's `{detail}` (null: a body the
 * server did not write, such as a proxy's error page).
 */
export type Reply<T> =
  | { status?: 200; json: T; headers?: Record<string, string> }
  | { status: number; json: { detail: string } | null; headers?: Record<string, string> };

export type Handler<R extends Route> = (body: Api[R][0], url: string) => Reply<Api[R][1]>;
export type Routes = { [R in Route]?: Handler<R> };

export interface FakeServer {
  /** Route → handler; replace entries to change answers. */
  routes: Routes;
  calls: { url: string; body: unknown }[];
}

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

function isRoute(r: string): r is Route {
  return (ROUTES as readonly string[]).includes(r);
}

/** The answer of `route`'s handler, if there is one. */
function answer<R extends Route>(routes: Routes, route: R, body: Api[R][0], url: string): Reply<Api[R][1]> | undefined {
  return routes[route]?.(body, url);
}

/** runs/42/attention?… → runs/{id}/attention */
function routeOf(url: string): string {
  return url.split('?')[0].replace(/^runs\/\d+\//, 'runs/{id}/');
}

/** Stubs the global fetch (undo with vi.unstubAllGlobals). Unknown routes are a 404 with a detail. */
export function stubServer(routes: Routes): FakeServer {
  const server: FakeServer = { routes, calls: [] };
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const body = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
      server.calls.push({ url, body });
      const route = routeOf(url);
      const r = isRoute(route) ? answer(server.routes, route, body, url) : undefined;
      if (!r) return json(404, { detail: `no route ${url}` });
      return json(r.status ?? 200, r.json, r.headers);
    }),
  );
  return server;
}

/**
 * A stand-in for the browser's EventSource (jsdom has none), so tests can push /events "status"
 * events. Install with vi.stubGlobal('EventSource', FakeEventSource).
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
}
