import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { useState } from 'react';
import type { Interventions, ModelStatus } from '../api/types';
import { useModelLoader } from '../hooks/useModelLoader';
import { useModels } from '../hooks/useModels';
import { useSaeForm, type SaeForm } from '../hooks/useSaeForm';
import { appendIntervention } from '../lib/interventions';
import { READY, SAES } from '../test/fixtures';
import { FakeEventSource, stubServer } from '../test/server';
import { InterventionList } from './Controls';
import { NotificationProvider } from './Notifications';
import { SaeInterventionForm } from './SaeInterventionForm';

let status: ModelStatus;
let form: SaeForm;

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  status = { ...READY, saes: SAES };
  stubServer({ model_status: () => ({ json: status }), models: () => ({ json: [] }) });
});

afterEach(() => vi.unstubAllGlobals());

function Harness() {
  const loader = useModelLoader(useModels());
  form = useSaeForm(loader);
  const [iv, setIv] = useState<Interventions>({});
  const ctx = { numLayers: 2, seqLen: 4, saes: (loader.model?.saes ?? []).map((s) => ({ name: s.name, hook: s.hook })) };
  return (
    <>
      <SaeInterventionForm form={form} ctx={ctx} onAdd={(key, config) => setIv((all) => appendIntervention(all, key, config))} />
      <InterventionList interventions={iv} onChange={setIv} ctx={ctx} />
      <pre data-testid="payload">{JSON.stringify(iv)}</pre>
    </>
  );
}

const payload = () => JSON.parse(screen.getByTestId('payload').textContent ?? '{}') as Interventions;

describe('SaeInterventionForm', () => {
  it('says how to get an SAE when none is attached', async () => {
    status = READY;
    render(
      <NotificationProvider>
        <Harness />
      </NotificationProvider>,
    );
    await waitFor(() => expect(screen.getByTestId('sae-form-unavailable').textContent).toMatch(/^Attach an SAE/));
  });

  it('adds ablate, clamp and splice at the SAE’s hook, checks the feature, and is filled from the grid', async () => {
    render(
      <NotificationProvider>
        <Harness />
      </NotificationProvider>,
    );
    await screen.findByLabelText('SAE');
    fireEvent.change(screen.getByLabelText('SAE feature'), { target: { value: '40' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add SAE intervention' }));
    expect(screen.getByTestId('sae-form-error').textContent).toBe('Feature 40 does not exist: relu_resid_post_0 has 32 features (0..31)');
    fireEvent.change(screen.getByLabelText('SAE feature'), { target: { value: '7' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add SAE intervention' }));
    expect(payload()).toEqual({ 'blocks.0.hook_resid_post': [{ type: 'sae_ablate', sae: 'relu_resid_post_0', feature: 7 }] });

    fireEvent.change(screen.getByLabelText('SAE'), { target: { value: 'topk_resid_pre_1' } });
    fireEvent.change(screen.getByLabelText('SAE operation'), { target: { value: 'sae_clamp' } });
    fireEvent.change(screen.getByLabelText('SAE value'), { target: { value: '2.5' } });
    fireEvent.change(screen.getByLabelText('SAE token index'), { target: { value: '-1' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add SAE intervention' }));
    expect(payload()['blocks.1.hook_resid_pre']).toEqual([{ type: 'sae_clamp', sae: 'topk_resid_pre_1', feature: 7, value: 2.5, token_index: -1 }]);
    expect(screen.getByTestId('intervention-list').textContent).toContain('sae_clamp(topk_resid_pre_1 #7 = 2.5) @ Token -1');

    fireEvent.change(screen.getByLabelText('SAE operation'), { target: { value: 'sae_splice' } });
    expect(screen.queryByLabelText('SAE feature')).toBeNull();

    // "Use #F" from a grid cell: the SAE and feature filled, a feature operation chosen, the field focused.
    act(() => form.fill({ sae: 'relu_resid_post_0', feature: 12 }));
    expect((screen.getByLabelText('SAE') as HTMLSelectElement).value).toBe('relu_resid_post_0');
    expect((screen.getByLabelText('SAE operation') as HTMLSelectElement).value).toBe('sae_ablate');
    expect(screen.getByLabelText('SAE feature')).toBe(document.activeElement);
    expect((screen.getByLabelText('SAE feature') as HTMLInputElement).value).toBe('12');

    // The SAE taken off: its operations are flagged.
    act(() => FakeEventSource.status({ ...READY, saes: [SAES[1]] }));
    await waitFor(() => expect(screen.getByTestId('intervention-list').textContent).toContain('no SAE named “relu_resid_post_0” is attached'));
  });
});
