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
