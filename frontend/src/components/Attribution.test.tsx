import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import App from '../App';
import type { InferenceRequest, InferenceResponse } from '../api/types';
import { ATTRIBUTION_CSV_HEADER } from '../lib/attribution';
import { ATTRIBUTION, inferenceResponse, READY } from '../test/fixtures';
import { captureDownloads } from '../test/downloads';
import { deferred, FakeEventSource, stubServer, type FakeServer, type Reply } from '../test/server';

let server: FakeServer;

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    inference: (body) => ({ json: body.attribution ? { ...inferenceResponse(), attribution: ATTRIBUTION } : inferenceResponse() }),
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
  window.localStorage.clear();
});

const inferenceCalls = () => server.calls.filter((c) => c.url === 'inference');
const cell = (r: number, c: number) => screen.getByTestId('lens-grid').querySelector<HTMLElement>(`[data-cell][data-r="${r}"][data-c="${c}"]`)!;

/** The app with a run on screen. */
async function withRun() {
  render(<App />);
  await screen.findByText('Status: Ready');
  fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
  await screen.findByTestId('lens-grid');
  // The grid's effects (a new grid hides any tooltip) run before the test points at it.
  await act(async () => {});
}

/** Clicks a cell and its Attribute. */
async function attribute(r: number, c: number) {
  fireEvent.click(cell(r, c));
  fireEvent.click(within(screen.getByTestId('cell-menu')).getByRole('menuitem'));
}

