import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, errorMessage, extractErrorDetail, runAttentionPath } from './client';

describe('extractErrorDetail', () => {
  it('takes a string detail', () => {
    expect(extractErrorDetail({ detail: 'Model not loaded' }, 400)).toBe('Model not loaded');
    expect(extractErrorDetail('{"detail":"model is loading"}', 409)).toBe('model is loading');
  });
  it('joins a validation list with its locations', () => {
    const body = {
      detail: [
        { type: 'list_type', loc: ['body', 'interventions', 'layer_1_output'], msg: 'Input should be a valid list' },
        { type: 'missing', loc: ['body', 'text'], msg: 'Field required' },
      ],
    };
    expect(extractErrorDetail(body, 422)).toBe('interventions.layer_1_output: Input should be a valid list; text: Field required');
  });
  it('falls back to plain text or the status line', () => {
    expect(extractErrorDetail('Internal Server Error', 500)).toBe('Internal Server Error');
    expect(extractErrorDetail('', 502, 'Bad Gateway')).toBe('HTTP 502 Bad Gateway');
    expect(extractErrorDetail(null, 500)).toBe('HTTP 500');
    expect(extractErrorDetail({}, 404, 'Not Found')).toBe('HTTP 404 Not Found');
    expect(extractErrorDetail('<html><body><h1>Oops</h1></body></html>', 500)).toBe('Oops');
    expect(extractErrorDetail({ message: 'm' })).toBe('m');
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
    expect(res.data).toBe('ADwAOA==');
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
});
