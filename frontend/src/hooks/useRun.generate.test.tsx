import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, screen, waitFor } from '@testing-library/react';
import { NotificationProvider } from '../components/Notifications';
import { generateResponse, generateSteps, inferenceResponse, READY, TOKENS, WRITTEN } from '../test/fixtures';
import { FakeEventSource, ndjson, stubServer, type FakeServer, type NdjsonBody } from '../test/server';
import { useModelLoader } from './useModelLoader';
import { useModels } from './useModels';
import { useRun } from './useRun';
import { DEFAULT_TEXT } from './useRunInputs';
import { useRunProgress } from './useStoppableRequest';

let server: FakeServer;
/** The streamed bodies of /generate, in the order asked. */
let bodies: NdjsonBody[];

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  bodies = [];
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    inference: () => ({ json: inferenceResponse(), headers: { 'x-logitlens-run-id': '42' } }),
    generate: () => {
      const body = ndjson();
      bodies.push(body);
      return { stream: body };
    },
  });
});

afterEach(() => vi.unstubAllGlobals());

async function ready() {
  const hook = renderHook(
    () => {
      const run = useRun(useModelLoader(useModels()));
      return { run, progress: useRunProgress(run.task.progress) };
    },
    { wrapper: NotificationProvider },
  );
  await waitFor(() => expect(hook.result.current.run.disabled.run).toBeNull());
  return { run: () => hook.result.current.run, progress: () => hook.result.current.progress };
}

type Ready = Awaited<ReturnType<typeof ready>>;

/** Starts a generation without awaiting it, once its request is at the fake server. */
async function start(r: Ready): Promise<{ done: Promise<boolean>; body: NdjsonBody }> {
  const n = bodies.length;
  let done!: Promise<boolean>;
  act(() => {
    done = r.run().generate();
  });
  await waitFor(() => expect(bodies).toHaveLength(n + 1));
  return { done, body: bodies[n] };
}

/** Sends lines and lets the page read them. */
async function send(body: NdjsonBody, ...lines: unknown[]) {
  await act(async () => {
    for (const l of lines) body.send(l);
    await new Promise((r) => setTimeout(r, 0));
  });
}

const generateCalls = () => server.calls.filter((c) => c.url === 'generate');

