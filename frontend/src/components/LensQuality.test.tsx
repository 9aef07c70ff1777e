import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { EvalReport } from '../api/types';
import { useLensEval } from '../hooks/useLensEval';
import { useModelLoader } from '../hooks/useModelLoader';
import { useModels } from '../hooks/useModels';
import { EVAL_CSV_HEADER } from '../lib/lensEval';
import { EVAL_REPORT, EVAL_REPORT_JACOBIAN, EVALUATION, READY } from '../test/fixtures';
import { captureDownloads } from '../test/downloads';
import { deferred, FakeEventSource, stubServer, type FakeServer, type Reply } from '../test/server';
import { LensQualityCard } from './LensQuality';
import { NotificationProvider } from './Notifications';

let server: FakeServer;

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    eval_lens: (body) => (body === undefined ? { json: EVAL_REPORT } : { json: { ...EVAL_REPORT, documents: 2, max_tokens: body.max_tokens ?? 128, tokens: 20 } }),
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function Harness() {
  const loader = useModelLoader(useModels());
  return <LensQualityCard ev={useLensEval(loader)} />;
}

async function openCard() {
  render(
    <NotificationProvider>
      <Harness />
    </NotificationProvider>,
  );
  await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
  fireEvent.click(screen.getByLabelText('Show lens quality'));
}

const evalCalls = (method: 'GET' | 'POST') => server.calls.filter((c) => c.url === 'eval_lens' && (method === 'GET' ? c.body === undefined : c.body !== undefined));
const meta = () => screen.getByTestId('eval-meta').textContent;
const corpus = () => screen.getByLabelText('Corpus') as HTMLTextAreaElement;
const runButton = () => screen.getByRole('button', { name: /Run evaluation|Evaluating/ }) as HTMLButtonElement;

