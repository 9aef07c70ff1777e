import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, renderHook, waitFor } from '@testing-library/react';
import { NotificationProvider } from '../components/Notifications';
import { inferenceResponse, LOADED, READY, TOKENS } from '../test/fixtures';
import { stubServer, type FakeServer } from '../test/server';
import { attentionBytes } from '../lib/runHistory';
import { useModelLoader } from './useModelLoader';
import { useModels } from './useModels';
import { useRun } from './useRun';
import { useRunHistory, type RunHistoryState } from './useRunHistory';

let server: FakeServer;

beforeEach(() => {
  server = stubServer({
    model_status: () => ({ json: READY }),
    models: () => ({ json: [] }),
    load_model: () => ({ json: LOADED }),
    inference: (body) => ({ json: inferenceResponse(body.text), headers: { 'x-logitlens-run-id': '7' } }),
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  window.localStorage.clear();
});

async function ready(limits?: RunHistoryState['limits']) {
  let clock = 1_000;
  const hook = renderHook(
    () => {
      const loader = useModelLoader(useModels());
      const run = useRun(loader);
      return { loader, run, history: useRunHistory(run, { now: () => (clock += 1000), limits }) };
    },
    { wrapper: NotificationProvider },
  );
  await waitFor(() => expect(hook.result.current.loader.loaded).toBe(true));
  const current = () => hook.result.current;
  const runText = async (text: string) => {
    await act(() => current().run.runInference({ text }));
  };
  return { current, runText };
}

describe('useRunHistory', () => {
  it('keeps every run put on screen, newest first, with its time', async () => {
    const { current, runText } = await ready();
    expect(current().history.entries).toEqual([]);
    await runText('first prompt');
    await runText('second prompt');
    const h = current().history;
    expect(h.entries.map((e) => [e.id, e.view.request.text, e.at])).toEqual([
      [2, 'second prompt', 3000],
      [1, 'first prompt', 2000],
    ]);
    // The run on screen is the newest entry, the very view.
    expect(h.entries[0].view).toBe(current().run.view);
    expect(h.shownId).toBe(2);
  });

  it('shows an earlier run again without a request, and does not add it twice', async () => {
    const { current, runText } = await ready();
    await runText('first prompt');
    await runText('second prompt');
    const calls = server.calls.filter((c) => c.url === 'inference').length;
    act(() => current().history.show(1));
    expect(current().run.view?.request.text).toBe('first prompt');
    expect(current().history.shownId).toBe(1);
    expect(current().history.entries).toHaveLength(2);
    expect(server.calls.filter((c) => c.url === 'inference')).toHaveLength(calls);
    // Back to the newer one, and a new run after: a third entry.
    act(() => current().history.show(2));
    await runText('third prompt');
    expect(current().history.entries.map((e) => e.id)).toEqual([3, 2, 1]);
  });

  it('removes one entry, clears all, and the run on screen stays', async () => {
    const { current, runText } = await ready();
    await runText('first prompt');
    await runText('second prompt');
    act(() => current().history.remove(2));
    expect(current().history.entries.map((e) => e.id)).toEqual([1]);
    // The view on screen was removed from the list: none of the entries is on screen.
    expect(current().history.shownId).toBeNull();
    expect(current().run.view?.request.text).toBe('second prompt');
    act(() => current().history.clear());
    expect(current().history.entries).toEqual([]);
    // A cleared history is not refilled by the run still on screen, only by the next.
    await runText('third prompt');
    expect(current().history.entries.map((e) => e.view.request.text)).toEqual(['third prompt']);
  });

  it('is bounded: the oldest go, and older runs’ attention is let go first', async () => {
    // The fixture's attention: head means of 2 layers, T×T Float32 each. The budget holds one run's.
    const tensorBytes = 2 * TOKENS.length ** 2 * 4;
    const { current, runText } = await ready({ maxRuns: 3, attentionBytes: tensorBytes, rowsBytes: 1e9 });
    for (const t of ['one', 'two', 'three', 'four']) await runText(t);
    const h = current().history;
    expect(h.entries.map((e) => [e.view.request.text, e.attentionDropped, e.view.tensor === null])).toEqual([
      ['four', false, false],
      ['three', true, true],
      ['two', true, true],
    ]);
    expect(attentionBytes(h.entries[0].view.tensor)).toBe(tensorBytes);
    expect(h.limits.maxRuns).toBe(3);
    // An entry whose attention was let go is shown without it, and known as that entry.
    act(() => current().history.show(3));
    expect(current().run.view?.tensor).toBeNull();
    expect(current().history.shownId).toBe(3);
    expect(current().history.entries).toHaveLength(3);
  });

  it('picks A and B: by default the run before the newest and the newest; says why it cannot compare', async () => {
    const { current, runText } = await ready();
    await runText('first prompt');
    expect(current().history.compareDisabledReason).toBe('Compare needs two runs in the history: run another prompt first');
    await runText('second prompt');
    await runText('third prompt');
    expect([current().history.a, current().history.b]).toEqual([2, 3]);
    expect(current().history.compareDisabledReason).toBeNull();
    act(() => current().history.setA(3));
    expect(current().history.compareDisabledReason).toBe('A and B are the same run: pick another for one of them');
    act(() => current().history.setA(1));
    act(() => current().history.compare());
    const pair = current().history.comparison!;
    expect([pair.a.view.request.text, pair.b.view.request.text]).toEqual(['first prompt', 'third prompt']);
    // Removing a compared run keeps the comparison on screen (it holds its runs); A falls back.
    act(() => current().history.remove(1));
    expect(current().history.comparison).toBe(pair);
    expect(current().history.a).toBe(2);
    act(() => current().history.closeCompare());
    expect(current().history.comparison).toBeNull();
    act(() => current().history.compare());
    act(() => current().history.clear());
    expect(current().history.comparison).toBeNull();
  });
});
