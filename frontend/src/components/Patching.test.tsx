import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { PatchResponse, TokenizeRequest } from '../api/types';
import { useModelLoader } from '../hooks/useModelLoader';
import { useModels } from '../hooks/useModels';
import { usePatching } from '../hooks/usePatching';
import { PATCH_CSV_HEADER } from '../lib/patch';
import { PATCH_RESPONSE, READY, toyTokenize as tokenize } from '../test/fixtures';
import { captureDownloads } from '../test/downloads';
import { deferred, FakeEventSource, stubServer, type FakeServer, type Reply } from '../test/server';
import { NotificationProvider } from './Notifications';
import { PatchingCard } from './Patching';

let server: FakeServer;

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    tokenize: (body) => ({ json: tokenize(body) }),
    patch: () => ({ json: PATCH_RESPONSE }),
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function Harness() {
  const loader = useModelLoader(useModels());
  return <PatchingCard p={usePatching(loader)} />;
}

async function openCard() {
  render(
    <NotificationProvider>
      <Harness />
    </NotificationProvider>,
  );
  await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
  fireEvent.click(screen.getByLabelText('Show activation patching'));
}

const tokenizeCalls = () => server.calls.filter((c) => c.url === 'tokenize').map((c) => c.body as TokenizeRequest);
const patchCalls = () => server.calls.filter((c) => c.url === 'patch');
const runButton = () => screen.getByRole('button', { name: /Run patching|Patching…/ }) as HTMLButtonElement;
const textarea = (label: string) => screen.getByLabelText(label) as HTMLTextAreaElement;

/** Opens the card and types a metric the toy tokenizer reads as two single tokens. */
async function readyToRun() {
  await openCard();
  fireEvent.change(screen.getByLabelText('Correct token'), { target: { value: ' Paris' } });
  fireEvent.change(screen.getByLabelText('Wrong token'), { target: { value: ' Rome' } });
  await waitFor(() => expect(runButton().disabled).toBe(false));
}

async function runSweep(res: PatchResponse = PATCH_RESPONSE) {
  server.routes.patch = () => ({ json: res });
  await readyToRun();
  fireEvent.click(runButton());
  return screen.findByTestId('patch-figure');
}