describe('LensQualityCard', () => {
  it('fetches the server’s last evaluation when opened, and draws it', async () => {
    render(
      <NotificationProvider>
        <Harness />
      </NotificationProvider>,
    );
    await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
    // Closed: nothing asked.
    expect(evalCalls('GET')).toHaveLength(0);
    fireEvent.click(screen.getByLabelText('Show lens quality'));
    await screen.findByTestId('eval-figure');
    expect(evalCalls('GET')).toHaveLength(1);
    expect(meta()).toBe('llama40 documents1280 positionsfirst 32 tokens of eachlogit lens and tuned lens (llama)the server’s last evaluation');
    const kl = screen.getByTestId('eval-chart-kl');
    expect(kl.querySelectorAll('[data-lens="logit"] [data-point]')).toHaveLength(4);
    expect(kl.querySelectorAll('[data-lens="tuned"] [data-point]')).toHaveLength(4);
    expect(screen.getByTestId('eval-legend').textContent).toBe('logit lenstuned lens (llama)');
  });

  it('the Jacobian lens’s line beside the logit and tuned lenses’, its file named', async () => {
    server.routes.eval_lens = () => ({ json: EVAL_REPORT_JACOBIAN });
    await openCard();
    await screen.findByTestId('eval-figure');
    expect(screen.getByTestId('eval-lenses').textContent).toBe('logit lens, tuned lens (llama) and Jacobian lens (jlens.pt)');
    expect(screen.getByTestId('eval-lenses').querySelectorAll('[title]')[1].getAttribute('title')).toBe(EVAL_REPORT_JACOBIAN.jacobian_lens);
    expect(screen.getByTestId('eval-legend').textContent).toBe('logit lenstuned lens (llama)Jacobian lens (jlens.pt)');
    const kl = screen.getByTestId('eval-chart-kl');
    const line = kl.querySelector('[data-lens="jacobian"]')!;
    // Its own colour, dotted, diamonds: told apart without colour too.
    expect(line.querySelector('path')!.getAttribute('stroke')).toBe('#34d399');
    expect(line.querySelector('path')!.getAttribute('stroke-dasharray')).toBe('2 3');
    const points = Array.from(line.querySelectorAll('[data-point]'));
    expect(points.map((p) => p.tagName)).toEqual(['polygon', 'polygon', 'polygon', 'polygon']);
    expect(points.map((p) => Number(p.getAttribute('data-value')))).toEqual(EVAL_REPORT_JACOBIAN.jacobian!.kl);
  });

  it('none made yet with this model: says so, and how to make one', async () => {
    server.routes.eval_lens = () => ({ json: null });
    await openCard();
    expect((await screen.findByTestId('eval-note')).textContent).toBe(
      'No lens evaluation has been made with llama yet: run one below over a corpus (one document per line), or open the output of “logitlens eval-lens --json”.',
    );
    expect(screen.queryByTestId('eval-figure')).toBeNull();
    expect(runButton().disabled).toBe(true);
    expect(screen.getByText('Type or choose a corpus first: one document per line')).toBeTruthy();
  });

  it('runs an evaluation with its progress, and Stop leaves what was on screen', async () => {
    await openCard();
    await screen.findByTestId('eval-figure');
    fireEvent.change(corpus(), { target: { value: 'First document.\n\nSecond one.\n' } });
    expect(screen.getByTestId('eval-documents').textContent).toBe('2 documents');
    fireEvent.change(screen.getByLabelText('Max tokens per document'), { target: { value: '16' } });
    const held = deferred<Reply<EvalReport>>();
    server.routes.eval_lens = (body) => (body === undefined ? { json: EVAL_REPORT } : held.promise);
    fireEvent.click(runButton());
    const bar = await screen.findByRole('progressbar', { name: 'Evaluation progress' });
    expect(bar.getAttribute('aria-valuetext')).toBe('Starting the evaluation…');
    const post = evalCalls('POST')[0];
    expect(post.body).toEqual({ corpus: 'First document.\n\nSecond one.\n', max_tokens: 16 });
    const id = post.headers['x-logitlens-request'];
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    act(() => FakeEventSource.run({ request: id, stage: 'documents', done: 1, total: 2 }));
    // Another page's evaluation does not move this bar.
    act(() => FakeEventSource.run({ request: 'another-page', stage: 'documents', done: 7, total: 9 }));
    expect(screen.getByTestId('eval-progress-text').textContent).toBe('1 of 2 documents');
    expect(bar.getAttribute('aria-valuenow')).toBe('1');
    expect(bar.getAttribute('aria-valuemax')).toBe('2');

    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    expect(screen.getByTestId('eval-stopped').textContent).toBe('Evaluation stopped.');
    expect(screen.queryByRole('progressbar', { name: 'Evaluation progress' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Stop' })).toBeNull();
    // The server's evaluation stays on screen, and a late answer changes nothing.
    await act(async () => held.resolve({ json: { ...EVAL_REPORT, documents: 2 } }));
    expect(meta()).toContain('40 documents');
    expect(screen.queryByTestId('eval-error')).toBeNull();
  });

  it('shows an evaluation it ran, and the server’s refusals in words', async () => {
    server.routes.eval_lens = (body) =>
      body === undefined
        ? { json: null }
        : (body.max_tokens ?? 128) > 2048
          ? { status: 400, json: { detail: "max_tokens is 5000; it must be between 1 and this server's limit of 2048 tokens" } }
          : { json: { ...EVAL_REPORT, documents: 1, max_tokens: body.max_tokens ?? 128, tokens: 9 } };
    await openCard();
    await screen.findByTestId('eval-note');
    fireEvent.change(corpus(), { target: { value: 'One document.' } });
    fireEvent.change(screen.getByLabelText('Max tokens per document'), { target: { value: '5000' } });
    fireEvent.click(runButton());
    expect((await screen.findByTestId('eval-error')).textContent).toBe("max_tokens is 5000; it must be between 1 and this server's limit of 2048 tokens");
    fireEvent.change(screen.getByLabelText('Max tokens per document'), { target: { value: 'many' } });
    fireEvent.click(runButton());
    expect(screen.getByTestId('eval-error').textContent).toBe('Max tokens must be a whole number of at least 1.');
    expect(evalCalls('POST')).toHaveLength(1);
    fireEvent.change(screen.getByLabelText('Max tokens per document'), { target: { value: '64' } });
    fireEvent.click(runButton());
    await screen.findByTestId('eval-figure');
    expect(meta()).toBe('llama1 document9 positionsfirst 64 tokens of eachlogit lens and tuned lens (llama)evaluated now');
    expect(screen.queryByTestId('eval-error')).toBeNull();
    expect(screen.queryByTestId('eval-note')).toBeNull();
  });

  it('a busy server: its detail and when to run again', async () => {
    server.routes.eval_lens = (body) =>
      body === undefined
        ? { json: EVAL_REPORT }
        : { status: 503, json: { detail: 'the server is busy: 4 runs are waiting for their turn; try again in 30 s' }, headers: { 'retry-after': '30' } };
    await openCard();
    fireEvent.change(corpus(), { target: { value: 'One document.' } });
    fireEvent.click(runButton());
    expect((await screen.findByTestId('eval-error')).textContent).toMatch(/^the server is busy: 4 runs are waiting for their turn; try again in 30 s\. Run it again after .+\.$/);
  });

  it('reads a corpus from a .txt file', async () => {
    await openCard();
    const file = new File(['The old lighthouse keeper.\nfor i in range(10): print(i)\n\nApollo 11.\n'], 'corpus.txt', { type: 'text/plain' });
    fireEvent.change(screen.getByLabelText('Corpus file'), { target: { files: [file] } });
    await waitFor(() => expect(corpus().value).toBe('The old lighthouse keeper.\nfor i in range(10): print(i)\n\nApollo 11.\n'));
    expect(screen.getByTestId('eval-documents').textContent).toBe('3 documents · from corpus.txt');
    fireEvent.change(corpus(), { target: { value: `${corpus().value}One more.` } });
    expect(screen.getByTestId('eval-documents').textContent).toBe('4 documents');
  });

  it('opens an eval-lens --json file, and says why another file is not one', async () => {
    await openCard();
    await screen.findByTestId('eval-figure');
    const bad = new File([JSON.stringify({ text: 'x', logit_lens: [] })], 'session.json', { type: 'application/json' });
    fireEvent.change(screen.getByLabelText('Evaluation file'), { target: { files: [bad] } });
    expect((await screen.findByTestId('eval-file-error')).textContent).toBe(
      'session.json is not a lens evaluation: “layers” is missing or not a list of row names. Open the output of “logitlens eval-lens --json”, or a lens evaluation of the server.',
    );
    // What was on screen stays.
    expect(meta()).toContain('the server’s last evaluation');
    const good = new File([JSON.stringify({ ...EVALUATION, tuned: undefined })], 'eval.json', { type: 'application/json' });
    fireEvent.change(screen.getByLabelText('Evaluation file'), { target: { files: [good] } });
    await waitFor(() => expect(meta()).toBe('1280 positionslogit lens only (no tuned or Jacobian lens was attached)file eval.json'));
    expect(screen.queryByTestId('eval-file-error')).toBeNull();
    expect(screen.getByTestId('eval-chart-kl').querySelector('[data-lens="tuned"]')).toBeNull();
    expect(screen.getByRole('group', { name: 'Lens quality · eval.json · 1280 positions' })).toBeTruthy();
  });

  it('exports the numbers as CSV and the chart as SVG', async () => {
    const files = captureDownloads();
    await openCard();
    await screen.findByTestId('eval-figure');
    fireEvent.click(screen.getByRole('button', { name: 'Export CSV' }));
    fireEvent.click(screen.getByRole('button', { name: 'Export SVG' }));
    expect(files.map((f) => f.name)).toEqual([expect.stringMatching(/^lens_quality_llama_llama_\d{8}_\d{6}\.csv$/), expect.stringMatching(/^lens_quality_llama_llama_\d{8}_\d{6}\.svg$/)]);
    expect(files[0].type).toBe('text/csv;charset=utf-8');
    const csv = (await files[0].text).split('\n');
    expect(csv[0]).toBe(EVAL_CSV_HEADER);
    expect(csv).toHaveLength(10);
    expect(files[1].type).toBe('image/svg+xml;charset=utf-8');
    const svg = await files[1].text;
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg).toContain('Lens quality · llama · 1280 positions');
    expect(svg).toContain('tuned lens (llama)');
    expect(new DOMParser().parseFromString(svg, 'image/svg+xml').querySelector('parsererror')).toBeNull();
    expect(document.querySelector('a[download]')).toBeNull();
  });

  it('another model in service: the server’s evaluation for it replaces the last model’s; an opened file stays', async () => {
    await openCard();
    await screen.findByTestId('eval-figure');
    server.routes.eval_lens = () => ({ json: null });
    act(() => FakeEventSource.status({ ...READY, model_name: '/fixtures/tiny/qwen3' }));
    expect((await screen.findByTestId('eval-note')).textContent).toContain('No lens evaluation has been made with qwen3 yet');
    expect(screen.queryByTestId('eval-figure')).toBeNull();
    expect(evalCalls('GET')).toHaveLength(2);
    // A status that changes nothing about the model asks nothing.
    act(() => FakeEventSource.status({ ...READY, model_name: '/fixtures/tiny/qwen3', tuned_lens: '/lenses/qwen3' }));
    expect(evalCalls('GET')).toHaveLength(2);
    const file = new File([JSON.stringify(EVALUATION)], 'eval.json');
    fireEvent.change(screen.getByLabelText('Evaluation file'), { target: { files: [file] } });
    await screen.findByTestId('eval-figure');
    act(() => FakeEventSource.status(READY));
    await waitFor(() => expect(evalCalls('GET')).toHaveLength(3));
    expect(within(screen.getByTestId('eval-meta')).getByText('file eval.json')).toBeTruthy();
  });
});
