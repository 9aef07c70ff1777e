import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, screen, waitFor } from '@testing-library/react';
import type { SessionConfig, SessionEntry } from '../api/types';
import { NotificationProvider } from '../components/Notifications';
import { diffGrid, inferenceResponse, intervenedRows, lensRows, LOADED, READY, TINY_LLAMA, TOKENS, TUNED_LENS_DIR, JACOBIAN } from '../test/fixtures';
import { stubServer, type FakeServer } from '../test/server';
import { useModelLoader } from './useModelLoader';
import { useModels } from './useModels';
import { useRun } from './useRun';
import { useSessions } from './useSessions';

const S1: SessionEntry = { id: '20251203_162845_s1', name: 's1', timestamp: '20251203_162845' };
const S2: SessionEntry = { id: '20251203_162900_s2', name: 's2', timestamp: '20251203_162900' };

const SAVED: SessionConfig = {
  text: 'Saved text',
  interventions: { layer_1_output: { type: 'scale', value: 0.5, vector: null, token_index: -1, source_tokens: null, target_tokens: null, all_layers: false } },
  lens_type: 'post_attention',
  model_name: '/fixtures/tiny/llama',
  backend: 'custom',
  apply_chat_template: true,
  results: { text: 'Saved text', logit_lens: lensRows(['Embeddings', 'L0 Post-Attn', 'L1 Post-Attn', 'Final Output']) },
  input_tokens: TOKENS,
};

let server: FakeServer;
let sessions: SessionEntry[];

beforeEach(() => {
  sessions = [S1, S2];
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    load_model: () => ({ json: LOADED }),
    inference: () => ({ json: inferenceResponse(), headers: { 'x-logitlens-run-id': '42' } }),
    sessions: () => ({ json: sessions }),
    save_state: (body) => ({ json: { status: 'saved', session_id: `x_${body.name}`, path: `saved_states/x_${body.name}` } }),
    delete_session: (body) => {
      sessions = sessions.filter((s) => s.id !== body.session_id);
      return { json: { status: 'deleted', session_id: body.session_id } };
    },
    load_session: () => ({ json: SAVED }),
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  window.localStorage.clear();
});

async function ready() {
  const onShown = vi.fn();
  const hook = renderHook(
    () => {
      const loader = useModelLoader(useModels());
      const run = useRun(loader);
      return { loader, run, sessions: useSessions(run, loader, { onShown }) };
    },
    { wrapper: NotificationProvider },
  );
  await waitFor(() => expect(hook.result.current.loader.loaded).toBe(true));
  return { ...hook, onShown, current: () => hook.result.current };
}

const urls = () => server.calls.map((c) => c.url).filter((u) => u !== 'model_status' && u !== 'models');

