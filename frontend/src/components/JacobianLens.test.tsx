import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { FitJlensCheckpoint, FitJlensRequest, FitJlensResponse, LensVectorRequest, ModelStatus } from '../api/types';
import { useJacobianLens } from '../hooks/useJacobianLens';
import { useModelLoader } from '../hooks/useModelLoader';
import { useModels } from '../hooks/useModels';
import { JACOBIAN, LENS_VECTOR, READY, toyTokenize } from '../test/fixtures';
import { deferred, FakeEventSource, stubServer, type FakeServer, type Reply } from '../test/server';
import { JacobianLensCard } from './JacobianLens';
import { NotificationProvider } from './Notifications';

let server: FakeServer;
let status: ModelStatus;
let checkpoint: FitJlensCheckpoint | null;

const SAVED = '/data/saved_states/jlens_llama_20261206_120000.pt';
const FITTED: FitJlensResponse = { n_prompts: 12, skipped: 1, seconds: 3.21, saved: SAVED, jacobian_lens: { ...JACOBIAN, path: SAVED } };

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  status = { ...READY, jacobian_lens: JACOBIAN };
  checkpoint = null;
  server = stubServer({
    model_status: () => ({ json: status }),
    models: () => ({ json: [] }),
    tokenize: (body) => ({ json: toyTokenize(body) }),
    lens_vector: () => ({ json: LENS_VECTOR }),
    fit_jlens: (body) => (body === undefined ? { json: checkpoint } : { json: FITTED }),
  });
});

afterEach(() => vi.unstubAllGlobals());

function Harness() {
  const loader = useModelLoader(useModels());
  return <JacobianLensCard jl={useJacobianLens(loader)} />;
}

async function openCard() {
  render(
    <NotificationProvider>
      <Harness />
    </NotificationProvider>,
  );
  await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
  fireEvent.click(screen.getByLabelText('Show the Jacobian lens'));
}

const vectorCalls = () => server.calls.filter((c) => c.url === 'lens_vector').map((c) => c.body as LensVectorRequest);
const fitPosts = () => server.calls.filter((c) => c.url === 'fit_jlens' && c.body !== undefined);
const fitGets = () => server.calls.filter((c) => c.url === 'fit_jlens' && c.body === undefined);
const showButton = () => screen.getByRole('button', { name: /Show its lens vectors|Reading…/ }) as HTMLButtonElement;
const fitButton = () => screen.getByRole('button', { name: /^(Fit a Jacobian lens|Fitting…)$/ }) as HTMLButtonElement;

