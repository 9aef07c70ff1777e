import { afterEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen } from '@testing-library/react';
import { useState, type ComponentProps } from 'react';
import type { Interventions } from '../api/types';
import type { RunInputs } from '../hooks/useRunInputs';
import type { RunKind } from '../hooks/useRunTask';
import { createProgressStore } from '../hooks/useStoppableRequest';
import { Controls } from './Controls';

type Props = ComponentProps<typeof Controls>;

/** The controls' inputs: `over` replacing fields; nothing is sent from here. */
function inputsOf(over: Partial<RunInputs> = {}): RunInputs {
  return {
    text: 't',
    setText: () => {},
    lensType: 'block_output',
    setLensType: () => {},
    interventions: {},
    setInterventions: () => {},
    options: { compare: false, analysis: false, track: [] },
    setOptions: () => {},
    newTokens: { text: '20', set: () => {}, value: 20, error: null },
    lenses: null,
    lens: 'logit',
    saeCount: 0,
    request: () => {
      throw new Error('the controls send nothing themselves');
    },
    ...over,
  };
}

/** The run side's request: idle unless `running` (a run, or a generation when `kind` says so). */
function taskOf(over: Partial<Props['task']> & { kind?: RunKind } = {}): Props['task'] {
  return { kind: 'run', running: false, stopped: false, progress: createProgressStore(), stop: () => {}, error: null, retryAt: null, ...over };
}

function props(over: { inputs?: Partial<RunInputs>; task?: Partial<Props['task']>; actions?: Partial<Props['actions']>; seqLen?: number } = {}): Props {
  return {
    inputs: inputsOf(over.inputs),
    scope: { ctx: { numLayers: 3, hiddenSize: 4, seqLen: over.seqLen }, layerOptions: 3, tokens: null },
    task: taskOf(over.task),
    actions: { run: () => {}, generate: () => {}, disabled: { run: null, generate: null }, ...over.actions },
    receipts: null,
  };
}

function Harness({ onRun = () => {}, seqLen, initial = {} }: { onRun?: () => void; seqLen?: number; initial?: Interventions }) {
  const [iv, setIv] = useState<Interventions>(initial);
  const [text, setText] = useState('The capital of France is');
  return (
    <>
      <Controls {...props({ inputs: { text, setText, interventions: iv, setInterventions: setIv }, actions: { run: onRun }, seqLen })} />
      <pre data-testid="payload">{JSON.stringify(iv)}</pre>
    </>
  );
}

const payload = () => JSON.parse(screen.getByTestId('payload').textContent!);

