import { describe, expect, it } from 'vitest';
import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { LensGrid } from './LensGrid';
import { lensRows, TOKENS } from '../test/fixtures';

describe('LensGrid', () => {
  it('has a column per token (display-formatted, numbered) and a row per lens state', () => {
    const { container } = render(<LensGrid rows={lensRows()} tokens={TOKENS} />);
    const heads = Array.from(container.querySelectorAll('thead .col-token')).map((e) => e.textContent);
    expect(heads).toEqual(['<s>', 'The', '␣cat', '\\n']);
    const pos = Array.from(container.querySelectorAll('thead .col-pos')).map((e) => e.textContent);
    expect(pos).toEqual(['0', '1', '2', '3']);
    const names = Array.from(container.querySelectorAll('th.row-name > span:first-child')).map((e) => e.textContent);
    expect(names).toEqual(['Embeddings', 'Layer 0', 'Final Output']);
    expect(container.querySelectorAll('[data-cell]')).toHaveLength(12);
  });

  it('formats the top-1 token of each cell and shows its probability', () => {
    const { container } = render(<LensGrid rows={lensRows()} tokens={TOKENS} />);
    const c00 = container.querySelector('[data-r="0"][data-c="0"]')!;
    expect(c00.querySelector('.cell-token')!.textContent).toBe('␣the');
    expect(c00.querySelector('.cell-prob')!.textContent).toBe('0.50');
    const c02 = container.querySelector('[data-r="0"][data-c="2"]')!;
    expect(c02.querySelector('.cell-token')!.textContent).toBe('\\t');
    // Shaded by probability: different probabilities, different colours.
    const c01 = container.querySelector<HTMLElement>('[data-r="0"][data-c="1"]')!;
    expect((c00 as HTMLElement).style.background).not.toBe(c01.style.background);
  });

  it('marks the final-output row', () => {
    const { container } = render(<LensGrid rows={lensRows()} tokens={TOKENS} />);
    const rows = container.querySelectorAll('tbody tr');
    expect(rows[2].className).toMatch(/is-final/);
    expect(within(rows[2] as HTMLElement).getByText('output')).toBeTruthy();
    expect(rows[0].className).not.toMatch(/is-final/);
  });

  it('shows the top 5 on hover and on keyboard focus; arrow keys move', () => {
    const { container } = render(<LensGrid rows={lensRows()} tokens={TOKENS} />);
    const cell = container.querySelector<HTMLElement>('[data-r="1"][data-c="2"]')!;
    fireEvent.mouseOver(cell);
    const tip = screen.getByTestId('lens-tooltip');
    expect(tip.textContent).toContain('Layer 0 · Pos 2');
    expect(tip.querySelectorAll('li')).toHaveLength(5);
    expect(tip.textContent).toContain('5.0%');
    fireEvent.mouseLeave(container.querySelector('[data-testid=lens-grid]')!);
    expect(screen.queryByTestId('lens-tooltip')).toBeNull();

    const first = container.querySelector<HTMLElement>('[data-r="0"][data-c="0"]')!;
    expect(first.tabIndex).toBe(0);
    act(() => first.focus());
    expect(screen.getByTestId('lens-tooltip').textContent).toContain('Embeddings · Pos 0');
    fireEvent.keyDown(first, { key: 'ArrowDown' });
    expect(document.activeElement).toBe(container.querySelector('[data-r="1"][data-c="0"]'));
    fireEvent.keyDown(document.activeElement!, { key: 'End' });
    expect(document.activeElement).toBe(container.querySelector('[data-r="1"][data-c="3"]'));
    expect(screen.getByTestId('lens-tooltip').textContent).toContain('Layer 0 · Pos 3');
    expect((document.activeElement as HTMLElement).tabIndex).toBe(0);
    expect(first.tabIndex).toBe(-1);
  });

  it('works without input tokens (a visualization-only session)', () => {
    const { container } = render(<LensGrid rows={lensRows()} tokens={null} />);
    expect(Array.from(container.querySelectorAll('thead .col-pos')).map((e) => e.textContent)).toEqual(['0', '1', '2', '3']);
  });
});
