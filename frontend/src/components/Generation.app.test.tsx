// Generate through the page: the grid grows as the steps arrive, the answer becomes the run on
// screen (text, both continuations, marked columns, Attribute, Run again), Stop and errors.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import App from '../App';
import type { GenerateResponse } from '../api/types';
import { ATTRIBUTION, generateResponse, generateSteps, inferenceResponse, READY, TOKENS } from '../test/fixtures';
import { FakeEventSource, ndjson, stubServer, type FakeServer, type NdjsonBody } from '../test/server';

let server: FakeServer;
let bodies: NdjsonBody[];

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  bodies = [];
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    inference: () => ({ json: inferenceResponse(), headers: { 'x-logitlens-run-id': '42' } }),
    generate: (body) => {
      // Attribute asks for the whole answer at once.
      if (!body.stream) return { json: { ...generateResponse(), attribution: { ...ATTRIBUTION, position: 5 } }, headers: { 'x-logitlens-run-id': '8' } };
      const b = ndjson();
      bodies.push(b);
      return { stream: b };
    },
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  window.localStorage.clear();
});

const generateCalls = () => server.calls.filter((c) => c.url === 'generate');
const heads = () => Array.from(screen.getByTestId('lens-grid').querySelectorAll<HTMLElement>('thead th.lens-col-head'));
const headTokens = () => heads().map((h) => h.querySelector('.col-token')!.textContent);

async function ready() {
  render(<App />);
  await screen.findByText('Status: Ready');
}

async function generate(): Promise<NdjsonBody> {
  const n = bodies.length;
  fireEvent.click(screen.getByRole('button', { name: 'Generate' }));
  await waitFor(() => expect(bodies).toHaveLength(n + 1));
  return bodies[n];
}

async function send(body: NdjsonBody, ...lines: unknown[]) {
  await act(async () => {
    for (const l of lines) body.send(l);
    await new Promise((r) => setTimeout(r, 0));
  });
}