describe('Controls', () => {
  it('offers the model layers plus Embeddings', () => {
    render(<Harness />);
    const opts = Array.from((screen.getByLabelText('Stream layer') as HTMLSelectElement).options).map((o) => o.textContent);
    expect(opts).toEqual(['Layer 0', 'Layer 1', 'Layer 2', 'Embeddings']);
    const attn = Array.from((screen.getByLabelText('Attention layer') as HTMLSelectElement).options).map((o) => o.textContent);
    expect(attn).toEqual(['Layer 0', 'Layer 1', 'Layer 2']);
  });

  it('adds, replaces and removes stream interventions', () => {
    render(<Harness />);
    fireEvent.change(screen.getByLabelText('Stream layer'), { target: { value: '1' } });
    fireEvent.click(screen.getByText('Add stream intervention'));
    expect(payload()).toEqual({ layer_1_output: [{ type: 'zero', all_layers: false }] });
    expect(screen.getByTestId('intervention-list').textContent).toContain('zero');

    fireEvent.change(screen.getByLabelText('Operation'), { target: { value: 'scale' } });
    fireEvent.change(screen.getByLabelText('Scale factor'), { target: { value: '0.5' } });
    fireEvent.click(screen.getByText('Add stream intervention'));
    // Same key, same (all) tokens: replaced.
    expect(payload()).toEqual({ layer_1_output: [{ type: 'scale', value: 0.5, all_layers: false }] });

    fireEvent.change(screen.getByLabelText('Token index'), { target: { value: '-1' } });
    fireEvent.click(screen.getByLabelText('Apply stream intervention to all layers'));
    fireEvent.click(screen.getByText('Add stream intervention'));
    expect(screen.getByTestId('intervention-list').textContent).toContain('scale(0.5) @ Token -1 [ALL LAYERS]');
    expect(payload().all_layers_output).toEqual([{ type: 'scale', value: 0.5, token_index: -1, all_layers: true }]);

    fireEvent.click(screen.getByLabelText('Remove scale(0.5) from layer_1_output'));
    expect(Object.keys(payload())).toEqual(['all_layers_output']);
  });

  it('shows validation errors in words', () => {
    render(<Harness seqLen={5} />);
    fireEvent.change(screen.getByLabelText('Operation'), { target: { value: 'scale' } });
    fireEvent.change(screen.getByLabelText('Scale factor'), { target: { value: '' } });
    fireEvent.click(screen.getByText('Add stream intervention'));
    expect(screen.getByTestId('stream-error').textContent).toMatch(/numeric factor/);
    fireEvent.change(screen.getByLabelText('Scale factor'), { target: { value: '2' } });
    fireEvent.change(screen.getByLabelText('Token index'), { target: { value: '9' } });
    fireEvent.click(screen.getByText('Add stream intervention'));
    expect(screen.getByTestId('stream-error').textContent).toMatch(/out of range for a 5-token input/);
    expect(payload()).toEqual({});
  });

  it('add: a single number broadcasts to the hidden size', () => {
    render(<Harness />);
    fireEvent.change(screen.getByLabelText('Operation'), { target: { value: 'add' } });
    fireEvent.change(screen.getByLabelText('Vector'), { target: { value: '0.5' } });
    fireEvent.click(screen.getByText('Add stream intervention'));
    expect(payload()).toEqual({ layer_0_output: [{ type: 'add', vector: [0.5, 0.5, 0.5, 0.5], all_layers: false }] });
    fireEvent.change(screen.getByLabelText('Vector'), { target: { value: '1,2' } });
    fireEvent.click(screen.getByText('Add stream intervention'));
    expect(screen.getByTestId('stream-error').textContent).toMatch(/hidden size is 4/);
  });

  it('blocks attention with validation', () => {
    render(<Harness seqLen={13} />);
    fireEvent.click(screen.getByText('Block attention flow'));
    expect(screen.getByTestId('attention-error').textContent).toMatch(/source tokens/);
    fireEvent.change(screen.getByLabelText('Source tokens'), { target: { value: '4' } });
    fireEvent.change(screen.getByLabelText('Target tokens'), { target: { value: '3' } });
    fireEvent.click(screen.getByText('Block attention flow'));
    expect(screen.getByTestId('attention-error').textContent).toMatch(/source ≤ target/);
    fireEvent.change(screen.getByLabelText('Source tokens'), { target: { value: '0' } });
    fireEvent.click(screen.getByText('Block attention flow'));
    expect(payload()).toEqual({ layer_0_attention: [{ type: 'block_attention', source_tokens: [0], target_tokens: [3], all_layers: false }] });
    expect(screen.getByTestId('intervention-list').textContent).toContain('block_attention (0 → 3)');
    fireEvent.click(screen.getByLabelText('Block at all layers'));
    fireEvent.change(screen.getByLabelText('Target tokens'), { target: { value: '2,3' } });
    fireEvent.click(screen.getByText('Block attention flow'));
    expect(payload().all_layers_attention_0_to_2_3).toEqual([{ type: 'block_attention', source_tokens: [0], target_tokens: [2, 3], all_layers: true }]);
  });

  it('flags interventions that do not fit the loaded model', () => {
    render(<Harness initial={{ layer_7_output: [{ type: 'zero' }] }} />);
    expect(screen.getByTestId('intervention-list').textContent).toMatch(/layer 7 does not exist/);
  });

  it('Ctrl+Enter in the text box runs', () => {
    const onRun = vi.fn();
    render(<Harness onRun={onRun} />);
    fireEvent.keyDown(screen.getByLabelText('Input text'), { key: 'Enter', ctrlKey: true });
    expect(onRun).toHaveBeenCalledTimes(1);
    fireEvent.keyDown(screen.getByLabelText('Input text'), { key: 'Enter' });
    expect(onRun).toHaveBeenCalledTimes(1);
  });

  it('offers Stop while a run is in progress, and gives the focus back to Run after it', () => {
    const stop = vi.fn();
    const { rerender } = render(<Controls {...props({ task: { stop } })} />);
    expect(screen.queryByRole('button', { name: 'Stop' })).toBeNull();
    rerender(<Controls {...props({ task: { stop, running: true } })} />);
    const run = screen.getByRole('button', { name: /Running/ }) as HTMLButtonElement;
    expect(run.disabled).toBe(true);
    expect(screen.getByText('Stop cancels the run on the server.')).toBeTruthy();
    const stopButton = screen.getByRole('button', { name: 'Stop' });
    stopButton.focus();
    fireEvent.click(stopButton);
    expect(stop).toHaveBeenCalledTimes(1);
    rerender(<Controls {...props({ task: { stop } })} />);
    expect(screen.queryByRole('button', { name: 'Stop' })).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole('button', { name: /Run LogitLens/ }));
  });

  it('Generate sits under Run with its new-tokens field; the field’s error is said; Stop gives the focus back to Generate', () => {
    const generate = vi.fn();
    const stop = vi.fn();
    const set = vi.fn();
    const newTokens = { text: '20', set, value: 20, error: null };
    const { rerender } = render(<Controls {...props({ inputs: { newTokens }, task: { stop }, actions: { generate } })} />);
    const field = screen.getByLabelText('New tokens') as HTMLInputElement;
    expect(field.value).toBe('20');
    expect([field.min, field.max]).toEqual(['1', '256']);
    fireEvent.change(field, { target: { value: '64' } });
    expect(set).toHaveBeenCalledWith('64');
    fireEvent.click(screen.getByRole('button', { name: 'Generate' }));
    expect(generate).toHaveBeenCalledTimes(1);

    const error = 'New tokens: 300 is not a whole number from 1 to 256';
    rerender(
      <Controls {...props({ inputs: { newTokens: { text: '300', set, value: null, error } }, task: { stop }, actions: { generate, disabled: { run: null, generate: error } } })} />,
    );
    expect(screen.getByTestId('max-new-tokens-error').textContent).toBe(error);
    expect((screen.getByRole('button', { name: 'Generate' }) as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByRole('button', { name: 'Generate' }).title).toBe(error);
    expect(screen.getByLabelText('New tokens').getAttribute('aria-invalid')).toBe('true');
    // Run does not need the field.
    expect((screen.getByRole('button', { name: /Run LogitLens/ }) as HTMLButtonElement).disabled).toBe(false);

    // Generating: Generate says so, Run is disabled but says nothing of its own, Stop stops the generation.
    rerender(<Controls {...props({ inputs: { newTokens }, task: { stop, running: true, kind: 'generate' }, actions: { generate } })} />);
    expect(screen.getByRole('button', { name: /Generating/ })).toBeTruthy();
    expect(screen.queryByRole('button', { name: /Running/ })).toBeNull();
    expect((screen.getByRole('button', { name: /Run LogitLens/ }) as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByText('Stop cancels the generation on the server.')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    expect(stop).toHaveBeenCalledTimes(1);
    rerender(<Controls {...props({ inputs: { newTokens }, task: { stop, kind: 'generate' }, actions: { generate } })} />);
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Generate' }));
  });

  describe('after a busy server said when to try again', () => {
    afterEach(() => vi.useRealTimers());

    it('counts down under Run, which stays available', () => {
      vi.useFakeTimers();
      const at = Date.now() + 3000;
      render(<Controls {...props({ task: { retryAt: at } })} />);
      expect(screen.getByTestId('retry-countdown').textContent).toBe('The server is busy: try again in 3 s.');
      expect((screen.getByRole('button', { name: /Run LogitLens/ }) as HTMLButtonElement).disabled).toBe(false);
      act(() => vi.advanceTimersByTime(1000));
      expect(screen.getByTestId('retry-countdown').textContent).toBe('The server is busy: try again in 2 s.');
      act(() => vi.advanceTimersByTime(1000));
      act(() => vi.advanceTimersByTime(1000));
      expect(screen.getByTestId('retry-countdown').textContent).toBe('The server said it may have room now: Run again.');
    });
  });
});
