import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { useState } from 'react';
import type { Interventions, ModelStatus, TokenizeRequest } from '../api/types';
import { useJlensForm } from '../hooks/useJlensForm';
import { useModelLoader } from '../hooks/useModelLoader';
import { useModels } from '../hooks/useModels';
import { appendIntervention } from '../lib/interventions';
import { JACOBIAN, READY, toyTokenize } from '../test/fixtures';
import { FakeEventSource, stubServer, type FakeServer } from '../test/server';
import { InterventionList } from './Controls';
import { JlensInterventionForm } from './JlensInterventionForm';
import { NotificationProvider } from './Notifications';

let server: FakeServer;
let status: ModelStatus;

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  status = { ...READY, jacobian_lens: JACOBIAN };
  server = stubServer({
    model_status: () => ({ json: status }),
    models: () => ({ json: [] }),
    tokenize: (body) => ({ json: toyTokenize(body) }),
  });
});

afterEach(() => vi.unstubAllGlobals());

function Harness() {
  const loader = useModelLoader(useModels());
  const form = useJlensForm(loader);
  const [iv, setIv] = useState<Interventions>({});
  const ctx = { numLayers: 3, seqLen: 4, jlensLayers: loader.model?.jacobian_lens?.source_layers ?? null };
  return (
    <>
      <JlensInterventionForm form={form} ctx={ctx} onAdd={(key, config) => setIv((all) => appendIntervention(all, key, config))} />
      <InterventionList interventions={iv} onChange={setIv} ctx={ctx} />
      <pre data-testid="payload">{JSON.stringify(iv)}</pre>
    </>
  );
}

async function renderForm() {
  render(
    <NotificationProvider>
      <Harness />
    </NotificationProvider>,
  );
  await waitFor(() => expect(server.calls.some((c) => c.url === 'model_status')).toBe(true));
  await screen.findByRole('group', { name: 'Jacobian lens interventions' });
}

const payload = () => JSON.parse(screen.getByTestId('payload').textContent!) as Interventions;
const tokenizeCalls = () => server.calls.filter((c) => c.url === 'tokenize').map((c) => c.body as TokenizeRequest);
const add = () => fireEvent.click(screen.getByRole('button', { name: 'Add Jacobian lens intervention' }));
const type = (label: string, value: string) => fireEvent.change(screen.getByLabelText(label), { target: { value } });

