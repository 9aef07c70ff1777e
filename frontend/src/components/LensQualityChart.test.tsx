import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/react';
import type { Lens } from '../api/types';
import { EVALUATION } from '../test/fixtures';
import { chartColumns, LensQualityChart } from './LensQualityChart';

const NAMES: Record<Lens, string> = { logit: 'logit lens', tuned: 'tuned lens (llama)', jacobian: 'Jacobian lens' };

function chart(logKl = false, data = EVALUATION) {
  return render(<LensQualityChart data={data} width={1200} logKl={logKl} lensNames={NAMES} title="Lens quality · llama" />);
}

/** The values drawn by `lens` in the chart of `metric`, by row. */
function drawn(metric: string, lens: Lens): Record<number, number> {
  const points = screen.getByTestId(`eval-chart-${metric}`).querySelectorAll<SVGElement>(`[data-lens="${lens}"] [data-point]`);
  return Object.fromEntries(Array.from(points, (p) => [Number(p.dataset.row), Number(p.dataset.value)]));
}

describe('LensQualityChart', () => {
  it('draws four charts with a line per lens and a point per row', () => {
    chart();
    for (const metric of ['kl', 'ce', 'entropy', 'top1_agree'] as const) {
      for (const lens of ['logit', 'tuned'] as const) {
        expect(drawn(metric, lens)).toEqual(Object.fromEntries(EVALUATION.layers.map((_, i) => [i, (lens === 'logit' ? EVALUATION.logit : EVALUATION.tuned!)[metric][i]])));
        const path = screen.getByTestId(`eval-chart-${metric}`).querySelector(`[data-lens="${lens}"] path`)!;
        // One unbroken line through the four rows.
        expect(path.getAttribute('d')!.match(/[ML]/g)).toEqual(['M', 'L', 'L', 'L']);
      }
    }
    // Row names on x, the legend names both lenses.
    expect(within(screen.getByTestId('eval-chart-kl')).getByText('Final Output')).toBeTruthy();
    expect(screen.getByTestId('eval-legend').textContent).toBe('logit lenstuned lens (llama)');
    expect(screen.getByRole('group', { name: 'Lens quality · llama' })).toBeTruthy();
    expect(screen.getByTestId('eval-chart-top1_agree').textContent).toContain('100%');
  });

  it('reads a row’s values on keyboard focus and with the arrow keys', () => {
    chart();
    const kl = screen.getByTestId('eval-chart-kl');
    expect(kl.getAttribute('aria-label')).toBe('KL to the output (nats) per row: logit lens from 1.374 at Embeddings to 0 at Final Output; tuned lens (llama) from 1.39 at Embeddings to 0 at Final Output. Arrow keys read each row.');
    fireEvent.focus(kl);
    expect(screen.getByTestId('eval-tooltip').textContent).toBe('KL to the output · Embeddingslogit lens: 1.374 natstuned lens (llama): 1.39 nats');
    fireEvent.keyDown(kl, { key: 'ArrowRight' });
    fireEvent.keyDown(kl, { key: 'ArrowRight' });
    expect(screen.getByTestId('eval-tooltip').textContent).toBe('KL to the output · Layer 1logit lens: 0.2908 natstuned lens (llama): 0.3694 nats');
    fireEvent.keyDown(kl, { key: 'End' });
    fireEvent.keyDown(kl, { key: 'ArrowRight' });
    expect(screen.getByTestId('eval-tooltip').textContent).toContain('Final Output');
    const agree = screen.getByTestId('eval-chart-top1_agree');
    fireEvent.focus(agree);
    fireEvent.keyDown(agree, { key: 'ArrowRight' });
    expect(screen.getByTestId('eval-tooltip').textContent).toBe('Top-1 agreement · Layer 0logit lens: 8.0%tuned lens (llama): 5.7%');
    fireEvent.keyDown(agree, { key: 'Escape' });
    expect(screen.queryByTestId('eval-tooltip')).toBeNull();
  });

  it('hover picks the nearest row', () => {
    chart();
    const kl = screen.getByTestId('eval-chart-kl');
    const overlay = kl.querySelector('rect[fill="transparent"]')!;
    // jsdom lays nothing out: the overlay's box is empty, so x is counted from the page's left edge.
    fireEvent.mouseMove(overlay, { clientX: 0 });
    expect(screen.getByTestId('eval-tooltip').textContent).toContain('Embeddings');
    fireEvent.mouseLeave(overlay);
    expect(screen.queryByTestId('eval-tooltip')).toBeNull();
  });

  it('KL on a log scale leaves out the output’s 0 and says so', () => {
    chart(true);
    expect(Object.keys(drawn('kl', 'logit'))).toEqual(['0', '1', '2']);
    expect(screen.getByTestId('eval-chart-kl').textContent).toContain('0 is not drawn on a log scale');
    expect(screen.getByTestId('eval-chart-kl').textContent).toContain('nats, log scale');
    // The other charts stay linear.
    expect(Object.keys(drawn('ce', 'logit'))).toEqual(['0', '1', '2', '3']);
  });

  it('an evaluation without a tuned lens has one line; a value that is missing breaks it', () => {
    chart(false, { ...EVALUATION, tuned: undefined, logit: { ...EVALUATION.logit, ce: [7, NaN, 7.1, 7] } });
    expect(screen.getByTestId('eval-chart-kl').querySelector('[data-lens="tuned"]')).toBeNull();
    expect(screen.getByTestId('eval-legend').textContent).toBe('logit lens');
    const d = screen.getByTestId('eval-chart-ce').querySelector('[data-lens="logit"] path')!.getAttribute('d')!;
    expect(d.match(/[ML]/g)).toEqual(['M', 'M', 'L']);
  });

  it('lays the charts out four, two or one to a row', () => {
    expect(chartColumns(1400)).toBe(4);
    expect(chartColumns(800)).toBe(2);
    expect(chartColumns(400)).toBe(1);
  });
});
