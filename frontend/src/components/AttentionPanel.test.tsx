import { afterEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { fromPackedAttention, toAttentionTensor } from '../lib/attention';
import { HEADS_GONE_MESSAGE } from '../lib/runHeads';
import { AttentionPanel, saveTitlePrefix } from './AttentionPanel';
import { NotificationProvider } from './Notifications';
import { attention, packAttention, TOKENS } from '../test/fixtures';

const T = TOKENS.length;

function renderPanel(layers = 3, heads = 2, interventions = {}) {
  const props = {
    tensor: toAttentionTensor(attention(layers, heads, T)),
    tokens: TOKENS,
    interventions,
    modelName: 'meta-llama/Llama-3.2-1B',
    text: 'The capital of France',
    onRerun: vi.fn(),
    canRerun: true,
  };
  const view = render(
    <NotificationProvider>
      <AttentionPanel {...props} />
    </NotificationProvider>,
  );
  return { ...view, props };
}

const main = () => screen.getByTestId('heatmap-main');
const entry = (q: number, k: number) => main().querySelector<HTMLElement>(`[data-q="${q}"][data-k="${k}"]`)!;

describe('AttentionPanel', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('is hidden until asked, then shows the all-layer average with values and tooltips', () => {
    renderPanel();
    expect(screen.queryByTestId('heatmap-main')).toBeNull();
    fireEvent.click(screen.getByLabelText('Show attention'));
    expect(main().dataset.title).toMatch(/Average/);
    expect(entry(0, 0).textContent).toBe('1.00');
    expect(entry(1, 0).title).toMatch(/^Query 1 'The' → Key 0 '<s>': 0\.\d{4}$/);
    expect(entry(0, 1).className).toMatch(/hm-future/);
  });

  it('layer and head sliders are clamped to the displayed tensor', () => {
    const { rerender, props } = renderPanel(3, 2);
    fireEvent.click(screen.getByLabelText('Show attention'));
    fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'specific' } });
    fireEvent.change(screen.getByLabelText('Attention layer slider'), { target: { value: '2' } });
    fireEvent.change(screen.getByLabelText('Attention head slider'), { target: { value: '1' } });
    expect(main().dataset.title).toBe('Layer 2, head 1');
    // A smaller model's results arrive: no crash, the indices clamp.
    rerender(
      <NotificationProvider>
        <AttentionPanel {...props} tensor={toAttentionTensor(attention(1, 1, T))} />
      </NotificationProvider>,
    );
    expect(main().dataset.title).toBe('Layer 0, head 0');
    expect(screen.getByTestId('layer-value').textContent).toBe('0');
  });

  it('grids: one panel per head, one per layer', () => {
    renderPanel(3, 2);
    fireEvent.click(screen.getByLabelText('Show attention'));
    fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'specific_grid' } });
    expect(screen.getAllByTestId(/^heatmap-panel-/)).toHaveLength(2);
    fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'layer_mean_grid' } });
    expect(screen.getAllByTestId(/^heatmap-panel-/)).toHaveLength(3);
  });

  it('marks entries blocked by the run’s attention interventions', () => {
    renderPanel(3, 2, { layer_1_attention: [{ type: 'block_attention', source_tokens: [0], target_tokens: [2] }] });
    fireEvent.click(screen.getByLabelText('Show attention'));
    fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'layer_mean' } });
    expect(entry(2, 0).className).not.toMatch(/hm-blocked/);
    fireEvent.change(screen.getByLabelText('Attention layer slider'), { target: { value: '1' } });
    expect(entry(2, 0).className).toMatch(/hm-blocked/);
    expect(entry(2, 0).title).toMatch(/\(blocked\)$/);
    expect(entry(2, 1).className).not.toMatch(/hm-blocked/);
  });

  it('saves through the PNG endpoint and reports the path', async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ status: 'success', filepath: 'attention_visualizations/x_L0_Mean.png' })));
    vi.stubGlobal('fetch', fetchMock);
    renderPanel();
    fireEvent.click(screen.getByLabelText('Show attention'));
    fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'layer_mean' } });
    fireEvent.click(screen.getByText('Save PNG'));
    expect(await screen.findByTestId('saved-path')).toHaveProperty('textContent', expect.stringContaining('attention_visualizations/x_L0_Mean.png'));
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('save_visualization');
    const body = JSON.parse(init.body as string);
    expect(body.title).toBe('Llama-3.2-1B_The_capita_L0_Mean');
    expect(body.tokens).toEqual(['<s>', 'The', '␣cat', '\\n']);
    expect(body.attention_data).toHaveLength(T);
    await waitFor(() => expect(screen.getByText('Heatmap saved')).toBeTruthy());
  });

  it('offers a re-run when attention is missing', () => {
    const onRerun = vi.fn();
    render(
      <NotificationProvider>
        <AttentionPanel tensor={null} tokens={null} interventions={{}} modelName="m" text="t" onRerun={onRerun} canRerun />
      </NotificationProvider>,
    );
    fireEvent.click(screen.getByLabelText('Show attention'));
    fireEvent.click(screen.getByText('Re-run inference to fetch attention'));
    expect(onRerun).toHaveBeenCalled();
  });

  describe('with head means only (what /inference sends)', () => {
    const ATT = attention(3, 2, T);
    const RUN_ID = 7;

    /** Serves GET runs/7/attention like the server; `status` replaces the answer. */
    function serveHeads(status = 200) {
      const urls: string[] = [];
      const fetchMock = vi.fn(async (url: string) => {
        urls.push(url);
        if (url.startsWith('save_')) return new Response(JSON.stringify({ status: 'success', filepath: 'attention_visualizations/h.png' }));
        if (status !== 200) return new Response(JSON.stringify({ detail: status === 404 ? 'unknown run 7' : 'the engine failed' }), { status });
        const layer = Number(/layers=(\d+)/.exec(url)?.[1] ?? 0);
        return new Response(JSON.stringify({ run_id: RUN_ID, ...packAttention(ATT, 'none', [layer]) }));
      });
      vi.stubGlobal('fetch', fetchMock);
      return { urls, fetchMock };
    }

    function renderMeans(onRerun = vi.fn(), interventions = {}) {
      render(
        <NotificationProvider>
          <AttentionPanel
            tensor={fromPackedAttention(packAttention(ATT, 'head_mean'))}
            runId={RUN_ID}
            tokens={TOKENS}
            interventions={interventions}
            modelName="m"
            text="t"
            onRerun={onRerun}
            canRerun
          />
        </NotificationProvider>,
      );
      fireEvent.click(screen.getByLabelText('Show attention'));
    }

    const value = (q: number, k: number) => Number(entry(q, k).dataset.value);

    it('mean views need no request and match the full tensor', () => {
      const { urls } = serveHeads();
      renderMeans();
      const full = toAttentionTensor(ATT)!;
      const avg = full.data.flat().reduce((a, m) => a + m[3 * T + 1], 0) / 6;
      expect(value(3, 1)).toBeCloseTo(avg, 3);
      fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'layer_mean' } });
      fireEvent.change(screen.getByLabelText('Attention layer slider'), { target: { value: '2' } });
      expect(value(2, 1)).toBeCloseTo((ATT[2][0][2][1] + ATT[2][1][2][1]) / 2, 3);
      fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'layer_mean_grid' } });
      expect(screen.getAllByTestId(/^heatmap-panel-/)).toHaveLength(3);
      expect(urls).toEqual([]);
    });

    it('a head view fetches its layer once, showing a loading state meanwhile', async () => {
      const { urls } = serveHeads();
      renderMeans();
      fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'specific' } });
      expect(screen.getByTestId('heads-loading').textContent).toContain('Loading the heads of layer 0');
      expect(screen.queryByLabelText('Attention head slider')).toBeNull();
      await screen.findByTestId('heatmap-main');
      expect(urls).toEqual(['runs/7/attention?layers=0&format=f16']);
      expect(main().dataset.title).toBe('Layer 0, head 0');
      fireEvent.change(screen.getByLabelText('Attention head slider'), { target: { value: '1' } });
      expect(value(3, 2)).toBeCloseTo(ATT[0][1][3][2], 3);
      // The grid of the same layer comes from the cache.
      fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'specific_grid' } });
      expect(screen.getAllByTestId(/^heatmap-panel-/)).toHaveLength(2);
      // Another layer is another request.
      fireEvent.change(screen.getByLabelText('Attention layer slider'), { target: { value: '2' } });
      expect(screen.getByTestId('heads-loading')).toBeTruthy();
      await screen.findByTestId('heatmap-panel-1');
      expect(urls).toEqual(['runs/7/attention?layers=0&format=f16', 'runs/7/attention?layers=2&format=f16']);
      const cellOf = (panel: HTMLElement) => Number(panel.querySelector<HTMLElement>('[data-q="3"][data-k="1"]')!.dataset.value);
      expect(cellOf(screen.getByTestId('heatmap-panel-1'))).toBeCloseTo(ATT[2][1][3][1], 3);
      // Back to layer 0: cached.
      fireEvent.change(screen.getByLabelText('Attention layer slider'), { target: { value: '0' } });
      expect(screen.getAllByTestId(/^heatmap-panel-/)).toHaveLength(2);
      expect(urls).toHaveLength(2);
    });

    it('fetched heads keep blocked outlines and save as PNG', async () => {
      const { fetchMock } = serveHeads();
      renderMeans(vi.fn(), { layer_0_attention: [{ type: 'block_attention', source_tokens: [0], target_tokens: [3] }] });
      fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'specific' } });
      await screen.findByTestId('heatmap-main');
      expect(entry(3, 0).className).toMatch(/hm-blocked/);
      fireEvent.click(screen.getByText('Save PNG'));
      await screen.findByTestId('saved-path');
      const [url, init] = fetchMock.mock.calls[1] as unknown as [string, RequestInit];
      expect(url).toBe('save_visualization');
      const body = JSON.parse(init.body as string);
      expect(body.title).toBe('m_t_L0_H0');
      expect(body.attention_data[3][1]).toBeCloseTo(ATT[0][0][3][1], 3);
    });

    it('a run the server no longer keeps says so and offers to run again', async () => {
      serveHeads(404);
      const onRerun = vi.fn();
      renderMeans(onRerun);
      fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'specific_grid' } });
      const err = await screen.findByTestId('heads-error');
      expect(err.textContent).toContain(HEADS_GONE_MESSAGE);
      fireEvent.click(screen.getByRole('button', { name: 'Run again' }));
      expect(onRerun).toHaveBeenCalled();
      // The mean views still work.
      fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'layer_mean' } });
      expect(main()).toBeTruthy();
    });

    it('another error can be retried', async () => {
      serveHeads(500);
      renderMeans();
      fireEvent.change(screen.getByLabelText('Attention view'), { target: { value: 'specific' } });
      const err = await screen.findByTestId('heads-error');
      expect(err.textContent).toContain('the engine failed');
      serveHeads();
      fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
      await screen.findByTestId('heatmap-main');
    });
  });

  it('save title prefix', () => {
    expect(saveTitlePrefix('SmolLM2-135M-Instruct.Q4_1.gguf', 'The capital of France')).toBe('SmolLM2-135M-Instruct.Q4_1_The_capita');
  });
});
