import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import type { SaeEvalReport } from '../api/types';
import { useModelLoader } from '../hooks/useModelLoader';
import { useModels } from '../hooks/useModels';
import { useSaeEval } from '../hooks/useSaeEval';
import { READY, SAE_EVAL, SAES } from '../test/fixtures';
import { deferred, FakeEventSource, stubServer, type FakeServer, type Reply } from '../test/server';
import { NotificationProvider } from './Notifications';
import { SaeQualityCard } from './SaeQuality';

let server: FakeServer;
let last: SaeEvalReport | null;
let posted: ReturnType<typeof deferred<Reply<SaeEvalReport>>>;

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  last = null;
  posted = deferred();
  server = stubServer({
    model_status: () => ({ json: { ...READY, saes: SAES } }),
    models: () => ({ json: [] }),
    eval_sae: (body) => (body === undefined ? { json: last } : posted.promise),
  });
});

afterEach(() => vi.unstubAllGlobals());

function Harness() {
  const loader = useModelLoader(useModels());
  return <SaeQualityCard ev={useSaeEval(loader)} />;
}

async function openCard() {
  render(
    <NotificationProvider>
      <Harness />
    </NotificationProvider>,
  );
  await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
  fireEvent.click(screen.getByLabelText('Show SAE quality'));
  await waitFor(() => expect(screen.getByRole('button', { name: 'Evaluate the SAEs' }).hasAttribute('disabled')).toBe(false));
}

const rowText = () => Array.from(screen.getByTestId('sae-quality-table').querySelectorAll('tbody tr')).map((tr) => Array.from(tr.children).map((c) => c.textContent));

describe('SaeQualityCard', () => {
  it('shows the server’s last evaluation when opened, a row per SAE', async () => {
    last = SAE_EVAL;
    // Closed: nothing asked.
    render(
      <NotificationProvider>
        <Harness />
      </NotificationProvider>,
    );
    await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
    expect(server.calls.filter((c) => c.url === 'eval_sae')).toHaveLength(0);
    fireEvent.click(screen.getByLabelText('Show SAE quality'));
    await screen.findByTestId('sae-quality-table');
    expect(rowText()).toEqual([['relu_resid_post_0 blocks.0.hook_resid_post', '+0.2500', '75.0%', '0.1250', '0.875', '0.0625', '12.5', '3 / 32']]);
    expect(screen.getByTestId('sae-eval-meta').textContent).toContain('the server’s last evaluation');
  });

  it('says when there is none yet, runs one over sampled documents with progress and Stop, then to its end', async () => {
    await openCard();
    expect((await screen.findByTestId('sae-eval-note')).textContent).toMatch(/^No SAE evaluation has been made with llama yet/);
    fireEvent.change(screen.getByLabelText('SAE evaluation max tokens'), { target: { value: '32' } });
    fireEvent.click(screen.getByRole('button', { name: 'Evaluate the SAEs' }));
    const call = server.calls.find((c) => c.url === 'eval_sae' && c.body !== undefined)!;
    expect(call.body).toEqual({ sample: 8, max_tokens: 32 });
    act(() => FakeEventSource.run({ request: call.headers['x-logitlens-request'], stage: 'documents', done: 3, total: 8 }));
    await waitFor(() => expect(screen.getByTestId('sae-eval-progress-text').textContent).toContain('3 of 8'));
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    await screen.findByTestId('sae-eval-stopped');

    posted = deferred();
    fireEvent.click(screen.getByRole('button', { name: 'Evaluate the SAEs' }));
    await act(async () => posted.resolve({ json: SAE_EVAL }));
    await screen.findByTestId('sae-quality-table');
    expect(screen.getByTestId('sae-eval-meta').textContent).toContain('evaluated now');
  });
});
