// The bar of a run's or an evaluation's progress: a known fraction (now of max), or indeterminate
// while the server has not said how far it is.
import type { RunProgressView } from '../lib/progress';

export function ProgressBar({ label, view, className }: { label: string; view: RunProgressView; className?: string }) {
  const { text, value } = view;
  const pct = value ? Math.round((100 * value.now) / Math.max(1, value.max)) : null;
  return (
    <div
      className={`progress${className ? ` ${className}` : ''}${value ? '' : ' progress-indeterminate'}`}
      role="progressbar"
      aria-label={label}
      aria-valuetext={text}
      aria-valuemin={0}
      aria-valuemax={value ? value.max : undefined}
      aria-valuenow={value ? value.now : undefined}
    >
      <div className="progress-fill" style={pct === null ? undefined : { width: `${pct}%` }} />
    </div>
  );
}
