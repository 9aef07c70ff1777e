import { describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/react';
import type { ModelEntry, WeightsMode } from '../api/types';
import { MISTRAL_7B } from '../test/fixtures';
import { ModelBrowser } from './ModelBrowser';

const m = (id: string, name: string, family: string, size: string, cached = false): ModelEntry => ({ id, name, family, size, cached, bytes: cached ? 98_362_432 : null, source: 'curated', backends: ['custom'], instruct: /instruct/i.test(name) });
const MODELS = [
  m('SmolLM2-135M-Instruct.Q4_1.gguf', 'SmolLM2 135M Instruct', 'SmolLM2', '135M', true),
  m('meta-llama/Llama-3.2-1B', 'Llama 3.2 1B', 'Llama', '1B'),
  m('Qwen/Qwen3-0.6B', 'Qwen3 0.6B (Instruct)', 'Qwen3', '0.6B'),
];

function setup(onPick = vi.fn(), models = MODELS, { weights = 'auto' as WeightsMode, onWeightsChange = vi.fn() } = {}) {
  render(
    <ModelBrowser
      models={models}
      modelsError={null}
      modelsLoading={false}
      onRetry={() => {}}
      backend="custom"
      selectedModel=""
      weights={weights}
      onWeightsChange={onWeightsChange}
      onPick={onPick}
      onClose={() => {}}
    />,
  );
  return onPick;
}

const item = (name: string) => screen.getByText(name).closest('.browser-item') as HTMLElement;

const names = () => within(screen.getByRole('listbox', { name: 'Models' })).queryAllByRole('option').map((o) => o.querySelector('.browser-item-name')!.textContent);

describe('ModelBrowser', () => {
  it('lists every model with cached ones marked, and focuses the search', () => {
    setup();
    expect(names()).toEqual(['SmolLM2 135M Instruct', 'Llama 3.2 1B', 'Qwen3 0.6B (Instruct)']);
    expect(screen.getAllByText(/✓ cached/)).toHaveLength(1);
    expect(screen.getByText('✓ cached · 98.4 MB')).toBeTruthy();
    expect(document.activeElement).toBe(screen.getByLabelText('Search models'));
    expect(screen.getByText('Showing 3 of 3 models')).toBeTruthy();
  });

  it('searches sizes and family chips', () => {
    setup();
    fireEvent.change(screen.getByLabelText('Search models'), { target: { value: '0.6b' } });
    expect(names()).toEqual(['Qwen3 0.6B (Instruct)']);
    fireEvent.change(screen.getByLabelText('Search models'), { target: { value: '' } });
    fireEvent.click(screen.getByText('Llama (1)'));
    expect(names()).toEqual(['Llama 3.2 1B']);
    fireEvent.change(screen.getByLabelText('Search models'), { target: { value: 'qwen' } });
    expect(screen.getByText(/No models found matching “qwen” in Llama/)).toBeTruthy();
  });

  it('cached only', () => {
    setup();
    fireEvent.click(screen.getByLabelText(/cached only/));
    expect(names()).toEqual(['SmolLM2 135M Instruct']);
  });

  it('picks a listed model or any id typed in', () => {
    const onPick = setup();
    fireEvent.click(screen.getByText('Llama 3.2 1B'));
    expect(onPick).toHaveBeenLastCalledWith('meta-llama/Llama-3.2-1B');
    fireEvent.change(screen.getByPlaceholderText(/HuggingFaceTB/), { target: { value: ' /models/tiny ' } });
    fireEvent.click(screen.getByRole('button', { name: 'Load' }));
    expect(onPick).toHaveBeenLastCalledWith('/models/tiny');
  });

  it('shows each model\'s memory need, and marks in words those too big for the free memory without hiding them', () => {
    const onPick = setup(vi.fn(), [
      { ...MODELS[1], memory_bytes: 4_000_000_000, fits: true },
      { ...MODELS[2], memory_bytes: 566_231_040, fits: null },
      MISTRAL_7B,
      { ...MODELS[0], memory_bytes: null, fits: null },
    ]);
    expect(names()).toEqual(['Llama 3.2 1B', 'Qwen3 0.6B (Instruct)', 'Mistral 7B v0.3', 'SmolLM2 135M Instruct']);
    // Fits: the need, nothing alarming.
    const llama = item('Llama 3.2 1B');
    expect(within(llama).getByTestId('model-memory').textContent).toBe('≈ 3.7 GiB in memory');
    expect(within(llama).getByTestId('model-memory').className).toContain('tag-memory');
    expect(llama.className).not.toContain('is-too-big');
    expect(llama.textContent).not.toMatch(/too big/);
    // Unknown whether it fits: the need alone, nothing alarming either.
    const qwen = item('Qwen3 0.6B (Instruct)');
    expect(within(qwen).getByTestId('model-memory').textContent).toBe('≈ 540 MiB in memory');
    expect(qwen.className).not.toContain('is-too-big');
    expect(qwen.textContent).not.toMatch(/too big/);
    // Does not fit: said in words, styled as a warning, still listed and still loadable.
    const mistral = item('Mistral 7B v0.3');
    const mark = within(mistral).getByTestId('model-memory');
    expect(mark.textContent).toBe('⚠ ≈ 13.0 GiB · too big for this machine’s free memory');
    expect(mark.className).toContain('tag-too-big');
    expect(mistral.className).toContain('is-too-big');
    expect(mistral.title).toMatch(/more than this machine has free now/);
    // No memory estimate: no tag at all.
    expect(within(item('SmolLM2 135M Instruct')).queryByTestId('model-memory')).toBeNull();
    expect(screen.getByTestId('models-too-big').textContent).toContain('1 too big for this machine’s free memory now');
    fireEvent.click(mistral);
    expect(onPick).toHaveBeenLastCalledWith('mistralai/Mistral-7B-v0.3');
  });

  it('has no too-big note when every model fits or nobody knows', () => {
    setup();
    expect(screen.queryByTestId('models-too-big')).toBeNull();
    expect(screen.queryAllByTestId('model-memory')).toHaveLength(0);
  });

  it('offers the weights choice of the load', () => {
    const onWeightsChange = vi.fn();
    setup(vi.fn(), MODELS, { weights: 'stored', onWeightsChange });
    const select = screen.getByLabelText('Weights of the load') as HTMLSelectElement;
    expect(select.value).toBe('stored');
    expect(Array.from(select.options).map((o) => o.value)).toEqual(['auto', 'f32', 'stored']);
    fireEvent.change(select, { target: { value: 'f32' } });
    expect(onWeightsChange).toHaveBeenLastCalledWith('f32');
  });
});
