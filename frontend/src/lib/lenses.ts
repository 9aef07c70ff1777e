// The two lenses that draw a grid's rows: the logit lens (each state through the model's own
// head) and a tuned lens (a learned translator per layer, attached with POST /load_lens). Their
// labels, a check for values read from files, and what a run may ask for.
import type { Lens, LensType } from '../api/types';

const LABELS: Record<Lens, string> = {
  logit: 'Logit lens',
  tuned: 'Tuned lens',
  jacobian: 'Jacobian lens',
};

/** The lens select's options, in this order. */
export const LENSES: { value: Lens; label: string }[] = (['logit', 'tuned'] as const).map((value) => ({ value, label: LABELS[value] }));

export function isLens(v: unknown): v is Lens {
  return LENSES.some((l) => l.value === v);
}

/** The last part of a folder path (either separator, trailing ones ignored): what names a tuned lens. */
export function lensFolderName(path: string): string {
  const parts = path.split(/[\\/]+/).filter((p) => p !== '');
  return parts[parts.length - 1] ?? path;
}

/** What drew a grid, in words: "logit lens", "tuned lens (llama)", or "tuned lens" when its folder is unknown. */
export function lensName(lens: Lens, folder?: string | null): string {
  if (lens === 'logit') return 'logit lens';
  return folder ? `tuned lens (${lensFolderName(folder)})` : 'tuned lens';
}

/**
 * Why the tuned lens cannot draw a run of `lensType`, or null when it can: a tuned lens
 * translates block outputs only (the server refuses the other lens types with it).
 */
export function tunedLensUnavailable(lensType: LensType): string | null {
  return lensType === 'block_output' ? null : 'A tuned lens translates block outputs: choose the Block Output lens type in the header to use it.';
}

/**
 * The lens a run asks for: the choice when the model has a tuned lens attached and the lens type
 * allows it, else the logit lens (so the request is always one the server accepts).
 */
export function effectiveLens(choice: Lens | undefined, attached: string | null | undefined, lensType: LensType): Lens {
  return choice === 'tuned' && !!attached && tunedLensUnavailable(lensType) === null ? 'tuned' : 'logit';
}