describe('useSessions', () => {
  it('lists, saves the run on screen, and deletes', async () => {
    const { current } = await ready();
    expect(current().sessions.list).toBeNull();
    await act(() => current().sessions.refresh());
    expect(current().sessions.list).toEqual([S1, S2]);
    await act(() => current().run.runInference());
    await act(() => current().sessions.save('mine'));
    expect(server.calls.find((c) => c.url === 'save_state')!.body).toEqual({ name: 'mine', run_id: 42 });
    expect((await screen.findByTestId('toast-success')).textContent).toContain('Saved as x_mine');
    await act(() => current().sessions.remove(S1));
    expect(server.calls.find((c) => c.url === 'delete_session')!.body).toEqual({ session_id: S1.id });
    expect(current().sessions.list).toEqual([S2]);
  });

  it('a failed listing is kept as the error', async () => {
    server.routes.sessions = () => ({ status: 500, json: { detail: 'cannot read saved_states' } });
    const { current } = await ready();
    await act(() => current().sessions.refresh());
    expect(current().sessions.error).toBe('cannot read saved_states');
    expect(current().sessions.loading).toBe(false);
  });

  it('compares two sessions; a refusal is thrown in the server\'s words', async () => {
    let refuse = true;
    server.routes.diff_sessions = () =>
      refuse
        ? { status: 400, json: { detail: 'the sessions are not comparable: different input token ids' } }
        : {
            json: {
              a: { session_id: S1.id, model_name: 'm', lens_type: 'block_output' },
              b: { session_id: S2.id, model_name: 'm', lens_type: 'block_output' },
              input_tokens: TOKENS,
              layer_names: ['Embeddings', 'Layer 0', 'Final Output'],
              a_logit_lens: lensRows(),
              b_logit_lens: intervenedRows(),
              diff: diffGrid(),
            },
          };
    const { current, onShown } = await ready();
    await expect(current().sessions.compare(S1, S2)).rejects.toThrow('the sessions are not comparable: different input token ids');
    expect(current().sessions.diff).toBeNull();
    expect(onShown).not.toHaveBeenCalled();
    refuse = false;
    await act(() => current().sessions.compare(S1, S2));
    expect(current().sessions.diff).toMatchObject({ aName: 's1', bName: 's2' });
    expect(onShown).toHaveBeenCalledTimes(1);
    act(() => current().sessions.closeDiff());
    expect(current().sessions.diff).toBeNull();
  });

  it('visualization only: restores the controls and shows the saved results, without a model switch or a run', async () => {
    server.routes.load_session = () => ({ json: { ...SAVED, model_name: 'another/model' } });
    const { current, onShown } = await ready();
    act(() => current().sessions.setVizOnly(true));
    expect(window.localStorage.getItem('logitlens.vizOnly')).toBe('1');
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session']);
    expect(onShown).toHaveBeenCalledTimes(1);
    const { run, loader } = current();
    expect(run.inputs.text).toBe('Saved text');
    expect(run.inputs.lensType).toBe('post_attention');
    expect(run.inputs.interventions).toEqual({ layer_1_output: [{ type: 'scale', value: 0.5, token_index: -1, all_layers: false }] });
    expect(loader.useChat).toBe(true);
    expect(run.view).toMatchObject({ modelName: 'another/model', tokens: TOKENS, source: { kind: 'session', name: 's1', savedOnly: true } });
    expect(run.view?.rows).toHaveLength(4);
    expect((await screen.findByTestId('toast-info')).textContent).toContain('the model was not switched and nothing was re-run');
    expect(current().sessions.busy).toBe(false);
  });

  it('re-runs a session on its own model, switching to it first', async () => {
    server.routes.load_session = () => ({ json: { ...SAVED, model_name: 'gpt2', backend: 'transformerlens', lens_type: 'block_output' } });
    const { current } = await ready();
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session', 'load_model', 'inference']);
    expect(server.calls.find((c) => c.url === 'load_model')!.body).toEqual({ model_name: 'gpt2', backend: 'hooked' });
    expect(server.calls.find((c) => c.url === 'inference')!.body).toMatchObject({ text: 'Saved text', lens_type: 'block_output', apply_chat_template: true });
    expect(current().run.view?.source).toEqual({ kind: 'session', name: 's1', savedOnly: false });
  });

  it('a generation’s session: its written positions shown as such, then generated again, as many tokens as it wrote', async () => {
    const tokens = [...TOKENS, ' sat', ' down'];
    server.routes.load_session = () => ({
      json: { ...SAVED, results: { text: 'Saved text', logit_lens: lensRows(undefined, 6) }, input_tokens: tokens, generated_ids: [11, 12], prompt_tokens: 4 },
    });
    let started = false;
    server.routes.generate = () => {
      started = true;
      return { status: 503, json: { detail: 'busy' } };
    };
    const { current } = await ready();
    act(() => current().sessions.setVizOnly(true));
    await act(() => current().sessions.load(S1));
    expect(current().run.view?.generation).toEqual({ promptTokens: 4, maxNewTokens: 2, ids: [11, 12], text: ' sat down', stoppedAtEos: false, baseline: null });
    expect(current().run.scope.tokens).toEqual(TOKENS);
    expect(started).toBe(false);
    act(() => current().sessions.setVizOnly(false));
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session', 'load_session', 'generate']);
    expect(server.calls.find((c) => c.url === 'generate')!.body).toMatchObject({ text: 'Saved text', lens_type: 'post_attention', max_new_tokens: 2, stream: true });
  });

  it('a session whose model does not load keeps its saved results on screen and says so', async () => {
    server.routes.load_session = () => ({ json: { ...SAVED, model_name: 'gone/model' } });
    server.routes.load_model = () => ({ status: 404, json: { detail: 'gone/model: not found on the Hub' } });
    const { current } = await ready();
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session', 'load_model']);
    expect(current().run.view?.source).toEqual({ kind: 'session', name: 's1', savedOnly: true });
    await waitFor(() => expect(screen.getAllByTestId('toast-error').map((t) => t.textContent).join(' ')).toContain('were not re-run'));
  });

  it('a session that cannot be read is said in a toast, and nothing changes', async () => {
    server.routes.load_session = () => ({ status: 404, json: { detail: 'no session s1' } });
    const { current, onShown } = await ready();
    await act(() => current().sessions.load(S1));
    expect(onShown).not.toHaveBeenCalled();
    expect(current().run.view).toBeNull();
    expect((await screen.findByTestId('toast-error')).textContent).toContain('no session s1');
    expect(current().sessions.busy).toBe(false);
  });
});

