import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, screen, waitFor } from '@testing-library/react';
import type { ModelStatus, ServingStatus } from '../api/types';
import { NotificationProvider } from '../components/Notifications';
import { IDLE, LOADED, MODEL_LIST, READY, TINY_LLAMA, TOO_BIG_DETAIL, TUNED_LENS_DIR } from '../test/fixtures';
import { FakeEventSource, stubServer, type FakeServer } from '../test/server';
import { useModelLoader } from './useModelLoader';
import { useModels } from './useModels';

const QWEN: ServingStatus = { ...READY, model_name: 'Qwen/Qwen3-0.6B', instruct: true };

let server: FakeServer;

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: MODEL_LIST }),
    load_model: () => ({ json: LOADED }),
  });
});

afterEach(() => vi.unstubAllGlobals());

function renderLoader() {
  const hook = renderHook(
    () => {
      const models = useModels();
      return { models, loader: useModelLoader(models) };
    },
    { wrapper: NotificationProvider },
  );
  return { ...hook, loader: () => hook.result.current.loader };
}

/** Rendered, with the status and the model list in. */
async function ready() {
  const r = renderLoader();
  await waitFor(() => expect(r.result.current.loader.loaded && r.result.current.models.models.length > 0).toBe(true));
  return r;
}

/** An /events "status" event, as the server sends at every change. */
const push = (s: ModelStatus) => act(() => FakeEventSource.status(s));

const loadBodies = () => server.calls.filter((c) => c.url === 'load_model').map((c) => c.body);

