import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, screen, waitFor } from '@testing-library/react';
import type { InferenceResponse, ModelStatus } from '../api/types';
import { NotificationProvider } from '../components/Notifications';
import { inferenceResponse, JACOBIAN, JLENS_FILE, lensRows, READY, RECEIPTS, TUNED_LENS_DIR } from '../test/fixtures';
import { formatClock } from '../lib/time';
import { deferred, FakeEventSource, stubServer, type FakeServer, type Reply } from '../test/server';
import { useModelLoader } from './useModelLoader';
import { useModels } from './useModels';
import { useRun } from './useRun';
import { DEFAULT_TEXT } from './useRunInputs';
import { useRunProgress } from './useStoppableRequest';

let server: FakeServer;

beforeEach(() => {
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    inference: () => ({ json: { ...inferenceResponse(), receipts: RECEIPTS.slice(0, 1) }, headers: { 'x-logitlens-run-id': '42' } }),
  });
});

afterEach(() => vi.unstubAllGlobals());

function renderRun() {
  const hook = renderHook(
    () => {
      const loader = useModelLoader(useModels());
      const run = useRun(loader);
      return { loader, run, progress: useRunProgress(run.task.progress) };
    },
    { wrapper: NotificationProvider },
  );
  return { ...hook, run: () => hook.result.current.run, progress: () => hook.result.current.progress };
}

async function ready() {
  const r = renderRun();
  await waitFor(() => expect(r.result.current.loader.loaded).toBe(true));
  return r;
}

const inferenceBodies = () => server.calls.filter((c) => c.url === 'inference').map((c) => c.body);

