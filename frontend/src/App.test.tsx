import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import App from './App';
import type { ModelStatus } from './api/types';
import { HEADS_GONE_MESSAGE } from './lib/runHeads';
import {
  analysisFixture,
  attention,
  EVAL_REPORT,
  diffGrid,
  entropyGrid,
  IDLE,
  inferenceResponse,
  JACOBIAN,
  JLENS_FILE,
  LENS_VECTOR,
  intervenedRows,
  lensRows,
  LOADED,
  MISTRAL_7B,
  MODEL_LIST,
  packAttention,
  READY,
  RECEIPTS,
  TOKENS,
  TINY_LLAMA,
  TOO_BIG_DETAIL,
  trackedGrid,
  TUNED_LENS_DIR,
} from './test/fixtures';
import type { InferenceResponse } from './api/types';
import { deferred, FakeEventSource, stubServer, type FakeServer, type Reply, type Routes } from './test/server';

let routes: Routes;
let calls: FakeServer['calls'];

beforeEach(() => {
  ({ routes, calls } = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    inference: () => ({ json: inferenceResponse(), headers: { 'x-logitlens-run-id': '42' } }),
  }));
});

afterEach(() => {
  vi.unstubAllGlobals();
  window.localStorage.clear();
});

/** The model select's groups: [label, option texts]. */
function groupsOf(select: HTMLElement): [string, string[]][] {
  return Array.from(select.querySelectorAll('optgroup')).map((g) => [g.label, Array.from(g.querySelectorAll('option')).map((o) => o.textContent ?? '')]);
}


async function ready() {
  render(<App />);
  await screen.findByText('Status: Ready');
}