describe('useRun: generate', () => {
  it('sends Run’s request with max_new_tokens and stream, grows the grid step by step, then shows the whole answer as the run', async () => {
    const r = await ready();
    act(() => {
      r.run().inputs.setInterventions({ layer_1_output: [{ type: 'zero', all_layers: false, token_index: -1 }] });
      r.run().inputs.setOptions({ ...r.run().inputs.options, compare: true });
      r.run().inputs.newTokens.set('2');
    });
    const { done, body } = await start(r);
    const call = generateCalls()[0];
    expect(call.body).toEqual({
      text: DEFAULT_TEXT,
      interventions: { layer_1_output: [{ type: 'zero', all_layers: false, token_index: -1 }] },
      lens_type: 'block_output',
      apply_chat_template: false,
      return_attention: true,
      attention_format: 'f16',
      attention_reduce: 'head_mean',
      entropy: true,
      compare: true,
      max_new_tokens: 2,
      stream: true,
    });
    expect(call.headers['x-logitlens-request']).toMatch(/^[0-9a-f]{32}$/);
    expect(call.headers.accept).toBe('application/x-ndjson');
    expect(r.run().task.running).toBe(true);
    expect(r.run().task.kind).toBe('generate');
    expect(r.run().live).toBeNull();

    const res = generateResponse({ generated_ids: [11, 13], generated_tokens: [' sat', ' up'], generated_text: ' sat up', first_difference: 1 });
    const steps = generateSteps(res);
    // Pass 0: the prompt's columns at once, the token it chose pending.
    await send(body, steps[0]);
    expect(r.run().live?.grid.tokens).toEqual(TOKENS);
    expect(r.run().live?.grid.rows[0].predictions).toHaveLength(TOKENS.length);
    expect(r.run().live?.grid.pending).toEqual({ id: 11, token: WRITTEN[0] });
    expect(r.run().live?.grid.promptTokens).toBe(TOKENS.length);
    expect(r.run().live?.request.text).toBe(DEFAULT_TEXT);
    expect(r.progress()).toEqual({ request: call.headers['x-logitlens-request'], stage: 'generating', done: 1, total: 2 });
    await send(body, steps[1]);
    expect(r.run().live?.grid.tokens).toEqual([...TOKENS, WRITTEN[0]]);
    expect(r.progress()?.done).toBe(2);
    await send(body, steps[2]);
    expect(r.run().live?.grid.tokens).toEqual([...TOKENS, ...WRITTEN]);
    expect(r.run().live?.grid.pending).toBeNull();
    let ok: boolean | undefined;
    await act(async () => {
      body.send({ type: 'done', run_id: 7, response: res });
      body.close();
      ok = await done;
    });
    expect(ok).toBe(true);
    expect(server.calls.some((c) => c.url === 'tokenize')).toBe(false);
    const view = r.run().view!;
    expect(view.runId).toBe(7);
    expect(view.rows[0].predictions).toHaveLength(6);
    expect(view.tokens).toEqual([...TOKENS, ...WRITTEN]);
    expect(view.tensor?.T).toBe(6);
    // The request on screen is Run's: a re-run or an attribution adds the count it keeps.
    const { max_new_tokens: _max, stream: _stream, ...asked } = call.body as Record<string, unknown>;
    expect(view.request).toEqual(asked);
    expect(view.generation).toEqual({
      promptTokens: 4,
      maxNewTokens: 2,
      ids: [11, 12],
      text: ' sat down',
      stoppedAtEos: false,
      baseline: { ids: [11, 13], text: ' sat up', tokens: [' sat', ' up'], firstDifference: 1 },
    });
    expect(r.run().live).toBeNull();
    expect(r.run().task.running).toBe(false);
    expect(r.progress()).toBeNull();
    // The controls' tokens are the prompt's, not the written ones.
    expect(r.run().scope.tokens).toEqual(TOKENS);
    expect(r.run().scope.ctx).toMatchObject({ seqLen: TOKENS.length, newTokens: 2 });
    expect(r.run().notes.staleNote).toBeNull();
    act(() => r.run().inputs.setText('Another prompt'));
    expect(r.run().notes.staleNote).toBe('The controls changed since this generation: Generate to update it.');
  });

  it('progress from /events counts too, only this generation’s', async () => {
    const r = await ready();
    const { body } = await start(r);
    const id = generateCalls()[0].headers['x-logitlens-request'];
    act(() => FakeEventSource.run({ request: 'other', stage: 'generating', done: 5, total: 20 }));
    expect(r.progress()).toBeNull();
    act(() => FakeEventSource.run({ request: id, stage: 'generating', done: 3, total: 20 }));
    expect(r.progress()).toEqual({ request: id, stage: 'generating', done: 3, total: 20 });
    // The layers of each pass are not what its bar counts.
    act(() => FakeEventSource.run({ request: id, stage: 'forward', done: 1, total: 2 }));
    expect(r.progress()?.stage).toBe('generating');
    // The lines read so far do not take back what the server has already said.
    await send(body, generateSteps()[0]);
    expect(r.progress()?.done).toBe(3);
    act(() => r.run().task.stop());
    expect(body.cancelled).toBe(true);
  });

  it('an error line fails the generation in words; the run on screen stays', async () => {
    const r = await ready();
    await act(() => r.run().runInference());
    const before = r.run().view;
    const { done, body } = await start(r);
    await send(body, generateSteps()[0]);
    expect(r.run().live).not.toBeNull();
    let ok: boolean | undefined;
    await act(async () => {
      body.send({ type: 'error', detail: 'the model could not run: out of memory' });
      ok = await done;
    });
    expect(ok).toBe(false);
    expect(r.run().task.error).toBe('The generation failed: the model could not run: out of memory');
    expect(r.run().view).toBe(before);
    expect(r.run().live).toBeNull();
    expect(r.run().task.running).toBe(false);
    expect((await screen.findByTestId('toast-error')).textContent).toContain('Generation failed');
  });

  it('a malformed line, or a stream that ends early, is said; the page drops the stream', async () => {
    const r = await ready();
    let g = await start(r);
    await act(async () => {
      g.body.write('{"type":"step","index":0,"sta');
      g.body.write('rt":0}\n');
      await g.done;
    });
    expect(r.run().task.error).toBe('The server sent a step line that cannot be read (its tokens are not strings)');
    expect(g.body.cancelled).toBe(true);
    g = await start(r);
    await send(g.body, generateSteps()[0]);
    await act(async () => {
      g.body.close();
      await g.done;
    });
    expect(r.run().task.error).toBe('The server ended the stream before the generation was done');
    expect(r.run().view).toBeNull();
  });

  it('a refusal before the start is the server’s detail, with what to do', async () => {
    server.routes.generate = () => ({ status: 409, json: { detail: 'model is loading' } });
    const r = await ready();
    await act(() => r.run().generate());
    expect(r.run().task.error).toBe('model is loading: run the generation once the model is ready.');
    server.routes.generate = () => ({ status: 503, json: { detail: 'the server is busy' }, headers: { 'retry-after': '5' } });
    await act(() => r.run().generate());
    expect(r.run().task.retryAt).not.toBeNull();
    expect(r.run().task.error).toMatch(/^the server is busy\. Run it again after .+\.$/);
    expect((await screen.findAllByTestId('toast-error')).some((t) => t.textContent?.includes('The server is busy'))).toBe(true);
  });

  it('Stop aborts the stream midway: the grid so far goes, the run before stays, said as stopped', async () => {
    const r = await ready();
    await act(() => r.run().runInference());
    const before = r.run().view;
    const { done, body } = await start(r);
    await send(body, ...generateSteps().slice(0, 2));
    expect(r.run().live?.grid.tokens).toHaveLength(5);
    let ok: boolean | undefined;
    await act(async () => {
      r.run().task.stop();
      ok = await done;
    });
    expect(ok).toBe(false);
    expect(body.cancelled).toBe(true);
    expect(r.run().task.stopped).toBe(true);
    expect(r.run().task.error).toBeNull();
    expect(r.run().live).toBeNull();
    expect(r.run().view).toBe(before);
    expect(screen.queryByTestId('toast-error')).toBeNull();
  });

  it('a stopped generation’s late lines, events and answer change nothing of the next one', async () => {
    // As if A's lines were already on their way when Stop was pressed: fetch ignores the abort.
    const fake = globalThis.fetch;
    vi.stubGlobal('fetch', (url: string, init?: RequestInit) => fake(url, { ...init, signal: undefined }));
    const r = await ready();
    const res = generateResponse();
    const steps = generateSteps(res);
    const a = await start(r);
    const idA = generateCalls()[0].headers['x-logitlens-request'];
    await send(a.body, steps[0]);
    act(() => r.run().task.stop());
    const b = await start(r);
    const idB = generateCalls()[1].headers['x-logitlens-request'];
    expect(r.run().task.running).toBe(true);
    expect(r.run().task.stopped).toBe(false);
    act(() => FakeEventSource.run({ request: idB, stage: 'generating', done: 1, total: 20 }));
    // A goes on writing after the Stop, and its events still come.
    await send(a.body, steps[1], steps[2]);
    act(() => FakeEventSource.run({ request: idA, stage: 'generating', done: 2, total: 20 }));
    expect(r.run().live).toBeNull();
    expect(r.progress()).toEqual({ request: idB, stage: 'generating', done: 1, total: 20 });
    let okA: boolean | undefined;
    await act(async () => {
      a.body.send({ type: 'done', run_id: 1, response: res });
      a.body.close();
      okA = await a.done;
    });
    expect(okA).toBe(false);
    expect(r.run().view).toBeNull();
    expect(r.run().task.running).toBe(true);
    expect(r.progress()?.request).toBe(idB);
    // B goes through as if A had never been.
    await send(b.body, steps[0]);
    expect(r.run().live?.grid.tokens).toEqual(TOKENS);
    let okB: boolean | undefined;
    await act(async () => {
      for (const s of steps.slice(1)) b.body.send(s);
      b.body.send({ type: 'done', run_id: 2, response: res });
      b.body.close();
      okB = await b.done;
    });
    expect(okB).toBe(true);
    expect(r.run().view?.runId).toBe(2);
    expect(r.run().task.running).toBe(false);
    expect(r.run().task.stopped).toBe(false);
    expect(r.run().task.error).toBeNull();
  });

  it('a run started meanwhile replaces the generation', async () => {
    const r = await ready();
    const { done, body } = await start(r);
    await send(body, generateSteps()[0]);
    let ok: boolean | undefined;
    await act(async () => {
      void r.run().runInference();
      ok = await done;
    });
    expect(ok).toBe(false);
    expect(body.cancelled).toBe(true);
    await waitFor(() => expect(r.run().view?.runId).toBe(42));
    expect(r.run().live).toBeNull();
    expect(r.run().task.kind).toBe('run');
    expect(r.run().view?.generation).toBeNull();
  });

  it('the new-tokens field: Generate waits for a whole number from 1 to 256', async () => {
    const r = await ready();
    expect(r.run().inputs.newTokens.text).toBe('20');
    expect(r.run().disabled.generate).toBeNull();
    act(() => r.run().inputs.newTokens.set('300'));
    expect(r.run().inputs.newTokens.error).toBe('New tokens: 300 is not a whole number from 1 to 256');
    expect(r.run().disabled.generate).toBe(r.run().inputs.newTokens.error);
    // Run does not care.
    expect(r.run().disabled.run).toBeNull();
    let ok: boolean | undefined;
    await act(async () => {
      ok = await r.run().generate();
    });
    expect(ok).toBe(false);
    expect(generateCalls()).toHaveLength(0);
    // A re-run passes its own count.
    act(() => {
      void r.run().generate(undefined, { maxNewTokens: 3 });
    });
    await waitFor(() => expect(bodies).toHaveLength(1));
    expect(generateCalls()[0].body).toMatchObject({ max_new_tokens: 3, stream: true });
    act(() => r.run().task.stop());
    expect(bodies[0].cancelled).toBe(true);
  });
});