describe('JacobianLensCard: lens vectors', () => {
  it('closed until asked for: nothing asked of the server', async () => {
    render(
      <NotificationProvider>
        <Harness />
      </NotificationProvider>,
    );
    await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
    expect(screen.queryByLabelText('Token')).toBeNull();
    expect(fitGets()).toHaveLength(0);
    fireEvent.click(screen.getByLabelText('Show the Jacobian lens'));
    await waitFor(() => expect(fitGets()).toHaveLength(1));
    expect(screen.getByTestId('jlens-attached').textContent).toBe('Attached: jlens.pt · 12 prompts · layers 0–1');
  });

  it('without a Jacobian lens: says how to get one; Show is disabled with the reason', async () => {
    status = READY;
    await openCard();
    await waitFor(() => expect(screen.getByTestId('jlens-attached').textContent).toMatch(/^No Jacobian lens is attached/));
    expect(showButton().disabled).toBe(true);
    expect(screen.getByTestId('lens-vector-disabled-reason').textContent).toMatch(/^No Jacobian lens is attached: attach its file under Lenses in the header, or fit one below/);
    expect(screen.queryByLabelText('Token')).toBeNull();
  });

  it('a token checked live, then a row per layer: its norm, its rank, its top tokens shaded by probability', async () => {
    await openCard();
    fireEvent.change(screen.getByLabelText('Token'), { target: { value: ' Parisian' } });
    expect((await screen.findByTestId('lens-vector-token-error')).textContent).toBe('“␣Parisian” is 2 tokens (␣Par · isian): a lens vector is a single token’s.');
    expect(showButton().disabled).toBe(true);
    fireEvent.change(screen.getByLabelText('Token'), { target: { value: ' is' } });
    await screen.findByTestId('lens-vector-token-id');
    fireEvent.change(screen.getByLabelText('Tokens per layer'), { target: { value: '3' } });
    await waitFor(() => expect(showButton().disabled).toBe(false));
    fireEvent.click(showButton());
    const table = await screen.findByTestId('lens-vector-table');
    expect(vectorCalls()).toEqual([{ token: ' is', k: 3 }]);
    expect(screen.getByTestId('lens-vector-meta').textContent).toBe('␣isid 464jlens.ptllamatop 3 per layer');
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => r.querySelector('th')!.textContent)).toEqual(['Layer 0', 'Layer 1']);
    expect(rows.map((r) => r.querySelector('.lv-norm-text')!.textContent)).toEqual(['1.704', '1.18']);
    expect(screen.getAllByTestId('lens-vector-rank').map((r) => r.textContent)).toEqual(['#1', '#1']);
    const cells = Array.from(rows[1].querySelectorAll<HTMLButtonElement>('.lv-cell'));
    expect(cells.map((c) => c.querySelector('.lv-token')!.textContent)).toEqual(['␣is', '\\x05', 'cking']);
    expect(cells.map((c) => c.querySelector('.lv-prob')!.textContent)).toEqual(['77.2%', '1.2%', '0.7%']);
    expect(cells[0].className).toContain('is-self');
    expect(cells[0].style.background).not.toBe(cells[2].style.background);
    // A cell asks for its own token's lens vector, by id.
    fireEvent.click(cells[2]);
    await waitFor(() => expect(vectorCalls()).toHaveLength(2));
    expect(vectorCalls()[1]).toEqual({ token: 472, k: 3 });
    expect((screen.getByLabelText('Token') as HTMLInputElement).value).toBe('472');
  });

  it('the server’s refusal in words; a k out of bounds is said before anything is sent', async () => {
    server.routes.lens_vector = () => ({ status: 400, json: { detail: 'token: 999999 is not in the vocabulary (512 tokens)' } });
    await openCard();
    fireEvent.change(screen.getByLabelText('Token'), { target: { value: '999999' } });
    fireEvent.change(screen.getByLabelText('Tokens per layer'), { target: { value: '51' } });
    expect(showButton().disabled).toBe(true);
    expect(screen.getByTestId('lens-vector-disabled-reason').textContent).toBe('List 1 to 50 tokens per layer');
    fireEvent.change(screen.getByLabelText('Tokens per layer'), { target: { value: '10' } });
    fireEvent.click(showButton());
    expect((await screen.findByTestId('lens-vector-error')).textContent).toBe('token: 999999 is not in the vocabulary (512 tokens)');
  });
});

