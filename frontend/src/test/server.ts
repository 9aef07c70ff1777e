// A fake logitlens server for tests: `fetch` answers from per-route handlers (relative URLs, as
// the app sends them) and every call is recorded.
import { vi } from 'vitest';

export type Handler = (body: unknown, url: string) => { status?: number; json: unknown; headers?: Record<string, string> };

export interface FakeServer {
  /** Route (`inference`, `runs/{id}/attention`…) → handler; replace entries to change answers. */
  routes: Record<string, Handler>;
  calls: { url: string; body: unknown }[];
}

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

/** runs/42/attention?… → runs/{id}/attention */
function routeOf(url: string): string {
  return url.split('?')[0].replace(/^runs\/\d+\//, 'runs/{id}/');
}

/** Stubs the global fetch (undo with vi.unstubAllGlobals). Unknown routes are a 404 with a detail. */
export function stubServer(routes: Record<string, Handler>): FakeServer {
  const server: FakeServer = { routes, calls: [] };
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const body = init?.body ? JSON.parse(init.body as string) : undefined;
      server.calls.push({ url, body });
      const h = server.routes[routeOf(url)];
      if (!h) return json(404, { detail: `no route ${url}` });
      const r = h(body, url);
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

  /** Sends a status event on every open source. */
  static status(s: unknown) {
    for (const es of FakeEventSource.instances) if (!es.closed) es.emit('status', s);
  }
}
