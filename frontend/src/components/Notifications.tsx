// The toasts on screen (their state and useNotify are in hooks/useNotify.ts): errors and warnings
// as alerts, the others as status messages, each with its dismiss button.
import { useMemo, type ReactNode } from 'react';
import { NotifyContext, useToasts } from '../hooks/useNotify';

export function NotificationProvider({ children }: { children: ReactNode }) {
  const { toasts, notify, dismiss } = useToasts();
  const value = useMemo(() => ({ notify, dismiss }), [notify, dismiss]);

  return (
    <NotifyContext.Provider value={value}>
      {children}
      <div className="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.kind}`} role={t.kind === 'error' || t.kind === 'warning' ? 'alert' : 'status'} data-testid={`toast-${t.kind}`}>
            <div className="toast-body">
              {t.title && <div className="toast-title">{t.title}</div>}
              <div className="toast-message">{t.message}</div>
            </div>
            <button type="button" className="icon-btn" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </NotifyContext.Provider>
  );
}