describe('useModelLoader', () => {
  it('follows the loaded model; the chat template follows the server\'s instruct flag', async () => {
    server.routes.model_status = () => ({ json: { ...READY, model_name: 'SmolLM2-135M-Instruct.Q4_1.gguf', instruct: true } });
    const { loader } = renderLoader();
    await waitFor(() => expect(loader().selectedModel).toBe('SmolLM2-135M-Instruct.Q4_1.gguf'));
    expect(loader().backend).toBe('custom');
    expect(loader().loaded).toBe(true);
    expect(loader().useChat).toBe(true);
    expect(loader().effectiveChat).toBe(true);
    expect(loader().chatHint).toMatch(/instruct model/);
  });

  it('a model without a chat template cannot use one', async () => {
    server.routes.model_status = () => ({ json: { ...QWEN, has_chat_template: false } });
    const { loader } = renderLoader();
    await waitFor(() => expect(loader().loaded).toBe(true));
    expect(loader().chatAvailable).toBe(false);
    act(() => loader().setUseChat(true));
    expect(loader().effectiveChat).toBe(false);
    expect(loader().chatHint).toBe('This model has no chat template');
  });

  it('follows a load reported by /events, then lists the models again', async () => {
    const { loader } = renderLoader();
    await waitFor(() => expect(loader().selectedModel).toBe('/fixtures/tiny/llama'));
    const listed = server.calls.filter((c) => c.url === 'models').length;
    push({ ...READY, status: 'loading', loading: { model_name: 'Qwen/Qwen3-0.6B', backend: 'hooked', stage: 'downloading' } });
    expect(loader().modelBusy).toBe(true);
    push({ ...QWEN, backend: 'hooked' });
    expect(loader().modelBusy).toBe(false);
    expect(loader().selectedModel).toBe('Qwen/Qwen3-0.6B');
    expect(loader().backend).toBe('hooked');
    expect(loader().useChat).toBe(true);
    await waitFor(() => expect(server.calls.filter((c) => c.url === 'models').length).toBe(listed + 1));
  });

  it('before any model is loaded, follows the load under way', async () => {
    server.routes.model_status = () => ({ json: { ...IDLE, status: 'loading', loading: { model_name: 'gpt2', backend: 'transformerlens', stage: 'resolving' } } });
    const { loader } = renderLoader();
    await waitFor(() => expect(loader().selectedModel).toBe('gpt2'));
    expect(loader().backend).toBe('hooked');
    expect(loader().modelBusy).toBe(true);
  });

  it('selectModel loads on the current backend, the chat template from the entry', async () => {
    const { loader } = await ready();
    act(() => loader().selectModel('Qwen/Qwen3-0.6B'));
    expect(loader().pendingLoad).toEqual({ model: 'Qwen/Qwen3-0.6B', backend: 'custom' });
    expect(loader().modelBusy).toBe(true);
    expect(loader().useChat).toBe(true);
    await waitFor(() => expect(loader().pendingLoad).toBeNull());
    expect(loadBodies()).toEqual([{ model_name: 'Qwen/Qwen3-0.6B', backend: 'custom' }]);
    expect(loader().selectedModel).toBe('Qwen/Qwen3-0.6B');
  });

  it('one load at a time: a second request while one is under way is refused in words', async () => {
    const { loader } = await ready();
    act(() => {
      void loader().loadModel('gpt2', 'hooked');
      void loader().loadModel('Qwen/Qwen3-0.6B', 'custom');
    });
    expect((await screen.findByTestId('toast-info')).textContent).toContain('A model is already loading; wait for it to finish.');
    await waitFor(() => expect(loader().pendingLoad).toBeNull());
    expect(loadBodies()).toEqual([{ model_name: 'gpt2', backend: 'hooked' }]);
  });

  it('a refused load is said with the server\'s words and the selection goes back to the loaded model', async () => {
    server.routes.load_model = () => ({ status: 400, json: { detail: 'the custom backend supports llama and qwen3 models; gpt2 is gpt2' } });
    const { loader } = await ready();
    let ok: boolean | undefined;
    await act(async () => {
      ok = await loader().switchTo('gpt2', 'hooked', true);
    });
    expect(ok).toBe(false);
    const toast = await screen.findByTestId('toast-error');
    expect(toast.textContent).toContain('Could not load “gpt2” with the Hooked (TransformerLens-style) backend');
    expect(toast.textContent).toContain('gpt2 is gpt2');
    expect(loader().selectedModel).toBe('/fixtures/tiny/llama');
    expect(loader().backend).toBe('custom');
    // The status's last_error repeats what the toast said: no banner for it. Another one gets one.
    push({ ...READY, last_error: 'the custom backend supports llama and qwen3 models; gpt2 is gpt2' });
    expect(loader().lastError).toBeNull();
    push({ ...READY, last_error: 'someone else\'s load failed' });
    expect(loader().lastError).toBe('someone else\'s load failed');
    act(() => loader().dismissLastError());
    expect(loader().lastError).toBeNull();
  });

  it('selectBackend reloads the same model on the other backend', async () => {
    const { loader } = await ready();
    await act(async () => loader().selectBackend('hooked'));
    expect(loader().backend).toBe('hooked');
    await waitFor(() => expect(loadBodies()).toEqual([{ model_name: '/fixtures/tiny/llama', backend: 'hooked' }]));
  });

  it('with nothing loaded, selectBackend loads the server\'s first model that backend runs', async () => {
    server.routes.model_status = () => ({ json: IDLE });
    server.routes.models = () => ({ json: [MODEL_LIST[5], ...MODEL_LIST] });
    const { result, loader } = renderLoader();
    await waitFor(() => expect(result.current.models.models.length).toBeGreaterThan(0));
    await act(async () => loader().selectBackend('custom'));
    await waitFor(() => expect(loadBodies()).toEqual([{ model_name: 'SmolLM2-135M-Instruct.Q4_1.gguf', backend: 'custom' }]));
  });

  it('with nothing loaded and no model list, the server loads its default model', async () => {
    server.routes.model_status = () => ({ json: IDLE });
    server.routes.models = () => ({ status: 500, json: { detail: 'no list' } });
    const { result, loader } = renderLoader();
    await waitFor(() => expect(result.current.models.error).toBe('no list'));
    await act(async () => loader().selectBackend('hooked'));
    await waitFor(() => expect(loadBodies()).toEqual([{ backend: 'hooked' }]));
    expect(loader().pendingLoad).toBeNull();
  });

  it('switchTo keeps the session\'s chat setting rather than the new model\'s default', async () => {
    const { loader } = await ready();
    let ok: boolean | undefined;
    await act(async () => {
      ok = await loader().switchTo('Qwen/Qwen3-0.6B', 'custom', false);
    });
    expect(ok).toBe(true);
    // The load is over when the server reports it: an instruct model, but the session had no template.
    push(QWEN);
    expect(loader().selectedModel).toBe('Qwen/Qwen3-0.6B');
    expect(loader().useChat).toBe(false);
    // The next load gets the model's default again.
    await act(async () => {
      await loader().loadModel('meta-llama/Llama-3.2-1B-Instruct', 'custom');
    });
    push({ ...QWEN, model_name: 'meta-llama/Llama-3.2-1B-Instruct' });
    expect(loader().useChat).toBe(true);
  });

  it('passes on the "run" events of its one /events stream to subscribers, skipping malformed ones', async () => {
    const { loader } = await ready();
    expect(FakeEventSource.open()).toHaveLength(1);
    const seen: unknown[] = [];
    const unsubscribe = loader().subscribeRunProgress((p) => seen.push(p));
    act(() => FakeEventSource.run({ request: 'r1', stage: 'forward', done: 1, total: 2 }));
    act(() => FakeEventSource.open()[0].emit('run', { request: 'r1', stage: 'sideways', done: 1, total: 2 }));
    act(() => FakeEventSource.run({ request: null, stage: 'queued', done: 0, total: 1 }));
    expect(seen).toEqual([
      { request: 'r1', stage: 'forward', done: 1, total: 2 },
      { request: null, stage: 'queued', done: 0, total: 1 },
    ]);
    // A run event is not a status: the model stays as it was.
    expect(loader().loaded).toBe(true);
    unsubscribe();
    act(() => FakeEventSource.run({ request: 'r1', stage: 'lens', done: 0, total: 3 }));
    expect(seen).toHaveLength(2);
  });

  it('loads with the weights chosen: auto is no field (the server\'s default), f32 and stored are sent', async () => {
    const { loader } = await ready();
    expect(loader().weights).toBe('auto');
    await act(async () => {
      await loader().loadModel('Qwen/Qwen3-0.6B', 'custom');
    });
    act(() => loader().setWeights('stored'));
    await act(async () => {
      await loader().loadModel('meta-llama/Llama-3.2-1B', 'custom');
    });
    act(() => loader().selectModel('Qwen/Qwen3-0.6B'));
    await waitFor(() => expect(loader().pendingLoad).toBeNull());
    act(() => loader().setWeights('f32'));
    await act(async () => loader().selectBackend('hooked'));
    await waitFor(() => expect(loader().pendingLoad).toBeNull());
    expect(loadBodies()).toEqual([
      { model_name: 'Qwen/Qwen3-0.6B', backend: 'custom' },
      { model_name: 'meta-llama/Llama-3.2-1B', backend: 'custom', weights: 'stored' },
      { model_name: 'Qwen/Qwen3-0.6B', backend: 'custom', weights: 'stored' },
      { model_name: 'Qwen/Qwen3-0.6B', backend: 'hooked', weights: 'f32' },
    ]);
  });

  it('offers to reload the model in service when it holds its weights otherwise than chosen', async () => {
    const { loader } = await ready();
    // The tiny llama is widened (f32): auto and f32 take it as it is.
    expect(loader().weightsDiffer).toBe(false);
    act(() => loader().setWeights('f32'));
    expect(loader().weightsDiffer).toBe(false);
    act(() => loader().setWeights('stored'));
    expect(loader().weightsDiffer).toBe(true);
    act(() => loader().reloadWeights());
    await waitFor(() => expect(loader().pendingLoad).toBeNull());
    expect(loadBodies()).toEqual([{ model_name: '/fixtures/tiny/llama', backend: 'custom', weights: 'stored' }]);
    push({ ...READY, weights: { form: 'stored', kinds: 'F32', resident_bytes: 46_080 } });
    expect(loader().weightsDiffer).toBe(false);
  });

  it('a model too big for the free memory (409) is a warning in the server\'s words; the model in service stays', async () => {
    server.routes.load_model = () => ({ status: 409, json: { detail: TOO_BIG_DETAIL } });
    const { loader } = await ready();
    let ok: boolean | undefined;
    await act(async () => {
      ok = await loader().loadModel('mistralai/Mistral-7B-v0.3', 'custom');
    });
    expect(ok).toBe(false);
    const toast = await screen.findByTestId('toast-warning');
    expect(toast.getAttribute('role')).toBe('alert');
    expect(toast.textContent).toContain('Not enough memory to load “Mistral-7B-v0.3”');
    expect(toast.textContent).toContain(TOO_BIG_DETAIL);
    expect(toast.textContent).toContain('llama stays loaded.');
    expect(screen.queryByTestId('toast-error')).toBeNull();
    expect(loader().loaded).toBe(true);
    expect(loader().model?.model_name).toBe('/fixtures/tiny/llama');
    expect(loader().selectedModel).toBe('/fixtures/tiny/llama');
    // The server's last_error says the same: no banner repeats it.
    push({ ...READY, last_error: TOO_BIG_DETAIL });
    expect(loader().lastError).toBeNull();
  });

  it('attaches a tuned lens to the model in service and follows the new status; a refusal is thrown in the server\'s words', async () => {
    let attached: string | null = null;
    server.routes.model_status = () => ({ json: { ...READY, tuned_lens: attached } });
    server.routes.load_lens = (body) => {
      attached = body.path;
      return { json: { ...TINY_LLAMA, tuned_lens: body.path } };
    };
    // Without the event stream: the page asks for the status itself.
    vi.stubGlobal('EventSource', undefined);
    const { loader } = await ready();
    expect(loader().model?.tuned_lens).toBeNull();
    await act(async () => {
      const res = await loader().attachLens(TUNED_LENS_DIR);
      expect(res.tuned_lens).toBe(TUNED_LENS_DIR);
    });
    expect(server.calls.find((c) => c.url === 'load_lens')!.body).toEqual({ path: TUNED_LENS_DIR });
    await waitFor(() => expect(loader().model?.tuned_lens).toBe(TUNED_LENS_DIR));
    const detail = "tuned lens: its d_model is 32 but the model's is 8";
    server.routes.load_lens = () => ({ status: 400, json: { detail } });
    await expect(loader().attachLens('/lenses/small')).rejects.toThrow(detail);
    expect(loader().model?.tuned_lens).toBe(TUNED_LENS_DIR);
  });
});