describe('App', () => {
  it('shows the loaded model and runs the lens asking for compact attention', async () => {
    await ready();
    expect(screen.getByTestId('empty-results')).toBeTruthy();
    const run = screen.getByRole('button', { name: /Run LogitLens/ });
    fireEvent.click(run);
    await screen.findByTestId('lens-grid');
    const req = calls.find((c) => c.url === 'inference')!.body;
    expect(req).toEqual({
      text: 'The capital of France is',
      interventions: {},
      lens_type: 'block_output',
      apply_chat_template: false,
      return_attention: true,
      attention_format: 'f16',
      attention_reduce: 'head_mean',
      entropy: true,
    });
    expect(screen.getByTestId('run-meta').textContent).toContain('4 tokens');
    // The status arrives before the first run: layer options come from the model.
    expect(Array.from((screen.getByLabelText('Stream layer') as HTMLSelectElement).options).map((o) => o.value)).toEqual(['0', '1', 'embeddings']);
  });

  it('shows the server detail when inference fails', async () => {
    routes.inference = () => ({ status: 400, json: { detail: 'intervention key "layer_9_output": layer 9 is out of range; this model has 2 layers (0..1)' } });
    await ready();
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    const alerts = await screen.findAllByRole('alert');
    expect(alerts.some((a) => a.textContent!.includes('layer 9 is out of range'))).toBe(true);
    expect(screen.getByText('The run failed.')).toBeTruthy();
  });

  it('shows load progress and keeps Run disabled while a model loads', async () => {
    const loading: ModelStatus = {
      loaded: false,
      backend: 'custom',
      status: 'loading',
      loading: { model_name: 'SmolLM2-135M-Instruct.Q4_1.gguf', backend: 'custom', stage: 'loading_tensors', tensors_done: 77, tensors_total: 272, progress: 0.283 },
      last_error: null,
    };
    routes.model_status = () => ({ json: loading });
    render(<App />);
    const progress = await screen.findByTestId('load-progress');
    expect(progress.textContent).toContain('Loading tensors');
    expect(progress.textContent).toContain('tensors 77 / 272');
    expect(progress.textContent).toContain('28%');
    expect(within(progress).getByRole('progressbar').getAttribute('aria-valuenow')).toBe('28');
    expect((screen.getByRole('button', { name: /Run LogitLens/ }) as HTMLButtonElement).disabled).toBe(true);
    // The rest stays usable: interventions can be edited, sessions opened.
    fireEvent.click(screen.getByText('Add stream intervention'));
    expect(screen.getByTestId('intervention-list')).toBeTruthy();
    expect((screen.getByRole('button', { name: 'Load' }) as HTMLButtonElement).disabled).toBe(false);
  });

  it('reports a refused backend in words and reverts the select', async () => {
    routes.load_model = () => ({ status: 400, json: { detail: 'the hooked (TransformerLens-style) backend is not available in this version yet; use backend "custom"' } });
    await ready();
    const select = screen.getByLabelText('Backend') as HTMLSelectElement;
    fireEvent.change(select, { target: { value: 'hooked' } });
    expect(await screen.findByText(/backend is not available in this version yet/)).toBeTruthy();
    expect(calls.find((c) => c.url === 'load_model')!.body).toEqual({ model_name: '/fixtures/tiny/llama', backend: 'hooked' });
    await waitFor(() => expect(select.value).toBe('custom'));
  });

  it('restores a session and re-runs it on the same model', async () => {
    routes.sessions = () => ({ json: [{ id: '20251203_162845_s1', name: 's1', timestamp: '20251203_162845' }] });
    routes.load_session = () => ({
      json: {
        text: 'Saved text',
        interventions: { layer_1_output: { type: 'scale', value: 0.5, vector: null, token_index: -1, source_tokens: null, target_tokens: null, all_layers: false } },
        lens_type: 'post_attention',
        model_name: '/fixtures/tiny/llama',
        backend: 'custom',
        apply_chat_template: false,
        results: { text: 'Saved text', logit_lens: lensRows(['Embeddings', 'L0 Post-Attn', 'L1 Post-Attn', 'Final Output']) },
      },
    });
    await ready();
    fireEvent.click(screen.getByRole('button', { name: 'Load' }));
    fireEvent.click(await screen.findByLabelText('Load session s1'));
    await waitFor(() => expect(calls.some((c) => c.url === 'inference')).toBe(true));
    const req = calls.find((c) => c.url === 'inference')!.body as Record<string, unknown>;
    expect(req.text).toBe('Saved text');
    expect(req.lens_type).toBe('post_attention');
    expect(req.interventions).toEqual({ layer_1_output: [{ type: 'scale', value: 0.5, token_index: -1, all_layers: false }] });
    expect((screen.getByLabelText('Input text') as HTMLTextAreaElement).value).toBe('Saved text');
    expect(screen.getByTestId('intervention-list').textContent).toContain('scale(0.5) @ Token -1');
    expect(calls.some((c) => c.url === 'load_model')).toBe(false);
  });

  it('shows head means from the run, and fetches a layer’s heads for the head views', async () => {
    const att = attention(2, 2, TOKENS.length);
    routes['runs/{id}/attention'] = (_, url) => ({ json: { run_id: 42, ...packAttention(att, 'none', [Number(/layers=(\d+)/.exec(url)![1])]) } });
    await ready();
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await screen.findByTestId('lens-grid');
    fireEvent.click(screen.getByLabelText('Show attention'));
    const main = () => screen.getByTestId('heatmap-main');
    expect(main().dataset.title).toMatch(/Average/);
    expect(calls.some((c) => c.url.startsWith('runs/'))).toBe(false);
    fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'specific' } });
    fireEvent.change(screen.getByLabelText('Attention layer slider'), { target: { value: '1' } });
    await waitFor(() => expect(main().dataset.title).toBe('Layer 1, head 0'));
    expect(calls.filter((c) => c.url.startsWith('runs/')).map((c) => c.url)).toContain('runs/42/attention?layers=1&format=f16');
    const v = Number(main().querySelector<HTMLElement>('[data-q="2"][data-k="1"]')!.dataset.value);
    expect(v).toBeCloseTo(att[1][0][2][1], 3);
  });

  it('an evicted run: the head view says so, and Run again runs again', async () => {
    routes['runs/{id}/attention'] = () => ({ status: 404, json: { detail: 'run 42 is not kept' } });
    await ready();
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await screen.findByTestId('lens-grid');
    fireEvent.click(screen.getByLabelText('Show attention'));
    fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'specific' } });
    expect((await screen.findByTestId('heads-error')).textContent).toContain(HEADS_GONE_MESSAGE);
    fireEvent.click(screen.getByRole('button', { name: 'Run again' }));
    await waitFor(() => expect(calls.filter((c) => c.url === 'inference')).toHaveLength(2));
  });

  it('turns the chat template on for an instruct model (the server flag decides)', async () => {
    routes.model_status = () => ({ json: { ...READY, model_name: 'SmolLM2-135M-Instruct.Q4_1.gguf', instruct: true } });
    await ready();
    const box = screen.getByLabelText('Use chat template') as HTMLInputElement;
    await waitFor(() => expect(box.checked).toBe(true));
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await screen.findByTestId('lens-grid');
    expect((calls.find((c) => c.url === 'inference')!.body as { apply_chat_template: boolean }).apply_chat_template).toBe(true);
  });

  it('a folder named like an instruct model is not, when the server says so', async () => {
    routes.model_status = () => ({ json: { ...READY, model_name: '/fixtures/tiny/qwen3', instruct: false } });
    await ready();
    expect((screen.getByLabelText('Use chat template') as HTMLInputElement).checked).toBe(false);
  });

  it('asks for a baseline, tracked tokens and the analysis, and shows the diff, receipts and analysis', async () => {
    routes.inference = (b) => {
      return {
        json: {
          ...inferenceResponse(),
          logit_lens: intervenedRows(),
          entropy: entropyGrid(),
          receipts: RECEIPTS.slice(0, 1),
          ...(b.compare ? { baseline_logit_lens: lensRows(), diff: diffGrid() } : {}),
          ...(b.track_tokens ? { tracked: trackedGrid() } : {}),
          ...(b.analysis ? { analysis: analysisFixture() } : {}),
        },
        headers: { 'x-logitlens-run-id': '42' },
      };
    };
    await ready();
    fireEvent.change(screen.getByLabelText('Stream layer'), { target: { value: '1' } });
    fireEvent.click(screen.getByText('Add stream intervention'));
    fireEvent.click(screen.getByLabelText(/Compare with baseline/));
    fireEvent.click(screen.getByLabelText(/Activation analysis/));
    const track = screen.getByLabelText('Track tokens');
    fireEvent.change(track, { target: { value: ' Paris, 301' } });
    // The text after the last comma is still being typed: Run takes it once the field is left.
    fireEvent.blur(track);
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await screen.findByTestId('lens-grid');
    const req = calls.find((c) => c.url === 'inference')!.body as Record<string, unknown>;
    expect(req).toMatchObject({ compare: true, analysis: true, entropy: true, track_tokens: [' Paris', 301] });
    expect(screen.getByTestId('run-meta').textContent).toContain('vs baseline');
    // The diff view.
    fireEvent.click(screen.getByLabelText('Diff vs baseline'));
    expect(screen.getByTestId('lens-grid').querySelectorAll('[data-flip]')).toHaveLength(1);
    // Tracked and entropy colour modes.
    fireEvent.click(screen.getByLabelText('Normal'));
    const modes = Array.from((screen.getByLabelText('Grid colour mode') as HTMLSelectElement).options).map((o) => o.value);
    expect(modes).toEqual(['top1', 'tracked:7', 'tracked:301', 'entropy']);
    // Receipts beside the interventions.
    expect(within(screen.getByTestId('receipts')).getByText('blocks.1.hook_resid_post')).toBeTruthy();
    // The analysis panel.
    expect(within(screen.getByTestId('analysis-panel')).getByTestId('analysis-resid_norm')).toBeTruthy();
    expect(screen.queryByTestId('stale-note')).toBeNull();
    // Changing an option makes the grid stale.
    fireEvent.click(screen.getByLabelText('Stop tracking #301'));
    expect(screen.getByTestId('stale-note')).toBeTruthy();
  });

  it('shows why a tracked token was refused', async () => {
    routes.inference = (body) =>
      body.track_tokens
        ? { status: 400, json: { detail: 'track_tokens[0] "Paris" is not one token: it tokenizes as ["P", "aris"]; try " Paris"' } }
        : { json: inferenceResponse() };
    await ready();
    const track = screen.getByLabelText('Track tokens');
    fireEvent.change(track, { target: { value: 'Paris' } });
    fireEvent.keyDown(track, { key: 'Enter' });
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    const alerts = await screen.findAllByRole('alert');
    expect(alerts.some((a) => a.textContent!.includes('it tokenizes as ["P", "aris"]; try " Paris"'))).toBe(true);
  });

  it('compares two saved sessions and shows the diff grid with both names', async () => {
    routes.sessions = () => ({
      json: [
        { id: 's_base', name: 'base', timestamp: '20251203_162845' },
        { id: 's_ablate', name: 'ablate', timestamp: '20251203_162900' },
      ],
    });
    let refuse = true;
    routes.diff_sessions = () =>
      refuse
        ? { status: 400, json: { detail: 'the sessions are not comparable: different input token ids' } }
        : {
            json: {
              a: { session_id: 's_base', model_name: '/fixtures/tiny/llama', lens_type: 'block_output' },
              b: { session_id: 's_ablate', model_name: '/fixtures/tiny/llama-ft', lens_type: 'block_output' },
              input_tokens: TOKENS,
              layer_names: ['Embeddings', 'Layer 0', 'Final Output'],
              a_logit_lens: lensRows(),
              b_logit_lens: intervenedRows(),
              diff: diffGrid(),
            },
          };
    await ready();
    fireEvent.click(screen.getByRole('button', { name: 'Load' }));
    const a = await screen.findByLabelText('Session A (baseline)');
    fireEvent.change(a, { target: { value: 's_base' } });
    fireEvent.change(screen.getByLabelText('Session B'), { target: { value: 's_ablate' } });
    fireEvent.click(screen.getByRole('button', { name: 'Compare' }));
    expect((await screen.findByTestId('compare-error')).textContent).toContain('the sessions are not comparable: different input token ids');
    expect(calls.find((c) => c.url === 'diff_sessions')!.body).toEqual({ a: 's_base', b: 's_ablate' });
    refuse = false;
    fireEvent.click(screen.getByRole('button', { name: 'Compare' }));
    const card = await screen.findByTestId('session-diff');
    expect(screen.queryByTestId('sessions-dialog')).toBeNull();
    const caption = within(card).getByTestId('session-diff-caption').textContent!;
    expect(caption).toContain('A (baseline): “base” · llama · Block Output (standard)');
    expect(caption).toContain('B: “ablate” · llama-ft');
    expect(caption).toContain('two checkpoints');
    const grid = within(card).getByTestId('session-diff-grid');
    expect(within(card).getByRole('table').dataset.view).toBe('diff');
    expect(grid.querySelectorAll('[data-flip]')).toHaveLength(1);
    fireEvent.click(within(card).getByLabelText('Close the session comparison'));
    expect(screen.queryByTestId('session-diff')).toBeNull();
  });

  it('the model select offers the /models entries the backend runs, by family, in the server\'s order', async () => {
    routes.models = () => ({ json: MODEL_LIST });
    await ready();
    const select = screen.getByLabelText('Model') as HTMLSelectElement;
    await waitFor(() => expect(groupsOf(select).map(([label]) => label)).toContain('SmolLM2'));
    expect(groupsOf(select)).toEqual([
      // The loaded folder is not in the list: it is still shown, and selected.
      ['Currently selected', ['llama']],
      ['SmolLM2', ['SmolLM2 135M Instruct (Q4_1 GGUF, default) ✓', 'SmolLM2 135M', 'HuggingFaceTB/SmolLM2-360M-Instruct ✓']],
      ['Llama', ['Llama 3.2 1B', 'Llama 3.2 1B Instruct']],
      ['Qwen3', ['Qwen3 0.6B (Instruct)']],
      ['More', ['Browse all models…']],
    ]);
    expect(select.value).toBe('/fixtures/tiny/llama');
    expect(screen.queryByTestId('models-error')).toBeNull();
  });

  it('with the hooked backend the select also offers the hooked-only families', async () => {
    routes.models = () => ({ json: MODEL_LIST });
    routes.model_status = () => ({ json: { ...READY, backend: 'hooked' } });
    await ready();
    const select = screen.getByLabelText('Model');
    await waitFor(() => expect(groupsOf(select).map(([label]) => label)).toEqual(['Currently selected', 'SmolLM2', 'Llama', 'Qwen3', 'GPT-2', 'More']));
    expect(groupsOf(select)[4]).toEqual(['GPT-2', ['GPT-2 (124M)']]);
  });

  it('picking a listed instruct model loads it with the chat template on (the entry says it is instruct)', async () => {
    routes.models = () => ({ json: MODEL_LIST });
    routes.load_model = () => ({ json: LOADED });
    await ready();
    const select = screen.getByLabelText('Model') as HTMLSelectElement;
    await waitFor(() => expect(select.querySelectorAll('optgroup').length).toBeGreaterThan(2));
    expect((screen.getByLabelText('Use chat template') as HTMLInputElement).checked).toBe(false);
    fireEvent.change(select, { target: { value: 'meta-llama/Llama-3.2-1B-Instruct' } });
    await waitFor(() => expect(calls.some((c) => c.url === 'load_model')).toBe(true));
    expect(calls.find((c) => c.url === 'load_model')!.body).toEqual({ model_name: 'meta-llama/Llama-3.2-1B-Instruct', backend: 'custom' });
    await waitFor(() => expect((screen.getByLabelText('Use chat template') as HTMLInputElement).checked).toBe(true));
  });

  it('without /models the loaded model is still shown, the header says why the list is missing, and Retry fetches it', async () => {
    let fail = true;
    routes.models = () => (fail ? { status: 500, json: { detail: 'cannot read the Hub cache' } } : { json: MODEL_LIST });
    await ready();
    const note = await screen.findByTestId('models-error');
    expect(note.textContent).toContain('Model list unavailable: cannot read the Hub cache');
    const select = screen.getByLabelText('Model') as HTMLSelectElement;
    expect(select.value).toBe('/fixtures/tiny/llama');
    // No list of its own: the loaded model, a disabled line saying so, and the browser.
    expect(groupsOf(select).map(([label]) => label)).toEqual(['Currently selected', 'More']);
    expect(Array.from(select.options).filter((o) => o.disabled).map((o) => o.textContent)).toEqual(['Model list unavailable']);
    fail = false;
    fireEvent.click(within(note).getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(screen.queryByTestId('models-error')).toBeNull());
    // The list renders once the answer is in: after the note goes, not necessarily with it.
    await waitFor(() =>
      expect(groupsOf(select).map(([label]) => label)).toEqual(['Currently selected', 'SmolLM2', 'Llama', 'Qwen3', 'More']),
    );
  });

  it('switching backend with no model loaded loads the server\'s first model for that backend', async () => {
    routes.model_status = () => ({ json: IDLE });
    routes.models = () => ({ json: [MODEL_LIST[5], ...MODEL_LIST.slice(0, 5)] });
    routes.load_model = () => ({ json: LOADED });
    render(<App />);
    await screen.findByText('Status: Not loaded');
    await waitFor(() => expect(calls.filter((c) => c.url === 'models').length).toBeGreaterThan(0));
    await waitFor(() => expect(groupsOf(screen.getByLabelText('Model')).map(([label]) => label)).toContain('SmolLM2'));
    fireEvent.change(screen.getByLabelText('Backend'), { target: { value: 'hooked' } });
    await waitFor(() => expect(calls.some((c) => c.url === 'load_model')).toBe(true));
    // gpt2 is first and runs on hooked.
    expect(calls.find((c) => c.url === 'load_model')!.body).toEqual({ model_name: 'gpt2', backend: 'hooked' });
  });

  it('switching backend with no model and no model list lets the server pick its default', async () => {
    routes.model_status = () => ({ json: IDLE });
    routes.models = () => ({ status: 503, json: { detail: 'busy' } });
    routes.load_model = () => ({ json: LOADED });
    render(<App />);
    await screen.findByText('Status: Not loaded');
    await screen.findByTestId('models-error');
    fireEvent.change(screen.getByLabelText('Backend'), { target: { value: 'hooked' } });
    await waitFor(() => expect(calls.some((c) => c.url === 'load_model')).toBe(true));
    expect(calls.find((c) => c.url === 'load_model')!.body).toEqual({ backend: 'hooked' });
  });
});