describe('JlensInterventionForm', () => {
  it('without a Jacobian lens: says how to get one, asks nothing', async () => {
    status = READY;
    await renderForm();
    await waitFor(() => expect(screen.getByTestId('jlens-form-unavailable').textContent).toMatch(/^Attach a Jacobian lens \(Lenses in the header\) or fit one/));
    expect(screen.queryByRole('button', { name: 'Add Jacobian lens intervention' })).toBeNull();
    expect(tokenizeCalls()).toEqual([]);
  });

  it('steer: only the layers the lens covers; the token checked live as one token; the payload as the server takes it', async () => {
    await renderForm();
    await waitFor(() => expect(screen.queryByTestId('jlens-form-unavailable')).toBeNull());
    const layers = screen.getByLabelText('Jacobian lens layer') as HTMLSelectElement;
    expect(Array.from(layers.options).map((o) => o.value)).toEqual(['0', '1']);
    // Nothing typed: Add says what is missing.
    add();
    expect(screen.getByTestId('jlens-error').textContent).toMatch(/^Type the token to steer toward/);
    // Several tokens: said with their pieces, and Add says it too.
    type('Steer toward', ' Parisian');
    expect((await screen.findByTestId('jlens-token-error')).textContent).toBe('“␣Parisian” is 2 tokens (␣Par · isian): a lens vector is a single token’s.');
    expect(tokenizeCalls().at(-1)).toEqual({ text: ' Parisian', apply_chat_template: false, add_special_tokens: false });
    add();
    expect(screen.getByTestId('jlens-error').textContent).toBe('“␣Parisian” is 2 tokens (␣Par · isian): a lens vector is a single token’s.');
    expect(payload()).toEqual({});
    type('Steer toward', ' Paris');
    expect((await screen.findByTestId('jlens-token-id')).textContent).toBe(`token id ${toyTokenize({ text: ' Paris', add_special_tokens: false }).ids[0]}`);
    fireEvent.change(layers, { target: { value: '1' } });
    add();
    expect(payload()).toEqual({ layer_1_output: [{ type: 'jlens_steer', token: ' Paris', alpha: 2, all_layers: false }] });
    expect(screen.getByTestId('intervention-list').textContent).toContain('jlens_steer(␣Paris, α 2)');
    // An id needs no check.
    const asked = tokenizeCalls().length;
    type('Steer toward', '464');
    expect((await screen.findByTestId('jlens-token-id')).textContent).toBe('token id 464');
    expect(tokenizeCalls()).toHaveLength(asked);
  });

  it('α is a number other than 0', async () => {
    await renderForm();
    type('Steer toward', '464');
    type('Alpha', '');
    add();
    expect(screen.getByTestId('jlens-error').textContent).toMatch(/^α must be a number/);
    expect(screen.getByLabelText('Alpha').getAttribute('aria-invalid')).toBe('true');
    type('Alpha', '0');
    add();
    expect(screen.getByTestId('jlens-error').textContent).toMatch(/^α 0 changes nothing/);
    type('Alpha', '-1.5');
    add();
    expect(payload()).toEqual({ layer_0_output: [{ type: 'jlens_steer', token: 464, alpha: -1.5, all_layers: false }] });
  });

  it('ablate: each token of the list checked; every layer the lens covers', async () => {
    await renderForm();
    fireEvent.change(screen.getByLabelText('Jacobian lens operation'), { target: { value: 'jlens_ablate' } });
    expect(screen.queryByLabelText('Alpha')).toBeNull();
    // Each part keeps its leading space, as tracked tokens do.
    type('Tokens to ablate (comma-separated)', ' Paris,428, Parisian');
    expect((await screen.findByTestId('jlens-tokens-error')).textContent).toBe('“␣Parisian” is 2 tokens (␣Par · isian): a lens vector is a single token’s.');
    // Each string on its own, without the BOS.
    await waitFor(() => expect(tokenizeCalls().map((c) => c.text).sort()).toEqual([' Paris', ' Parisian']));
    expect(tokenizeCalls().every((c) => c.add_special_tokens === false)).toBe(true);
    type('Tokens to ablate (comma-separated)', ' Paris, 428');
    // A space before an id does not make it a string.
    await waitFor(() => expect(screen.getByTestId('jlens-tokens-id').textContent).toMatch(/^token ids \d+, 428$/));
    fireEvent.click(screen.getByLabelText('Apply at every layer the Jacobian lens covers'));
    expect((screen.getByLabelText('Jacobian lens layer') as HTMLSelectElement).disabled).toBe(true);
    add();
    expect(payload()).toEqual({ all_layers_output: [{ type: 'jlens_ablate', tokens: [' Paris', 428], all_layers: true }] });
    expect(screen.getByTestId('intervention-list').textContent).toContain('jlens_ablate(␣Paris, #428) [EVERY LAYER THE LENS COVERS]');
  });

  it('swap: two tokens, not the same; a token index checked against the input', async () => {
    await renderForm();
    fireEvent.change(screen.getByLabelText('Jacobian lens operation'), { target: { value: 'jlens_swap' } });
    type('Source token', '428');
    type('Target token', '428');
    add();
    expect(screen.getByTestId('jlens-error').textContent).toMatch(/same token/);
    type('Target token', ' is');
    await screen.findByTestId('jlens-target-id');
    type('Alpha', '1');
    type('Jacobian lens token index', '7');
    add();
    expect(screen.getByTestId('jlens-error').textContent).toBe('Token index 7 is out of range for a 4-token input (valid: -4..3)');
    type('Jacobian lens token index', '-1');
    add();
    expect(payload()).toEqual({ layer_0_output: [{ type: 'jlens_swap', source: 428, target: ' is', alpha: 1, token_index: -1, all_layers: false }] });
  });

  it('the lens goes: what was added is flagged in the list, and the form says how to get one', async () => {
    await renderForm();
    type('Steer toward', '464');
    add();
    act(() => FakeEventSource.status(READY));
    await screen.findByTestId('jlens-form-unavailable');
    expect(screen.getByTestId('intervention-list').textContent).toContain('it reads its directions from a Jacobian lens, and none is attached');
  });
});
