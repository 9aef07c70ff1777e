// Colour scales. Lens cells use "inferno" over sqrt(probability), so that the small
// probabilities of middle layers stay distinguishable; attention heatmaps use "viridis" as the
// saved PNGs do.

export type RGB = [number, number, number];

const VIRIDIS: RGB[] = [
  [68, 1, 84],
  [72, 40, 120],
  [62, 74, 137],
  [49, 104, 142],
  [38, 130, 142],
  [31, 158, 137],
  [53, 183, 121],
  [110, 206, 88],
  [181, 222, 43],
  [253, 231, 37],
];

const INFERNO: RGB[] = [
  [0, 0, 4],
  [31, 12, 72],
  [85, 15, 109],
  [136, 34, 106],
  [186, 54, 85],
  [227, 89, 51],
  [249, 140, 10],
  [249, 201, 50],
  [252, 255, 164],
];

function clamp01(x: number): number {
  if (!Number.isFinite(x)) return 0;
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

function sample(stops: RGB[], t: number): RGB {
  const x = clamp01(t) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

export function viridis(t: number): RGB {
  return sample(VIRIDIS, t);
}

export function inferno(t: number): RGB {
  return sample(INFERNO, t);
}

export function rgbString(c: RGB): string {
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** Relative luminance (sRGB, 0..1). */
export function luminance(c: RGB): number {
  const lin = (v: number) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
}

/** Text colour readable on `bg`. */
export function textOn(bg: RGB): string {
  return luminance(bg) > 0.22 ? '#0b1020' : '#f8fafc';
}

/** Position on the lens scale for a probability: sqrt spreads the small values. */
export function probToScale(p: number): number {
  return Math.sqrt(clamp01(p));
}

/** Background of a logit-lens cell for a top-1 probability. */
export function probColor(p: number): RGB {
  return inferno(0.08 + 0.92 * probToScale(p));
}

/**
 * Colour of an attention weight `v` on a scale from 0 to `max` (values above are clamped);
 * `gamma` < 1 lifts small weights (0.5 = square root).
 */
export function attentionColor(v: number, max = 1, gamma = 1): RGB {
  const m = max > 0 && Number.isFinite(max) ? max : 1;
  const t = clamp01(v / m);
  return viridis(gamma === 1 ? t : Math.pow(t, gamma));
}

// A diverging scale for a dark page: unchanged is the slate of an empty cell, and the colour gets
// lighter with the size of the change, blue one way and red the other (blue/red stays apart for
// the common colour-vision deficiencies).
const DIVERGING: RGB[] = [
  [191, 219, 254],
  [96, 165, 250],
  [37, 99, 235],
  [30, 58, 138],
  [51, 65, 85],
  [127, 29, 29],
  [220, 38, 38],
  [248, 113, 113],
  [254, 202, 202],
];

/** The diverging scale at `t` in [-1, 1]: -1 light blue, 0 neutral slate, 1 light red. */
export function diverging(t: number): RGB {
  const x = Number.isFinite(t) ? Math.max(-1, Math.min(1, t)) : 0;
  return sample(DIVERGING, (x + 1) / 2);
}

/** The neutral middle of the diverging scale. */
export const DIVERGING_NEUTRAL: RGB = DIVERGING[4];

/** What a signed matrix draws where there is no value (a normalized metric when clean = corrupted). */
export const NO_VALUE_COLOR: RGB = [30, 41, 59];

/** A signed value on the diverging scale from −max to max, linear (values beyond take its ends). */
export function signedColor(v: number | null, max: number): RGB {
  return v === null || !Number.isFinite(v) ? NO_VALUE_COLOR : diverging(v / (max > 0 && Number.isFinite(max) ? max : 1));
}

const NICE_STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];

/**
 * The smallest of 0.001, 0.002, 0.005 … 0.5, 1 that holds `x`: a probability-change scale fitted to
 * the grid, so that the small shifts of a weak intervention still show, with a legend that reads.
 */
export function niceProbMax(x: number): number {
  const a = Number.isFinite(x) ? Math.abs(x) : 0;
  return NICE_STEPS.find((s) => a <= s + 1e-12) ?? 1;
}

/** Signed position on the Δ scale: sqrt of |delta| / max, as the probability scale spreads small values. */
export function deltaToScale(delta: number, max: number): number {
  if (!Number.isFinite(delta) || delta === 0) return 0;
  const m = max > 0 && Number.isFinite(max) ? max : 1;
  return Math.sign(delta) * Math.sqrt(Math.min(1, Math.abs(delta) / m));
}

/** Background of a diff cell: blue where the baseline's top-1 lost probability, red where it gained. */
export function deltaColor(delta: number, max: number): RGB {
  return diverging(deltaToScale(delta, max));
}

/** Background of an entropy cell on 0..`max` nats (viridis: yellow = spread out, purple = confident). */
export function entropyColor(h: number, max: number): RGB {
  const m = max > 0 && Number.isFinite(max) ? max : 1;
  return viridis(clamp01(h / m));
}