describe('App: weights and memory', () => {
  it('the header says how the loaded model holds its weights, and their size', async () => {
    await ready();
    const line = screen.getByTestId('model-weights');
    expect(line.textContent).toBe('weights: f32 · 45 KiB');
    expect(line.title).toContain('the forward pass computes in f32');
    expect(screen.getByTestId('model-status').title).toContain('weights: f32 · 45 KiB');
  });

  it('a model kept as stored: its kinds and resident size', async () => {
    routes.model_status = () => ({
      json: { ...READY, model_name: 'meta-llama/Llama-3.1-8B', weights: { form: 'stored', kinds: 'BF16', resident_bytes: 16_106_127_360 }, source: { ...READY.source, stored_dtype: 'BF16' } },
    });
    await ready();
    expect(screen.getByTestId('model-weights').textContent).toBe('weights: stored BF16 · 15.0 GiB');
    expect(screen.getByTestId('model-weights').title).toContain('kept as stored (BF16)');
  });

  it('no weights line without a model in service', async () => {
    routes.model_status = () => ({ json: IDLE });
    render(<App />);
    await screen.findByText('Status: Not loaded');
    expect(screen.queryByTestId('model-weights')).toBeNull();
  });

  it('the weights chosen in the header go with the load; auto (the default) sends no field', async () => {
    routes.models = () => ({ json: MODEL_LIST });
    routes.load_model = () => ({ json: LOADED });
    await ready();
    const weights = screen.getByLabelText('Weights') as HTMLSelectElement;
    expect(weights.value).toBe('auto');
    const select = screen.getByLabelText('Model') as HTMLSelectElement;
    await waitFor(() => expect(select.querySelectorAll('optgroup').length).toBeGreaterThan(2));
    fireEvent.change(select, { target: { value: 'Qwen/Qwen3-0.6B' } });
    await waitFor(() => expect(calls.filter((c) => c.url === 'load_model')).toHaveLength(1));
    await waitFor(() => expect(weights.disabled).toBe(false));
    fireEvent.change(weights, { target: { value: 'stored' } });
    expect(weights.value).toBe('stored');
    fireEvent.change(select, { target: { value: 'meta-llama/Llama-3.2-1B' } });
    await waitFor(() => expect(calls.filter((c) => c.url === 'load_model')).toHaveLength(2));
    expect(calls.filter((c) => c.url === 'load_model').map((c) => c.body)).toEqual([
      { model_name: 'Qwen/Qwen3-0.6B', backend: 'custom' },
      { model_name: 'meta-llama/Llama-3.2-1B', backend: 'custom', weights: 'stored' },
    ]);
  });

  it('offers to reload the model in service when it holds its weights otherwise than chosen', async () => {
    routes.load_model = () => ({ json: LOADED });
    await ready();
    expect(screen.queryByRole('button', { name: /^Reload as/ })).toBeNull();
    fireEvent.change(screen.getByLabelText('Weights'), { target: { value: 'f32' } });
    // Widened already: nothing to reload.
    expect(screen.queryByRole('button', { name: /^Reload as/ })).toBeNull();
    fireEvent.change(screen.getByLabelText('Weights'), { target: { value: 'stored' } });
    fireEvent.click(screen.getByRole('button', { name: 'Reload as stored' }));
    await waitFor(() => expect(calls.some((c) => c.url === 'load_model')).toBe(true));
    expect(calls.find((c) => c.url === 'load_model')!.body).toEqual({ model_name: '/fixtures/tiny/llama', backend: 'custom', weights: 'stored' });
  });

  it('a model too big for the free memory: marked in the browser and the select, its 409 said in words, the loaded model stays', async () => {
    routes.models = () => ({ json: [...MODEL_LIST, MISTRAL_7B] });
    routes.load_model = () => ({ status: 409, json: { detail: TOO_BIG_DETAIL } });
    await ready();
    const select = screen.getByLabelText('Model') as HTMLSelectElement;
    await waitFor(() => expect(groupsOf(select).map(([label]) => label)).toContain('Mistral'));
    expect(groupsOf(select).find(([label]) => label === 'Mistral')![1]).toEqual(['Mistral 7B v0.3 (too big for free memory)']);
    fireEvent.click(screen.getByRole('button', { name: 'Browse…' }));
    const browser = await screen.findByTestId('model-browser');
    const item = within(browser).getByText('Mistral 7B v0.3').closest('.browser-item') as HTMLElement;
    expect(within(item).getByTestId('model-memory').textContent).toContain('too big for this machine’s free memory');
    fireEvent.change(within(browser).getByLabelText('Weights of the load'), { target: { value: 'stored' } });
    fireEvent.click(item);
    const toast = await screen.findByTestId('toast-warning');
    expect(toast.textContent).toContain('Not enough memory to load “Mistral-7B-v0.3”');
    expect(toast.textContent).toContain('needs about 13.3 GiB of memory to load');
    expect(toast.textContent).toContain('llama stays loaded.');
    expect(calls.find((c) => c.url === 'load_model')!.body).toEqual({ model_name: 'mistralai/Mistral-7B-v0.3', backend: 'custom', weights: 'stored' });
    // Not a crash: no error toast or banner, the model in service still shown as loaded and selected.
    expect(screen.queryByTestId('toast-error')).toBeNull();
    expect(screen.queryByText(/The last model load failed/)).toBeNull();
    await waitFor(() => expect(select.value).toBe('/fixtures/tiny/llama'));
    expect(screen.getByText('Status: Ready')).toBeTruthy();
    expect(screen.getByTestId('model-weights').textContent).toBe('weights: f32 · 45 KiB');
    expect(screen.queryByTestId('load-progress')).toBeNull();
    // The choice is kept for the next load, in the header too.
    expect((screen.getByLabelText('Weights') as HTMLSelectElement).value).toBe('stored');
  });
});