describe('useSessions: sessions drawn by a tuned lens', () => {
  const TUNED: SessionConfig = { ...SAVED, lens_type: 'block_output', lens: 'tuned', tuned_lens: TUNED_LENS_DIR, results: { text: 'Saved text', logit_lens: lensRows() } };
  let attached: string | null;

  beforeEach(() => {
    attached = null;
    server.routes.load_session = () => ({ json: TUNED });
    server.routes.model_status = () => ({ json: { ...READY, tuned_lens: attached } });
    server.routes.load_lens = (body) => {
      attached = body.path;
      return { json: { ...TINY_LLAMA, tuned_lens: body.path } };
    };
  });

  it('shows the saved results as the tuned lens’s, and re-runs with that lens, attached first', async () => {
    const { current } = await ready();
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session', 'load_lens', 'inference']);
    expect(server.calls.find((c) => c.url === 'load_lens')!.body).toEqual({ path: TUNED_LENS_DIR });
    expect(server.calls.find((c) => c.url === 'inference')!.body).toMatchObject({ text: 'Saved text', lens_type: 'block_output', lens: 'tuned' });
    const { run } = current();
    expect(run.view?.request.lens).toBe('tuned');
    expect(run.view?.lensPath).toBe(TUNED_LENS_DIR);
    expect(run.view?.source).toEqual({ kind: 'session', name: 's1', savedOnly: false });
    // The controls follow the session.
    expect(run.inputs.options.lens).toBe('tuned');
    expect((await screen.findByTestId('toast-info')).textContent).toContain('Attached the tuned lens “llama” that drew the session');
  });

  it('the lens already attached: re-run without attaching it again', async () => {
    attached = TUNED_LENS_DIR;
    const { current } = await ready();
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session', 'inference']);
  });

  it('visualization only: the saved rows are named the tuned lens’s, nothing attached or run', async () => {
    const { current } = await ready();
    act(() => current().sessions.setVizOnly(true));
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session']);
    expect(current().run.view).toMatchObject({ request: { lens: 'tuned' }, lensPath: TUNED_LENS_DIR, source: { savedOnly: true } });
  });

  it('a lens that cannot be attached: the saved results stay, not redrawn by another lens', async () => {
    server.routes.load_lens = () => ({ status: 400, json: { detail: `tuned lens: cannot read ${TUNED_LENS_DIR}/config.json: No such file or directory (os error 2)` } });
    const { current } = await ready();
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session', 'load_lens']);
    expect(current().run.view).toMatchObject({ lensPath: TUNED_LENS_DIR, source: { savedOnly: true } });
    const toast = await screen.findByTestId('toast-error');
    expect(toast.textContent).toContain('were not re-run: the session was drawn with the tuned lens /fixtures/research/tuned/llama, which could not be attached: tuned lens: cannot read');
  });

  it('older sessions record no lens: the logit lens drew them', async () => {
    server.routes.load_session = () => ({ json: SAVED });
    const { current } = await ready();
    await act(() => current().sessions.load(S1));
    expect(server.calls.find((c) => c.url === 'inference')!.body).toMatchObject({ lens: 'logit' });
    expect(current().run.view?.lensPath).toBeNull();
  });
});

describe('useSessions: sessions drawn by a Jacobian lens', () => {
  const JAC: SessionConfig = { ...SAVED, lens_type: 'block_output', lens: 'jacobian', results: { text: 'Saved text', logit_lens: lensRows() } };

  beforeEach(() => {
    server.routes.load_session = () => ({ json: JAC });
  });

  it('re-runs with the Jacobian lens attached, and says the session does not name its file', async () => {
    server.routes.model_status = () => ({ json: { ...READY, jacobian_lens: JACOBIAN } });
    const { current } = await ready();
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session', 'inference']);
    expect(server.calls.find((c) => c.url === 'inference')!.body).toMatchObject({ text: 'Saved text', lens: 'jacobian' });
    expect(current().run.inputs.options.lens).toBe('jacobian');
    expect((await screen.findByTestId('toast-info')).textContent).toContain('Re-run with the Jacobian lens attached now (jlens.pt · 12 prompts · layers 0–1)');
  });

  it('without a Jacobian lens attached: the saved results stay, not redrawn by another lens, and what to do is said', async () => {
    const { current } = await ready();
    await act(() => current().sessions.load(S1));
    expect(urls()).toEqual(['load_session']);
    expect(current().run.view).toMatchObject({ request: { lens: 'jacobian' }, lensPath: null, source: { savedOnly: true } });
    expect((await screen.findByTestId('toast-error')).textContent).toContain(
      'the session was drawn with a Jacobian lens, and none is attached to this model (a session does not record its file). Attach it under Lenses in the header, then Run.',
    );
  });
});