describe('useRun', () => {
  it('Run waits for the server and a loaded model, and says why', async () => {
    server.routes.model_status = () => ({ json: { loaded: false, backend: 'custom', status: 'idle' } satisfies ModelStatus });
    const { run } = renderRun();
    expect(run().disabled.run).toBe('Connecting to the server…');
    await waitFor(() => expect(run().disabled.run).toBe('No model is loaded: choose one in the header'));
    // No model known: the controls offer no layer count of their own.
    expect(run().scope.layerOptions).toBe(0);
  });

  it('runs the controls as they are, with compact attention and entropy, and shows the run', async () => {
    const { run } = await ready();
    expect(run().disabled.run).toBeNull();
    expect(run().scope.layerOptions).toBe(2);
    act(() => {
      run().inputs.setLensType('post_attention');
      run().inputs.setInterventions({ layer_1_output: [{ type: 'zero', all_layers: false }] });
      run().inputs.setOptions({ compare: true, analysis: false, track: [' Paris', 7] });
    });
    let ok: boolean | undefined;
    await act(async () => {
      ok = await run().runInference();
    });
    expect(ok).toBe(true);
    expect(inferenceBodies()).toEqual([
      {
        text: DEFAULT_TEXT,
        interventions: { layer_1_output: [{ type: 'zero', all_layers: false }] },
        lens_type: 'post_attention',
        apply_chat_template: false,
        return_attention: true,
        attention_format: 'f16',
        attention_reduce: 'head_mean',
        entropy: true,
        compare: true,
        track_tokens: [' Paris', 7],
      },
    ]);
    const view = run().view!;
    expect(view.runId).toBe(42);
    expect(view.modelName).toBe('/fixtures/tiny/llama');
    expect(view.rows).toHaveLength(3);
    expect(view.tensor?.reduce).toBe('head_mean');
    expect(view.source).toEqual({ kind: 'inference' });
    expect(run().notes.receipts).toEqual({ list: RECEIPTS.slice(0, 1), interventions: 1, stale: false });
    // The tokens of the text as run bound the token indices of interventions.
    expect(run().scope.tokens).toHaveLength(4);
    expect(run().scope.ctx).toEqual({ numLayers: 2, hiddenSize: 8, seqLen: 4, jlensLayers: null, saes: [] });
    expect(run().notes.staleNote).toBeNull();
  });

  it('the run on screen goes stale when the controls change, and back when they match again', async () => {
    const { run } = await ready();
    await act(() => run().runInference());
    act(() => run().inputs.setText('Something else'));
    expect(run().notes.staleNote).toBe('The controls changed since this run: Run to update the grid.');
    expect(run().scope.tokens).toBeNull();
    act(() => run().inputs.setText(DEFAULT_TEXT));
    expect(run().notes.staleNote).toBeNull();
    act(() => run().inputs.setInterventions({ embeddings: [{ type: 'scale', value: 2 }] }));
    expect(run().notes.staleNote).not.toBeNull();
    expect(run().notes.receipts?.stale).toBe(true);
  });

  it('override replaces the controls\' fields for one run', async () => {
    const { run } = await ready();
    await act(() => run().runInference({ text: 'Saved text', lens_type: 'combined', apply_chat_template: true }, { kind: 'session', name: 's', savedOnly: false }));
    expect(inferenceBodies()[0]).toMatchObject({ text: 'Saved text', lens_type: 'combined', apply_chat_template: true });
    expect(run().view?.source).toEqual({ kind: 'session', name: 's', savedOnly: false });
    // A session's run is not compared with the controls.
    expect(run().notes.staleNote).toBeNull();
  });

  it('a run refused while the model loads says to run again, in a toast and as the run error', async () => {
    server.routes.inference = () => ({ status: 409, json: { detail: 'model is loading' } });
    const { run } = await ready();
    let ok: boolean | undefined;
    await act(async () => {
      ok = await run().runInference();
    });
    expect(ok).toBe(false);
    expect(run().task.error).toBe('model is loading. Run again when the model is ready.');
    expect(run().view).toBeNull();
    expect(run().task.running).toBe(false);
    expect((await screen.findByTestId('toast-error')).textContent).toContain('Inference failed');
  });

  it('asks for the tuned lens only when one is attached and the lens type is block output; the view names it', async () => {
    FakeEventSource.instances = [];
    vi.stubGlobal('EventSource', FakeEventSource);
    const { run } = await ready();
    // Chosen before any lens is attached: not asked for.
    act(() => run().inputs.setOptions({ ...run().inputs.options, lens: 'tuned' }));
    expect(run().inputs.lenses).toBeNull();
    expect(run().inputs.lens).toBe('logit');
    await act(() => run().runInference());
    expect(inferenceBodies()[0]).not.toHaveProperty('lens');
    expect(run().view?.lensPath).toBeNull();

    act(() => FakeEventSource.status({ ...READY, tuned_lens: TUNED_LENS_DIR }));
    expect(run().inputs.lenses?.attached).toEqual({ tuned: TUNED_LENS_DIR, jacobian: null });
    expect(run().inputs.lenses?.disabledReason).toBeNull();
    expect(run().inputs.lens).toBe('tuned');
    // The controls now ask for another lens than the run on screen.
    expect(run().notes.staleNote).toBe('The controls changed since this run: Run to update the grid.');
    await act(() => run().runInference());
    expect(inferenceBodies()[1]).toMatchObject({ lens: 'tuned', lens_type: 'block_output' });
    expect(run().view?.request.lens).toBe('tuned');
    expect(run().view?.lensPath).toBe(TUNED_LENS_DIR);
    expect(run().notes.staleNote).toBeNull();

    // A lens type the tuned lens cannot draw: the request stays valid, with the logit lens.
    act(() => run().inputs.setLensType('post_attention'));
    expect(run().inputs.lenses?.disabledReason).toMatch(/read block outputs/);
    expect(run().inputs.lens).toBe('logit');
    await act(() => run().runInference());
    expect(inferenceBodies()[2]).not.toHaveProperty('lens');
    expect(inferenceBodies()[2]).toMatchObject({ lens_type: 'post_attention' });
    // The choice is kept for when the lens type allows it again.
    expect(run().inputs.options.lens).toBe('tuned');
  });

  it('asks for the Jacobian lens once one is attached; the view keeps its file and the rows it transported', async () => {
    FakeEventSource.instances = [];
    vi.stubGlobal('EventSource', FakeEventSource);
    server.routes.inference = (body) => ({ json: { ...inferenceResponse(), ...(body.lens === 'jacobian' ? { transported_rows: ['Layer 0'] } : {}) } });
    const { run } = await ready();
    act(() => run().inputs.setOptions({ ...run().inputs.options, lens: 'jacobian' }));
    // Only a tuned lens attached: the choice waits for a Jacobian lens.
    act(() => FakeEventSource.status({ ...READY, tuned_lens: TUNED_LENS_DIR }));
    expect(run().inputs.lens).toBe('logit');
    expect(run().inputs.lenses?.options.find((o) => o.value === 'jacobian')?.disabledReason).toMatch(/No Jacobian lens is attached/);

    act(() => FakeEventSource.status({ ...READY, tuned_lens: TUNED_LENS_DIR, jacobian_lens: JACOBIAN }));
    expect(run().inputs.lens).toBe('jacobian');
    // A status event that changes nothing keeps the same choices (the select does not re-render for it).
    const choices = run().inputs.lenses;
    act(() => FakeEventSource.status({ ...READY, tuned_lens: TUNED_LENS_DIR, jacobian_lens: { ...JACOBIAN } }));
    expect(run().inputs.lenses).toBe(choices);
    await act(() => run().runInference());
    expect(inferenceBodies()[0]).toMatchObject({ lens: 'jacobian', lens_type: 'block_output' });
    expect(run().view).toMatchObject({ request: { lens: 'jacobian' }, lensPath: JLENS_FILE, transportedRows: ['Layer 0'] });

    // The lens goes (another model, or a reload): the logit lens again.
    act(() => FakeEventSource.status(READY));
    expect(run().inputs.lens).toBe('logit');
    expect(run().inputs.lenses).toBeNull();
    await act(() => run().runInference());
    expect(inferenceBodies()[1]).not.toHaveProperty('lens');
    expect(run().view?.transportedRows).toBeNull();
  });

  it('a saved result shown without a model implies its layer count', async () => {
    server.routes.model_status = () => ({ json: { loaded: false, backend: 'custom', status: 'idle' } satisfies ModelStatus });
    const { run } = renderRun();
    await waitFor(() => expect(run().disabled.run).toMatch(/No model is loaded/));
    act(() =>
      run().show({
        request: { text: 't', interventions: {}, lens_type: 'post_attention', apply_chat_template: false, return_attention: false },
        rows: lensRows(['Embeddings', 'L0 Post-Attn', 'L1 Post-Attn', 'L2 Post-Attn', 'Final Output']),
        tokens: null,
        tensor: null,
        modelName: 'm',
        backend: 'custom',
        source: { kind: 'session', name: 's', savedOnly: true },
      }),
    );
    expect(run().scope.layerOptions).toBe(3);
  });
});