describe('Attribute (direct logit attribution)', () => {
  it('a clicked cell offers Attribute, which posts the run again with the cell’s top-1 token and position', async () => {
    await withRun();
    expect(screen.queryByTestId('attribution')).toBeNull();
    fireEvent.click(cell(0, 1));
    const menu = screen.getByTestId('cell-menu');
    // The top-1 of Embeddings at position 1 is "cat" (id 0 in the fixture).
    expect(within(menu).getByRole('menuitem').textContent).toBe('Attribute cat');
    expect(screen.queryByTestId('lens-tooltip')).toBeNull();
    fireEvent.click(within(menu).getByRole('menuitem'));
    expect(screen.queryByTestId('cell-menu')).toBeNull();
    await screen.findByTestId('attribution-figure');
    const [first, second] = inferenceCalls();
    expect(second.body).toEqual({ ...(first.body as InferenceRequest), attribution: { token: 0, position: 1 } });
    expect(second.headers['x-logitlens-request']).toMatch(/^[0-9a-f]{32}$/);
    expect(screen.getByTestId('attribution-target').textContent).toBe('cat (id 0, the top-1 of Embeddings) at position 1 after The');
    const logit = screen.getByTestId('attribution-logit');
    expect(logit.textContent).toBe('2.75');
    expect(logit.getAttribute('data-value')).toBe('2.75');
    expect(screen.getByTestId('attribution-values').textContent).toBe('logit 2.75embeddings 0.5rest 0.25 (final_norm_bias 0.25)');
    expect(screen.getByTestId('attribution-sum').textContent).toBe('embed + Σattn + Σmlp + rest = 2.7500 vs logit 2.7500 ✓');
    const bars = screen.getByTestId('attribution-bars');
    expect([...bars.querySelectorAll('[data-bar="attn"]')].map((b) => b.getAttribute('data-value'))).toEqual(['1', '-0.25']);
    expect([...bars.querySelectorAll('[data-bar="mlp"]')].map((b) => b.getAttribute('data-value'))).toEqual(['0.75', '0.5']);
    expect([...screen.getByTestId('attribution-heads').querySelectorAll('rect[data-cell]')].map((c) => c.getAttribute('data-value'))).toEqual(['0.625', '0.375', '-0.5', '0.25']);
    // The grid is the run's as it was.
    expect(screen.getByTestId('lens-grid')).toBeTruthy();
    expect(inferenceCalls()).toHaveLength(2);
  });

  it('says the values on hover and keyboard focus: per layer, per head', async () => {
    await withRun();
    await attribute(2, 3);
    await screen.findByTestId('attribution-figure');
    const bars = screen.getByTestId('attribution-bars');
    fireEvent.mouseMove(bars.querySelector('[data-layer="1"] [data-bar="mlp"]')!);
    expect(screen.getByTestId('attribution-tooltip').textContent).toBe('Layer 1attention: -0.25MLP: 0.5');
    fireEvent.mouseLeave(bars);
    expect(screen.queryByTestId('attribution-tooltip')).toBeNull();
    act(() => bars.focus());
    expect(screen.getByTestId('attribution-tooltip').textContent).toBe('Layer 0attention: 1MLP: 0.75');
    fireEvent.keyDown(bars, { key: 'ArrowRight' });
    expect(screen.getByTestId('attribution-tooltip').textContent).toMatch(/^Layer 1/);
    const heads = screen.getByTestId('attribution-heads');
    fireEvent.mouseMove(heads.querySelector('rect[data-r="1"][data-c="0"]')!);
    expect(screen.getByTestId('attribution-tooltip').textContent).toBe('Layer 1 · head 0-0.5');
    // A layer whose heads do not add up to its attention: the difference is the output bias.
    server.routes.inference = (body) => ({ json: { ...inferenceResponse(), attribution: body.attribution ? { ...ATTRIBUTION, attn: [1.125, -0.25], logit: 2.875 } : undefined } });
    await attribute(2, 2);
    await waitFor(() => expect(screen.getByTestId('attribution-logit').textContent).toBe('2.875'));
    act(() => screen.getByTestId('attribution-bars').focus());
    expect(screen.getByTestId('attribution-tooltip').textContent).toBe('Layer 0attention: 1.125 (heads 1, bias 0.125)MLP: 0.75');
  });

  it('Enter on a focused cell opens the menu, Escape closes it; the tooltip still shows the cell', async () => {
    await withRun();
    act(() => cell(2, 1).focus());
    expect(screen.getByTestId('lens-tooltip')).toBeTruthy();
    fireEvent.keyDown(cell(2, 1), { key: 'Enter' });
    const item = within(screen.getByTestId('cell-menu')).getByRole('menuitem');
    expect(document.activeElement).toBe(item);
    fireEvent.keyDown(item, { key: 'Escape' });
    expect(screen.queryByTestId('cell-menu')).toBeNull();
    expect(document.activeElement).toBe(cell(2, 1));
    // A click elsewhere closes it too.
    fireEvent.click(cell(0, 0));
    expect(screen.getByTestId('cell-menu')).toBeTruthy();
    fireEvent.mouseDown(document.body);
    expect(screen.queryByTestId('cell-menu')).toBeNull();
  });

  it('shows its progress and can be stopped; refusals are said in words', async () => {
    await withRun();
    const held = deferred<Reply<InferenceResponse>>();
    server.routes.inference = () => held.promise;
    await attribute(1, 2);
    const bar = await screen.findByRole('progressbar', { name: 'Attribution progress' });
    const id = inferenceCalls()[1].headers['x-logitlens-request'];
    act(() => FakeEventSource.run({ request: id, stage: 'lens', done: 2, total: 3 }));
    expect(bar.getAttribute('aria-valuenow')).toBe('2');
    fireEvent.click(within(screen.getByTestId('attribution')).getByRole('button', { name: 'Stop' }));
    expect(screen.getByTestId('attribution-stopped').textContent).toBe('Attribution stopped.');
    await act(async () => held.resolve({ json: { ...inferenceResponse(), attribution: ATTRIBUTION } }));
    expect(screen.queryByTestId('attribution-figure')).toBeNull();

    const detail = "the token id 999 is outside the model's vocabulary (512 tokens)";
    server.routes.inference = () => ({ status: 400, json: { detail } });
    await attribute(1, 2);
    expect((await screen.findByTestId('attribution-error')).textContent).toBe(`Could not attribute: ${detail}`);
    server.routes.inference = () => ({ json: inferenceResponse() });
    await attribute(1, 2);
    await waitFor(() => expect(screen.getByTestId('attribution-error').textContent).toBe('Could not attribute: The server answered without an attribution: it may be older than this page.'));
    fireEvent.click(screen.getByRole('button', { name: 'Close the attribution' }));
    expect(screen.queryByTestId('attribution')).toBeNull();
  });

  it('is offered only when it can run: not while a run is in progress', async () => {
    await withRun();
    const held = deferred<Reply<InferenceResponse>>();
    server.routes.inference = () => held.promise;
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await screen.findByTestId('running-indicator');
    fireEvent.click(cell(0, 0));
    const menu = screen.getByTestId('cell-menu');
    expect((within(menu).getByRole('menuitem') as HTMLButtonElement).disabled).toBe(true);
    expect(menu.textContent).toContain('A run is in progress');
    await act(async () => held.resolve({ json: inferenceResponse() }));
  });

  it('belongs to the run it was asked of: a new run closes it', async () => {
    await withRun();
    await attribute(2, 3);
    await screen.findByTestId('attribution-figure');
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await waitFor(() => expect(screen.queryByTestId('attribution')).toBeNull());
  });

  it('exports the parts as CSV', async () => {
    const files = captureDownloads();
    await withRun();
    await attribute(2, 3);
    await screen.findByTestId('attribution-figure');
    fireEvent.click(within(screen.getByTestId('attribution')).getByRole('button', { name: 'Export CSV' }));
    expect(files.map((f) => f.name)).toEqual([expect.stringMatching(/^attribution_llama_pos3_\d{8}_\d{6}\.csv$/)]);
    const lines = (await files[0].text).split('\n');
    expect(lines[0]).toBe(ATTRIBUTION_CSV_HEADER);
    expect(lines).toContain('head,1,0,-0.5');
    expect(lines.at(-2)).toBe('logit,,,2.75');
  });
});