describe('PatchingCard', () => {
  it('asks nothing while closed; open, it counts both texts’ tokens live and says plainly when they differ', async () => {
    render(
      <NotificationProvider>
        <Harness />
      </NotificationProvider>,
    );
    await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
    expect(screen.queryByLabelText('Clean text')).toBeNull();
    fireEvent.click(screen.getByLabelText('Show activation patching'));
    await waitFor(() => expect(screen.getByTestId('patch-clean-count').textContent).toBe('6 tokens'));
    expect(screen.getByTestId('patch-corrupted-count').textContent).toBe('6 tokens');
    expect(tokenizeCalls()).toEqual([
      { text: 'The capital of France is', apply_chat_template: false, add_special_tokens: true },
      { text: 'The capital of Spain is', apply_chat_template: false, add_special_tokens: true },
    ]);
    // The tokens, the position where the texts differ marked.
    const chips = within(screen.getByTestId('patch-corrupted-tokens')).getAllByText(/./, { selector: '.token-chip' });
    expect(chips.map((c) => c.textContent)).toEqual(['0<s>', '1The', '2␣capital', '3␣of', '4␣Spain', '5␣is']);
    expect(chips.map((c) => c.classList.contains('is-marked'))).toEqual([false, false, false, false, true, false]);
    expect(screen.queryByTestId('patch-mismatch')).toBeNull();

    fireEvent.change(textarea('Corrupted text'), { target: { value: 'The capital of the Kingdom of Spain is' } });
    expect((await screen.findByTestId('patch-mismatch')).textContent).toBe(
      'The clean text is 6 tokens and the corrupted text 9: patching needs the same number of tokens in both, so that each position has its counterpart.',
    );
    expect(screen.getByTestId('patch-disabled-reason').textContent).toBe('The two texts need the same number of tokens');
    // Typing once more asks once, after the typing stops.
    const before = tokenizeCalls().length;
    fireEvent.change(textarea('Clean text'), { target: { value: 'The capital of the Republic of France is' } });
    fireEvent.change(textarea('Clean text'), { target: { value: 'The capital of the Kingdom of France is' } });
    await waitFor(() => expect(screen.getByTestId('patch-clean-count').textContent).toBe('9 tokens'));
    expect(tokenizeCalls().slice(before)).toEqual([{ text: 'The capital of the Kingdom of France is', apply_chat_template: false, add_special_tokens: true }]);
    expect(screen.queryByTestId('patch-mismatch')).toBeNull();
  });

  it('checks each metric token is one token, and shows the pieces of one that is not', async () => {
    await openCard();
    expect(screen.getByTestId('patch-disabled-reason').textContent).toBe('Type the correct and the wrong token of the metric');
    fireEvent.change(screen.getByLabelText('Correct token'), { target: { value: ' Parisian' } });
    expect((await screen.findByTestId('patch-correct-error')).textContent).toBe('“␣Parisian” is 2 tokens (␣Par · isian): the metric needs a single token.');
    expect(tokenizeCalls().at(-1)).toEqual({ text: ' Parisian', apply_chat_template: false, add_special_tokens: false });
    expect(screen.getByTestId('patch-disabled-reason').textContent).toBe('“␣Parisian” is 2 tokens (␣Par · isian): the metric needs a single token.');
    fireEvent.change(screen.getByLabelText('Correct token'), { target: { value: ' Paris' } });
    expect((await screen.findByTestId('patch-correct-id')).textContent).toBe(`token id ${tokenize({ text: ' Paris', add_special_tokens: false }).ids[0]}`);
    expect(screen.queryByTestId('patch-correct-error')).toBeNull();
    // An id needs no tokenizing; a list is not one token.
    const asked = tokenizeCalls().length;
    fireEvent.change(screen.getByLabelText('Wrong token'), { target: { value: '42' } });
    expect(screen.getByTestId('patch-wrong-id').textContent).toBe('token id 42');
    fireEvent.change(screen.getByLabelText('Wrong token'), { target: { value: ' Rome, Madrid' } });
    expect(screen.getByTestId('patch-wrong-error').textContent).toBe('The wrong token is one token: drop the comma (\\, is a comma inside a token).');
    await new Promise((r) => setTimeout(r, 300));
    expect(tokenizeCalls()).toHaveLength(asked);
    // The probability metric has a field of its own.
    fireEvent.click(screen.getByLabelText('Probability'));
    expect(screen.queryByLabelText('Correct token')).toBeNull();
    expect(screen.getByTestId('patch-disabled-reason').textContent).toBe('Type the token whose probability to measure');
  });

  it('runs a sweep with its progress, and Stop leaves what was on screen', async () => {
    await readyToRun();
    const held = deferred<Reply<PatchResponse>>();
    server.routes.patch = () => held.promise;
    fireEvent.click(runButton());
    const bar = await screen.findByRole('progressbar', { name: 'Patching progress' });
    expect(bar.getAttribute('aria-valuetext')).toBe('Starting the sweep…');
    const post = patchCalls()[0];
    expect(post.body).toEqual({
      clean_text: 'The capital of France is',
      corrupted_text: 'The capital of Spain is',
      hook: 'resid_pre',
      metric: { type: 'logit_diff', correct: ' Paris', wrong: ' Rome' },
      positions: 'all',
      apply_chat_template: false,
    });
    const id = post.headers['x-logitlens-request'];
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    act(() => FakeEventSource.run({ request: id, stage: 'patching', done: 3, total: 24 }));
    act(() => FakeEventSource.run({ request: 'another-page', stage: 'patching', done: 20, total: 24 }));
    expect(screen.getByTestId('patch-progress-text').textContent).toBe('Patched run 3 of 24');
    expect(bar.getAttribute('aria-valuenow')).toBe('3');
    expect(bar.getAttribute('aria-valuemax')).toBe('24');

    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    expect(screen.getByTestId('patch-stopped').textContent).toBe('Sweep stopped.');
    expect(screen.queryByRole('progressbar', { name: 'Patching progress' })).toBeNull();
    await act(async () => held.resolve({ json: PATCH_RESPONSE }));
    expect(screen.queryByTestId('patch-figure')).toBeNull();
    expect(screen.queryByTestId('patch-error')).toBeNull();
  });

  it('draws the result: a cell per layer and position, both tokens where the texts differ, the best patch outlined', async () => {
    await runSweep();
    const cells = screen.getByTestId('patch-heatmap').querySelectorAll('rect[data-cell]');
    expect(cells).toHaveLength(2 * 4);
    expect([...cells].map((c) => c.getAttribute('data-value'))).toEqual(['0', '0', '1', '0', '0', '0', '0.5', '0.4']);
    const labels = [...screen.getByTestId('patch-heatmap').querySelectorAll('text')].map((t) => t.textContent);
    expect(labels).toEqual(expect.arrayContaining(['Layer 0', 'Layer 1', '0 <s>', '1 The', '2 ␣cat/␣dog', '3 ␣is']));
    const best = screen.getByTestId('patch-heatmap-best');
    expect([best.getAttribute('x'), best.getAttribute('y')]).toEqual([cells[2].getAttribute('x'), cells[2].getAttribute('y')].map((v) => String(Number(v) + 1)));
    expect(screen.getByTestId('patch-values').textContent).toBe('clean 2 · corrupted -1');
    expect(screen.getByRole('group', { name: 'Activation patching · Residual stream, before the layer · logit difference ␣sat − ␣ran' })).toBeTruthy();

    // Raw: the metric itself, on a scale of ± its largest |value|.
    fireEvent.click(screen.getByLabelText('Raw'));
    expect([...screen.getByTestId('patch-heatmap').querySelectorAll('rect[data-cell]')].map((c) => c.getAttribute('data-value'))).toEqual(['-1', '-1', '2', '-1', '-1', '-1', '0.5', '0.2']);
    expect([...screen.getByTestId('diverging-legend').querySelectorAll('text')].map((t) => t.textContent)).toEqual(['logit difference ␣sat − ␣ran', '−2', '0', '2']);
  });

  it('shows a cell’s values on hover and on keyboard focus', async () => {
    await runSweep();
    const heatmap = screen.getByTestId('patch-heatmap');
    fireEvent.mouseMove(heatmap.querySelector('rect[data-r="1"][data-c="2"]')!);
    const tip = screen.getByTestId('patch-tooltip');
    expect(tip.textContent).toBe('Layer 1 · position 2clean ␣cat, corrupted ␣dogvalue 0.5normalized 0.5');
    fireEvent.mouseLeave(heatmap);
    expect(screen.queryByTestId('patch-tooltip')).toBeNull();
    act(() => heatmap.focus());
    expect(screen.getByTestId('patch-tooltip').textContent).toBe('Layer 0 · position 0token <s>value -1normalized 0');
    fireEvent.keyDown(heatmap, { key: 'ArrowDown' });
    fireEvent.keyDown(heatmap, { key: 'ArrowRight' });
    fireEvent.keyDown(heatmap, { key: 'ArrowRight' });
    fireEvent.keyDown(heatmap, { key: 'ArrowRight' });
    expect(screen.getByTestId('patch-tooltip-value').textContent).toBe('0.2');
    expect(screen.getByTestId('patch-tooltip-normalized').textContent).toBe('0.4');
    fireEvent.keyDown(heatmap, { key: 'Escape' });
    expect(screen.queryByTestId('patch-tooltip')).toBeNull();
  });

  it('a normalized value is not there when clean = corrupted: said so', async () => {
    await runSweep({ ...PATCH_RESPONSE, clean: 1, corrupted: 1, normalized: PATCH_RESPONSE.normalized.map((r) => r.map(() => null)) });
    expect(screen.queryByTestId('patch-heatmap-best')).toBeNull();
    fireEvent.mouseMove(screen.getByTestId('patch-heatmap').querySelector('rect[data-r="0"][data-c="1"]')!);
    expect(screen.getByTestId('patch-tooltip-normalized').textContent).toBe('n/a (clean = corrupted)');
  });

  it('sends the hook, the probability metric and a list of positions as chosen, checking the positions first', async () => {
    await openCard();
    fireEvent.click(screen.getByLabelText(/^MLP output/));
    fireEvent.click(screen.getByLabelText('Probability'));
    fireEvent.change(screen.getByLabelText('Token'), { target: { value: '17' } });
    fireEvent.change(screen.getByLabelText('Positions to patch'), { target: { value: '0, 9' } });
    expect((await screen.findByTestId('patch-positions-error')).textContent).toBe('Position 9 is outside the text: it has 6 tokens (0 to 5, or -6 to -1).');
    expect(runButton().disabled).toBe(true);
    fireEvent.change(screen.getByLabelText('Positions to patch'), { target: { value: '0, -1' } });
    await waitFor(() => expect(runButton().disabled).toBe(false));
    fireEvent.click(runButton());
    await screen.findByTestId('patch-figure');
    expect(patchCalls()[0].body).toMatchObject({ hook: 'mlp_out', metric: { type: 'prob', token: 17 }, positions: [0, -1] });
  });

  it('says the server’s refusals in words', async () => {
    await readyToRun();
    const detail = 'the clean text is 13 tokens and the corrupted text 15; patching pairs them position by position';
    server.routes.patch = () => ({ status: 400, json: { detail } });
    fireEvent.click(runButton());
    expect((await screen.findByTestId('patch-error')).textContent).toBe(detail);
    server.routes.patch = () => ({ status: 503, json: { detail: 'the server is busy: 4 runs are waiting for their turn; try again in 30 s' }, headers: { 'retry-after': '30' } });
    fireEvent.click(runButton());
    await waitFor(() => expect(screen.getByTestId('patch-error').textContent).toMatch(/^the server is busy: 4 runs are waiting for their turn; try again in 30 s\. Run it again after .+\.$/));
    server.routes.patch = () => ({ status: 409, json: { detail: 'a model is loading' } });
    fireEvent.click(runButton());
    await waitFor(() => expect(screen.getByTestId('patch-error').textContent).toBe('a model is loading: run the sweep once the model is ready.'));
    // A tokenizer failure is said where the count would be.
    server.routes.tokenize = () => ({ status: 400, json: { detail: 'model not loaded' } });
    fireEvent.change(textarea('Clean text'), { target: { value: 'Another text' } });
    await waitFor(() => expect(screen.getByTestId('patch-clean-count').textContent).toBe('Could not count the tokens: model not loaded'));
  });

  it('exports the sweep as CSV', async () => {
    const files = captureDownloads();
    await runSweep();
    fireEvent.click(screen.getByRole('button', { name: 'Export CSV' }));
    expect(files.map((f) => f.name)).toEqual([expect.stringMatching(/^patching_llama_resid_pre_\d{8}_\d{6}\.csv$/)]);
    const lines = (await files[0].text).split('\n');
    expect(lines[0]).toBe(PATCH_CSV_HEADER);
    expect(lines).toHaveLength(1 + 8 + 1);
    expect(lines[3]).toBe('0,2," cat"," dog",2,1');
  });
});
