// Toasts: errors and warnings (a request refused for a reason the user can act on, such as a model
// too big for the free memory) stay until dismissed and carry the server's words; successes fade out.
import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from 'react';

export type ToastKind = 'error' | 'warning' | 'success' | 'info';

export interface Toast {
  id: number;
  kind: ToastKind;
  title?: string;
  message: string;
}

interface NotifyApi {
  notify: (kind: ToastKind, message: string, title?: string) => void;
  dismiss: (id: number) => void;
}

const NotifyContext = createContext<NotifyApi>({ notify: () => {}, dismiss: () => {} });

export function useNotify(): NotifyApi {
  return useContext(NotifyContext);
}

export function NotificationProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);

  const dismiss = useCallback((id: number) => setToasts((ts) => ts.filter((t) => t.id !== id)), []);
  const notify = useCallback(
    (kind: ToastKind, message: string, title?: string) => {
      const id = next.current++;
      setToasts((ts) => [...ts.slice(-4), { id, kind, title, message }]);
      if (kind !== 'error' && kind !== 'warning') window.setTimeout(() => dismiss(id), kind === 'success' ? 7000 : 5000);
    },
    [dismiss],
  );
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
