import { afterEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { ApiError } from '../api/client';
import type { ModelDescription } from '../api/types';
import { JACOBIAN, JLENS_FILE, READY, TINY_LLAMA, TUNED_LENS_DIR } from '../test/fixtures';
import { NotificationProvider } from './Notifications';
import { LensFileField } from './LensFileField';

afterEach(() => vi.restoreAllMocks());

/** The server's answer: a path ending in .pt is a Jacobian lens, anything else a tuned lens's folder. */
const attachAs = async (path: string): Promise<ModelDescription> =>
  path.endsWith('.pt') ? { ...TINY_LLAMA, jacobian_lens: { ...JACOBIAN, path } } : { ...TINY_LLAMA, tuned_lens: path };

function renderField(props: Partial<Parameters<typeof LensFileField>[0]> = {}) {
  const onAttach = props.onAttach ?? vi.fn(attachAs);
  render(
    <NotificationProvider>
      <LensFileField model={READY} busy={false} onAttach={onAttach} {...props} />
    </NotificationProvider>,
  );
  return onAttach;
}

const field = () => screen.getByLabelText('Lens folder or file') as HTMLInputElement;

describe('LensFileField', () => {
  it('says none is attached; Attach… opens the field, Load lens attaches a tuned lens’s folder and closes', async () => {
    const onAttach = renderField();
    expect(screen.getByTestId('lens-file').textContent).toContain('Lenses: none');
    expect(screen.queryByLabelText('Lens folder or file')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    const load = screen.getByRole('button', { name: 'Load lens' }) as HTMLButtonElement;
    expect(load.disabled).toBe(true);
    fireEvent.change(field(), { target: { value: `  ${TUNED_LENS_DIR} ` } });
    fireEvent.click(load);
    await waitFor(() => expect(onAttach).toHaveBeenCalledWith(TUNED_LENS_DIR));
    expect((await screen.findByTestId('toast-success')).textContent).toContain('Tuned lens “llama” attached to llama');
    expect(screen.queryByLabelText('Lens folder or file')).toBeNull();
  });

  it('the same field attaches a Jacobian lens’s file, and says what it covers', async () => {
    const onAttach = renderField();
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    fireEvent.change(field(), { target: { value: JLENS_FILE } });
    fireEvent.click(screen.getByRole('button', { name: 'Load lens' }));
    await waitFor(() => expect(onAttach).toHaveBeenCalledWith(JLENS_FILE));
    const toast = await screen.findByTestId('toast-success');
    expect(toast.textContent).toContain('Jacobian lens “jlens.pt” attached to llama');
    expect(toast.textContent).toContain('It transports the block outputs of layers 0–1 (averaged over 12 prompts)');
    // A lens the server attached with a warning: said too.
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    fireEvent.change(field(), { target: { value: 'other.pt' } });
    (onAttach as ReturnType<typeof vi.fn>).mockImplementationOnce(async (path: string) => ({
      ...TINY_LLAMA,
      jacobian_lens: { ...JACOBIAN, path: `/work/${path}`, warning: 'its metadata names another model (HuggingFaceTB/SmolLM2-135M)' },
    }));
    fireEvent.click(screen.getByRole('button', { name: 'Load lens' }));
    expect((await screen.findByTestId('toast-warning')).textContent).toContain('its metadata names another model');
  });

  it('names both lenses attached, the Jacobian lens’s prompts and layers, and their warnings', () => {
    renderField({
      model: { ...READY, tuned_lens: TUNED_LENS_DIR, tuned_lens_warning: 'its unembed_hash differs from this model’s', jacobian_lens: { ...JACOBIAN, warning: 'its metadata names gpt2' } },
    });
    const tuned = screen.getByTestId('tuned-lens-attached');
    expect(tuned.textContent).toBe('llama');
    expect(tuned.title).toBe(TUNED_LENS_DIR);
    const jac = screen.getByTestId('jacobian-lens-attached');
    expect(jac.textContent).toBe('jlens.pt · 12 prompts · layers 0–1');
    expect(jac.title).toBe(JLENS_FILE);
    expect(screen.getByTestId('lens-file').textContent).toMatch(/^Lenses: tuned llama · Jacobian jlens\.pt/);
    expect(screen.getAllByTestId('lens-warning').map((w) => w.textContent)).toEqual([
      '⚠ Tuned lens: its unembed_hash differs from this model’s',
      '⚠ Jacobian lens: its metadata names gpt2',
    ]);
    expect(screen.getByRole('button', { name: 'Attach another…' })).toBeTruthy();
  });

  it('a Jacobian lens fitted by the server and not saved has no file to name', () => {
    renderField({ model: { ...READY, jacobian_lens: { ...JACOBIAN, path: '' } } });
    const jac = screen.getByTestId('jacobian-lens-attached');
    expect(jac.textContent).toBe('fitted here, not saved · 12 prompts · layers 0–1');
    expect(jac.title).toBe('fitted by the server, not saved to a file');
  });

  it('shows the server’s refusal in words and keeps the path for fixing', async () => {
    const detail = 'Jacobian lens: its d_model is 32 but the model’s is 64';
    renderField({ onAttach: vi.fn(async () => Promise.reject(new ApiError(detail, 400))) });
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    fireEvent.change(field(), { target: { value: '/lenses/small.pt' } });
    fireEvent.submit(field().closest('form')!);
    expect((await screen.findByTestId('lens-file-error')).textContent).toBe(detail);
    expect(field().value).toBe('/lenses/small.pt');
    expect(screen.queryByTestId('toast-success')).toBeNull();
    // Editing the path clears the error.
    fireEvent.change(field(), { target: { value: '/lenses/other.pt' } });
    expect(screen.queryByTestId('lens-file-error')).toBeNull();
  });

  it('nothing without a model in service; no loading while a model loads', () => {
    const { unmount } = render(
      <NotificationProvider>
        <LensFileField model={null} busy={false} onAttach={vi.fn()} />
      </NotificationProvider>,
    );
    expect(screen.queryByTestId('lens-file')).toBeNull();
    unmount();
    renderField({ busy: true });
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    fireEvent.change(field(), { target: { value: '/lenses/llama' } });
    expect((screen.getByRole('button', { name: 'Load lens' }) as HTMLButtonElement).disabled).toBe(true);
  });
});
