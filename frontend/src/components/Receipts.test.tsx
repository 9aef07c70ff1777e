import { describe, expect, it } from 'vitest';
import { render, screen, within } from '@testing-library/react';
import { Receipts } from './Receipts';
import { RECEIPTS } from '../test/fixtures';

describe('Receipts', () => {
  it('lists key, hook, layer, positions, elements and ‖Δ‖ of each applied operation', () => {
    render(<Receipts receipts={RECEIPTS} interventions={3} stale={false} />);
    const items = screen.getAllByTestId('receipt');
    expect(items).toHaveLength(3);
    const first = within(items[0]);
    expect(first.getByText('layer_1_output')).toBeTruthy();
    expect(first.getByText('blocks.1.hook_resid_post')).toBeTruthy();
    expect(items[0].querySelector('.receipt-facts')!.textContent).toBe('layer1positions0–3elements32‖Δ‖12.35');
    expect(first.getByTitle('0, 1, 2, 3').textContent).toBe('0–3');
    // Blocking that set nothing to -inf is flagged.
    expect(items[1].className).toMatch(/is-noop/);
    expect(within(items[1]).getByText('changed nothing')).toBeTruthy();
    expect(items[1].querySelector('.receipt-hook')!.textContent).toBe('blocks.0.attn.hook_attn_scores');
    // Embeddings have no layer; a missing norm is a dash.
    expect(items[2].querySelector('.receipt-facts')!.textContent).toBe('layerembeddingspositions3elements8‖Δ‖—');
    expect(screen.queryByText(/before your latest changes/)).toBeNull();
  });

  it('says when the controls changed since, and when nothing was applied', () => {
    const { rerender } = render(<Receipts receipts={RECEIPTS.slice(0, 1)} interventions={1} stale />);
    expect(screen.getByText('(before your latest changes)')).toBeTruthy();
    rerender(<Receipts receipts={[]} interventions={2} stale={false} />);
    expect(screen.getByRole('note').textContent).toBe('The run had 2 interventions but the server applied no operation.');
    rerender(<Receipts receipts={[]} interventions={0} stale={false} />);
    expect(screen.queryByTestId('receipts')).toBeNull();
  });
});
