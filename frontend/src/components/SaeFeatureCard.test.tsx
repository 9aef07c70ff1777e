import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { SaeCorpusReport, SaeCorpusRequest } from '../api/types';
import { useModelLoader } from '../hooks/useModelLoader';
import { useModels } from '../hooks/useModels';
import { useSaeFeature, type SaeFeatureState } from '../hooks/useSaeFeature';
import type { RunView } from '../hooks/useShownRun';
import { READY, SAES, TOKENS, lensRows } from '../test/fixtures';
import { deferred, FakeEventSource, stubServer, type FakeServer, type Reply } from '../test/server';
import { NotificationProvider } from './Notifications';
import { SaeFeatureCard } from './SaeFeatureCard';

let server: FakeServer;
let card: SaeFeatureState;
let scan: ReturnType<typeof deferred<Reply<SaeCorpusReport>>>;

const REPORT: SaeCorpusReport = {
  sae: 'relu_resid_post_0',
  feature: 7,
  documents: 8,
  tokens: 256,
  fires: 32,
  frequency: 0.125,
  max_act: 4.5,
  sample_seed: 0,
  contexts: [{ document: 2, position: 5, act: 4.5, tokens: [' the', ' cat', ' sat'], highlight: 1 }],
};

const VIEW = { request: { text: 'The cat' }, rows: lensRows(), tokens: TOKENS, runId: 42 } as unknown as RunView;

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  scan = deferred();
  server = stubServer({
    model_status: () => ({ json: { ...READY, saes: SAES } }),
    models: () => ({ json: [] }),
    sae_features: (body) => ({
      json: {
        model_name: READY.model_name,
        sae: { name: body.sae, hook: 'blocks.0.hook_resid_post', architecture: 'standard', d_sae: 32 },
        features: [{ id: 7, decoder_norm: 1, top_tokens: [{ id: 5, token: ' Paris', value: 0.75 }], bottom_tokens: [{ id: 6, token: ' no', value: -0.5 }] }],
        activations: body.run_id === 42 ? [[0, 1.5, 3, 0]] : null,
      },
    }),
    sae_feature_corpus: () => scan.promise,
  });
});

afterEach(() => vi.unstubAllGlobals());

function Harness() {
  const loader = useModelLoader(useModels());
  card = useSaeFeature(loader, { view: VIEW });
  return <SaeFeatureCard f={card} />;
}

describe('SaeFeatureCard', () => {
  it('shows a feature’s tokens and its activation over the run, and scans a sampled corpus with progress and Stop', async () => {
    render(
      <NotificationProvider>
        <Harness />
      </NotificationProvider>,
    );
    await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
    act(() => card.open({ sae: 'relu_resid_post_0', feature: 7, position: 2 }));
    await screen.findByTestId('sae-sparkline');
    expect(server.calls.find((c) => c.url === 'sae_features')?.body).toEqual({ sae: 'relu_resid_post_0', features: [7], k: 10, run_id: 42 });
    expect(screen.getByRole('heading', { level: 2 }).textContent).toBe('SAE feature #7 of relu_resid_post_0');
    expect(screen.getByTestId('sae-top-tokens').textContent).toContain('␣Paris0.75');
    expect(screen.getByTestId('sae-bottom-tokens').textContent).toContain('␣no-0.5');
    const bars = Array.from(screen.getByTestId('sae-sparkline').querySelectorAll('[data-bar]')).map((g) => Number(g.getAttribute('data-value')));
    expect(bars).toEqual([0, 1.5, 3, 0]);

    // A scan of 4 sampled documents: its request, then Stop cancels it.
    fireEvent.change(screen.getByLabelText('Feature corpus: documents to sample'), { target: { value: '4' } });
    fireEvent.click(screen.getByRole('button', { name: 'Scan the corpus' }));
    const call = server.calls.find((c) => c.url === 'sae_feature_corpus')!;
    expect(call.body as SaeCorpusRequest).toEqual({ sae: 'relu_resid_post_0', feature: 7, sample: 4, max_tokens: 64, contexts: 10, window: 8 });
    const id = call.headers['x-logitlens-request'];
    act(() => FakeEventSource.run({ request: id, stage: 'documents', done: 1, total: 4 }));
    await screen.findByTestId('sae-scan-progress');
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    await screen.findByTestId('sae-scan-stopped');
    expect(screen.queryByRole('button', { name: 'Stop' })).toBeNull();

    // Again, to its end: the frequency, the max and the contexts with the firing token marked.
    scan = deferred();
    fireEvent.click(screen.getByRole('button', { name: 'Scan the corpus' }));
    await act(async () => scan.resolve({ json: REPORT }));
    const summary = await screen.findByTestId('sae-corpus-summary');
    expect(summary.textContent).toBe('Fires at 32 of 256 positions (12.5%) in 8 documents sampled (seed 0); max activation 4.5.');
    const ctx = within(screen.getByTestId('sae-contexts'));
    expect(ctx.getByText('␣cat').getAttribute('data-fire')).toBe('1');
  });
});
