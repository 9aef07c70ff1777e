import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, errorDetail, errorMessage, isAbort, newRequestId, parseRetryAfter, runAttentionPath } from './client';
import { EVAL_REPORT } from '../test/fixtures';

describe('errorDetail', () => {
  it('takes the server\'s string detail', () => {
    expect(errorDetail('{"detail":"Model not loaded"}', 400)).toBe('Model not loaded');
    expect(errorDetail('{"detail":"  model is loading\\n"}', 409, 'Conflict')).toBe('model is loading');
  });
  it('shows the status line for a body the server did not write', () => {
    // A proxy's error page, an empty body, plain text.
    expect(errorDetail('<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>', 502, 'Bad Gateway')).toBe('HTTP 502 Bad Gateway');
    expect(errorDetail('', 500, 'Internal Server Error')).toBe('HTTP 500 Internal Server Error');
    expect(errorDetail('upstream connect error', 503)).toBe('HTTP 503');
    // JSON without a string detail: not this server's error body either.
    expect(errorDetail('{}', 404, 'Not Found')).toBe('HTTP 404 Not Found');
    expect(errorDetail('null', 500)).toBe('HTTP 500');
    expect(errorDetail('{"detail":""}', 400, 'Bad Request')).toBe('HTTP 400 Bad Request');
    expect(errorDetail('{"detail":[{"loc":["body","text"],"msg":"Field required"}]}', 422, 'Unprocessable Entity')).toBe('HTTP 422 Unprocessable Entity');
  });
});

