// The prompt history of the tab: every run put on screen (a run, a generation, a session's results)
// is kept, newest first and bounded (lib/runHistory.ts), so that an earlier one can be shown again
// without recomputing it, or two of them overlaid (A and B, lib/runCompare.ts).
import { useEffect, useRef, useState } from 'react';
import { boundHistory, HISTORY_LIMITS, type HistoryEntry, type HistoryLimits } from '../lib/runHistory';
import type { RunState } from './useRun';
import type { RunView } from './useShownRun';

export type RunHistoryEntry = HistoryEntry<RunView>;

/** Two runs of the history overlaid: B's grid against A's. */
export interface RunComparePair {
  a: RunHistoryEntry;
  b: RunHistoryEntry;
}

export interface RunHistoryState {
  /** Newest first. */
  entries: RunHistoryEntry[];
  limits: HistoryLimits;
  /** The entry on screen, or null (none is, or it was removed). */
  shownId: number | null;
  /** Puts an entry's run on screen again, as it was answered. */
  show: (id: number) => void;
  remove: (id: number) => void;
  /** Forgets every entry, and closes the comparison. */
  clear: () => void;
  /** The runs picked as A and B: the user's picks, else the one before the newest and the newest. */
  a: number | null;
  b: number | null;
  setA: (id: number) => void;
  setB: (id: number) => void;
  /** Why A and B cannot be compared now, or null. */
  compareDisabledReason: string | null;
  /** Overlays B on A. */
  compare: () => void;
  /** The comparison on screen (its runs stay until it is closed, even if removed from the list). */
  comparison: RunComparePair | null;
  closeCompare: () => void;
}

export interface RunHistoryOptions {
  /** The clock (ms), for the entries' times. */
  now?: () => number;
  limits?: HistoryLimits;
}

export function useRunHistory(run: Pick<RunState, 'view' | 'show'>, { now = Date.now, limits = HISTORY_LIMITS }: RunHistoryOptions = {}): RunHistoryState {
  const [entries, setEntries] = useState<RunHistoryEntry[]>([]);
  const [picks, setPicks] = useState<{ a: number | null; b: number | null }>({ a: null, b: null });
  const [comparison, setComparison] = useState<RunComparePair | null>(null);
  const nextId = useRef(1);
  // Every view the history has seen, to its entry's id: a view shown again from the history is not
  // a new run, and a view whose attention the bound let go is still the entry of the one on screen.
  const ids = useRef(new WeakMap<RunView, number>());
  const { view } = run;

  useEffect(() => {
    if (!view || ids.current.has(view)) return;
    const entry: RunHistoryEntry = { id: nextId.current++, at: now(), view, attentionDropped: false };
    ids.current.set(view, entry.id);
    setEntries((prev) => {
      const next = boundHistory([entry, ...prev], limits);
      for (const e of next) ids.current.set(e.view, e.id);
      return next;
    });
    // `now` and `limits` are settings, read when a run comes: only a new view adds an entry.
  }, [view]);

  const has = (id: number | null) => id !== null && entries.some((e) => e.id === id);
  const a = has(picks.a) ? picks.a : (entries[1]?.id ?? null);
  const b = has(picks.b) ? picks.b : (entries[0]?.id ?? null);
  const shown = view ? ids.current.get(view) : undefined;
  const shownId = shown !== undefined && has(shown) ? shown : null;

  const compareDisabledReason =
    entries.length < 2 ? 'Compare needs two runs in the history: run another prompt first' : a === null || b === null ? 'Pick a run as A and one as B' : a === b ? 'A and B are the same run: pick another for one of them' : null;

  const show = (id: number) => {
    const e = entries.find((x) => x.id === id);
    if (e) run.show(e.view);
  };

  return {
    entries,
    limits,
    shownId,
    show,
    remove: (id) => setEntries((prev) => prev.filter((e) => e.id !== id)),
    clear: () => {
      setEntries([]);
      setPicks({ a: null, b: null });
      setComparison(null);
    },
    a,
    b,
    setA: (id) => setPicks((p) => ({ ...p, a: id })),
    setB: (id) => setPicks((p) => ({ ...p, b: id })),
    compareDisabledReason,
    compare: () => {
      const ea = entries.find((e) => e.id === a);
      const eb = entries.find((e) => e.id === b);
      if (ea && eb && ea !== eb) setComparison({ a: ea, b: eb });
    },
    comparison,
    closeCompare: () => setComparison(null),
  };
}
