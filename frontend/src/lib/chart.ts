// The arithmetic of the hand-drawn SVG line charts: a y axis (linear or logarithmic) with round
// ticks, where a value sits on it, and which x labels fit.

export type AxisScale = 'linear' | 'log';

export interface Axis {
  scale: AxisScale;
  /** The axis's ends, the bottom first. */
  lo: number;
  hi: number;
  ticks: number[];
  /** Where `v` sits, 0 at the bottom to 1 at the top; null when it cannot be drawn (not finite, or ≤ 0 on a log axis). */
  at: (v: number) => number | null;
}

/** A round step (1, 2, 2.5 or 5 × a power of ten) that cuts `span` in about `count` parts. */
export function niceStep(span: number, count = 4): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * pow;
}

/** `v` without the float noise of step arithmetic (0.30000000000000004 → 0.3). */
function clean(v: number): number {
  return Number(v.toPrecision(12));
}

/**
 * A linear axis over `values` (non-finite ones ignored), widened to round ticks. `include` adds
 * values the axis must show (0 for a measure that starts there; 0 and 1 for a fraction).
 */
export function linearAxis(values: number[], include: number[] = [], count = 4): Axis {
  const finite = [...values, ...include].filter(Number.isFinite);
  let min = finite.length ? Math.min(...finite) : 0;
  let max = finite.length ? Math.max(...finite) : 1;
  if (min === max) {
    // A flat line: an axis around it rather than a zero span.
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
    if (include.includes(0) && values.every((v) => !Number.isFinite(v) || v >= 0)) min = Math.max(0, min);
  }
  const step = niceStep(max - min, count);
  const lo = clean(Math.floor(min / step + 1e-9) * step);
  const hi = clean(Math.ceil(max / step - 1e-9) * step);
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step * 1e-6; t += step) ticks.push(clean(t));
  const span = hi - lo || 1;
  return { scale: 'linear', lo, hi, ticks, at: (v) => (Number.isFinite(v) ? (v - lo) / span : null) };
}

/** The largest of 1, 2, 5 × a power of ten that is ≤ `v` (v > 0). */
function floorNice(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v) + 1e-9);
  const f = v / p;
  return clean((f >= 5 - 1e-9 ? 5 : f >= 2 - 1e-9 ? 2 : 1) * p);
}

/** The smallest of 1, 2, 5 × a power of ten that is ≥ `v` (v > 0). */
function ceilNice(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v) + 1e-9);
  const f = v / p;
  return clean((f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10) * p);
}

/**
 * A logarithmic axis over the positive finite `values`, its ends at 1, 2 or 5 × a power of ten
 * around them (at most 8 decades, the largest values kept); ticks at the powers of ten, and at 2
 * and 5 times them when the axis spans two decades or less.
 */
export function logAxis(values: number[]): Axis {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  const min = positive.length ? Math.min(...positive) : 0.1;
  const max = positive.length ? Math.max(...positive) : 1;
  let lo = floorNice(min);
  let hi = ceilNice(max);
  if (hi <= lo) hi = ceilNice(lo * 1.5);
  if (hi / lo > 1e8) lo = clean(hi / 1e8);
  const decades = Math.log10(hi / lo);
  const mantissas = decades <= 2 + 1e-9 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo) + 1e-9); e <= Math.ceil(Math.log10(hi) - 1e-9); e++) {
    for (const m of mantissas) {
      const t = clean(m * 10 ** e);
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push(t);
    }
  }
  const span = Math.log10(hi) - Math.log10(lo);
  return { scale: 'log', lo, hi, ticks, at: (v) => (Number.isFinite(v) && v > 0 ? (Math.log10(v) - Math.log10(lo)) / span : null) };
}

/** A tick's label: short, without float noise (0.25, 1.5, 1e-3 → 0.001, 12000 → 12k). */
export function formatTick(v: number, percent = false): string {
  if (percent) return `${clean(v * 100)}%`;
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4) return `${clean(v / 1000)}k`;
  if (a < 1e-3) return v.toExponential(0);
  return String(clean(v));
}

/** A value for reading (a tooltip, a table): 4 significant digits, or a percentage with one decimal. */
export function formatValue(v: number | null | undefined, percent = false): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a';
  if (percent) return `${(v * 100).toFixed(1)}%`;
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/**
 * Every how many x labels one is written, so that labels `labelWidth` wide do not overlap over
 * `n` positions `spacing` apart (1: all of them).
 */
export function labelEvery(n: number, spacing: number, labelWidth: number): number {
  if (n <= 1 || spacing <= 0) return 1;
  return Math.max(1, Math.ceil(labelWidth / spacing));
}

/** About how wide `text` is drawn at `fontSize` px in the chart font (for room, not for layout to the pixel). */
export function textWidth(text: string, fontSize: number): number {
  return Math.ceil(Array.from(text).length * fontSize * 0.6);
}
