import { describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { LensGrid } from './LensGrid';
import { deltaColor, entropyColor, probColor, rgbString } from '../lib/colors';
import { diffGrid, entropyGrid, intervenedRows, lensRows, saeReadout, trackedGrid, TOKENS } from '../test/fixtures';

describe('LensGrid', () => {
  it('puts an SAE row after the lens row it reads, its cells the top feature shaded by its act, with a tooltip and a menu', () => {
    const rows = lensRows(['Embeddings', 'Layer 0', 'Layer 1', 'Final Output']);
    const sae = [saeReadout('a', 'Layer 1'), saeReadout('b', 'Layer 0'), saeReadout('c', 'Layer 1')];
    const onSaeFeature = vi.fn();
    const onUseSaeFeature = vi.fn();
    const { container } = render(<LensGrid rows={rows} tokens={TOKENS} sae={sae} onSaeFeature={onSaeFeature} onUseSaeFeature={onUseSaeFeature} />);
    const order = Array.from(container.querySelectorAll('tbody tr')).map((tr) => tr.getAttribute('data-row-name') ?? `SAE ${tr.getAttribute('data-sae')}`);
    expect(order).toEqual(['Embeddings', 'Layer 0', 'SAE b', 'Layer 1', 'SAE a', 'SAE c', 'Final Output']);
    const row = container.querySelector('tr.sae-row[data-sae="a"]')!;
    expect(row.querySelector('th')!.textContent).toBe('aSAE');
    const cells = Array.from(row.querySelectorAll<HTMLElement>('[data-sae-cell]'));
    expect(cells.map((c) => c.textContent)).toEqual(['–L0 0', '#21', '#32', '#43']);
    // Shaded by act ÷ the row's max: the strongest is the scale's end, no feature the empty slate.
    expect(cells[3].style.background).toBe(rgbString(deltaColor(1, 1)));
    expect(cells[0].style.background).toBe(rgbString(deltaColor(0, 1)));
    fireEvent.mouseOver(cells[3]);
    const tip = screen.getByTestId('sae-tooltip');
    expect(within(tip).getByTestId('sae-tooltip-features').textContent).toBe('#4 3#9 0.5');
    expect(within(tip).getByTestId('sae-tooltip-stats').textContent).toBe('L0 2 · reconstruction error 0.75');
    fireEvent.click(cells[2]);
    const menu = screen.getByTestId('sae-cell-menu');
    fireEvent.click(within(menu).getByRole('menuitem', { name: 'Use #3 in the SAE intervention form' }));
    expect(onUseSaeFeature).toHaveBeenCalledWith({ sae: 'a', feature: 3, position: 2 });
    fireEvent.click(cells[3]);
    fireEvent.click(within(screen.getByTestId('sae-cell-menu')).getByRole('menuitem', { name: 'Feature card' }));
    expect(onSaeFeature).toHaveBeenCalledWith({ sae: 'a', feature: 4, position: 3 });
    // Without a feature active, a cell offers nothing.
    fireEvent.click(cells[0]);
    expect(screen.queryByTestId('sae-cell-menu')).toBeNull();
  });

  it('says which lens drew it, beside the legend and in the table’s name', () => {
    const { rerender } = render(<LensGrid rows={lensRows()} tokens={TOKENS} />);
    expect(screen.getByTestId('grid-lens').textContent).toBe('Drawn by the logit lens');
    expect(screen.getByRole('table').getAttribute('aria-label')).toMatch(/^Logit lens: top-1 prediction/);
    rerender(<LensGrid rows={lensRows()} tokens={TOKENS} lens="tuned lens (llama)" />);
    expect(screen.getByTestId('grid-lens').textContent).toBe('Drawn by the tuned lens (llama)');
    expect(screen.getByRole('table').getAttribute('aria-label')).toMatch(/^Tuned lens \(llama\): top-1 prediction/);
  });

  it('a Jacobian lens’s grid marks the rows it transported, and says which beside the legend', () => {
    const rows = lensRows(['Embeddings', 'Layer 0', 'Layer 1', 'Final Output']);
    const { container, rerender } = render(<LensGrid rows={rows} tokens={TOKENS} lens="Jacobian lens (jlens.pt)" transported={['Layer 0', 'Layer 1']} />);
    expect(screen.getByTestId('grid-lens').textContent).toBe('Drawn by the Jacobian lens (jlens.pt)');
    const marked = Array.from(container.querySelectorAll('tbody tr')).map((tr) => [tr.getAttribute('data-row-name'), tr.getAttribute('data-transported'), tr.querySelector('.transported-tag')?.textContent ?? null]);
    expect(marked).toEqual([
      ['Embeddings', null, null],
      ['Layer 0', '1', 'J'],
      ['Layer 1', '1', 'J'],
      ['Final Output', null, null],
    ]);
    expect(screen.getByTestId('transported-legend').textContent).toBe('J transported by its matrices: Layer 0, Layer 1; the other rows read as the logit lens reads them');
    // Another lens: no marks, nothing said.
    rerender(<LensGrid rows={rows} tokens={TOKENS} lens="logit lens" />);
    expect(container.querySelectorAll('.transported-tag')).toHaveLength(0);
    expect(screen.queryByTestId('transported-legend')).toBeNull();
    rerender(<LensGrid rows={rows} tokens={TOKENS} lens="Jacobian lens" transported={[]} />);
    expect(screen.getByTestId('transported-legend').textContent).toContain('no row transported');
  });

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

  it('marks the positions a generation wrote: their heads, the line where writing starts, the legend', () => {
    const tokens = [...TOKENS, ' sat', ' down'];
    const { container, rerender } = render(<LensGrid rows={lensRows(undefined, 6)} tokens={tokens} promptTokens={4} />);
    const heads = Array.from(container.querySelectorAll<HTMLElement>('thead th.lens-col-head'));
    expect(heads.map((h) => h.dataset.written ?? '')).toEqual(['', '', '', '', '1', '1']);
    expect(heads[4].className).toContain('is-boundary');
    expect(heads[5].className).not.toContain('is-boundary');
    expect(heads[4].title).toBe('Token 4, written by the model: " sat"');
    expect(heads[3].title).toBe('Token 3: "\\n"');
    // The line runs down through every row.
    expect(container.querySelectorAll('td.is-boundary')).toHaveLength(3);
    expect(screen.getByTestId('written-legend').textContent).toBe(' written by the model (from position 4)');
    // A plain run has neither.
    rerender(<LensGrid rows={lensRows()} tokens={TOKENS} />);
    expect(container.querySelectorAll('[data-written]')).toHaveLength(0);
    expect(screen.queryByTestId('written-legend')).toBeNull();
  });

  it('while a generation is written, the token chosen last heads a column still without cells', () => {
    const { container } = render(<LensGrid rows={lensRows()} tokens={TOKENS} promptTokens={4} pendingToken=" sat" />);
    const pending = container.querySelector<HTMLElement>('thead th[data-pending]')!;
    expect(pending.querySelector('.col-token')!.textContent).toBe('␣sat');
    expect(pending.querySelector('.col-pos')!.textContent).toBe('4');
    expect(pending.className).toContain('is-boundary');
    expect(container.querySelectorAll('thead th.lens-col-head')).toHaveLength(5);
    expect(container.querySelectorAll('[data-cell]')).toHaveLength(12);
    expect(container.querySelectorAll('td.is-pending')).toHaveLength(3);
    // The prompt's columns alone already say what is coming.
    expect(screen.getByTestId('written-legend')).toBeTruthy();
  });

  it('works without input tokens (a visualization-only session)', () => {
    const { container } = render(<LensGrid rows={lensRows()} tokens={null} />);
    expect(Array.from(container.querySelectorAll('thead .col-pos')).map((e) => e.textContent)).toEqual(['0', '1', '2', '3']);
  });
});

describe('LensGrid views and colour modes', () => {
  const props = () => ({ rows: intervenedRows(), baselineRows: lensRows(), diff: diffGrid(), tracked: trackedGrid(), entropy: entropyGrid(), tokens: TOKENS });
  const cellAt = (container: HTMLElement, r: number, c: number) => container.querySelector<HTMLElement>(`[data-r="${r}"][data-c="${c}"]`)!;

  it('switches to the diff view: Δ colours, flip outline, the Δ legend', () => {
    const { container } = render(<LensGrid {...props()} />);
    expect(container.querySelector('table')!.dataset.view).toBe('normal');
    expect(container.querySelector('[data-flip]')).toBeNull();
    const normalBg = cellAt(container, 2, 2).style.background;
    fireEvent.click(screen.getByLabelText('Diff vs baseline'));
    expect(container.querySelector('table')!.dataset.view).toBe('diff');
    const lost = cellAt(container, 2, 2);
    expect(lost.style.background).not.toBe(normalBg);
    expect(lost.style.background).toBe(rgbString(deltaColor(-0.25, 0.5)));
    expect(Number(lost.dataset.value)).toBeCloseTo(-0.25);
    const flipped = container.querySelectorAll('[data-flip]');
    expect(flipped).toHaveLength(1);
    expect(flipped[0]).toBe(cellAt(container, 1, 1));
    expect(flipped[0].className).toMatch(/is-flip/);
    expect(flipped[0].querySelector('.cell-prob')!.textContent).toBe('⇄ −0.10');
    const legend = screen.getByTestId('diff-legend');
    expect(legend.textContent).toContain('blue = lost, red = gained');
    expect(within(legend).getByRole('img').getAttribute('aria-label')).toMatch(/Δ p\(baseline top-1\).*from −0.50 to \+0.50/);
    // The colour mode select is for the normal view.
    expect(screen.queryByLabelText('Grid colour mode')).toBeNull();
    fireEvent.click(screen.getByLabelText('Normal'));
    expect(container.querySelector('table')!.dataset.view).toBe('normal');
  });

  it('the diff tooltip names the baseline top-1, its probability before and after, the new top-1, rank and KL', () => {
    const { container } = render(<LensGrid {...props()} defaultView="diff" />);
    fireEvent.mouseOver(cellAt(container, 1, 1));
    const d = within(screen.getByTestId('lens-tooltip')).getByTestId('diff-details');
    expect(d.textContent).toContain('Baseline top-1\\t 0.30 → 0.20');
    expect(d.textContent).toContain('(Δ −0.10)');
    expect(d.textContent).toContain('Now top-1␣dog ⇄ changed');
    expect(d.textContent).toContain('Baseline top-1 rank#2');
    expect(d.textContent).toContain('KL(baseline ‖ now)0.2000 nats');
    // Keyboard focus shows the same popup.
    fireEvent.mouseLeave(container.querySelector('[data-testid=lens-grid]')!);
    act(() => cellAt(container, 2, 0).focus());
    expect(screen.getByTestId('diff-details').textContent).toContain('#4');
  });

  it('colours by a tracked token: its probability and rank in the cell, the colour following it', () => {
    const { container } = render(<LensGrid {...props()} />);
    const select = screen.getByLabelText('Grid colour mode') as HTMLSelectElement;
    expect(Array.from(select.options).map((o) => o.textContent)).toEqual(['Top-1 probability', 'Tracked: ␣Paris', 'Tracked: x', 'Entropy']);
    fireEvent.change(select, { target: { value: 'tracked:7' } });
    const t = trackedGrid();
    const low = cellAt(container, 0, 0);
    const high = cellAt(container, 2, 3);
    expect(low.querySelector('.cell-token')!.textContent).toBe(t[0][0][0].prob.toFixed(2));
    expect(low.querySelector('.cell-prob')!.textContent).toBe(`#${t[0][0][0].rank + 1}`);
    expect(low.style.background).toBe(rgbString(probColor(t[0][0][0].prob)));
    expect(high.style.background).toBe(rgbString(probColor(t[2][3][0].prob)));
    expect(low.style.background).not.toBe(high.style.background);
    expect(screen.getByRole('img', { name: /Colour scale: p\(␣Paris\)/ })).toBeTruthy();
    // The tooltip lists every tracked token with probability and rank.
    fireEvent.mouseOver(high);
    const tip = screen.getByTestId('lens-tooltip');
    expect(tip.textContent).toContain('Tracked tokens');
    expect(tip.textContent).toContain('␣Paris');
    expect(tip.textContent).toContain(`rank #${t[2][3][0].rank + 1}`);
    expect(tip.textContent).toContain('rank #41');
    expect(tip.textContent).toContain('Entropy: 1.50 nats');
  });

  it('colours by entropy', () => {
    const { container } = render(<LensGrid {...props()} />);
    fireEvent.change(screen.getByLabelText('Grid colour mode'), { target: { value: 'entropy' } });
    expect(cellAt(container, 0, 0).querySelector('.cell-prob')!.textContent).toBe('H 5.00');
    expect(cellAt(container, 0, 0).style.background).toBe(rgbString(entropyColor(5, 5)));
    expect(screen.getByRole('img', { name: /Colour scale: Entropy \(nats\)/ })).toBeTruthy();
  });

  it('a tracked mode whose token is gone falls back to top-1 and comes back with it', () => {
    const { container, rerender } = render(<LensGrid {...props()} />);
    fireEvent.change(screen.getByLabelText('Grid colour mode'), { target: { value: 'tracked:7' } });
    rerender(<LensGrid {...props()} tracked={null} />);
    expect((screen.getByLabelText('Grid colour mode') as HTMLSelectElement).value).toBe('top1');
    expect(cellAt(container, 0, 0).querySelector('.cell-token')!.textContent).toBe('␣the');
    rerender(<LensGrid {...props()} />);
    expect((screen.getByLabelText('Grid colour mode') as HTMLSelectElement).value).toBe('tracked:7');
  });

  it('without extra data there is neither a view toggle nor a colour mode select', () => {
    render(<LensGrid rows={lensRows()} tokens={TOKENS} />);
    expect(screen.queryByRole('radiogroup', { name: 'Grid view' })).toBeNull();
    expect(screen.queryByLabelText('Grid colour mode')).toBeNull();
  });

  it('with a Jacobian lens, a click offers the top-1 token’s lens vector too', () => {
    const rows = lensRows();
    const onLensVector = vi.fn();
    const onAttribute = vi.fn();
    const { container, rerender } = render(<LensGrid rows={rows} tokens={TOKENS} onLensVector={onLensVector} />);
    const cell = () => container.querySelector<HTMLElement>('[data-r="1"][data-c="2"]')!;
    fireEvent.click(cell());
    // Alone in the menu (no Attribute where the page cannot attribute).
    expect(within(screen.getByTestId('cell-menu')).getAllByRole('menuitem').map((b) => b.textContent)).toEqual(['Lens vector of x']);
    rerender(<LensGrid rows={rows} tokens={TOKENS} onLensVector={onLensVector} onAttribute={onAttribute} />);
    const items = within(screen.getByTestId('cell-menu')).getAllByRole('menuitem');
    expect(items.map((b) => b.textContent)).toEqual(['Attribute x', 'Lens vector of x']);
    fireEvent.click(items[1]);
    expect(onLensVector).toHaveBeenCalledWith({ tokenId: 0, token: 'x' });
    expect(onAttribute).not.toHaveBeenCalled();
    expect(screen.queryByTestId('cell-menu')).toBeNull();
  });

  it('a click offers Attribute for the cell’s top-1 only where the page can attribute', () => {
    const rows = lensRows();
    const { container, rerender } = render(<LensGrid rows={rows} tokens={TOKENS} />);
    const cell = () => container.querySelector<HTMLElement>('[data-r="1"][data-c="2"]')!;
    fireEvent.click(cell());
    expect(screen.queryByTestId('cell-menu')).toBeNull();
    const onAttribute = vi.fn();
    rerender(<LensGrid rows={rows} tokens={TOKENS} onAttribute={onAttribute} attributeDisabledReason="A run is in progress" />);
    fireEvent.click(cell());
    const item = within(screen.getByTestId('cell-menu')).getByRole('menuitem') as HTMLButtonElement;
    expect(item.textContent).toBe('Attribute x');
    expect(item.disabled).toBe(true);
    expect(screen.getByTestId('cell-menu').textContent).toContain('A run is in progress');
    rerender(<LensGrid rows={rows} tokens={TOKENS} onAttribute={onAttribute} />);
    fireEvent.click(within(screen.getByTestId('cell-menu')).getByRole('menuitem'));
    expect(onAttribute).toHaveBeenCalledWith({ tokenId: 0, token: 'x', position: 2, rowName: 'Layer 0' });
    expect(screen.queryByTestId('cell-menu')).toBeNull();
  });
});