describe('request', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('uses relative URLs and JSON bodies', async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ status: 'saved', session_id: 'x', path: 'p' }), { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    await api.saveState('n');
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('save_state');
    expect(url.startsWith('http')).toBe(false);
    expect(init.method).toBe('POST');
    expect(JSON.parse(init.body as string)).toEqual({ name: 'n' });
  });

  it('keeps the run id of an inference and saves that run', async () => {
    const body = { text: 'x', input_tokens: ['x'], logit_lens: [] };
    const fetchMock = vi.fn(async (url: string) =>
      url === 'inference'
        ? new Response(JSON.stringify(body), { status: 200, headers: { 'x-logitlens-run-id': '42' } })
        : new Response(JSON.stringify({ status: 'saved', session_id: 's', path: 'p' }), { status: 200 }),
    );
    vi.stubGlobal('fetch', fetchMock);
    const res = await api.inference({ text: 'x', interventions: {}, lens_type: 'block_output', apply_chat_template: false, return_attention: false });
    expect(res.run_id).toBe(42);
    await api.saveState('n', res.run_id);
    const [, init] = fetchMock.mock.calls[1] as unknown as [string, RequestInit];
    expect(JSON.parse(init.body as string)).toEqual({ name: 'n', run_id: 42 });
  });

  it('asks for compact attention and reads the packed field', async () => {
    const packed = { layers: [0, 1], heads: 1, tokens: 1, reduce: 'head_mean', data: 'ADwAPA==' };
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ text: 'x', logit_lens: [], attention_f16: packed }), { status: 200, headers: { 'x-logitlens-run-id': '5' } }));
    vi.stubGlobal('fetch', fetchMock);
    const req = { text: 'x', interventions: {}, lens_type: 'block_output' as const, apply_chat_template: false, return_attention: true, attention_format: 'f16' as const, attention_reduce: 'head_mean' as const };
    const res = await api.inference(req);
    expect(res.attention_f16).toEqual(packed);
    expect(res.run_id).toBe(5);
    const [, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(JSON.parse(init.body as string)).toEqual(req);
  });

  it('GET /runs/{id}/attention: query from the options, server defaults otherwise', async () => {
    expect(runAttentionPath(12)).toBe('runs/12/attention');
    expect(runAttentionPath(12, { layers: [0, 5], format: 'f16', reduce: 'none' })).toBe('runs/12/attention?layers=0,5&format=f16&reduce=none');
    expect(runAttentionPath(3, { reduce: 'head_mean' })).toBe('runs/3/attention?reduce=head_mean');
    const body = { run_id: 12, layers: [5], heads: 2, tokens: 1, reduce: 'none', data: 'ADwAOA==' };
    const fetchMock = vi.fn(async () => new Response(JSON.stringify(body), { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    const res = await api.runAttention(12, { layers: [5], format: 'f16' });
    expect(res).toEqual(body);
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('runs/12/attention?layers=5&format=f16');
    expect(init.method).toBe('GET');
    expect(init.body).toBeUndefined();
  });

  it('an evicted run is a 404 ApiError with the server detail', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"detail":"run 3 is not kept"}', { status: 404 })));
    const err = await api.runAttention(3, { layers: [0], format: 'f16' }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(404);
    expect(err.message).toBe('run 3 is not kept');
  });

  it('throws ApiError with the server detail', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"detail":"intervention key \\"layer_9_output\\": layer 9 is out of range"}', { status: 400 })));
    const err = await api.inference({ text: 'x', interventions: {}, lens_type: 'block_output', apply_chat_template: false, return_attention: true }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(errorMessage(err)).toBe('intervention key "layer_9_output": layer 9 is out of range');
  });

  it('reports an unreachable server in words', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => { throw new TypeError('Failed to fetch'); }));
    const err = await api.sessions().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toMatch(/Cannot reach the server/);
  });

  it('a proxy\'s HTML error page reads as the status line', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('<html><body><h1>502 Bad Gateway</h1></body></html>', { status: 502, statusText: 'Bad Gateway', headers: { 'content-type': 'text/html' } })));
    const err = await api.models().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(502);
    expect(errorMessage(err)).toBe('HTTP 502 Bad Gateway');
  });

  it('an empty error body reads as the status line', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response(null, { status: 500, statusText: 'Internal Server Error' })));
    const err = await api.modelStatus().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toBe('HTTP 500 Internal Server Error');
  });

  it('a success body that is not JSON is an error in words', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('<html>index</html>', { status: 200 })));
    const err = await api.sessions().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toBe('The server sent a response that is not JSON (HTTP 200)');
  });

  it('loads the server\'s default model when no name is given', async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ loaded: true, status: 'loaded' }), { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    await api.loadModel(undefined, 'hooked');
    await api.loadModel('gpt2', 'hooked');
    const bodies = (fetchMock.mock.calls as unknown as [string, RequestInit][]).map(([, init]) => JSON.parse(init.body as string));
    expect(bodies).toEqual([{ backend: 'hooked' }, { model_name: 'gpt2', backend: 'hooked' }]);
  });

  it('sends the weights choice of a load only when one is given', async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ loaded: true, status: 'loaded' }), { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    await api.loadModel('gpt2', 'custom', 'stored');
    await api.loadModel(undefined, 'custom', 'f32');
    await api.loadModel('gpt2', 'custom', undefined);
    const bodies = (fetchMock.mock.calls as unknown as [string, RequestInit][]).map(([, init]) => JSON.parse(init.body as string));
    expect(bodies).toEqual([{ model_name: 'gpt2', backend: 'custom', weights: 'stored' }, { backend: 'custom', weights: 'f32' }, { model_name: 'gpt2', backend: 'custom' }]);
  });

  it('a 409 from /load_model (the model does not fit) is an ApiError carrying the server\'s words', async () => {
    const detail = 'failed to load mistralai/Mistral-7B-v0.3: this model needs about 13.8 GiB of memory to load (13.5 GiB of weights, as stored) but 7.6 GiB is available; free memory';
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ detail }), { status: 409, statusText: 'Conflict' })));
    const err = await api.loadModel('mistralai/Mistral-7B-v0.3', 'custom').catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(409);
    expect(err.message).toBe(detail);
  });

  it('names each inference in the x-logitlens-request header: a fresh id, or the one given', async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ text: 'x', logit_lens: [] }), { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    const req = { text: 'x', interventions: {}, lens_type: 'block_output' as const, apply_chat_template: false, return_attention: true };
    await api.inference(req);
    await api.inference(req);
    await api.inference(req, { requestId: 'mine' });
    const ids = (fetchMock.mock.calls as unknown as [string, RequestInit][]).map(([, init]) => new Headers(init.headers).get('x-logitlens-request'));
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(ids[1]).toMatch(/^[0-9a-f]{32}$/);
    expect(ids[1]).not.toBe(ids[0]);
    expect(ids[2]).toBe('mine');
    // The JSON headers are still there.
    const [, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(new Headers(init.headers).get('content-type')).toBe('application/json');
  });

  it('an aborted inference rejects with the AbortError, not an ApiError', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async (_url: string, init?: RequestInit) => {
        if (init?.signal?.aborted) throw new DOMException('The operation was aborted.', 'AbortError');
        return new Response('{}', { status: 200 });
      }),
    );
    const ctl = new AbortController();
    ctl.abort();
    const err = await api.inference({ text: 'x', interventions: {}, lens_type: 'block_output', apply_chat_template: false, return_attention: true }, { signal: ctl.signal }).catch((e) => e);
    expect(err).not.toBeInstanceOf(ApiError);
    expect(isAbort(err)).toBe(true);
    expect(isAbort(new ApiError('x', 0))).toBe(false);
  });

  it('a busy server (503) is an ApiError with its detail and the Retry-After seconds', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response('{"detail":"the server is busy: 4 runs are waiting for their turn; try again in 9 s"}', { status: 503, headers: { 'retry-after': '9' } })),
    );
    const err = await api.inference({ text: 'x', interventions: {}, lens_type: 'block_output', apply_chat_template: false, return_attention: true }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(503);
    expect(err.message).toBe('the server is busy: 4 runs are waiting for their turn; try again in 9 s');
    expect(err.retryAfter).toBe(9);
  });

  it('tuned lenses and their evaluation: POST /load_lens, GET and POST /eval_lens with the request id', async () => {
    const fetchMock = vi.fn(async () => new Response('{}', { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    await api.loadLens('/lenses/llama');
    await api.lastEval();
    await api.evalLens({ corpus: 'a\nb', max_tokens: 16 }, { requestId: 'ev1' });
    await api.evalLens({ corpus: 'a' });
    const calls = fetchMock.mock.calls as unknown as [string, RequestInit][];
    expect(calls.map(([url, init]) => `${init.method} ${url}`)).toEqual(['POST load_lens', 'GET eval_lens', 'POST eval_lens', 'POST eval_lens']);
    expect(JSON.parse(calls[0][1].body as string)).toEqual({ path: '/lenses/llama' });
    expect(calls[1][1].body).toBeUndefined();
    expect(JSON.parse(calls[2][1].body as string)).toEqual({ corpus: 'a\nb', max_tokens: 16 });
    expect(new Headers(calls[2][1].headers).get('x-logitlens-request')).toBe('ev1');
    expect(new Headers(calls[3][1].headers).get('x-logitlens-request')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('no evaluation yet is a 200 with null: an answer, not an error', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('null', { status: 200, headers: { 'content-type': 'application/json' } })));
    expect(await api.lastEval()).toBeNull();
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify(EVAL_REPORT), { status: 200 })));
    expect(await api.lastEval()).toEqual(EVAL_REPORT);
  });
});