describe('Generate', () => {
  it('grows the grid column by column, then shows the answer as the run: text, both continuations, marked columns', async () => {
    await ready();
    fireEvent.change(screen.getByLabelText('Token index'), { target: { value: '-1' } });
    fireEvent.change(screen.getByLabelText('Stream layer'), { target: { value: '1' } });
    fireEvent.click(screen.getByText('Add stream intervention'));
    fireEvent.click(screen.getByLabelText(/Compare with baseline/));
    fireEvent.change(screen.getByLabelText('New tokens'), { target: { value: '2' } });
    const body = await generate();
    expect(generateCalls()[0].body).toMatchObject({ interventions: { layer_1_output: [{ type: 'zero', all_layers: false, token_index: -1 }] }, compare: true, max_new_tokens: 2, stream: true });
    expect(screen.getByRole('button', { name: /Generating/ })).toBeTruthy();
    expect(screen.getByRole('progressbar', { name: 'Run progress' }).getAttribute('aria-valuetext')).toBe('Running the model…');

    const res: GenerateResponse = generateResponse({ generated_ids: [11, 13], generated_tokens: [' sat', ' up'], generated_text: ' sat up', first_difference: 1 });
    const steps = generateSteps(res);
    await send(body, steps[0]);
    // The prompt's columns at once, the chosen token heading the next, still empty.
    expect(headTokens()).toEqual(['<s>', 'The', '␣cat', '\\n', '␣sat']);
    expect(heads()[4].dataset.pending).toBe('1');
    expect(screen.getByTestId('lens-grid').querySelectorAll('[data-cell]')).toHaveLength(3 * 4);
    expect(screen.getByTestId('generation-live').textContent).toBe('The capital of France is sat');
    const bar = screen.getByRole('progressbar', { name: 'Run progress' });
    expect(bar.getAttribute('aria-valuetext')).toBe('Writing token 2 of 2');
    expect([bar.getAttribute('aria-valuenow'), bar.getAttribute('aria-valuemax')]).toEqual(['1', '2']);
    await send(body, steps[1]);
    expect(headTokens()).toEqual(['<s>', 'The', '␣cat', '\\n', '␣sat', '␣down']);
    expect(heads().map((h) => h.dataset.written ?? '')).toEqual(['', '', '', '', '1', '1']);
    expect(screen.getByTestId('lens-grid').querySelectorAll('[data-cell]')).toHaveLength(3 * 5);
    await send(body, steps[2]);
    expect(screen.getByTestId('lens-grid').querySelectorAll('[data-cell]')).toHaveLength(3 * 6);
    expect(heads().some((h) => h.dataset.pending)).toBe(false);
    expect(screen.getByTestId('run-progress-text').textContent).toBe('Wrote 2 tokens: finishing…');

    await act(async () => {
      body.send({ type: 'done', run_id: 7, response: { ...res, diff: null } });
      body.close();
    });
    await waitFor(() => expect(screen.queryByTestId('running-indicator')).toBeNull());
    expect(screen.queryByTestId('generation-live')).toBeNull();
    expect(screen.getByTestId('generated-text').textContent).toBe('The capital of France is sat down');
    expect(screen.getByTestId('divergence-note').textContent).toBe('The intervention changed what the model writes from token 2 on (position 5).');
    expect(Array.from(screen.getByTestId('continuation-baseline').querySelectorAll('td')).map((t) => t.textContent)).toEqual(['␣sat', '␣up']);
    expect(heads().map((h) => h.dataset.written ?? '')).toEqual(['', '', '', '', '1', '1']);
    expect(screen.getByTestId('written-legend')).toBeTruthy();
    expect(screen.getByTestId('run-meta').textContent).toContain('6 tokens');
    expect(screen.getByTestId('run-meta').textContent).toContain('2 written');
    // The positions offered for interventions are the prompt's.
    expect(screen.getByLabelText('Token positions').querySelectorAll('.token-chip')).toHaveLength(TOKENS.length);
  });

  it('Attribute on a written column asks /generate for the whole answer, with as many new tokens', async () => {
    await ready();
    const body = await generate();
    await send(body, ...generateSteps());
    await act(async () => {
      body.send({ type: 'done', run_id: 7, response: generateResponse() });
      body.close();
    });
    await waitFor(() => expect(screen.queryByTestId('running-indicator')).toBeNull());
    await act(async () => {});
    fireEvent.click(screen.getByTestId('lens-grid').querySelector<HTMLElement>('[data-cell][data-r="2"][data-c="5"]')!);
    fireEvent.click(within(screen.getByTestId('cell-menu')).getByRole('menuitem'));
    await screen.findByTestId('attribution-figure');
    const asked = generateCalls()[1].body as Record<string, unknown>;
    const { max_new_tokens, stream, ...rest } = generateCalls()[0].body as Record<string, unknown>;
    expect(asked).toEqual({ ...rest, max_new_tokens, attribution: { token: 0, position: 5 }, stream: false });
    expect(stream).toBe(true);
    expect(server.calls.filter((c) => c.url === 'inference')).toHaveLength(0);
  });

  it('Stop during generation: the grid so far goes, the run before stays, said as a stopped generation', async () => {
    await ready();
    fireEvent.click(screen.getByRole('button', { name: /Run LogitLens/ }));
    await screen.findByTestId('lens-grid');
    const before = screen.getByTestId('lens-grid').textContent;
    const body = await generate();
    await send(body, generateSteps()[0]);
    expect(headTokens()).toHaveLength(5);
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    expect((await screen.findByTestId('run-stopped')).textContent).toBe('Generation stopped. The results below are from the run before.');
    expect(body.cancelled).toBe(true);
    expect(screen.queryByTestId('running-indicator')).toBeNull();
    expect(screen.getByTestId('lens-grid').textContent).toBe(before);
    expect(screen.queryByTestId('toast-error')).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Generate' }));
  });

  it('errors are said in words: a refusal, and an error line', async () => {
    server.routes.generate = () => ({ status: 400, json: { detail: 'intervention "layer_1_output": token_index 40 is out of range for a 4-token prompt and 20 new tokens (valid: -4..23)' } });
    await ready();
    fireEvent.click(screen.getByRole('button', { name: 'Generate' }));
    const toast = await screen.findByTestId('toast-error');
    expect(toast.textContent).toContain('Generation failed');
    expect(toast.textContent).toContain('token_index 40 is out of range');
    expect(within(screen.getByRole('region', { name: 'LogitLens visualization' })).getByText('The generation failed.')).toBeTruthy();
    server.routes.generate = () => {
      const b = ndjson();
      bodies.push(b);
      return { stream: b };
    };
    const body = await generate();
    await act(async () => {
      body.send({ type: 'error', detail: 'the run was cancelled' });
      await new Promise((r) => setTimeout(r, 0));
    });
    await waitFor(() => expect(screen.getAllByTestId('toast-error').some((t) => t.textContent?.includes('The generation failed: the run was cancelled'))).toBe(true));
  });

  it('the new-tokens field is checked before anything is sent', async () => {
    await ready();
    fireEvent.change(screen.getByLabelText('New tokens'), { target: { value: '0' } });
    expect(screen.getByTestId('max-new-tokens-error').textContent).toBe('New tokens: 0 is not a whole number from 1 to 256');
    expect((screen.getByRole('button', { name: 'Generate' }) as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByRole('button', { name: /Run LogitLens/ }) as HTMLButtonElement).disabled).toBe(false);
    expect(generateCalls()).toHaveLength(0);
  });
});
