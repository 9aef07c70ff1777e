import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, waitFor } from '@testing-library/react';
import type { EvalReport } from '../api/types';
import { NotificationProvider } from '../components/Notifications';
import { EVAL_REPORT, EVALUATION, IDLE, READY } from '../test/fixtures';
import { deferred, stubServer, type FakeServer, type Reply } from '../test/server';
import { DEFAULT_MAX_TOKENS, useLensEval } from './useLensEval';
import { useModelLoader } from './useModelLoader';
import { useModels } from './useModels';

let server: FakeServer;

beforeEach(() => {
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    eval_lens: (body) => (body === undefined ? { json: EVAL_REPORT } : { json: { ...EVAL_REPORT, documents: 1 } }),
  });
});

afterEach(() => vi.unstubAllGlobals());

async function ready() {
  const hook = renderHook(
    () => {
      const loader = useModelLoader(useModels());
      return { loader, ev: useLensEval(loader) };
    },
    { wrapper: NotificationProvider },
  );
  await waitFor(() => expect(hook.result.current.loader.status).not.toBeNull());
  return { ...hook, ev: () => hook.result.current.ev };
}

const posts = () => server.calls.filter((c) => c.url === 'eval_lens' && c.body !== undefined);

describe('useLensEval', () => {
  it('starts closed, with an empty corpus and the server’s default max tokens', async () => {
    const { ev } = await ready();
    expect(ev().open).toBe(false);
    expect(ev().shown).toBeNull();
    expect(ev().maxTokens).toBe(DEFAULT_MAX_TOKENS);
    expect(ev().documents).toBe(0);
    expect(ev().runDisabledReason).toBe('Type or choose a corpus first: one document per line');
    act(() => ev().setCorpus('a\nb'));
    expect(ev().documents).toBe(2);
    expect(ev().runDisabledReason).toBeNull();
    expect(server.calls.some((c) => c.url === 'eval_lens')).toBe(false);
  });

  it('without a model in service: nothing to fetch, and Run says why', async () => {
    server.routes.model_status = () => ({ json: IDLE });
    const { ev } = await ready();
    act(() => ev().setOpen(true));
    expect(ev().serverNote).toBe('No model is in service: load one to evaluate its lenses, or open an evaluation file.');
    act(() => ev().setCorpus('a'));
    expect(ev().runDisabledReason).toBe('No model is loaded: choose one in the header');
    expect(server.calls.some((c) => c.url === 'eval_lens')).toBe(false);
  });

  it('opened: the server’s last evaluation; none yet (null) is a note, not an error; a failed fetch says so', async () => {
    server.routes.eval_lens = () => ({ json: null });
    const { ev } = await ready();
    act(() => ev().setOpen(true));
    await waitFor(() => expect(ev().fetching).toBe(false));
    expect(ev().shown).toBeNull();
    expect(ev().serverNote).toBe(
      'No lens evaluation has been made with llama yet: run one below over a corpus (one document per line), or open the output of “logitlens eval-lens --json”.',
    );
    act(() => ev().setOpen(false));
    server.routes.eval_lens = () => ({ status: 500, json: { detail: 'the disk is full' } });
    act(() => ev().setOpen(true));
    await waitFor(() => expect(ev().serverNote).toBe('Could not fetch the last evaluation: the disk is full'));
    act(() => ev().setOpen(false));
    server.routes.eval_lens = () => ({ json: EVAL_REPORT });
    act(() => ev().setOpen(true));
    await waitFor(() => expect(ev().shown).toEqual({ data: EVAL_REPORT, source: { kind: 'server' } }));
    expect(ev().serverNote).toBeNull();
  });

  it('a model loading (409) and no model (400) are said with what to do', async () => {
    const { ev } = await ready();
    act(() => ev().setCorpus('a'));
    server.routes.eval_lens = () => ({ status: 409, json: { detail: 'model is loading' } });
    await act(() => ev().run());
    expect(ev().request.error).toBe('model is loading: run the evaluation once the model is ready.');
    server.routes.eval_lens = () => ({ status: 400, json: { detail: 'Model not loaded' } });
    await act(() => ev().run());
    expect(ev().request.error).toBe('Model not loaded: choose a model in the header to load one.');
    server.routes.eval_lens = () => ({ status: 400, json: { detail: 'the corpus has 5000 documents; one evaluation takes at most 4096' } });
    await act(() => ev().run());
    expect(ev().request.error).toBe('the corpus has 5000 documents; one evaluation takes at most 4096');
    expect(ev().request.running).toBe(false);
  });

  it('a second run replaces the first: only the second’s answer is shown', async () => {
    const { ev } = await ready();
    act(() => ev().setCorpus('a'));
    const first = deferred<Reply<EvalReport>>();
    server.routes.eval_lens = () => first.promise;
    let p1: Promise<void>;
    act(() => {
      p1 = ev().run();
    });
    server.routes.eval_lens = () => ({ json: { ...EVAL_REPORT, documents: 2 } });
    await act(() => ev().run());
    expect(ev().shown?.data.documents).toBe(2);
    await act(async () => {
      first.resolve({ json: { ...EVAL_REPORT, documents: 1 } });
      await p1;
    });
    expect(ev().shown?.data.documents).toBe(2);
    expect(ev().request.stopped).toBe(false);
    expect(posts()).toHaveLength(2);
    expect(posts()[0].headers['x-logitlens-request']).not.toBe(posts()[1].headers['x-logitlens-request']);
  });

  it('leaving the page cancels the evaluation in progress', async () => {
    const { ev, unmount } = await ready();
    act(() => ev().setCorpus('a'));
    const held = deferred<Reply<EvalReport>>();
    server.routes.eval_lens = () => held.promise;
    act(() => void ev().run());
    await waitFor(() => expect(posts()).toHaveLength(1));
    const fetchMock = fetch as unknown as { mock: { calls: [string, RequestInit][] } };
    const signal = fetchMock.mock.calls.find(([url, init]) => url === 'eval_lens' && init.method === 'POST')![1].signal!;
    expect(signal.aborted).toBe(false);
    unmount();
    expect(signal.aborted).toBe(true);
  });

  it('opens a file: an evaluation, or the reason it is not one', async () => {
    const { ev } = await ready();
    await act(() => ev().openFile(new File([JSON.stringify(EVALUATION)], 'eval.json')));
    expect(ev().shown).toEqual({ data: EVALUATION, source: { kind: 'file', name: 'eval.json' } });
    await act(() => ev().openFile(new File(['not json'], 'notes.txt')));
    expect(ev().fileError).toMatch(/^notes\.txt is not JSON/);
    expect(ev().shown?.source).toEqual({ kind: 'file', name: 'eval.json' });
  });
});