describe('useRun: the run in progress', () => {
  type Answer = Reply<InferenceResponse>;
  /** Inference answers held until the test releases them, in the order asked. */
  let pending: ReturnType<typeof deferred<Answer>>[];

  beforeEach(() => {
    FakeEventSource.instances = [];
    vi.stubGlobal('EventSource', FakeEventSource);
    pending = [];
    server.routes.inference = () => {
      const d = deferred<Answer>();
      pending.push(d);
      return d.promise;
    };
  });

  const answer = (text: string, runId: string): Answer => ({ json: { ...inferenceResponse(), text }, headers: { 'x-logitlens-run-id': runId } });
  /** The x-logitlens-request header of the n-th /inference call. */
  const requestId = (n: number) => server.calls.filter((c) => c.url === 'inference')[n].headers['x-logitlens-request'];
  const progressEvent = (request: string | null, stage: 'queued' | 'forward' | 'lens', done: number, total: number) =>
    act(() => FakeEventSource.run({ request, stage, done, total }));

  /**
   * Starts the n-th run without awaiting it, once its request is at the fake server: `done` is
   * what runInference resolves to (wrapped: an async function would wait for a returned promise).
   */
  async function start(r: ReturnType<typeof renderRun>, n: number): Promise<{ done: Promise<boolean> }> {
    let done!: Promise<boolean>;
    act(() => {
      done = r.run().runInference();
    });
    await waitFor(() => expect(pending).toHaveLength(n + 1));
    return { done };
  }

  it('sends a fresh request id with each run and follows only that run\'s progress, on the page\'s one event stream', async () => {
    const r = await ready();
    expect(FakeEventSource.open()).toHaveLength(1);
    const { done: first } = await start(r, 0);
    expect(r.run().task.running).toBe(true);
    const id = requestId(0);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(r.progress()).toBeNull();
    // Another client's run, and a run without an id: not this page's.
    progressEvent('someone-else', 'forward', 5, 30);
    progressEvent(null, 'lens', 1, 31);
    expect(r.progress()).toBeNull();
    progressEvent(id, 'queued', 2, 3);
    expect(r.progress()).toEqual({ request: id, stage: 'queued', done: 2, total: 3 });
    progressEvent(id, 'forward', 1, 2);
    progressEvent('someone-else', 'forward', 0, 30);
    expect(r.progress()).toEqual({ request: id, stage: 'forward', done: 1, total: 2 });
    await act(async () => {
      pending[0].resolve(answer('first', '1'));
      expect(await first).toBe(true);
    });
    expect(r.run().task.running).toBe(false);
    expect(r.run().view?.runId).toBe(1);
    // Done: the progress is gone, and a late event of that run does not bring it back.
    expect(r.progress()).toBeNull();
    progressEvent(id, 'lens', 3, 3);
    expect(r.progress()).toBeNull();
    // The next run has an id of its own.
    const { done: second } = await start(r, 1);
    expect(requestId(1)).toMatch(/^[0-9a-f]{32}$/);
    expect(requestId(1)).not.toBe(id);
    progressEvent(id, 'forward', 1, 2);
    expect(r.progress()).toBeNull();
    progressEvent(requestId(1), 'lens', 0, 4);
    expect(r.progress()?.stage).toBe('lens');
    await act(async () => {
      pending[1].resolve(answer('second', '2'));
      await second;
    });
    // Still one stream.
    expect(FakeEventSource.open()).toHaveLength(1);
  });

  it('Stop aborts the request and keeps the results on screen, said as stopped rather than failed', async () => {
    const r = await ready();
    const { done: first } = await start(r, 0);
    await act(async () => {
      pending[0].resolve(answer('first', '1'));
      await first;
    });
    const before = r.run().view;
    const { done: second } = await start(r, 1);
    const id = requestId(1);
    progressEvent(id, 'forward', 1, 2);
    expect(r.progress()?.done).toBe(1);
    let ok: boolean | undefined;
    await act(async () => {
      r.run().task.stop();
      ok = await second;
    });
    expect(ok).toBe(false);
    expect(r.run().task.running).toBe(false);
    expect(r.run().task.stopped).toBe(true);
    expect(r.run().task.error).toBeNull();
    expect(r.run().view).toBe(before);
    expect(r.progress()).toBeNull();
    expect(screen.queryByTestId('toast-error')).toBeNull();
    // The stopped run's progress, and its answer had it come anyway, change nothing.
    progressEvent(id, 'lens', 3, 3);
    expect(r.progress()).toBeNull();
    await act(async () => pending[1].resolve(answer('too late', '2')));
    expect(r.run().view).toBe(before);
    // Stop with no run in progress does nothing; the next run clears the note.
    act(() => r.run().task.stop());
    const { done: third } = await start(r, 2);
    expect(r.run().task.stopped).toBe(false);
    await act(async () => {
      pending[2].resolve(answer('third', '3'));
      await third;
    });
    expect(r.run().view?.runId).toBe(3);
  });

  it('a stopped run\'s late answer and progress cannot overwrite the newer run', async () => {
    // As if the answer were already on its way when Stop was pressed: fetch ignores the abort.
    const fake = globalThis.fetch;
    vi.stubGlobal('fetch', (url: string, init?: RequestInit) => fake(url, { ...init, signal: undefined }));
    const r = await ready();
    const { done: a } = await start(r, 0);
    const idA = requestId(0);
    act(() => r.run().task.stop());
    const { done: b } = await start(r, 1);
    const idB = requestId(1);
    progressEvent(idB, 'forward', 1, 2);
    progressEvent(idA, 'lens', 3, 3);
    expect(r.progress()).toEqual({ request: idB, stage: 'forward', done: 1, total: 2 });
    // A's answer arrives while B runs: ignored, B still running.
    await act(async () => {
      pending[0].resolve(answer('A', '1'));
      expect(await a).toBe(false);
    });
    expect(r.run().view).toBeNull();
    expect(r.run().task.running).toBe(true);
    expect(r.progress()?.request).toBe(idB);
    await act(async () => {
      pending[1].resolve(answer('B', '2'));
      expect(await b).toBe(true);
    });
    expect(r.run().view?.runId).toBe(2);
    expect(r.run().task.stopped).toBe(false);
  });

  it('a run started while another is in progress replaces it', async () => {
    const r = await ready();
    const { done: a } = await start(r, 0);
    const { done: b } = await start(r, 1);
    await act(async () => {
      // A's request was aborted: it ends as not done, without touching B's state.
      expect(await a).toBe(false);
    });
    expect(r.run().task.running).toBe(true);
    expect(r.run().task.stopped).toBe(false);
    progressEvent(requestId(0), 'forward', 1, 2);
    expect(r.progress()).toBeNull();
    await act(async () => {
      pending[1].resolve(answer('B', '2'));
      await b;
    });
    expect(r.run().view?.runId).toBe(2);
    expect(r.run().task.running).toBe(false);
  });

  it('a busy server (503): its detail, when to try again from Retry-After, in a toast and as the run error', async () => {
    const detail = 'the server is busy: 3 runs are waiting for their turn; try again in 7 s';
    server.routes.inference = () => ({ status: 503, json: { detail }, headers: { 'retry-after': '7' } });
    const r = await ready();
    const t0 = Date.now();
    let ok: boolean | undefined;
    await act(async () => {
      ok = await r.run().runInference();
    });
    expect(ok).toBe(false);
    const at = r.run().task.retryAt!;
    expect(at).toBeGreaterThanOrEqual(t0 + 7000);
    expect(at).toBeLessThanOrEqual(Date.now() + 7000);
    expect(r.run().task.error).toBe(`${detail}. Run again after ${formatClock(at)}.`);
    expect(r.run().task.stopped).toBe(false);
    const toast = await screen.findByTestId('toast-error');
    expect(toast.textContent).toContain('The server is busy');
    expect(toast.textContent).toContain(detail);
    // No retry of its own: one request.
    expect(inferenceBodies()).toHaveLength(1);
    // The next run forgets it.
    server.routes.inference = () => answer('ok', '9');
    await act(() => r.run().runInference());
    expect(r.run().task.retryAt).toBeNull();
    expect(r.run().task.error).toBeNull();
  });

  it('a 503 without Retry-After shows the detail alone', async () => {
    server.routes.inference = () => ({ status: 503, json: null });
    const r = await ready();
    await act(() => r.run().runInference());
    expect(r.run().task.error).toBe('HTTP 503');
    expect(r.run().task.retryAt).toBeNull();
  });

  it('a request over the memory budget (400) shows the server\'s detail as it is', async () => {
    const detail =
      'this request needs about 2400 MiB (attention 1900 MiB, lens 500 MiB); the per-request budget is 1024 MiB: leave out return_attention; or leave out compare; or use a shorter text';
    server.routes.inference = () => ({ status: 400, json: { detail } });
    const r = await ready();
    await act(() => r.run().runInference());
    expect(r.run().task.error).toBe(detail);
    expect(r.run().task.retryAt).toBeNull();
    expect((await screen.findByTestId('toast-error')).textContent).toContain(detail);
  });
});
