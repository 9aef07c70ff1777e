// The one run control of every view: its button(s) (the one that started the request in progress
// spins), Stop while it runs (the focus goes back to that button after), why it cannot run, the
// progress bar, and the stopped and failed notes. A view whose progress and notes belong elsewhere
// (the run's, over the grid) shows them with RequestProgress and RequestNotes there.
import { useEffect, useRef, type ReactNode } from 'react';
import { useRunProgress, type RequestStatus, type RunProgressStore } from '../hooks/useStoppableRequest';
import type { RunProgress } from '../api/types';
import { describeRunProgress, type RunProgressView } from '../lib/progress';
import { ProgressBar } from './ProgressBar';

export interface RunButton {
  label: ReactNode;
  /** What it says while the request it started is in progress ("Patching…"). */
  busyLabel: string;
  onClick: () => void;
  disabledReason: string | null;
  /** It started the request in progress (of those that share it, which one). */
  busy: boolean;
  /** Its look (default: the primary button). */
  className?: string;
  /** Its tooltip when enabled. */
  title?: string;
  /** In its row after it (Generate's new-tokens field). */
  beside?: ReactNode;
  rowClassName?: string;
}

/** The request in progress: what it is doing and a bar; the only part re-rendered per event. */
export function RequestProgress({
  progress,
  label,
  idle,
  testId,
  textTestId,
  overlay,
  describe,
}: {
  progress: RunProgressStore;
  /** The bar's accessible name. */
  label: string;
  /** What it says before the first progress event. */
  idle?: string;
  testId: string;
  textTestId: string;
  /** Over the grid (the run's), or in line above it (a generation's growing grid); in the form's flow when absent. */
  overlay?: 'over' | 'inline';
  /** What the view says of an event, when it knows more than the event (a fit's prompts); else the app's words for every stage. */
  describe?: (p: RunProgress | null) => RunProgressView;
}) {
  const p = useRunProgress(progress);
  const view = describe ? describe(p) : describeRunProgress(p, idle);
  const className = overlay === undefined ? 'request-progress' : overlay === 'inline' ? 'running-overlay is-inline' : 'running-overlay';
  return (
    <div className={className} data-testid={testId}>
      <span className="spinner" aria-hidden="true" />
      <span className="run-progress-text" data-testid={textTestId}>
        {view.text}
      </span>
      <ProgressBar label={label} view={view} className={overlay === undefined ? undefined : 'run-progress'} />
    </div>
  );
}

/** After a request: that it was stopped, or why it failed (each left out when null). */
export function RequestNotes({ request, stopped, error, name }: { request: RequestStatus; stopped: ReactNode; error: ReactNode; name: string }) {
  if (request.running) return null;
  return (
    <>
      {request.stopped && stopped !== null && (
        <div className="stopped-note small" role="status" data-testid={`${name}-stopped`}>
          {stopped}
        </div>
      )}
      {request.error && error !== null && (
        <div className="inline-error" role="alert" data-testid={`${name}-error`}>
          {error}
        </div>
      )}
    </>
  );
}

interface RunControlProps {
  /** Names its parts' test ids: `${name}-progress`, `-progress-text`, `-stopped`, `-error`, `-disabled-reason`. */
  name: string;
  request: RequestStatus;
  /** Each in a row of its own; Stop goes in the first. None: the request is started elsewhere (a grid cell's menu). */
  buttons: RunButton[];
  stopTitle: string;
  /** Under the buttons (after `children`); by default why the first button is disabled, while nothing runs. */
  hint?: ReactNode;
  /**
   * The bar's accessible name and what it says before the first event (and, optionally, its own
   * words for the events); null: the view shows the progress elsewhere.
   */
  progress: { label: string; idle: string; describe?: (p: RunProgress | null) => RunProgressView } | null;
  /** The stopped note, and the failed note's words; null: the view says them elsewhere. */
  notes: { stopped: string; error: (message: string) => ReactNode } | null;
  /** Between the buttons and the hint. */
  children?: ReactNode;
}

export function RunControl({ name, request, buttons, stopTitle, hint, progress, notes, children }: RunControlProps) {
  const { running } = request;
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  // Stop disappears with the request: the focus goes back to the button that started it rather than to the page.
  const stopClicked = useRef<HTMLButtonElement | null>(null);
  useEffect(() => {
    if (!running && stopClicked.current) {
      stopClicked.current.focus();
      stopClicked.current = null;
    }
  }, [running]);

  const stop = running && (
    <button
      type="button"
      className="btn btn-danger btn-stop"
      onClick={() => {
        stopClicked.current = refs.current[buttons.findIndex((b) => b.busy)] ?? null;
        request.stop();
      }}
      title={stopTitle}
    >
      Stop
    </button>
  );
  const first = buttons[0];
  const shownHint = hint !== undefined ? hint : !running && first?.disabledReason ? first.disabledReason : null;

  return (
    <>
      {buttons.length === 0 && stop && <div className="run-row">{stop}</div>}
      {buttons.map((b, i) => (
        <div key={i} className={`run-row${b.rowClassName ? ` ${b.rowClassName}` : ''}`}>
          <button
            ref={(el) => {
              refs.current[i] = el;
            }}
            type="button"
            className={`btn ${b.className ?? 'btn-primary'}`}
            onClick={b.onClick}
            disabled={!!b.disabledReason || running}
            aria-busy={running && b.busy}
            title={b.disabledReason ?? b.title}
          >
            {running && b.busy ? (
              <>
                <span className="spinner" aria-hidden="true" /> {b.busyLabel}
              </>
            ) : (
              b.label
            )}
          </button>
          {b.beside}
          {i === 0 && stop}
        </div>
      ))}
      {children}
      {shownHint !== null &&
        (hint !== undefined ? (
          shownHint
        ) : (
          <div className="muted small request-hint" data-testid={`${name}-disabled-reason`}>
            {shownHint}
          </div>
        ))}
      {running && progress && (
        <RequestProgress
          progress={request.progress}
          label={progress.label}
          idle={progress.idle}
          describe={progress.describe}
          testId={`${name}-progress`}
          textTestId={`${name}-progress-text`}
        />
      )}
      {notes && <RequestNotes request={request} name={name} stopped={notes.stopped} error={request.error ? notes.error(request.error) : null} />}
    </>
  );
}
