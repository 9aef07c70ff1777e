import { afterEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { ApiError } from '../api/client';
import type { ModelDescription } from '../api/types';
import { READY, TINY_LLAMA, TUNED_LENS_DIR } from '../test/fixtures';
import { NotificationProvider } from './Notifications';
import { TunedLensField } from './TunedLensField';

afterEach(() => vi.restoreAllMocks());

function renderField(props: Partial<Parameters<typeof TunedLensField>[0]> = {}) {
  const onAttach = props.onAttach ?? vi.fn(async (path: string): Promise<ModelDescription> => ({ ...TINY_LLAMA, tuned_lens: path }));
  render(
    <NotificationProvider>
      <TunedLensField model={READY} busy={false} onAttach={onAttach} {...props} />
    </NotificationProvider>,
  );
  return onAttach;
}

describe('TunedLensField', () => {
  it('says none is attached; Attach… opens the folder field, Load lens attaches it and closes', async () => {
    const onAttach = renderField();
    expect(screen.getByTestId('tuned-lens').textContent).toContain('Tuned lens: none');
    expect(screen.queryByLabelText('Tuned lens folder')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    const load = screen.getByRole('button', { name: 'Load lens' }) as HTMLButtonElement;
    expect(load.disabled).toBe(true);
    fireEvent.change(screen.getByLabelText('Tuned lens folder'), { target: { value: `  ${TUNED_LENS_DIR} ` } });
    fireEvent.click(load);
    await waitFor(() => expect(onAttach).toHaveBeenCalledWith(TUNED_LENS_DIR));
    expect((await screen.findByTestId('toast-success')).textContent).toContain('Tuned lens “llama” attached to llama');
    expect(screen.queryByLabelText('Tuned lens folder')).toBeNull();
  });

  it('names the lens attached, its folder in the tooltip', () => {
    renderField({ model: { ...READY, tuned_lens: TUNED_LENS_DIR } });
    const name = screen.getByTestId('tuned-lens-attached');
    expect(name.textContent).toBe('llama');
    expect(name.title).toBe(TUNED_LENS_DIR);
    expect(screen.getByRole('button', { name: 'Change…' })).toBeTruthy();
  });

  it('shows the server’s refusal in words and keeps the folder for fixing', async () => {
    const detail = "tuned lens: its d_model is 32 but the model's is 64";
    renderField({ onAttach: vi.fn(async () => Promise.reject(new ApiError(detail, 400))) });
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    fireEvent.change(screen.getByLabelText('Tuned lens folder'), { target: { value: '/lenses/small' } });
    fireEvent.submit(screen.getByLabelText('Tuned lens folder').closest('form')!);
    expect((await screen.findByTestId('tuned-lens-error')).textContent).toBe(detail);
    expect((screen.getByLabelText('Tuned lens folder') as HTMLInputElement).value).toBe('/lenses/small');
    expect(screen.queryByTestId('toast-success')).toBeNull();
    // Editing the folder clears the error.
    fireEvent.change(screen.getByLabelText('Tuned lens folder'), { target: { value: '/lenses/other' } });
    expect(screen.queryByTestId('tuned-lens-error')).toBeNull();
  });

  it('nothing without a model in service; no loading while a model loads', () => {
    const { unmount } = render(
      <NotificationProvider>
        <TunedLensField model={null} busy={false} onAttach={vi.fn()} />
      </NotificationProvider>,
    );
    expect(screen.queryByTestId('tuned-lens')).toBeNull();
    unmount();
    renderField({ busy: true });
    fireEvent.click(screen.getByRole('button', { name: 'Attach…' }));
    fireEvent.change(screen.getByLabelText('Tuned lens folder'), { target: { value: '/lenses/llama' } });
    expect((screen.getByRole('button', { name: 'Load lens' }) as HTMLButtonElement).disabled).toBe(true);
  });
});
