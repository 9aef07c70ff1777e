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
      title="Load session"
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
    </Dialog>
  );
}