describe('App: a run in progress', () => {
  beforeEach(() => {
    FakeEventSource.instances = [];
    vi.stubGlobal('EventSource', FakeEventSource);
  });

  it('shows its own progress, offers Stop, and a stopped run leaves the results as they were', async () => {
    await ready();
    // A first run, answered at once.
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await screen.findByTestId('lens-grid');
    const gridBefore = screen.getByTestId('lens-grid').textContent;
    // The second is held until the test says.
    const held = deferred<Reply<InferenceResponse>>();
    routes.inference = () => held.promise;
    fireEvent.change(screen.getByLabelText('Input text'), { target: { value: 'Something else' } });
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    const bar = await screen.findByRole('progressbar', { name: 'Run progress' });
    expect(bar.getAttribute('aria-valuetext')).toBe('Running the model…');
    expect(bar.getAttribute('aria-valuenow')).toBeNull();
    const inference = calls.filter((c) => c.url === 'inference');
    const id = inference[1].headers['x-logitlens-request'];
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(id).not.toBe(inference[0].headers['x-logitlens-request']);
    act(() => FakeEventSource.run({ request: id, stage: 'queued', done: 2, total: 3 }));
    expect(screen.getByTestId('run-progress-text').textContent).toBe('Waiting for 2 runs ahead…');
    act(() => FakeEventSource.run({ request: id, stage: 'forward', done: 1, total: 2 }));
    // Another page's run does not move this page's bar.
    act(() => FakeEventSource.run({ request: 'another-page', stage: 'lens', done: 3, total: 3 }));
    expect(screen.getByTestId('run-progress-text').textContent).toBe('Layer 1 of 2');
    expect(bar.getAttribute('aria-valuenow')).toBe('1');
    expect(bar.getAttribute('aria-valuemax')).toBe('2');
    expect(bar.getAttribute('aria-valuetext')).toBe('Layer 1 of 2');
    act(() => FakeEventSource.run({ request: id, stage: 'lens', done: 3, total: 4 }));
    expect(screen.getByTestId('run-progress-text').textContent).toBe('Lens 3 of 4');

    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    expect((await screen.findByTestId('run-stopped')).textContent).toBe('Run stopped. The results below are from the run before.');
    expect(screen.queryByTestId('running-indicator')).toBeNull();
    expect(screen.queryByRole('button', { name: 'Stop' })).toBeNull();
    expect(screen.getByTestId('lens-grid').textContent).toBe(gridBefore);
    expect(screen.queryByTestId('toast-error')).toBeNull();
    const run = screen.getByRole('button', { name: /Run LogitLens/ }) as HTMLButtonElement;
    expect(run.disabled).toBe(false);
    expect(document.activeElement).toBe(run);
    // Too late for the stopped run: nothing changes.
    await act(async () => held.resolve({ json: { ...inferenceResponse(), text: 'late' }, headers: { 'x-logitlens-run-id': '77' } }));
    expect(screen.getByTestId('lens-grid').textContent).toBe(gridBefore);
    // The page is still usable: the next run replaces the note with its results.
    routes.inference = () => ({ json: inferenceResponse(), headers: { 'x-logitlens-run-id': '43' } });
    fireEvent.click(run);
    await waitFor(() => expect(screen.queryByTestId('running-indicator')).toBeNull());
    expect(screen.queryByTestId('run-stopped')).toBeNull();
    expect(screen.getByTestId('lens-grid')).toBeTruthy();
    // One event stream for the page.
    expect(FakeEventSource.open()).toHaveLength(1);
  });

  it('a busy server: its detail and when to try again, without retrying by itself', async () => {
    const detail = 'the server is busy: 4 runs are waiting for their turn; try again in 30 s';
    routes.inference = () => ({ status: 503, json: { detail }, headers: { 'retry-after': '30' } });
    await ready();
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    const toast = await screen.findByTestId('toast-error');
    expect(toast.textContent).toContain('The server is busy');
    expect(toast.textContent).toMatch(/try again in 30 s\. Run again after .+\./);
    const results = screen.getByRole('region', { name: 'LogitLens visualization' });
    expect(within(results).getByText('The server is busy.')).toBeTruthy();
    expect(screen.getByTestId('retry-countdown').textContent).toMatch(/^The server is busy: try again in (30|29) s\.$/);
    expect((screen.getByRole('button', { name: /Run LogitLens/ }) as HTMLButtonElement).disabled).toBe(false);
    expect(calls.filter((c) => c.url === 'inference')).toHaveLength(1);
  });
});