describe('JacobianLensCard: fitting a lens', () => {
  it('a corpus from a file; the payload as the server takes it; progress from its events; the lens attached and said', async () => {
    const answer = deferred<Reply<FitJlensResponse>>();
    server.routes.fit_jlens = (body) => (body === undefined ? { json: checkpoint } : answer.promise);
    status = READY;
    await openCard();
    expect(fitButton().disabled).toBe(true);
    expect(screen.getByTestId('fit-disabled-reason').textContent).toBe('Type or choose a corpus first: one document per line.');
    const file = new File(['First prompt.\n\nSecond prompt.\n'], 'prompts.txt', { type: 'text/plain' });
    fireEvent.change(screen.getByLabelText('Fit corpus file'), { target: { files: [file] } });
    await waitFor(() => expect(screen.getByTestId('fit-documents').textContent).toBe('2 documents · from prompts.txt'));
    fireEvent.change(screen.getByLabelText('Max prompts'), { target: { value: '2' } });
    fireEvent.change(screen.getByLabelText('Max sequence length'), { target: { value: '64' } });
    fireEvent.change(screen.getByLabelText('Skip first positions'), { target: { value: '4' } });
    fireEvent.click(fitButton());
    await waitFor(() => expect(fitPosts()).toHaveLength(1));
    const post = fitPosts()[0];
    expect(post.body as FitJlensRequest).toEqual({ corpus: 'First prompt.\n\nSecond prompt.\n', max_prompts: 2, max_seq_len: 64, skip_first: 4, dim_batch: 8, resume: false });
    const id = post.headers['x-logitlens-request'];
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(screen.getByTestId('fit-progress-text').textContent).toBe('Starting the fit…');
    // Its events count passes: per prompt a forward pass and ⌈8 / 8⌉ backward passes on this model.
    act(() => FakeEventSource.run({ request: id, stage: 'fitting', done: 3, total: 4 }));
    expect(screen.getByTestId('fit-progress-text').textContent).toBe('Fitting prompt 2 of 2 (pass 3 of 4)');
    expect(screen.getByRole('progressbar', { name: 'Fit progress' }).getAttribute('aria-valuenow')).toBe('3');
    // Another request's events are not this fit's.
    act(() => FakeEventSource.run({ request: 'other', stage: 'fitting', done: 9, total: 9 }));
    expect(screen.getByTestId('fit-progress-text').textContent).toBe('Fitting prompt 2 of 2 (pass 3 of 4)');
    status = { ...READY, jacobian_lens: FITTED.jacobian_lens };
    const statusAsked = server.calls.filter((c) => c.url === 'model_status').length;
    answer.resolve({ json: FITTED });
    expect((await screen.findByTestId('fit-result')).textContent).toBe(
      `Fitted on 12 prompts (1 skipped: too short) in 3.2 s; saved to ${SAVED} and attached to llama (jlens_llama_20261206_120000.pt · 12 prompts · layers 0–1).`,
    );
    // The page asks for the status at once: the lens is attached now.
    await waitFor(() => expect(server.calls.filter((c) => c.url === 'model_status').length).toBeGreaterThan(statusAsked));
    await waitFor(() => expect(screen.getByTestId('jlens-attached').textContent).toContain('jlens_llama_20261206_120000.pt'));
  });

  it('sampled documents: their number and seed are sent instead of a corpus', async () => {
    await openCard();
    fireEvent.click(screen.getByLabelText('Sampled from the model'));
    fireEvent.change(screen.getByLabelText('Sampled documents'), { target: { value: '16' } });
    fireEvent.change(screen.getByLabelText('Sampling seed'), { target: { value: '3' } });
    fireEvent.click(fitButton());
    await waitFor(() => expect(fitPosts()).toHaveLength(1));
    expect(fitPosts()[0].body).toEqual({ sample: 16, seed: 3, max_seq_len: 128, skip_first: 16, dim_batch: 8, resume: false });
    await screen.findByTestId('fit-result');
  });

  it('a setting the fit cannot take is said before anything is sent', async () => {
    await openCard();
    fireEvent.change(screen.getByLabelText('Fit corpus'), { target: { value: 'a prompt' } });
    fireEvent.change(screen.getByLabelText('Skip first positions'), { target: { value: '200' } });
    expect(fitButton().disabled).toBe(true);
    expect(screen.getByTestId('fit-disabled-reason').textContent).toMatch(/^Skip first \(200\) must be below the max sequence length \(128\)/);
    fireEvent.change(screen.getByLabelText('Dim batch'), { target: { value: 'x' } });
    fireEvent.change(screen.getByLabelText('Skip first positions'), { target: { value: '16' } });
    expect(screen.getByTestId('fit-disabled-reason').textContent).toBe('Dim batch must be a whole number of at least 1.');
  });

  it('Stop aborts the fit; the checkpoint the server kept is offered to Resume, which continues it', async () => {
    server.routes.fit_jlens = (body) => (body === undefined ? { json: checkpoint } : new Promise<never>(() => {}));
    await openCard();
    fireEvent.change(screen.getByLabelText('Fit corpus'), { target: { value: 'one\ntwo\nthree' } });
    fireEvent.click(fitButton());
    await waitFor(() => expect(fitPosts()).toHaveLength(1));
    expect(screen.queryByRole('button', { name: /^Resume/ })).toBeNull();
    // The server writes its checkpoint as it stops.
    checkpoint = { n_done: 2, total: 3, next: 2, max_seq_len: 128, skip_first: 16, dim_batch: 8, corpus: 'text of 3 documents, sha256 0011223344556677' };
    const asked = fitGets().length;
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    await waitFor(() => expect(fitGets().length).toBeGreaterThan(asked));
    const resume = (await screen.findByRole('button', { name: 'Resume (2 of 3 prompts done)' })) as HTMLButtonElement;
    expect(screen.getByTestId('fit-stopped').textContent).toBe('Fit stopped: the server kept 2 of 3 prompts done; Resume continues it.');
    expect(screen.getByTestId('fit-checkpoint').textContent).toBe(
      'Kept on the server: 2 of 3 prompts done · text of 3 documents, sha256 0011223344556677 · max_seq_len 128 · skip_first 16 · dim_batch 8',
    );
    server.routes.fit_jlens = (body) => (body === undefined ? { json: checkpoint } : { json: FITTED });
    fireEvent.click(resume);
    await waitFor(() => expect(fitPosts()).toHaveLength(2));
    expect(fitPosts()[1].body).toEqual({ corpus: 'one\ntwo\nthree', max_seq_len: 128, skip_first: 16, dim_batch: 8, resume: true });
    expect((await screen.findByTestId('fit-result')).textContent).toMatch(/^Resumed and fitted on 12 prompts/);
    expect(screen.queryByRole('button', { name: /^Resume/ })).toBeNull();
  });

  it('a checkpoint kept from before is offered when the view opens, and resumed with its own settings', async () => {
    checkpoint = { n_done: 5, total: 40, next: 5, max_seq_len: 64, skip_first: 4, dim_batch: 16, corpus: 'text of 40 documents, sha256 aabbccddeeff0011' };
    await openCard();
    const resume = (await screen.findByRole('button', { name: 'Resume (5 of 40 prompts done)' })) as HTMLButtonElement;
    // Its corpus was a text: it must be typed (or chosen) again, the same.
    expect(resume.disabled).toBe(true);
    expect(screen.getByTestId('fit-checkpoint').textContent).toContain('Resume continues the fit on the same corpus (text of 40 documents, sha256 aabbccddeeff0011): type or choose it again.');
    fireEvent.change(screen.getByLabelText('Fit corpus'), { target: { value: 'the same\ncorpus' } });
    fireEvent.click(resume);
    await waitFor(() => expect(fitPosts()).toHaveLength(1));
    expect(fitPosts()[0].body).toEqual({ corpus: 'the same\ncorpus', max_seq_len: 64, skip_first: 4, dim_batch: 16, resume: true });
  });

  it('a sampled checkpoint resumes on the same sample, whatever the form says', async () => {
    checkpoint = { n_done: 1, total: 8, next: 1, max_seq_len: 128, skip_first: 16, dim_batch: 8, corpus: '8 documents sampled from the model, seed 3' };
    await openCard();
    fireEvent.click(await screen.findByRole('button', { name: 'Resume (1 of 8 prompts done)' }));
    await waitFor(() => expect(fitPosts()).toHaveLength(1));
    expect(fitPosts()[0].body).toEqual({ sample: 8, seed: 3, max_seq_len: 128, skip_first: 16, dim_batch: 8, resume: true });
  });

  it('a busy server and a refusal are said in words', async () => {
    server.routes.fit_jlens = (body) =>
      body === undefined ? { json: null } : { status: 503, json: { detail: 'the server is busy: 3 requests are waiting' }, headers: { 'retry-after': '5' } };
    await openCard();
    fireEvent.change(screen.getByLabelText('Fit corpus'), { target: { value: 'one' } });
    fireEvent.click(fitButton());
    expect((await screen.findByTestId('fit-error')).textContent).toMatch(/^the server is busy: 3 requests are waiting\. Run it again after \d/);
    server.routes.fit_jlens = (body) => (body === undefined ? { json: null } : { status: 400, json: { detail: 'the corpus has no document of at least 17 tokens (skip_first 16)' } });
    fireEvent.click(fitButton());
    await waitFor(() => expect(screen.getByTestId('fit-error').textContent).toBe('the corpus has no document of at least 17 tokens (skip_first 16)'));
  });
});
