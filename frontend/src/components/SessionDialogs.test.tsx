import { describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { SaveSessionDialog, SessionsDialog } from './SessionDialogs';

const SESSIONS = [
  { id: '20251203_162845_france', name: 'france', timestamp: '20251203_162845' },
  { id: 'odd', name: 'odd', timestamp: 'Unknown' },
];

function setup(over: Partial<Parameters<typeof SessionsDialog>[0]> = {}) {
  const props = {
    sessions: SESSIONS,
    loading: false,
    error: null,
    onRefresh: vi.fn(),
    vizOnly: false,
    onVizOnlyChange: vi.fn(),
    onLoad: vi.fn(),
    onDelete: vi.fn(async () => {}),
    onClose: vi.fn(),
    busy: false,
    ...over,
  };
  render(<SessionsDialog {...props} />);
  return props;
}

describe('SessionsDialog', () => {
  it('lists names with formatted times', () => {
    setup();
    expect(screen.getByText('france')).toBeTruthy();
    expect(screen.getByText(/2025-12-03 16:28:45/)).toBeTruthy();
    expect(screen.getByText('Unknown')).toBeTruthy();
  });

  it('loads a session', () => {
    const p = setup();
    fireEvent.click(screen.getByLabelText('Load session france'));
    expect(p.onLoad).toHaveBeenCalledWith(SESSIONS[0]);
  });

  it('deletes only after confirmation', async () => {
    const p = setup();
    fireEvent.click(screen.getByLabelText('Delete session france'));
    expect(p.onDelete).not.toHaveBeenCalled();
    fireEvent.click(screen.getByText('Keep'));
    expect(screen.queryByText('Delete for good?')).toBeNull();
    fireEvent.click(screen.getByLabelText('Delete session france'));
    fireEvent.click(screen.getByRole('button', { name: 'Delete' }));
    await waitFor(() => expect(p.onDelete).toHaveBeenCalledWith(SESSIONS[0]));
  });

  it('shows a failed delete in words', async () => {
    setup({ onDelete: vi.fn(async () => Promise.reject(new Error('Session not found'))) });
    fireEvent.click(screen.getByLabelText('Delete session odd'));
    fireEvent.click(screen.getByRole('button', { name: 'Delete' }));
    expect(await screen.findByText('Could not delete “odd”: Session not found')).toBeTruthy();
  });

  it('empty state, viz-only toggle and Escape', () => {
    const p = setup({ sessions: [] });
    expect(screen.getByText(/No saved sessions yet/)).toBeTruthy();
    fireEvent.click(screen.getByLabelText(/Load visualization only/));
    expect(p.onVizOnlyChange).toHaveBeenCalledWith(true);
    fireEvent.keyDown(document, { key: 'Escape' });
    expect(p.onClose).toHaveBeenCalled();
  });
});

describe('session comparison picker', () => {
  const pick = (label: string, id: string) => fireEvent.change(screen.getByLabelText(label), { target: { value: id } });

  it('compares A (baseline) with B once two different sessions are picked', async () => {
    const onCompare = vi.fn(async () => {});
    setup({ onCompare });
    const button = screen.getByRole('button', { name: 'Compare' }) as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    expect(button.title).toBe('Choose a session for A and for B');
    pick('Session A (baseline)', 'odd');
    pick('Session B', 'odd');
    expect(button.disabled).toBe(true);
    expect(button.title).toBe('Choose two different sessions');
    pick('Session B', '20251203_162845_france');
    expect(button.disabled).toBe(false);
    fireEvent.click(button);
    await waitFor(() => expect(onCompare).toHaveBeenCalledWith(SESSIONS[1], SESSIONS[0]));
    // Swap makes the other the baseline.
    fireEvent.click(screen.getByLabelText('Swap A and B'));
    expect((screen.getByLabelText('Session A (baseline)') as HTMLSelectElement).value).toBe('20251203_162845_france');
    fireEvent.click(button);
    await waitFor(() => expect(onCompare).toHaveBeenLastCalledWith(SESSIONS[0], SESSIONS[1]));
  });

  it('shows why two sessions do not compare, in words', async () => {
    setup({ onCompare: vi.fn(async () => Promise.reject(new Error('the sessions have different token ids (13 vs 7 tokens)'))) });
    pick('Session A (baseline)', 'odd');
    pick('Session B', '20251203_162845_france');
    fireEvent.click(screen.getByRole('button', { name: 'Compare' }));
    expect((await screen.findByTestId('compare-error')).textContent).toBe(
      'Could not compare “odd” with “france”: the sessions have different token ids (13 vs 7 tokens)',
    );
    // Picking again clears it.
    pick('Session B', 'odd');
    expect(screen.queryByTestId('compare-error')).toBeNull();
  });

  it('needs two sessions', () => {
    setup({ onCompare: vi.fn(), sessions: SESSIONS.slice(0, 1) });
    expect(screen.queryByTestId('session-compare')).toBeNull();
  });
});

describe('SaveSessionDialog', () => {
  it('asks a name and reports errors inline', async () => {
    const onSave = vi.fn(async (name: string) => {
      if (name === 'bad') throw new Error('No state to save');
    });
    const onClose = vi.fn();
    render(<SaveSessionDialog onSave={onSave} onClose={onClose} suggestion="" />);
    expect(document.activeElement).toBe(screen.getByLabelText('Name (optional)'));
    fireEvent.change(screen.getByLabelText('Name (optional)'), { target: { value: 'bad' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('No state to save')).toBeTruthy();
    expect(onClose).not.toHaveBeenCalled();
    fireEvent.change(screen.getByLabelText('Name (optional)'), { target: { value: ' good ' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onClose).toHaveBeenCalled());
    expect(onSave).toHaveBeenLastCalledWith('good');
  });
});
