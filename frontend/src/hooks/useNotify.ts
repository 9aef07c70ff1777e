// Toasts, as the hooks and views raise them: errors and warnings (a request refused for a reason the
// user can act on, such as a model too big for the free memory) stay until dismissed and carry the
// server's words; successes and notes fade out. The list is kept here; the Notifications component
// only shows it.
import { createContext, useCallback, useContext, useMemo, useRef, useState } from 'react';

export type ToastKind = 'error' | 'warning' | 'success' | 'info';

export interface Toast {
  id: number;
  kind: ToastKind;
  title?: string;
  message: string;
}

export interface NotifyApi {
  notify: (kind: ToastKind, message: string, title?: string) => void;
  dismiss: (id: number) => void;
}

export const NotifyContext = createContext<NotifyApi>({ notify: () => {}, dismiss: () => {} });

/** Raises and dismisses toasts (those of the nearest NotificationProvider). */
export function useNotify(): NotifyApi {
  return useContext(NotifyContext);
}

/** The toasts on screen and what changes them: the state behind a NotificationProvider. */
export function useToasts(): NotifyApi & { toasts: Toast[] } {
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
  return useMemo(() => ({ toasts, notify, dismiss }), [toasts, notify, dismiss]);
}
