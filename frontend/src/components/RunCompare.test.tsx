import { describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/react';
import type { LensRow } from '../api/types';
import type { RunHistoryEntry } from '../hooks/useRunHistory';
import type { RunView } from '../hooks/useShownRun';
import { deltaColor, rgbString } from '../lib/colors';
import { intervenedRows, lensRows, TOKENS } from '../test/fixtures';
import { RunCompareCard } from './RunCompare';

function entry(id: number, text: string, rows: LensRow[], tokens: string[] | null = TOKENS, modelName = '/fixtures/tiny/llama'): RunHistoryEntry {
  const view: RunView = {
    request: { text, interventions: {}, lens_type: 'block_output', apply_chat_template: false, return_attention: true },
    rows,
    tokens,
    tensor: null,
    modelName,
    backend: 'custom',
    source: { kind: 'inference' },
  };
  return { id, at: new Date(2026, 0, 2, 14, 3, id).getTime(), view, attentionDropped: false };
}

const cell = (r: number, c: number) => screen.getByTestId('compare-grid').querySelector<HTMLElement>(`[data-cmp-cell][data-r="${r}"][data-c="${c}"]`)!;

describe('RunCompareCard', () => {
  it('two runs of one shape: both top-1s and Δ in every cell, coloured by Δ on the diverging scale, the differing ones outlined', () => {
    // B = A with (Layer 0, position 1) now " dog" 0.6, where A had "\t" 0.3.
    render(<RunCompareCard pair={{ a: entry(1, 'The cat', lensRows()), b: entry(2, 'The cat', intervenedRows()) }} onClose={() => {}} />);
    expect(screen.getByTestId('compare-notes').textContent).toBe('The two grids line up: the same rows, the same number of positions and the same token at each.');
    const flip = cell(1, 1);
    expect(Array.from(flip.querySelectorAll('.cmp-tok')).map((e) => e.textContent)).toEqual(['A\\t', 'B␣dog']);
    expect(flip.querySelector('.cell-prob')!.textContent).toBe('Δ +0.30');
    expect(flip.className).toContain('is-flip');
    // The scale fits the largest |Δ|, 0.3, to 0.5.
    expect(flip.style.background).toBe(rgbString(deltaColor(0.3, 0.5)));
    expect(flip.getAttribute('aria-label')).toBe('Layer 0, position 1: A \\t 0.30, B ␣dog 0.60, Δ +0.30 (top-1 differs; A\'s top-1 is #2 in B at 0.30; B\'s top-1 is not in A\'s top 5)');
    const same = cell(0, 0);
    expect(same.className).not.toContain('is-flip');
    expect(same.querySelector('.cell-prob')!.textContent).toBe('Δ 0.00');
    expect(same.style.background).toBe(rgbString(deltaColor(0, 0.5)));
    expect(screen.getByTestId('compare-summary').textContent).toBe('12 cells in both runs: the same top-1 in 11 (92%), mean |Δ| 0.025');
    const legend = screen.getByTestId('compare-legend');
    expect(legend.textContent).toContain('Δ top-1 probability: B − A');
    expect(legend.textContent).toContain('blue = A’s higher, red = B’s higher');
    expect(legend.textContent).toContain('⇄ top-1 tokens differ');
    // One token per column where both runs have the same.
    expect(Array.from(document.querySelectorAll('thead .col-token')).map((e) => e.textContent)).toEqual(['<s>', 'The', '␣cat', '\\n']);
  });

  it('different lengths and layers: aligned from the start, the rest one run’s alone, hatched, and said in words', () => {
    const a = entry(1, 'The cat', lensRows(['Embeddings', 'Layer 0', 'Final Output'], 4));
    const b = entry(2, 'The dog sat', lensRows(['Embeddings', 'Layer 0', 'Layer 1', 'Final Output'], 6), ['<s>', 'The', ' dog', '\n', ' sat', '.']);
    render(<RunCompareCard pair={{ a, b }} onClose={() => {}} />);
    const notes = Array.from(screen.getByTestId('compare-notes').querySelectorAll('li')).map((li) => li.textContent);
    expect(notes).toEqual([
      "A has 4 positions, B 6: positions 4–5 are only in B and shown as B's alone, not compared (A has nothing there).",
      'The inputs differ: 1 shared position of 4 holds different tokens (first at position 2, “␣cat” in A, “␣dog” in B); their columns compare what each run predicts after its own token, aligned by position from the start.',
      "1 row only in B (Layer 1), shown as B's alone, not compared.",
    ]);
    const rows = Array.from(document.querySelectorAll('tbody tr')).map((tr) => [tr.getAttribute('data-row-name'), tr.getAttribute('data-in')]);
    expect(rows).toEqual([
      ['Embeddings', 'both'],
      ['Layer 0', 'both'],
      ['Layer 1', 'b'],
      ['Final Output', 'both'],
    ]);
    expect(document.querySelector('tr[data-row-name="Layer 1"] .cmp-only-tag')!.textContent).toBe('B only');
    const extra = cell(0, 5);
    expect(extra.dataset.kind).toBe('b-only');
    expect(extra.className).toContain('is-one-side');
    expect(extra.textContent).toBe('BcatB only');
    expect(extra.getAttribute('aria-label')).toBe('Embeddings, position 5: only in B, cat 0.40; not compared');
    // Where the tokens differ the column names both; where one run has none, a dash.
    const head = (c: number) => Array.from(document.querySelectorAll(`thead th[data-col="${c}"] .col-token`)).map((e) => e.textContent);
    expect(head(2)).toEqual(['A␣cat', 'B␣dog']);
    expect(head(4)).toEqual(['A—', 'B␣sat']);
    expect(screen.getByTestId('compare-summary').textContent).toMatch(/^12 cells in both runs/);
  });

  it('runs on two models are matched by token text, said', () => {
    render(<RunCompareCard pair={{ a: entry(1, 'x', lensRows()), b: entry(2, 'x', lensRows(), TOKENS, 'SmolLM2-135M-Instruct.Q4_1.gguf') }} onClose={() => {}} />);
    expect(screen.getByTestId('compare-notes').textContent).toContain('A and B ran on different models (llama and SmolLM2-135M-Instruct.Q4_1)');
  });

  it('arrow keys move between cells; the cell under the keyboard shows both runs’ top 5', () => {
    render(<RunCompareCard pair={{ a: entry(1, 'The cat', lensRows()), b: entry(2, 'The cat', intervenedRows()) }} onClose={() => {}} />);
    expect(screen.getByText(/Hover or focus a cell/)).toBeTruthy();
    const first = cell(0, 0);
    expect(first.tabIndex).toBe(0);
    first.focus();
    fireEvent.keyDown(first, { key: 'ArrowDown' });
    expect(document.activeElement).toBe(cell(1, 0));
    fireEvent.keyDown(cell(1, 0), { key: 'ArrowRight' });
    expect(document.activeElement).toBe(cell(1, 1));
    // Roving tab stop: Tab comes back to the cell left last.
    expect(cell(1, 1).tabIndex).toBe(0);
    expect(first.tabIndex).toBe(-1);
    const details = screen.getByTestId('compare-details');
    expect(details.querySelector('.tooltip-head')!.textContent).toBe('Layer 0 · Pos 1');
    const top = (side: string) => Array.from(within(screen.getByTestId(`compare-details-${side}`)).getAllByRole('listitem')).map((li) => li.querySelector('.tt-token')!.textContent);
    expect(top('a')).toEqual(['\\t', 't1', 't2', 't3', 't4']);
    expect(top('b')).toEqual(['␣dog', '\\t', 't1', 't2', 't3']);
    fireEvent.keyDown(cell(1, 1), { key: 'End' });
    expect(document.activeElement).toBe(cell(1, 3));
  });

  it('the details say what a run does not have', () => {
    const a = entry(1, 'The cat', lensRows(['Embeddings', 'Final Output'], 2));
    const b = entry(2, 'The cat sat', lensRows(['Embeddings', 'Final Output'], 4));
    render(<RunCompareCard pair={{ a, b }} onClose={() => {}} />);
    fireEvent.mouseOver(cell(1, 3));
    expect(screen.getByTestId('compare-details-a').textContent).toContain('Not in A: no such position.');
    expect(within(screen.getByTestId('compare-details-b')).getAllByRole('listitem')).toHaveLength(5);
  });

  it('Close', () => {
    const onClose = vi.fn();
    render(<RunCompareCard pair={{ a: entry(1, 'a', lensRows()), b: entry(2, 'b', lensRows()) }} onClose={onClose} />);
    fireEvent.click(screen.getByRole('button', { name: 'Close the run comparison' }));
    expect(onClose).toHaveBeenCalled();
  });
});