describe('generate', () => {
  afterEach(() => vi.unstubAllGlobals());

  /** A response whose body comes in these chunks. */
  function chunked(chunks: string[], headers: Record<string, string> = { 'content-type': 'application/x-ndjson' }) {
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const ch of chunks) c.enqueue(enc.encode(ch));
        c.close();
      },
    });
    return new Response(body, { status: 200, headers });
  }

  const step = (index: number, start: number, token: string | null) =>
    JSON.stringify({ type: 'step', index, start, tokens: ['a'], columns: [{ layer_index: 0, layer_name: 'E', predictions: [[{ token: 'a', prob: 1, id: 1 }]] }], token_id: token === null ? null : 5, token });
  const response = { text: 'a', input_tokens: ['a', 'b'], logit_lens: [], generated_ids: [5], generated_text: 'b', prompt_tokens: 1, stopped_at_eos: false };

  it('reads the stream whatever its chunks: a line split across them, several in one; the answer is the done line’s, with its run id', async () => {
    const lines = [step(0, 0, 'b'), step(1, 1, null), JSON.stringify({ type: 'done', run_id: 9, response })];
    const all = `${lines.join('\n')}\n`;
    // Cut mid-line, and two lines in one chunk.
    const fetchMock = vi.fn(async () => chunked([all.slice(0, 30), all.slice(30, lines[0].length + lines[1].length + 10), all.slice(lines[0].length + lines[1].length + 10)]));
    vi.stubGlobal('fetch', fetchMock);
    const steps: number[] = [];
    const res = await api.generateStream({ text: 'a', max_new_tokens: 1 }, { requestId: 'r1', onStep: (s) => steps.push(s.index) });
    expect(steps).toEqual([0, 1]);
    expect(res).toEqual({ ...response, run_id: 9 });
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('generate');
    expect(JSON.parse(init.body as string)).toEqual({ text: 'a', max_new_tokens: 1, stream: true });
    expect(new Headers(init.headers).get('x-logitlens-request')).toBe('r1');
    expect(new Headers(init.headers).get('accept')).toBe('application/x-ndjson');
  });

  it('a last line without its newline still counts', async () => {
    vi.stubGlobal('fetch', async () => chunked([`${step(0, 0, null)}\n`, JSON.stringify({ type: 'done', response })]));
    expect(await api.generateStream({ text: 'a', max_new_tokens: 1 }, { onStep: () => {} })).toEqual(response);
  });

  it('an error line, a malformed line, a refusal: each an error in words', async () => {
    vi.stubGlobal('fetch', async () => chunked([`${step(0, 0, 'b')}\n{"type":"error","detail":"out of memory"}\n`]));
    await expect(api.generateStream({ text: 'a', max_new_tokens: 1 }, { onStep: () => {} })).rejects.toThrow('The generation failed: out of memory');
    vi.stubGlobal('fetch', async () => chunked(['{"type":"step"\n']));
    await expect(api.generateStream({ text: 'a', max_new_tokens: 1 }, { onStep: () => {} })).rejects.toThrow('The server sent a line that is not JSON: {"type":"step"');
    vi.stubGlobal('fetch', async () => new Response('{"detail":"max_new_tokens is 0; it must be between 1 and 256"}', { status: 400 }));
    const err = await api.generateStream({ text: 'a', max_new_tokens: 0 }, { onStep: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toBe('max_new_tokens is 0; it must be between 1 and 256');
  });

  it('without stream: the whole body and the run id header; a server that did not stream is read the same way', async () => {
    vi.stubGlobal('fetch', async () => new Response(JSON.stringify(response), { status: 200, headers: { 'content-type': 'application/json', 'x-logitlens-run-id': '4' } }));
    expect(await api.generate({ text: 'a', max_new_tokens: 1 })).toEqual({ ...response, run_id: 4 });
    expect(await api.generateStream({ text: 'a', max_new_tokens: 1 }, { onStep: () => {} })).toEqual({ ...response, run_id: 4 });
  });
});

describe('parseRetryAfter and newRequestId', () => {
  it('reads seconds or an HTTP date', () => {
    expect(parseRetryAfter('12')).toBe(12);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter('')).toBeNull();
    expect(parseRetryAfter('soon')).toBeNull();
  });

  it('makes ids the server keeps whole (at most 64 characters), different each time', () => {
    const ids = new Set(Array.from({ length: 50 }, () => newRequestId()));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
  });
});
