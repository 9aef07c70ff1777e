// Save-session and load-session dialogs.
import { useState } from 'react';
import type { SessionEntry } from '../api/types';
import { errorMessage } from '../api/client';
import { formatSessionTime, relativeSessionTime } from '../lib/time';
import { Dialog } from './Dialog';

export function SaveSessionDialog({ onSave, onClose, suggestion }: { onSave: (name: string) => Promise<void>; onClose: () => void; suggestion: string }) {
  const [name, setName] = useState(suggestion);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async () => {
    setSaving(true);
    setError(null);
    try {
      await onSave(name.trim());
      onClose();
    } catch (err) {
      setError(errorMessage(err));
      setSaving(false);
    }
  };
  return (
    <Dialog
      title="Save session"
      onClose={onClose}
      testId="save-dialog"
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form="save-session-form" className="btn btn-primary" disabled={saving}>
            {saving ? 'Saving…' : 'Save'}
          </button>
        </>
      }
    >
      <form
        id="save-session-form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label className="stack" htmlFor="session-name">
          <span>Name (optional)</span>
          <input id="session-name" className="input" data-autofocus value={name} maxLength={120} onChange={(e) => setName(e.target.value)} placeholder="e.g. france-baseline" />
        </label>
        <p className="muted small">
          Saves the text, interventions, lens type, the lens results and the full tensors (hidden states, logits, attention) of the
          server's latest run.
        </p>
        {error && (
          <div className="inline-error" role="alert">
            {error}
          </div>
        )}
      </form>
    </Dialog>
  );
}

interface SessionsProps {
  sessions: SessionEntry[] | null;
  loading: boolean;
  error: string | null;
  onRefresh: () => void;
  vizOnly: boolean;
  onVizOnlyChange: (v: boolean) => void;
  onLoad: (s: SessionEntry) => void;
  onDelete: (s: SessionEntry) => Promise<void>;
  onClose: () => void;
  /** A session is being loaded (by this dialog). */
  busy: boolean;
  /** Diffs two sessions (`a` the baseline); a rejection is shown in the dialog. */
  onCompare?: (a: SessionEntry, b: SessionEntry) => Promise<void>;
}

/** Two sessions to diff, A the baseline; errors (sessions that do not compare) stay in view. */
export function SessionComparePicker({ sessions, onCompare }: { sessions: SessionEntry[]; onCompare: (a: SessionEntry, b: SessionEntry) => Promise<void> }) {
  const [a, setA] = useState('');
  const [b, setB] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const byId = new Map(sessions.map((s) => [s.id, s]));
  const sa = byId.get(a);
  const sb = byId.get(b);
  const reason = !sa || !sb ? 'Choose a session for A and for B' : a === b ? 'Choose two different sessions' : null;
  const compare = async () => {
    if (!sa || !sb || reason) return;
    setBusy(true);
    setError(null);
    try {
      await onCompare(sa, sb);
    } catch (err) {
      setError(`Could not compare “${sa.name}” with “${sb.name}”: ${errorMessage(err)}`);
    } finally {
      setBusy(false);
    }
  };
  const options = (
    <>
      <option value="">Choose…</option>
      {sessions.map((s) => (
        <option key={s.id} value={s.id}>
          {s.name} · {formatSessionTime(s.timestamp)}
        </option>
      ))}
    </>
  );
  return (
    <fieldset className="session-compare" data-testid="session-compare">
      <legend>Compare two sessions</legend>
      <p className="muted small">
        The lens of B against A as the baseline: the same prompt with other interventions, or on another checkpoint.
      </p>
      <div className="session-compare-row">
        <label className="field">
          <span>A (baseline)</span>
          <select
            aria-label="Session A (baseline)"
            value={a}
            onChange={(e) => {
              setA(e.target.value);
              setError(null);
            }}
          >
            {options}
          </select>
        </label>
        <button
          type="button"
          className="icon-btn swap-btn"
          aria-label="Swap A and B"
          title="Swap A and B"
          onClick={() => {
            setA(b);
            setB(a);
            setError(null);
          }}
        >
          ⇄
        </button>
        <label className="field">
          <span>B</span>
          <select
            aria-label="Session B"
            value={b}
            onChange={(e) => {
              setB(e.target.value);
              setError(null);
            }}
          >
            {options}
          </select>
        </label>
        <button type="button" className="btn btn-secondary" onClick={() => void compare()} disabled={!!reason || busy} title={reason ?? 'Show the diff of B against A'}>
          {busy ? 'Comparing…' : 'Compare'}
        </button>
      </div>
      {error && (
        <div className="inline-error" role="alert" data-testid="compare-error">
          {error}
        </div>
      )}
    </fieldset>
  );
}

