// The three lens types (which states of each layer become rows of the grid): their labels, a check for strings read from a saved session (its
// config.json may hold any value), and the layer count a result implies.
import type { LensType } from '../api/types';

const LABELS: Record<LensType, string> = {
  block_output: 'Block Output (standard)',
  post_attention: 'Post-Attention',
  combined: 'Combined (most detailed)',
};

/** The lens type select's options, in this order. */
export const LENS_TYPES: { value: LensType; label: string }[] = (['block_output', 'post_attention', 'combined'] as const).map((value) => ({ value, label: LABELS[value] }));

export function isLensType(v: unknown): v is LensType {
  return LENS_TYPES.some((l) => l.value === v);
}

/** The label of a lens type, or the string itself when it is not one the app knows. */
export function lensTypeLabel(v: string): string {
  return isLensType(v) ? LABELS[v] : v;
}

/** Transformer layers implied by a lens result (when the model's own count is not known). */
export function inferLayers(rows: number, lensType: LensType): number {
  if (rows <= 1) return 0;
  if (lensType === 'post_attention') return Math.max(0, rows - 2);
  if (lensType === 'combined') return Math.max(0, Math.floor((rows - 1) / 2));
  return rows - 1;
}
