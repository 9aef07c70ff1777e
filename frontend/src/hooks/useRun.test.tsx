import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, screen, waitFor } from '@testing-library/react';
import type { ModelStatus } from '../api/types';
import { NotificationProvider } from '../components/Notifications';
import { inferenceResponse, lensRows, READY, RECEIPTS } from '../test/fixtures';
import { stubServer, type FakeServer } from '../test/server';
import { useModelLoader } from './useModelLoader';
import { useModels } from './useModels';
import { DEFAULT_TEXT, useRun } from './useRun';

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
      return { loader, run: useRun(loader) };
    },
    { wrapper: NotificationProvider },
  );
  return { ...hook, run: () => hook.result.current.run };
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
    expect(run().runDisabledReason).toBe('Connecting to the server…');
    await waitFor(() => expect(run().runDisabledReason).toBe('No model is loaded: choose one in the header'));
    // No model known: the controls offer no layer count of their own.
    expect(run().layerOptions).toBe(0);
  });

  it('runs the controls as they are, with compact attention and entropy, and shows the run', async () => {
    const { run } = await ready();
    expect(run().runDisabledReason).toBeNull();
    expect(run().layerOptions).toBe(2);
    act(() => {
      run().setLensType('post_attention');
      run().setInterventions({ layer_1_output: [{ type: 'zero', all_layers: false }] });
      run().setRunOptions({ compare: true, analysis: false, track: [' Paris', 7] });
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
    expect(run().receipts).toEqual({ list: RECEIPTS.slice(0, 1), interventions: 1, stale: false });
    // The tokens of the text as run bound the token indices of interventions.
    expect(run().tokens).toHaveLength(4);
    expect(run().ctx).toEqual({ numLayers: 2, hiddenSize: 8, seqLen: 4 });
    expect(run().staleNote).toBeNull();
  });

  it('the run on screen goes stale when the controls change, and back when they match again', async () => {
    const { run } = await ready();
    await act(() => run().runInference());
    act(() => run().setText('Something else'));
    expect(run().staleNote).toBe('The controls changed since this run: Run to update the grid.');
    expect(run().tokens).toBeNull();
    act(() => run().setText(DEFAULT_TEXT));
    expect(run().staleNote).toBeNull();
    act(() => run().setInterventions({ embeddings: [{ type: 'scale', value: 2 }] }));
    expect(run().staleNote).not.toBeNull();
    expect(run().receipts?.stale).toBe(true);
  });

  it('override replaces the controls\' fields for one run', async () => {
    const { run } = await ready();
    await act(() => run().runInference({ text: 'Saved text', lens_type: 'combined', apply_chat_template: true }, { kind: 'session', name: 's', savedOnly: false }));
    expect(inferenceBodies()[0]).toMatchObject({ text: 'Saved text', lens_type: 'combined', apply_chat_template: true });
    expect(run().view?.source).toEqual({ kind: 'session', name: 's', savedOnly: false });
    // A session's run is not compared with the controls.
    expect(run().staleNote).toBeNull();
  });

  it('a run refused while the model loads says to run again, in a toast and as the run error', async () => {
    server.routes.inference = () => ({ status: 409, json: { detail: 'model is loading' } });
    const { run } = await ready();
    let ok: boolean | undefined;
    await act(async () => {
      ok = await run().runInference();
    });
    expect(ok).toBe(false);
    expect(run().runError).toBe('model is loading. Run again when the model is ready.');
    expect(run().view).toBeNull();
    expect(run().running).toBe(false);
    expect((await screen.findByTestId('toast-error')).textContent).toContain('Inference failed');
  });

  it('a saved result shown without a model implies its layer count', async () => {
    server.routes.model_status = () => ({ json: { loaded: false, backend: 'custom', status: 'idle' } satisfies ModelStatus });
    const { run } = renderRun();
    await waitFor(() => expect(run().runDisabledReason).toMatch(/No model is loaded/));
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
    expect(run().layerOptions).toBe(3);
  });
});
