// The three lenses that draw a grid's rows: the logit lens (each state through the model's own
// head), a tuned lens (a learned translator per layer, a folder attached with POST /load_lens) and
// a Jacobian lens (a matrix per layer that transports the block output before the head, a file
// attached the same way, or fitted by the server). Their labels and names, what is attached to the
// model in service, why a lens cannot draw a run, and what a run may ask for.
import type { AttachedJacobianLens, Lens, LensType, ModelDescription } from '../api/types';
import { formatPositions } from './receipts';

const LABELS: Record<Lens, string> = {
  logit: 'Logit lens',
  tuned: 'Tuned lens',
  jacobian: 'Jacobian lens',
};

/** The lens select's options, in this order. */
export const LENSES: { value: Lens; label: string }[] = (['logit', 'tuned', 'jacobian'] as const).map((value) => ({ value, label: LABELS[value] }));

export function isLens(v: unknown): v is Lens {
  return LENSES.some((l) => l.value === v);
}

/**
 * The last part of a path (either separator, trailing ones ignored): what names a lens, a tuned
 * lens's folder ("llama") or a Jacobian lens's file ("jlens.pt").
 */
export function lensPathName(path: string): string {
  const parts = path.split(/[\\/]+/).filter((p) => p !== '');
  return parts[parts.length - 1] ?? path;
}

/**
 * What drew a grid, in words: "logit lens", "tuned lens (llama)", "Jacobian lens (jlens.pt)", or
 * without the parenthesis when the folder or file is unknown.
 */
export function lensName(lens: Lens, path?: string | null): string {
  if (lens === 'logit') return 'logit lens';
  const base = lens === 'tuned' ? 'tuned lens' : 'Jacobian lens';
  return path ? `${base} (${lensPathName(path)})` : base;
}

/** The lenses attached to the model in service: a tuned lens's folder, a Jacobian lens. */
export interface AttachedLenses {
  tuned: string | null;
  jacobian: AttachedJacobianLens | null;
}

export const NO_LENSES: AttachedLenses = { tuned: null, jacobian: null };

/** What a model description says is attached to it. */
export function attachedLenses(m: Pick<ModelDescription, 'tuned_lens' | 'jacobian_lens'> | null | undefined): AttachedLenses {
  return { tuned: m?.tuned_lens || null, jacobian: m?.jacobian_lens ?? null };
}

/** The folder or file of `lens` among those attached (null for the logit lens, or none attached). */
export function attachedPath(lens: Lens, attached: AttachedLenses): string | null {
  if (lens === 'tuned') return attached.tuned;
  if (lens === 'jacobian') return attached.jacobian?.path || null;
  return null;
}

/**
 * Why `lens` cannot draw a run of `lensType` with the lenses attached, or null when it can. Both
 * learned lenses read block outputs only (the server refuses the other lens types with them).
 */
export function lensUnavailable(lens: Lens, attached: AttachedLenses, lensType: LensType): string | null {
  if (lens === 'logit') return null;
  if (lens === 'tuned' && !attached.tuned) return 'No tuned lens is attached: attach its folder under Lenses in the header.';
  if (lens === 'jacobian' && !attached.jacobian) return 'No Jacobian lens is attached: attach its file under Lenses in the header, or fit one in the Jacobian lens view.';
  return lensTypeUnavailable(lensType);
}

/** Why no lens but the logit lens can draw a run of `lensType`, or null (block outputs). */
export function lensTypeUnavailable(lensType: LensType): string | null {
  return lensType === 'block_output'
    ? null
    : 'The tuned and Jacobian lenses read block outputs: choose the Block Output lens type in the header to use them.';
}

/**
 * The lens a run asks for: the choice when it can draw a run of `lensType` with the lenses
 * attached, else the logit lens (so the request is always one the server accepts).
 */
export function effectiveLens(choice: Lens | undefined, attached: AttachedLenses, lensType: LensType): Lens {
  return choice && lensUnavailable(choice, attached, lensType) === null ? choice : 'logit';
}

/** The layers a Jacobian lens covers, in words: "layers 0–1", "layer 3". */
export function layersText(layers: readonly number[]): string {
  if (layers.length === 0) return 'no layers';
  return `${layers.length === 1 ? 'layer' : 'layers'} ${formatPositions([...layers])}`;
}

/** A Jacobian lens in a few words: "jlens.pt · 12 prompts · layers 0–1". */
export function jacobianSummary(j: AttachedJacobianLens): string {
  const name = j.path ? lensPathName(j.path) : 'fitted here, not saved';
  return `${name} · ${j.n_prompts} prompt${j.n_prompts === 1 ? '' : 's'} · ${layersText(j.source_layers)}`;
}

/**
 * The rows a Jacobian lens transports in a grid of block outputs ("Layer ℓ" for each layer it
 * covers): what a generation's grid marks while it is written, before the answer names them.
 */
export function transportedRowNames(j: AttachedJacobianLens | null): string[] {
  return j ? j.source_layers.map((l) => `Layer ${l}`) : [];
}

/** One option of the lens select: its label (with the folder or file), and why it cannot be chosen now. */
export interface LensOption {
  value: Lens;
  label: string;
  /** The tuned lens's folder or the Jacobian lens's file. */
  path: string | null;
  disabledReason: string | null;
}

/** The lens select: its options, and why it is disabled as a whole (a lens type only the logit lens draws). */
export interface LensChoices {
  options: LensOption[];
  disabledReason: string | null;
  attached: AttachedLenses;
}

/**
 * The lens select for the lenses attached and the lens type; null when no lens but the logit lens
 * is attached (nothing to choose). A lens that is not attached is listed, disabled, with the reason.
 */
export function lensChoices(attached: AttachedLenses, lensType: LensType): LensChoices | null {
  if (!attached.tuned && !attached.jacobian) return null;
  const options = LENSES.map(({ value, label }) => {
    const path = attachedPath(value, attached);
    const missing = value !== 'logit' && (value === 'tuned' ? !attached.tuned : !attached.jacobian);
    return {
      value,
      label: value === 'logit' ? label : `${label} (${path ? lensPathName(path) : missing ? 'none attached' : 'fitted here'})`,
      path,
      disabledReason: missing ? lensUnavailable(value, attached, lensType) : null,
    };
  });
  return { options, disabledReason: lensTypeUnavailable(lensType), attached };
}

/**
 * Which lens POST /load_lens attached for `path` (the server tells a folder from a file): the one
 * whose folder or file is now `path` (or ends with it, when it was given relative), else the one
 * that changed; null when neither can be told.
 */
export function attachedKind(path: string, before: AttachedLenses, after: AttachedLenses): Exclude<Lens, 'logit'> | null {
  const trimmed = path.replace(/[\\/]+$/, '');
  const names = (p: string | null | undefined) => !!p && (p === trimmed || p.replace(/[\\/]+$/, '').endsWith(`/${trimmed.replace(/^\.\//, '')}`));
  if (names(after.jacobian?.path)) return 'jacobian';
  if (names(after.tuned)) return 'tuned';
  if (JSON.stringify(after.jacobian) !== JSON.stringify(before.jacobian)) return 'jacobian';
  if (after.tuned !== before.tuned) return 'tuned';
  return null;
}
