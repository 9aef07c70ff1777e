// Session timestamps: the server sends "YYYYMMDD_HHMMSS" (local time of the server); and the clock
// time a busy server says to try again at.

const TS = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/;

/** The Date of a session timestamp, or null when it is not in the server's form. */
export function parseSessionTime(ts: string | null | undefined): Date | null {
  if (!ts) return null;
  const m = TS.exec(ts.trim());
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
  return new Date(y, mo - 1, d, h, mi, s);
}

/** "20251203_162845" → "2025-12-03 16:28:45"; anything else is returned as given ("Unknown"). */
export function formatSessionTime(ts: string | null | undefined): string {
  if (!ts) return 'Unknown';
  const m = TS.exec(ts.trim());
  if (!m || !parseSessionTime(ts)) return ts;
  return `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}`;
}

/** "just now", "5 min ago", "3 h ago", "2 days ago", relative to `now`; "" for an unknown time. */
export function relativeSessionTime(ts: string | null | undefined, now: Date = new Date()): string {
  const d = parseSessionTime(ts);
  if (!d) return '';
  const sec = Math.round((now.getTime() - d.getTime()) / 1000);
  if (sec < 0) return '';
  if (sec < 60) return 'just now';
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ago`;
  const days = Math.floor(sec / 86400);
  return days === 1 ? '1 day ago' : `${days} days ago`;
}

/** A time of day on the user's clock, to the second ("14:03:25", or as the locale writes it). */
export function formatClock(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