describe('App: tuned and Jacobian lenses', () => {
  beforeEach(() => {
    FakeEventSource.instances = [];
    vi.stubGlobal('EventSource', FakeEventSource);
  });

  it('offers the lens select once a lens is attached, sends lens: tuned, and the grid says which lens drew it', async () => {
    let attached: string | null = null;
    routes.model_status = () => ({ json: { ...READY, tuned_lens: attached } });
    routes.load_lens = (body) => {
      if (body.path !== TUNED_LENS_DIR) return { status: 400, json: { detail: `tuned lens: cannot read ${body.path}/config.json: No such file or directory (os error 2)` } };
      attached = body.path;
      return { json: { ...TINY_LLAMA, tuned_lens: body.path } };
    };
    await ready();
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await screen.findByTestId('lens-grid');
    expect(calls.find((c) => c.url === 'inference')!.body).not.toHaveProperty('lens');
    expect(screen.getByTestId('grid-lens').textContent).toBe('Drawn by the logit lens');
    // No lens attached: no lens select.
    expect(screen.queryByLabelText('Lens (logit, tuned or Jacobian)')).toBeNull();

    // Attach one in the header, a wrong folder first.
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    fireEvent.change(screen.getByLabelText('Lens folder or file'), { target: { value: '/nowhere' } });
    fireEvent.click(screen.getByRole('button', { name: 'Load lens' }));
    expect((await screen.findByTestId('lens-file-error')).textContent).toBe('tuned lens: cannot read /nowhere/config.json: No such file or directory (os error 2)');
    expect(screen.queryByLabelText('Lens (logit, tuned or Jacobian)')).toBeNull();
    fireEvent.change(screen.getByLabelText('Lens folder or file'), { target: { value: TUNED_LENS_DIR } });
    fireEvent.click(screen.getByRole('button', { name: 'Load lens' }));
    const select = (await screen.findByLabelText('Lens (logit, tuned or Jacobian)')) as HTMLSelectElement;
    expect(screen.getByTestId('tuned-lens-attached').textContent).toBe('llama');
    expect(select.value).toBe('logit');
    fireEvent.change(select, { target: { value: 'tuned' } });
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await waitFor(() => expect(calls.filter((c) => c.url === 'inference')).toHaveLength(2));
    expect(calls.filter((c) => c.url === 'inference')[1].body).toMatchObject({ lens: 'tuned', lens_type: 'block_output' });
    await waitFor(() => expect(screen.getByTestId('grid-lens').textContent).toBe('Drawn by the tuned lens (llama)'));
    expect(screen.getByRole('table', { name: /^Tuned lens \(llama\): top-1 prediction/ })).toBeTruthy();

    // Another lens type: the select says why it cannot be used, and the run asks for the logit lens.
    fireEvent.change(screen.getByLabelText('Lens type'), { target: { value: 'combined' } });
    expect(select.disabled).toBe(true);
    expect(screen.getByTestId('lens-hint').textContent).toMatch(/read block outputs/);
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await waitFor(() => expect(calls.filter((c) => c.url === 'inference')).toHaveLength(3));
    expect(calls.filter((c) => c.url === 'inference')[2].body).not.toHaveProperty('lens');
    await waitFor(() => expect(screen.getByTestId('grid-lens').textContent).toBe('Drawn by the logit lens'));
  });

  it('attaches a Jacobian lens’s file in the same field; the grid drawn by it marks the rows it transported', async () => {
    let jacobian: typeof JACOBIAN | null = null;
    routes.model_status = () => ({ json: { ...READY, jacobian_lens: jacobian } });
    routes.load_lens = (body) => {
      jacobian = { ...JACOBIAN, path: body.path };
      return { json: { ...TINY_LLAMA, jacobian_lens: jacobian } };
    };
    routes.inference = (body) => ({
      json: { ...inferenceResponse(), logit_lens: lensRows(['Embeddings', 'Layer 0', 'Layer 1', 'Final Output']), ...(body.lens === 'jacobian' ? { transported_rows: ['Layer 0', 'Layer 1'] } : {}) },
    });
    await ready();
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    fireEvent.change(screen.getByLabelText('Lens folder or file'), { target: { value: JLENS_FILE } });
    fireEvent.click(screen.getByRole('button', { name: 'Load lens' }));
    const select = (await screen.findByLabelText('Lens (logit, tuned or Jacobian)')) as HTMLSelectElement;
    expect(calls.find((c) => c.url === 'load_lens')!.body).toEqual({ path: JLENS_FILE });
    expect(screen.getByTestId('jacobian-lens-attached').textContent).toBe('jlens.pt · 12 prompts · layers 0–1');
    expect((screen.getByRole('option', { name: 'Tuned lens (none attached)' }) as HTMLOptionElement).disabled).toBe(true);
    fireEvent.change(select, { target: { value: 'jacobian' } });
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await screen.findByTestId('lens-grid');
    expect(calls.find((c) => c.url === 'inference')!.body).toMatchObject({ lens: 'jacobian', lens_type: 'block_output' });
    expect(screen.getByTestId('grid-lens').textContent).toBe('Drawn by the Jacobian lens (jlens.pt)');
    const marked = Array.from(document.querySelectorAll('[data-testid=lens-grid] tr[data-transported]')).map((tr) => tr.getAttribute('data-row-name'));
    expect(marked).toEqual(['Layer 0', 'Layer 1']);
    expect(screen.getByTestId('transported-legend').textContent).toContain('transported by its matrices: Layer 0, Layer 1');
  });

  it('a lens cell’s top token opens the Jacobian lens view on its lens vector', async () => {
    routes.model_status = () => ({ json: { ...READY, jacobian_lens: JACOBIAN } });
    routes.lens_vector = () => ({ json: LENS_VECTOR });
    routes.fit_jlens = () => ({ json: null });
    await ready();
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    const grid = await screen.findByTestId('lens-grid');
    fireEvent.click(grid.querySelector('[data-cell][data-r="1"][data-c="2"]')!);
    fireEvent.click(within(screen.getByTestId('cell-menu')).getByRole('menuitem', { name: /^Lens vector of/ }));
    await screen.findByTestId('lens-vector-table');
    expect(calls.find((c) => c.url === 'lens_vector')!.body).toEqual({ token: 0, k: 10 });
    expect((screen.getByLabelText('Show the Jacobian lens') as HTMLInputElement).checked).toBe(true);
  });

  it('a reopened session drawn by the tuned lens says so', async () => {
    window.localStorage.setItem('logitlens.vizOnly', '1');
    routes.sessions = () => ({ json: [{ id: '20261130_101500_t', name: 'tuned run', timestamp: '20261130_101500' }] });
    routes.load_session = () => ({
      json: {
        text: 'Saved text',
        interventions: {},
        lens_type: 'block_output',
        model_name: '/fixtures/tiny/llama',
        backend: 'custom',
        apply_chat_template: false,
        results: { text: 'Saved text', logit_lens: lensRows() },
        lens: 'tuned',
        tuned_lens: TUNED_LENS_DIR,
      },
    });
    await ready();
    fireEvent.click(screen.getByRole('button', { name: 'Load' }));
    fireEvent.click(await screen.findByLabelText('Load session tuned run'));
    expect((await screen.findByTestId('grid-lens')).textContent).toBe('Drawn by the tuned lens (llama)');
    expect(screen.getByTestId('run-meta').textContent).toContain('session “tuned run” · saved results');
  });

  it('the Lens quality view: closed until asked for, then the server’s last evaluation', async () => {
    routes.eval_lens = () => ({ json: EVAL_REPORT });
    await ready();
    expect(screen.getByTestId('lens-quality')).toBeTruthy();
    expect(calls.some((c) => c.url === 'eval_lens')).toBe(false);
    fireEvent.click(screen.getByLabelText('Show lens quality'));
    await screen.findByTestId('eval-figure');
    expect(screen.getByTestId('eval-meta').textContent).toContain('the server’s last evaluation');
  });
});
