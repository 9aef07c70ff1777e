import { describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/react';
import type { ModelEntry } from '../api/types';
import { ModelBrowser } from './ModelBrowser';

const m = (id: string, name: string, family: string, size: string, cached = false): ModelEntry => ({ id, name, family, size, cached, bytes: cached ? 98_362_432 : null, source: 'curated', backends: ['custom'], instruct: /instruct/i.test(name) });
const MODELS = [
  m('SmolLM2-135M-Instruct.Q4_1.gguf', 'SmolLM2 135M Instruct', 'SmolLM2', '135M', true),
  m('meta-llama/Llama-3.2-1B', 'Llama 3.2 1B', 'Llama', '1B'),
  m('Qwen/Qwen3-0.6B', 'Qwen3 0.6B (Instruct)', 'Qwen3', '0.6B'),
];

function setup(onPick = vi.fn()) {
  render(<ModelBrowser models={MODELS} modelsError={null} modelsLoading={false} onRetry={() => {}} backend="custom" selectedModel="" onPick={onPick} onClose={() => {}} />);
  return onPick;
}

const names = () => screen.queryAllByRole('option').map((o) => o.querySelector('.browser-item-name')!.textContent);

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
});