export function SessionsDialog(p: SessionsProps) {
  const [confirming, setConfirming] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const now = new Date();

  const doDelete = async (s: SessionEntry) => {
    setDeleting(s.id);
    setDeleteError(null);
    try {
      await p.onDelete(s);
      setConfirming(null);
    } catch (err) {
      setDeleteError(`Could not delete “${s.name}”: ${errorMessage(err)}`);
    } finally {
      setDeleting(null);
    }
  };

  return (
    <Dialog
      title="Sessions"
      onClose={p.onClose}
      testId="sessions-dialog"
      footer={
        <>
          <button type="button" className="btn" onClick={p.onRefresh} disabled={p.loading}>
            Refresh
          </button>
          <button type="button" className="btn" onClick={p.onClose}>
            Close
          </button>
        </>
      }
    >
      <label className="check-row">
        <input type="checkbox" checked={p.vizOnly} onChange={(e) => p.onVizOnlyChange(e.target.checked)} />
        <span>
          Load visualization only
          <span className="muted small block">Show the saved results; skip the model switch and the re-run (fast)</span>
        </span>
      </label>
      {p.error && (
        <div className="inline-error" role="alert">
          Could not list sessions: {p.error}
        </div>
      )}
      {deleteError && (
        <div className="inline-error" role="alert">
          {deleteError}
        </div>
      )}
      {p.loading && !p.sessions && <div className="empty-state small">Loading sessions…</div>}
      {p.sessions && p.sessions.length === 0 && <div className="empty-state small">No saved sessions yet. Run the lens, then use Save.</div>}
      {p.sessions && p.sessions.length > 0 && (
        <ul className="session-list" aria-label="Saved sessions">
          {p.sessions.map((s) => (
            <li key={s.id} className="session-item" data-session-id={s.id}>
              <div className="session-info">
                <span className="session-name">{s.name}</span>
                <span className="session-time" title={s.id}>
                  {formatSessionTime(s.timestamp)}
                  {relativeSessionTime(s.timestamp, now) && <span className="muted"> · {relativeSessionTime(s.timestamp, now)}</span>}
                </span>
              </div>
              {confirming === s.id ? (
                <div className="session-confirm" role="group" aria-label="Confirm delete">
                  <span className="small">Delete for good?</span>
                  <button type="button" className="btn btn-small btn-danger" onClick={() => void doDelete(s)} disabled={deleting === s.id}>
                    {deleting === s.id ? 'Deleting…' : 'Delete'}
                  </button>
                  <button type="button" className="btn btn-small" onClick={() => setConfirming(null)}>
                    Keep
                  </button>
                </div>
              ) : (
                <div className="session-actions">
                  <button type="button" className="btn btn-small btn-primary" onClick={() => p.onLoad(s)} disabled={p.busy} aria-label={`Load session ${s.name}`}>
                    Load
                  </button>
                  <button type="button" className="btn btn-small btn-ghost-danger" onClick={() => setConfirming(s.id)} aria-label={`Delete session ${s.name}`}>
                    Delete
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
      {p.onCompare && p.sessions && p.sessions.length >= 2 && <SessionComparePicker sessions={p.sessions} onCompare={p.onCompare} />}
    </Dialog>
  );
}
