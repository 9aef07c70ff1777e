import { describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen } from '@testing-library/react';
import { createProgressStore, type RequestStatus } from '../hooks/useStoppableRequest';
import { RunControl, type RunButton } from './RunControl';

const store = createProgressStore();

function status(over: Partial<RequestStatus> = {}): RequestStatus {
  return { running: false, stopped: false, progress: store, stop: () => {}, error: null, ...over };
}

const button = (over: Partial<RunButton> = {}): RunButton => ({ label: 'Run sweep', busyLabel: 'Sweeping…', onClick: () => {}, disabledReason: null, busy: true, ...over });

function Sweep({ request, buttons = [button()] }: { request: RequestStatus; buttons?: RunButton[] }) {
  return (
    <RunControl
      name="sweep"
      request={request}
      buttons={buttons}
      stopTitle="Stop the sweep"
      progress={{ label: 'Sweep progress', idle: 'Starting the sweep…' }}
      notes={{ stopped: 'Sweep stopped.', error: (e) => `Could not sweep: ${e}` }}
    />
  );
}

describe('RunControl', () => {
  it('idle: the button, or why it is disabled; nothing else', () => {
    const onClick = vi.fn();
    const { rerender } = render(<Sweep request={status()} buttons={[button({ onClick })]} />);
    fireEvent.click(screen.getByRole('button', { name: 'Run sweep' }));
    expect(onClick).toHaveBeenCalledTimes(1);
    expect(screen.queryByRole('button', { name: 'Stop' })).toBeNull();
    expect(screen.queryByRole('progressbar')).toBeNull();
    expect(screen.queryByTestId('sweep-disabled-reason')).toBeNull();
    rerender(<Sweep request={status()} buttons={[button({ disabledReason: 'Type a text first' })]} />);
    const b = screen.getByRole('button', { name: 'Run sweep' }) as HTMLButtonElement;
    expect(b.disabled).toBe(true);
    expect(b.title).toBe('Type a text first');
    expect(screen.getByTestId('sweep-disabled-reason').textContent).toBe('Type a text first');
  });

  it('running: the button that started it spins, the others wait; Stop, and the bar with its progress', () => {
    const stop = vi.fn();
    const other = button({ label: 'Run other', busyLabel: 'Othering…', busy: false });
    render(<Sweep request={status({ running: true, stop })} buttons={[button(), other]} />);
    const busy = screen.getByRole('button', { name: /Sweeping/ }) as HTMLButtonElement;
    expect(busy.disabled).toBe(true);
    expect(busy.getAttribute('aria-busy')).toBe('true');
    const waiting = screen.getByRole('button', { name: 'Run other' }) as HTMLButtonElement;
    expect(waiting.disabled).toBe(true);
    expect(waiting.getAttribute('aria-busy')).toBe('false');
    const bar = screen.getByRole('progressbar', { name: 'Sweep progress' });
    expect(screen.getByTestId('sweep-progress-text').textContent).toBe('Starting the sweep…');
    act(() => store.set({ request: 'r', stage: 'patching', done: 3, total: 8 }));
    expect(bar.getAttribute('aria-valuenow')).toBe('3');
    expect(bar.getAttribute('aria-valuemax')).toBe('8');
    act(() => store.set(null));
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    expect(stop).toHaveBeenCalledTimes(1);
  });

  it('after Stop the focus goes back to the button that started it; then it says stopped, or why it failed', () => {
    const { rerender } = render(<Sweep request={status({ running: true })} buttons={[button({ busy: false, label: 'First' }), button()]} />);
    const stopButton = screen.getByRole('button', { name: 'Stop' });
    stopButton.focus();
    fireEvent.click(stopButton);
    rerender(<Sweep request={status({ stopped: true })} buttons={[button({ busy: false, label: 'First' }), button()]} />);
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Run sweep' }));
    expect(screen.getByTestId('sweep-stopped').textContent).toBe('Sweep stopped.');
    expect(screen.queryByTestId('sweep-error')).toBeNull();
    rerender(<Sweep request={status({ error: 'the server is busy' })} />);
    expect(screen.getByTestId('sweep-error').textContent).toBe('Could not sweep: the server is busy');
    expect(screen.queryByTestId('sweep-stopped')).toBeNull();
    // While the next one runs, neither note.
    rerender(<Sweep request={status({ running: true, stopped: true, error: 'old' })} />);
    expect(screen.queryByTestId('sweep-stopped')).toBeNull();
    expect(screen.queryByTestId('sweep-error')).toBeNull();
  });

  it('without buttons (started elsewhere): Stop alone while it runs', () => {
    const stop = vi.fn();
    const { rerender } = render(<Sweep request={status()} buttons={[]} />);
    expect(screen.queryByRole('button')).toBeNull();
    rerender(<Sweep request={status({ running: true, stop })} buttons={[]} />);
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    expect(stop).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId('sweep-progress')).toBeTruthy();
  });
});
