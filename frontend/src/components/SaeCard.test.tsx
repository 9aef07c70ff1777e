import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { ModelStatus } from '../api/types';
import { useModelLoader } from '../hooks/useModelLoader';
import { useModels } from '../hooks/useModels';
import { useSaes } from '../hooks/useSaes';
import { READY, SAES, TINY_LLAMA } from '../test/fixtures';
import { FakeEventSource, stubServer, type FakeServer } from '../test/server';
import { NotificationProvider } from './Notifications';
import { SaeCard } from './SaeCard';

let server: FakeServer;
let status: ModelStatus;

const WIDTH = 'SAE d_in 32 does not match the model’s hidden size 8';

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  status = READY;
  server = stubServer({
    model_status: () => ({ json: status }),
    models: () => ({ json: [] }),
    load_sae: (body) => {
      if (body.saes[0].path.includes('wide')) return { status: 400, json: { detail: WIDTH } };
      status = { ...READY, saes: [SAES[0]] };
      return { json: { ...TINY_LLAMA, saes: [SAES[0]] } };
    },
    unload_sae: () => {
      status = { ...READY, saes: [] };
      return { json: { ...TINY_LLAMA, saes: [] } };
    },
  });
});

afterEach(() => vi.unstubAllGlobals());

function Harness() {
  const loader = useModelLoader(useModels());
  return <SaeCard saes={useSaes(loader)} />;
}

describe('SaeCard', () => {
  it('attaches an SAE by its folder, name and hook, lists it, refuses a mismatched one in words, and removes it', async () => {
    render(
      <NotificationProvider>
        <Harness />
      </NotificationProvider>,
    );
    await screen.findByTestId('sae-card');
    expect(screen.getByTestId('sae-card').textContent).toContain('SAEs: none');
    fireEvent.click(screen.getByRole('button', { name: 'Add SAE…' }));
    fireEvent.change(screen.getByLabelText('SAE folder'), { target: { value: '/sae/wide' } });
    fireEvent.click(screen.getByRole('button', { name: 'Load SAE' }));
    expect((await screen.findByTestId('sae-error')).textContent).toBe(WIDTH);

    fireEvent.change(screen.getByLabelText('SAE folder'), { target: { value: '/sae/relu' } });
    fireEvent.change(screen.getByLabelText('SAE name'), { target: { value: 'relu_resid_post_0' } });
    fireEvent.change(screen.getByLabelText('SAE hook'), { target: { value: 'blocks.0.hook_resid_post' } });
    expect(screen.queryByTestId('sae-error')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Load SAE' }));
    const list = await screen.findByTestId('sae-list');
    expect(server.calls.filter((c) => c.url === 'load_sae').map((c) => c.body)).toEqual([
      { saes: [{ path: '/sae/wide' }] },
      { saes: [{ path: '/sae/relu', name: 'relu_resid_post_0', hook: 'blocks.0.hook_resid_post' }] },
    ]);
    expect(within(list).getByText('relu_resid_post_0')).toBeTruthy();
    expect(list.textContent).toContain('blocks.0.hook_resid_post · standard · 8→32 · float32 · 2.3 kB');
    expect(screen.queryByLabelText('SAE folder')).toBeNull();

    fireEvent.click(screen.getByRole('button', { name: 'Remove SAE relu_resid_post_0' }));
    await waitFor(() => expect(screen.queryByTestId('sae-list')).toBeNull());
    expect(server.calls.find((c) => c.url === 'unload_sae')?.body).toEqual({ names: ['relu_resid_post_0'] });
  });
});
