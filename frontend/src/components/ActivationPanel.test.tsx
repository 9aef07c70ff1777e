import { afterEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/react';
import { ActivationPanel, formatMetric } from './ActivationPanel';
import { CSV_HEADER } from '../lib/analysis';
import { analysisFixture, TOKENS } from '../test/fixtures';

const ROWS = ['Embeddings', 'Layer 0', 'Final Output'];

function readBlob(b: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error);
    r.readAsText(b);
  });
}

describe('ActivationPanel', () => {
  const origCreate = URL.createObjectURL;
  const origRevoke = URL.revokeObjectURL;
  afterEach(() => {
    URL.createObjectURL = origCreate;
    URL.revokeObjectURL = origRevoke;
    vi.restoreAllMocks();
  });

  it('shows the five heatmaps with row names and values on each cell', () => {
    render(<ActivationPanel analysis={analysisFixture()} rowNames={ROWS} tokens={TOKENS} modelName="/m/tiny" />);
    for (const key of ['resid_norm', 'cos_prev', 'cos_final', 'attn_out_norm', 'mlp_out_norm']) expect(screen.getByTestId(`analysis-${key}`)).toBeTruthy();
    const resid = screen.getByTestId('analysis-resid_norm');
    expect(Array.from(resid.querySelectorAll('.mx-row-label')).map((e) => e.textContent)).toEqual(ROWS);
    expect(resid.querySelectorAll('.mx-cell')).toHaveLength(12);
    const cell = resid.querySelector<HTMLElement>('[data-r="1"][data-c="2"]')!;
    expect(cell.dataset.value).toBe('22');
    expect(cell.title).toBe('Layer 0 · pos 2 ␣cat: 22');
    // Layers down the side of the layer metrics.
    const mlp = screen.getByTestId('analysis-mlp_out_norm');
    expect(Array.from(mlp.querySelectorAll('.mx-row-label')).map((e) => e.textContent)).toEqual(['Layer 0', 'Layer 1']);
    // The first row has no previous row.
    const na = screen.getByTestId('analysis-cos_prev').querySelector<HTMLElement>('[data-r="0"][data-c="0"]')!;
    expect(na.className).toMatch(/is-na/);
    expect(na.title).toBe('Embeddings · pos 0 <s>: n/a');
    // Different values, different colours.
    const c00 = resid.querySelector<HTMLElement>('[data-r="0"][data-c="0"]')!;
    expect(c00.style.background).not.toBe(cell.style.background);
  });

  it('reads values with the keyboard', () => {
    render(<ActivationPanel analysis={analysisFixture()} rowNames={ROWS} tokens={TOKENS} modelName="/m/tiny" />);
    const body = within(screen.getByTestId('analysis-cos_final')).getByRole('img');
    fireEvent.keyDown(body, { key: 'ArrowRight' });
    fireEvent.keyDown(body, { key: 'ArrowDown' });
    fireEvent.keyDown(body, { key: 'ArrowDown' });
    expect(screen.getByTestId('analysis-tooltip').textContent).toBe('Cosine to final row: Final Output · pos 1 The: 1');
    fireEvent.keyDown(body, { key: 'Escape' });
    expect(screen.queryByTestId('analysis-tooltip')).toBeNull();
  });

  it('exports one CSV file through a Blob link', async () => {
    let blob: Blob | null = null;
    URL.createObjectURL = vi.fn((b: Blob) => {
      blob = b;
      return 'blob:analysis';
    });
    URL.revokeObjectURL = vi.fn();
    const clicked: { href: string; download: string }[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push({ href: this.href, download: this.download });
    });
    render(<ActivationPanel analysis={analysisFixture()} rowNames={ROWS} tokens={TOKENS} modelName="/models/SmolLM2-135M" />);
    fireEvent.click(screen.getByRole('button', { name: 'Export CSV' }));
    expect(clicked).toHaveLength(1);
    expect(clicked[0].href).toBe('blob:analysis');
    expect(clicked[0].download).toMatch(/^activation_analysis_SmolLM2-135M_\d{8}_\d{6}\.csv$/);
    expect(blob!.type).toBe('text/csv;charset=utf-8');
    const text = await readBlob(blob!);
    expect(text.split('\n')[0]).toBe(CSV_HEADER);
    expect(text).toContain('\nresid_norm,1,Layer 0,2," cat",22\n');
    // The temporary link is gone.
    expect(document.querySelector('a[download]')).toBeNull();
  });

  it('says so when the server sent no analysis', () => {
    render(<ActivationPanel analysis={null} rowNames={ROWS} tokens={TOKENS} modelName="m" />);
    expect(screen.getByText(/sent no activation analysis/)).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Export CSV' })).toBeNull();
  });

  it('formats values by size', () => {
    expect(formatMetric(12345.6)).toBe('12346');
    expect(formatMetric(1234.5)).toBe('1235');
    expect(formatMetric(12.345)).toBe('12.35');
    expect(formatMetric(5)).toBe('5');
    expect(formatMetric(0.123456)).toBe('0.1235');
    expect(formatMetric(null)).toBe('n/a');
  });
});
