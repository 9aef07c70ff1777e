// The three lens types: their labels, a check for strings read back from the server (the schema
// types `lens_type` as any string), and the layer count a result implies.
import type { LensType } from '../api/types';

export const LENS_TYPES: { value: LensType; label: string }[] = [
  { value: 'block_output', label: 'Block Output (standard)' },
  { value: 'post_attention', label: 'Post-Attention' },
  { value: 'combined', label: 'Combined (most detailed)' },
];

export function isLensType(v: unknown): v is LensType {
  return LENS_TYPES.some((l) => l.value === v);
}

/** The label of a lens type, or the string itself when it is not one the app knows. */
export function lensLabel(v: string): string {
  return LENS_TYPES.find((l) => l.value === v)?.label ?? v;
}

/** Transformer layers implied by a lens result (when the model's own count is not known). */
export function inferLayers(rows: number, lens: LensType): number {
  if (rows <= 1) return 0;
  if (lens === 'post_attention') return Math.max(0, rows - 2);
  if (lens === 'combined') return Math.max(0, Math.floor((rows - 1) / 2));
  return rows - 1;
}
