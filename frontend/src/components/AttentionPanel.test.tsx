import { afterEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { toAttentionTensor } from '../lib/attention';
import { AttentionPanel, saveTitlePrefix } from './AttentionPanel';
import { NotificationProvider } from './Notifications';
import { attention, TOKENS } from '../test/fixtures';

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

  it('save title prefix', () => {
    expect(saveTitlePrefix('SmolLM2-135M-Instruct.Q4_1.gguf', 'The capital of France')).toBe('SmolLM2-135M-Instruct.Q4_1_The_capita');
  });
});
